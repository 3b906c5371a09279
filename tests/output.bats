#!/usr/bin/env bats
# Outputs and signals (cnnpipe(7), OUTPUTS AND SIGNALS): what -o does to
# what is already there, what a signal or an error leaves behind, write
# errors on the standard output, and binary data to a terminal.
#
# No test names a device of the system as -o: a tool that replaced its
# output would replace the device.  Devices are nodes of our own where
# mknod is allowed, else links to the system's (a link is what would be
# replaced then).
load helpers
bats_require_minimum_version 1.5.0

setup_file() {
	export T="$BATS_FILE_TMPDIR"
	mkdir -p "$T/d/a" "$T/d/b"
	for i in 1 2 3; do
		convert -size 40x30 xc:red "$T/d/a/$i.jpg"
		convert -size 30x40 xc:blue "$T/d/b/$i.png"
	done
	"$PYTHON" "$BATS_TEST_DIRNAME/make_tiny_darknet.py" "$T/tiny.cfg" "$T/tiny.weights" 3
	"$PYTHON" "$BATS_TEST_DIRNAME/make_images.py" "$T/imgs" 16 32 a,b --epochs 1
	"$BIN/imgprep" -s 16 "$T/d" > "$T/ref.imgprep" 2> /dev/null
	"$BIN/pretrained" -a darknet -w "$T/tiny.weights" --cfg "$T/tiny.cfg" -c a,b \
		--seed 4 -o "$T/tiny.model"
	"$BIN/tensor" to-npy -t image "$T/ref.imgprep" > "$T/ref.npy"
}

# The writers with -o, each as "name|command" with OUT for the output; ref
# NAME is what it writes.
WRITERS=(
	'imgprep|imgprep -s 16 -o OUT $T/d'
	'cat|tensor cat -o OUT $T/ref.imgprep'
	'npy|tensor to-npy -t image -o OUT $T/ref.imgprep'
	'pretrained|pretrained -a darknet -w $T/tiny.weights --cfg $T/tiny.cfg -c a,b --seed 4 -o OUT'
)
ref() {
	case $1 in
	imgprep|cat) echo "$T/ref.imgprep" ;;
	npy) echo "$T/ref.npy" ;;
	pretrained) echo "$T/tiny.model" ;;
	esac
}
# prog ENTRY: the program it runs.
prog() {
	local cmd=${1#*|}
	echo "${cmd%% *}"
}
# write ENTRY OUT: runs a writer with -o OUT, in `run`.
write() {
	local cmd=${1#*|}
	run bash -c "${cmd//OUT/"'$2'"} 2>&1"
}

# node DIR NAME TYPE MAJOR MINOR: a device node DIR/NAME, or a link to
# /dev/NAME where mknod is not allowed.
node() {
	mknod "$1/$2" "$3" "$4" "$5" 2> /dev/null || ln -s "/dev/$2" "$1/$2"
}

# leftovers DIR: the names in DIR that no test put there (temporaries).
leftovers() {
	ls -A "$1" | grep -E '^\.cnnpipe\.|\.tmp' || true
}

@test "-o a character device (/dev/null): written through, the device kept" {
	D="$BATS_TEST_TMPDIR"
	node "$D" null c 1 3
	for w in "${WRITERS[@]}"; do
		write "$w" "$D/null"
		assert_success
		[ -c "$D/null" ] || fail "${w%%|*}: /dev/null replaced: $(ls -l "$D/null")"
	done
	[ -z "$(leftovers "$D")" ]
}

@test "-o /dev/full: exit 1, one message, the device kept" {
	D="$BATS_TEST_TMPDIR"
	node "$D" full c 1 7
	for w in "${WRITERS[@]}"; do
		write "$w" "$D/full"
		assert_failure 1
		assert_output "$(prog "$w"): $D/full: write error: No space left on device"
		[ -c "$D/full" ]
	done
	[ -z "$(leftovers "$D")" ]
}

@test "-o a FIFO: written through to its reader, the FIFO kept" {
	D="$BATS_TEST_TMPDIR"
	mkfifo "$D/p"
	for w in "${WRITERS[@]}"; do
		# a writer that replaced the FIFO would leave this cat waiting
		timeout 10 cat "$D/p" > "$D/got" 3>&- &
		write "$w" "$D/p"
		assert_success
		wait $!
		cmp "$D/got" "$(ref "${w%%|*}")"
		[ -p "$D/p" ]
	done
	[ -z "$(leftovers "$D")" ]
}

@test "-o a symbolic link: the file it names is replaced, the link kept" {
	D="$BATS_TEST_TMPDIR"
	mkdir "$D/real"
	for w in "${WRITERS[@]}"; do
		echo old > "$D/real/f"
		ln -sfn real/f "$D/link"
		write "$w" "$D/link"
		assert_success
		[ -L "$D/link" ] || fail "${w%%|*}: the link was replaced"
		cmp "$D/real/f" "$(ref "${w%%|*}")"
	done
	[ -z "$(leftovers "$D")" ]
	[ -z "$(leftovers "$D/real")" ]
	ln -s nowhere "$D/dangling"
	run imgprep -s 16 -o "$D/dangling" "$T/d"
	assert_failure 1
	assert_output "imgprep: $D/dangling: a symbolic link to nothing: will not guess where to write"
	[ -L "$D/dangling" ]
	[ ! -e "$D/nowhere" ]
}

@test "-o an existing file keeps its mode, and its owner where we may" {
	D="$BATS_TEST_TMPDIR"
	other=
	[ "$(id -u)" = 0 ] && id nobody > /dev/null 2>&1 && other=nobody
	for w in "${WRITERS[@]}"; do
		echo old > "$D/f"
		chmod 600 "$D/f"
		[ -z "$other" ] || chown "$other" "$D/f"
		write "$w" "$D/f"
		assert_success
		cmp "$D/f" "$(ref "${w%%|*}")"
		run stat -c '%a %U' "$D/f"
		assert_output "600 ${other:-$(id -un)}"
	done
	# a new file: 0666 less the umask, as the shell's > makes it
	(umask 027 && imgprep -s 16 -o "$D/new" "$T/d" 2> /dev/null)
	run stat -c '%a' "$D/new"
	assert_output 640
	[ -z "$(leftovers "$D")" ]
}

@test "-o a file we may not write to is refused, as > would refuse it" {
	if [ "$(id -u)" = 0 ]; then
		command -v setpriv > /dev/null && id nobody > /dev/null 2>&1 ||
			skip "root without setpriv(1) or a nobody user"
		as=(setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups)
	else
		as=()
	fi
	# a folder anyone may write to, and a file no one may
	D=$(mktemp -d /tmp/cnnpipe-output.XXXXXX)
	chmod 777 "$D"
	cp "$T/ref.imgprep" "$D/in"
	chmod 644 "$D/in"
	echo old > "$D/ro"
	chmod 444 "$D/ro"
	run "${as[@]}" "$BIN/tensor" cat -o "$D/ro" "$D/in"
	ls -l "$D/ro"
	rest=$(cat "$D/ro"; ls -A "$D")
	rm -rf "$D"
	assert_failure 1
	assert_output "tensor: $D/ro: Permission denied"
	[ "$rest" = "old
in
ro" ]
}

@test "-o a name of 252 and of 255 bytes (the longest legal)" {
	D="$BATS_TEST_TMPDIR"
	for n in 252 255; do
		name=$(printf "%${n}s" | tr ' ' x)
		run imgprep -s 16 -o "$D/$name" "$T/d"
		assert_success
		cmp "$D/$name" "$T/ref.imgprep"
		run tensor to-npy -t image -o "$D/$name" "$T/ref.imgprep"
		assert_success
		cmp "$D/$name" "$T/ref.npy"
	done
	[ -z "$(leftovers "$D")" ]
}

@test "-o a directory or a block device is refused, with the reason" {
	D="$BATS_TEST_TMPDIR"
	mkdir "$D/dir"
	run imgprep -s 16 -o "$D/dir" "$T/d"
	assert_failure 1
	assert_output "imgprep: $D/dir: is a directory"
	[ -z "$(ls -A "$D/dir")" ]
	mknod "$D/blk" b 7 200 2> /dev/null || skip "mknod is not allowed here"
	run tensor cat -o "$D/blk" "$T/ref.imgprep"
	assert_failure 1
	assert_output "tensor: $D/blk: not a regular file, a character device or a FIFO"
	[ -b "$D/blk" ]
}

# feed FIFO BYTES: writes the first BYTES of a stream into FIFO, then holds
# it open (the reader blocks mid-stream) until killed; its pid in $feeder.
feed() {
	{ head -c "$2" "$T/ref.imgprep"; exec sleep 60; } > "$1" 3>&- &
	feeder=$!
}
teardown() {
	[ -z "${feeder:-}" ] || kill "$feeder" 2> /dev/null || true
}
# await_temp DIR: waits (5 s at most) for a temporary in DIR.
await_temp() {
	for _ in $(seq 50); do
		[ -n "$(leftovers "$1")" ] && return 0
		sleep 0.1
	done
	return 1
}

@test "SIGINT, SIGTERM, SIGHUP, SIGPIPE mid-output: no temporary left, the signal's exit status" {
	D="$BATS_TEST_TMPDIR"
	mkfifo "$D/in"
	for sig in INT TERM HUP PIPE; do
		feed "$D/in" 3000
		# as from a terminal: not ignored (a script's background job ignores SIGINT)
		env --default-signal tensor cat -o "$D/out" "$D/in" 3>&- &
		pid=$!
		await_temp "$D" || fail "$sig: no temporary appeared"
		kill -"$sig" "$pid"
		rc=0
		wait "$pid" || rc=$?
		kill "$feeder"
		[ "$rc" -eq $((128 + $(kill -l "$sig"))) ] || fail "$sig: exit $rc"
		[ -z "$(leftovers "$D")" ] || fail "$sig left $(leftovers "$D")"
		[ ! -e "$D/out" ]
	done
}

@test "an ignored SIGINT stays ignored; SIGKILL leaves one .cnnpipe.XXXXXX" {
	D="$BATS_TEST_TMPDIR"
	mkfifo "$D/in"
	feed "$D/in" 3000
	(trap '' INT && exec tensor cat -o "$D/out" "$D/in") 3>&- &
	pid=$!
	await_temp "$D"
	kill -INT "$pid"
	sleep 0.3
	kill -0 "$pid"   # still running
	kill -KILL "$pid"
	wait "$pid" || true
	kill "$feeder"
	run leftovers "$D"
	assert_output --regexp '^\.cnnpipe\.[A-Za-z0-9]{6}$'
}

@test "a failed run leaves no temporary and no output" {
	D="$BATS_TEST_TMPDIR"
	head -c 3000 "$T/ref.imgprep" > "$D/cut"
	run tensor cat -o "$D/out" "$D/cut"
	assert_failure 1
	assert_output --partial "$D/cut"
	[ ! -e "$D/out" ]
	run -0 imgprep -s 16 -o "$D/ok" "$T/d"
	printf 'not a jpeg' > "$D/bad.jpg"
	mkdir -p "$D/dd/a"
	cp "$D/bad.jpg" "$D/dd/a/"
	run imgprep -s 16 --strict -o "$D/ok" "$D/dd"
	assert_failure 1
	cmp "$D/ok" "$T/ref.imgprep"   # the old output untouched
	[ -z "$(leftovers "$D")" ]
}

@test "a write error on the standard output is reported once, by every writer" {
	[ -w /dev/full ] || skip "/dev/full is absent"
	for cmd in "imgprep -s 16 $T/d" \
	           "precompute -m $T/tiny.model $T/imgs" \
	           "augment -s 32 $T/imgs" \
	           "tta -m $T/tiny.model -n 0 $T/imgs" \
	           "tensor cat $T/imgs" \
	           "tensor to-npy -t image $T/imgs" \
	           "tensor info $T/imgs" \
	           "pretrained -a darknet -w $T/tiny.weights --cfg $T/tiny.cfg -c a,b -o -" \
	           "train -m $T/tiny.model -o $BATS_TEST_TMPDIR/m -b 8 $T/imgs"; do
		run bash -c "$cmd 2>&1 > /dev/full"
		assert_failure 1
		[ "${#lines[@]}" -eq 1 ] || fail "$cmd: ${#lines[@]} messages: $output"
		assert_output --regexp "^${cmd%% *}: (standard output: write error|write error on standard output)(: No space left on device)?$"
	done
}

# tty CMD: runs CMD with a terminal as its standard output (and input).
tty() {
	run script -qec "$1" /dev/null
	output=${output//$'\r'/}
}

@test "binary output to a terminal is refused by every writer, before it reads a terminal" {
	command -v script > /dev/null || skip "script(1) is not installed"
	for cmd in "imgprep -s 16 $T/d" \
	           "precompute -m $T/tiny.model" \
	           "augment -s 32" \
	           "tta -m $T/tiny.model -n 0" \
	           "tensor cat $T/imgs" \
	           "tensor head -n 1 $T/imgs" \
	           "tensor to-npy -t image" \
	           "pretrained -a darknet -w $T/tiny.weights --cfg $T/tiny.cfg -c a,b -o -"; do
		tty "timeout 20 $cmd"
		[ "$status" -eq 1 ] || fail "$cmd: exit $status: $output"
		assert_output "${cmd%% *}: standard output is a terminal: redirect it to a file or a pipe"
	done
	# a terminal named with -o, too
	ln -s /dev/tty "$BATS_TEST_TMPDIR/tty"
	tty "imgprep -s 16 -o $BATS_TEST_TMPDIR/tty $T/d"
	[ "$status" -eq 1 ]
	assert_output "imgprep: $BATS_TEST_TMPDIR/tty: is a terminal: name a file, a pipe or /dev/null"
	[ -L "$BATS_TEST_TMPDIR/tty" ]
}
