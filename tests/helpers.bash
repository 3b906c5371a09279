# Shared setup for the bats suites.
load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

REPO="$(cd "$BATS_TEST_DIRNAME/.." && pwd)"
BIN="${CNNPIPE_BIN:-$REPO/bin}"
# the unit programs some suites run (make sanitize: the sanitizer build's,
# which has no AVX-512 or FMA, so their PyTorch goldens check those paths too)
UNIT="${CNNPIPE_UNIT:-$REPO/build/tests}"
SHARED="${CNNPIPE_SHARED:-$REPO/../shared}"
DEVDATA="$SHARED/data/dogscats-dev"
TINYDARKNET="$SHARED/models/tinydarknet"
PYTHON=/usr/bin/python3
export PATH="$BIN:$PATH"

# skip_without_shared: for tests that need the dev photos or the Tiny Darknet model.
skip_without_shared() {
	[ -d "$DEVDATA" ] && [ -d "$TINYDARKNET" ] ||
		skip "../shared (dev photos, Tiny Darknet) is absent"
}

# skip_without_torch: for tests that need Debian's PyTorch as the reference.
skip_without_torch() {
	"$PYTHON" -c 'import torch, torchvision' 2>/dev/null ||
		skip "Debian's python3-torch is not installed"
}

# assert_shard_refusals PROG INPUT ARGS...: what every sharded stage refuses
# of --shard: a pipe (its records cannot be counted first: exit 1, nothing
# written, the seek named) and malformed i/n (usage, exit 2).
assert_shard_refusals() {
	local prog=$1 input=$2 bad
	shift 2
	run -1 --separate-stderr sh -c "cat '$input' | $prog $(printf "'%s' " "$@")--shard 1/2"
	assert_output ""
	[[ "$stderr" == "$prog: --shard 1/2: standard input: byte "*"cannot seek"* ]]
	for bad in 0/2 3/2 1/0 x 1/ /2 1/2x; do
		run -2 "$prog" "$@" --shard "$bad" "$input"
		assert_line --index 0 "$prog: --shard: expected i/n with 1 <= i <= n, got '$bad'"
	done
}
