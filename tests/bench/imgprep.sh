#!/bin/bash
# imgprep throughput vs PIL doing the same work in one process, side by side:
# images/s (median of RUNS runs), ratios, -j 2 throughput, peak RSS.
# Sets: the dev photos (200x200) and larger photos (dev photos upscaled to
# 1000x750 with ImageMagick into a temporary folder).
set -eu
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
SHARED="${CNNPIPE_SHARED:-$REPO/../shared}"
DEV="$SHARED/data/dogscats-dev/train"
PY=/usr/bin/python3
RUNS=${RUNS:-3}
N=${N:-1000}        # dev photos used
NBIG=${NBIG:-200}   # large photos made
[ -d "$DEV" ] || { echo "imgprep bench: $DEV absent, skipped"; exit 0; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

mkdir -p "$T/dev/cats" "$T/big/cats"
ls "$DEV/cats" | head -n "$N" | while read -r f; do ln -s "$DEV/cats/$f" "$T/dev/cats/$f"; done
ls "$DEV/cats" | head -n "$NBIG" | while read -r f; do
	convert "$DEV/cats/$f" -resize 1000x750! -quality 90 "$T/big/cats/$f"; done

# secs CMD...: wall seconds of one run
secs() { local a b; a=$(date +%s.%N); "$@" >/dev/null 2>&1; b=$(date +%s.%N); echo "$b - $a" | bc -l; }
median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
rate() { local n=$1; shift; for _ in $(seq "$RUNS"); do secs "$@"; done | median | awk -v n="$n" '{printf "%.0f", n/$1}'; }
rss() { /usr/bin/time -v "$@" 2>&1 >/dev/null | awk '/Maximum resident/ {printf "%.0f", $6/1024}'; }

for set in dev big; do
	files=("$T/$set"/cats/*)
	n=${#files[@]}
	ip1=$(rate "$n" "$REPO/bin/imgprep" -j 1 -o "$T/o.stream" "$T/$set")
	ip2=$(rate "$n" "$REPO/bin/imgprep" -j 2 -o "$T/o.stream" "$T/$set")
	plain=$(rate "$n" "$PY" "$REPO/tests/bench/imgprep_pil.py" plain 224 "$T/o.raw" "${files[@]}")
	draft=$(rate "$n" "$PY" "$REPO/tests/bench/imgprep_pil.py" draft 224 "$T/o.raw" "${files[@]}")
	best=$(( plain > draft ? plain : draft ))
	r1=$(rss "$REPO/bin/imgprep" -j 1 -o "$T/o.stream" "$T/$set")
	r2=$(rss "$REPO/bin/imgprep" -j 2 -o "$T/o.stream" "$T/$set")
	rp=$(rss "$PY" "$REPO/tests/bench/imgprep_pil.py" draft 224 "$T/o.raw" "${files[@]}")
	desc=$([ $set = dev ] && echo "dev 200x200" || echo "1000x750")
	printf 'imgprep %-11s n=%-4d  imgprep -j1 %5d img/s  -j2 %5d img/s | PIL plain %4d  PIL draft %4d img/s | ratio -j1/best-PIL %.2fx | peak RSS MiB: -j1 %s -j2 %s PIL %s\n' \
		"$desc" "$n" "$ip1" "$ip2" "$plain" "$draft" "$(echo "$ip1 / $best" | bc -l)" "$r1" "$r2" "$rp"
done
