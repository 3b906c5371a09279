#!/bin/sh
# Stream metadata at scale: a header of KEYS keys (default 1,000,000: a
# 16 MB file, near the 16 MiB descriptor cap) through tensor validate, meta,
# head and cat (of one input and of two), with the time and keys/s of each.
# The parse must be linear: each command must take at most BOUND CPU
# seconds (default 10; a quadratic parse took 12 s for 50,000 keys and 9
# CPU-minutes for 1,000,000), and cat must give back the input's bytes.
set -eu
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
KEYS=${KEYS:-1000000}
BOUND=${BOUND:-10}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
PATH="$REPO/bin:$PATH"

/usr/bin/python3 - "$T/keys.stream" "$KEYS" "$REPO/tests" <<'EOF'
import struct, sys
sys.path.insert(0, sys.argv[3])
from cnnpipe_stream import MAGIC, _chunk
n = int(sys.argv[2])
desc = b"".join(struct.pack("<I", 7) + b"k%06d" % i + struct.pack("<I", 1) + b"v" for i in range(n))
with open(sys.argv[1], "wb") as f:
    f.write(MAGIC + struct.pack("<I", 1) + b"\0" * 52)
    f.write(_chunk(b"CNPH", desc, n, 0))
    f.write(_chunk(b"CNPE", b"", 0, 0))
EOF
echo "metadata: $KEYS keys, $(stat -c %s "$T/keys.stream") bytes"

status=0
# timed NAME COMMAND...: runs it; prints wall and CPU seconds and keys per
# CPU second.  The bound is on CPU time, which a busy machine does not
# inflate as it does wall time.
timed() {
	name=$1
	shift
	/usr/bin/time -f "%e %U %S" -o "$T/time" "$@" > "$T/out" || { echo "$name: failed"; status=1; return; }
	awk -v n="$name" -v k="$KEYS" -v bound="$BOUND" '{
		cpu = $2 + $3; if (cpu <= 0) cpu = 0.01
		over = (cpu > bound + 0)
		printf "%-16s %.2f s wall, %.2f s CPU, %.0f keys/CPU-s%s\n", n, $1, cpu, k / cpu,
		       (over ? "  over the bound of " bound " CPU-s" : "")
		exit over }' "$T/time" || status=1
}
timed "tensor validate" tensor validate "$T/keys.stream"
timed "tensor meta" tensor meta "$T/keys.stream"
[ "$(wc -l < "$T/out")" -eq "$KEYS" ] || { echo "tensor meta: not $KEYS lines"; status=1; }
timed "tensor head" tensor head -n 0 -o "$T/head.stream" "$T/keys.stream"
timed "tensor cat" tensor cat -o "$T/cat.stream" "$T/keys.stream"
cmp "$T/keys.stream" "$T/cat.stream" || { echo "tensor cat: the bytes changed"; status=1; }
# two inputs: every header key of the second looked up in the first's
timed "tensor cat (x2)" tensor cat -o "$T/cat2.stream" "$T/keys.stream" "$T/keys.stream"
exit $status
