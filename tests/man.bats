#!/usr/bin/env bats
# Every program has a man page whose SYNOPSIS is its usage line.
load helpers

setup() { T="$BATS_TEST_TMPDIR"; }

@test "every program has a man page in man/man1" {
	for src in "$REPO"/tools/*.c; do
		t=$(basename "$src" .c)
		[ -f "$REPO/man/man1/$t.1" ] || fail "no man page for $t"
	done
}

@test "every program's --help equals its man page SYNOPSIS" {
	command -v groff >/dev/null || skip "groff is not installed"
	for src in "$REPO"/tools/*.c; do
		t=$(basename "$src" .c)
		groff -mandoc -Tutf8 -P-c -rLL=300n "$REPO/man/man1/$t.1" 2>/dev/null | col -b |
			sed -n '/^SYNOPSIS/,/^DESCRIPTION/p' | sed '1d;$d;/^ *$/d;s/^ *//' > "$T/synopsis"
		run "$BIN/$t" --help
		assert_success
		printf '%s\n' "$output" | sed 's/^usage: //;s/^ *//' > "$T/usage"
		diff "$T/synopsis" "$T/usage" || fail "$t: usage differs from man/man1/$t.1"
	done
}

@test "a usage error exits 2 and names the program, not its path" {
	for src in "$REPO"/tools/*.c; do
		t=$(basename "$src" .c)
		run "$BIN/$t" --no-such-option
		assert_failure 2
		assert_line --index 0 --regexp "^$t: "
		assert_output --partial "usage: $t"
	done
}

@test "the man pages pass mandoc -Tlint" {
	command -v mandoc >/dev/null || skip "mandoc is not installed"
	run sh -c "mandoc -Tlint -Wwarning '$REPO'/man/man*/*"
	assert_success
}
