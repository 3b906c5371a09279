#!/usr/bin/env bats
# Conventions every program shares (libcommon): the progress bar stays out
# of pipes, outputs appear whole or not at all, write errors fail.
load helpers

setup() {
	T="$BATS_TEST_TMPDIR"
	mkdir -p "$T/d/a" "$T/d/b"
	for i in 1 2 3; do
		convert -size 40x30 xc:red "$T/d/a/$i.jpg"
		convert -size 30x40 xc:blue "$T/d/b/$i.png"
	done
}

@test "progress: not shown when stderr is not a terminal" {
	imgprep -s 16 -o "$T/x.stream" "$T/d" 2> "$T/err"
	run cat "$T/err"
	refute_output --partial "["
	assert_output "imgprep: $T/d: 6 images, 0 skipped"
}

@test "progress: shown on stderr when asked, never in the stream" {
	CNNPIPE_PROGRESS=1 imgprep -s 16 "$T/d" > "$T/x.stream" 2> "$T/err"
	grep -q 'imgprep \[#*' "$T/err"
	imgprep -s 16 "$T/d" 2>/dev/null | cmp - "$T/x.stream"
	CNNPIPE_PROGRESS=0 imgprep -s 16 "$T/d" 2> "$T/err0" > /dev/null
	! grep -q '\[' "$T/err0"
}

@test "progress: shown when stderr is a terminal" {
	command -v script >/dev/null || skip "script(1) is not installed"
	script -qec "imgprep -s 16 -o '$T/y.stream' '$T/d'" /dev/null > "$T/tty" 2>&1
	grep -q 'imgprep \[' "$T/tty"
	cmp "$T/y.stream" <(imgprep -s 16 "$T/d" 2>/dev/null)
}

@test "a failed run leaves no output file behind" {
	printf 'not a jpeg' > "$T/d/a/4.jpg"
	run imgprep -s 16 --strict -o "$T/out.stream" "$T/d"
	assert_failure 1
	assert_output --partial "4.jpg"
	[ ! -e "$T/out.stream" ]
	run ls -A "$T"
	refute_output --partial ".cnnpipe."   # the temporary (cnnpipe(7))
}

@test "a write error on standard output is a failed run" {
	[ -w /dev/full ] || skip "/dev/full is absent"
	run sh -c "imgprep -s 16 '$T/d' > /dev/full"
	assert_failure 1
	assert_output --partial "write error"
}
