#!/bin/bash
# Part of `make bench`: augment images/s (fast.ai's side-on transform with
# max_zoom 1.1, -s 224, from photos scaled to 291) against the same
# transform written with PIL and NumPy (tests/bench/augment_pil.py, one
# thread), alternating RUNS times; the ratio is of the medians.  Sources:
# the dev photos when ../shared is there, else generated ones.
set -eu
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
SHARED="${CNNPIPE_SHARED:-$REPO/../shared}"
PY=/usr/bin/python3
RUNS=${RUNS:-3}
"$PY" -c 'import PIL, numpy' 2>/dev/null || { echo "augment bench: no PIL, skipped"; exit 0; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
PATH="$REPO/bin:$PATH"
if [ -d "$SHARED/data/dogscats-dev/valid" ]; then
	imgprep --scale 291 "$SHARED/data/dogscats-dev/valid" > "$T/src" 2>/dev/null
	what="500 dev photos"
else
	"$PY" "$REPO/tests/make_images.py" "$T/src" 500 291 cats,dogs
	what="500 generated 291x291 images"
fi
secs() { local a b; a=$(date +%s.%N); "$@" >/dev/null 2>&1; b=$(date +%s.%N); echo "$b - $a" | bc -l; }
median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
: > "$T/j1"; : > "$T/j2"; : > "$T/pil"
for i in $(seq "$RUNS"); do
	echo "500 * 4 / $(secs augment -s 224 --epochs 4 -j 1 "$T/src")" | bc -l >> "$T/j1"
	echo "500 * 4 / $(secs augment -s 224 --epochs 4 -j 2 "$T/src")" | bc -l >> "$T/j2"
	"$PY" "$REPO/tests/bench/augment_pil.py" "$T/src" 224 2 >> "$T/pil"
done
j1=$(median < "$T/j1"); j2=$(median < "$T/j2"); pil=$(median < "$T/pil")
printf 'augment, %s, -s 224: cnnpipe -j 1 %.0f img/s, -j 2 %.0f img/s; PIL/NumPy (1 thread) %.0f img/s; ratio %.2fx (-j 1), %.2fx (-j 2)\n' \
	"$what" "$j1" "$j2" "$pil" "$(echo "$j1 / $pil" | bc -l)" "$(echo "$j2 / $pil" | bc -l)"
