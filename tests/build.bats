#!/usr/bin/env bats
# The build's own targets: install puts every program and page in place.
load helpers

@test "make install puts every program and man page under PREFIX" {
	run make -C "$REPO" --no-print-directory install DESTDIR="$BATS_TEST_TMPDIR" PREFIX=/usr/local
	assert_success
	for src in "$REPO"/tools/*.c; do
		t=$(basename "$src" .c)
		[ -x "$BATS_TEST_TMPDIR/usr/local/bin/$t" ] || fail "bin/$t not installed"
		[ -f "$BATS_TEST_TMPDIR/usr/local/share/man/man1/$t.1" ] || fail "$t.1 not installed"
	done
	[ -f "$BATS_TEST_TMPDIR/usr/local/share/man/man5/cnnpipe-tensor.5" ]
	[ -f "$BATS_TEST_TMPDIR/usr/local/share/man/man7/cnnpipe.7" ]
	run "$BATS_TEST_TMPDIR/usr/local/bin/tensor" --help
	assert_success
}
