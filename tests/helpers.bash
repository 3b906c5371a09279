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
