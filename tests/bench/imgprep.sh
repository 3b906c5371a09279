#!/bin/bash
# imgprep throughput vs PIL doing the same work in one process, side by side:
# images/s (median of RUNS runs, imgprep and the PIL variants alternating so
# a load change hits all alike), ratios, -j 2 throughput, peak RSS.
# The ratio that counts is against the best PIL variant ("tuned": draft +
# resize(box=) of the crop window only, no needless copies; see
# imgprep_pil.py); the ratio against PIL draft as commonly written is shown
# too.
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
median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
rss() { /usr/bin/time -v "$@" 2>&1 >/dev/null | awk '/Maximum resident/ {printf "%.0f", $6/1024}'; }

for set in dev big; do
	files=("$T/$set"/cats/*)
	n=${#files[@]}
	IP=("$REPO/bin/imgprep" -o "$T/o.stream" "$T/$set")
	PIL=("$PY" "$REPO/tests/bench/imgprep_pil.py")
	declare -A t=()
	for _ in $(seq "$RUNS"); do
		t[ip1]+="$(secs "${IP[@]}" -j 1) "
		t[ip2]+="$(secs "${IP[@]}" -j 2) "
		for m in plain draft tuned; do
			t[$m]+="$(secs "${PIL[@]}" $m 224 "$T/o.raw" "${files[@]}") "
		done
	done
	declare -A v=()
	for k in ip1 ip2 plain draft tuned; do
		v[$k]=$(echo "${t[$k]}" | median | awk -v n="$n" '{printf "%.0f", n/$1}')
	done
	ip1=${v[ip1]} ip2=${v[ip2]} plain=${v[plain]} draft=${v[draft]} tuned=${v[tuned]}
	best=$(( plain > draft ? plain : draft )); best=$(( tuned > best ? tuned : best ))
	r1=$(rss "$REPO/bin/imgprep" -j 1 -o "$T/o.stream" "$T/$set")
	r2=$(rss "$REPO/bin/imgprep" -j 2 -o "$T/o.stream" "$T/$set")
	rp=$(rss "${PIL[@]}" tuned 224 "$T/o.raw" "${files[@]}")
	desc=$([ $set = dev ] && echo "dev 200x200" || echo "1000x750")
	printf 'imgprep %-11s n=%-4d  imgprep -j1 %5d img/s  -j2 %5d img/s | PIL plain %4d  draft %4d  tuned %4d img/s | ratio -j1/best-PIL %.2fx (-j1/PIL-draft %.2fx) | peak RSS MiB: -j1 %s -j2 %s PIL %s | load %s\n' \
		"$desc" "$n" "$ip1" "$ip2" "$plain" "$draft" "$tuned" "$(echo "$ip1 / $best" | bc -l)" \
		"$(echo "$ip1 / $draft" | bc -l)" "$r1" "$r2" "$rp" "$(cut -d' ' -f1 /proc/loadavg)"
done
