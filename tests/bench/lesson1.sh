#!/bin/bash
# Part of `make bench`: the whole lesson on the dev photos with Tiny Darknet,
# `make train` (pipelines/lesson1.mk, every stage from the JPEGs, in a fresh
# WORK) against the same recipe written in PyTorch (lesson1_torch.py, from
# the JPEGs too), alternating, once per seed in SEEDS: the wall time of each
# and the accuracy after each step (head, frozen, unfrozen, TTA).  Prints a
# line per run, then the medians and the ratio of the median walls (the
# issue's target: cnnpipe at most 0.5x PyTorch's time) and the mean TTA
# accuracy of each side.  Takes about 15 minutes per seed on 2 cores, so it
# runs only with LESSON1=1 (or SEEDS=...): `make bench LESSON1=1`.  BIN= the
# programs to time (default: the build's bin/); LOGS=DIR keeps each run's
# epoch tables there.
set -eu
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
SHARED="${CNNPIPE_SHARED:-$REPO/../shared}"
TINY="$SHARED/models/tinydarknet"
DATA="$SHARED/data/dogscats-dev"
PY=/usr/bin/python3
J=${J:-2}
if [ -z "${SEEDS:-}" ] && [ "${LESSON1:-0}" != 1 ]; then
	echo "lesson1 bench: about 15 min a seed: run with LESSON1=1 or SEEDS='0 1 2', skipped"
	exit 0
fi
SEEDS=${SEEDS:-0}
[ -d "$TINY" ] && [ -d "$DATA" ] || { echo "lesson1 bench: $TINY or $DATA absent, skipped"; exit 0; }
"$PY" -c 'import torch' 2>/dev/null || { echo "lesson1 bench: no torch, skipped"; exit 0; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
mean() { tr ' ' '\n' | sed '/^$/d' | awk '{s+=$1} END {printf "%.3f", s/NR}'; }
last_acc() { awk 'NR > 1 {a=$4} END {print a}' "$1"; }

echo "## $J threads, seeds: $SEEDS, load: $(cut -d' ' -f1-3 /proc/loadavg)"
wa="" wb="" ta="" tb=""
for s in $SEEDS; do
	w="$T/work$s"
	a=$(date +%s.%N)
	make -s -C "$REPO" -f pipelines/lesson1.mk BIN="${BIN:-$REPO/bin}" ARCH=darknet \
		WEIGHTS="$TINY/tiny.weights" CFG="$TINY/tiny.cfg" DATA="$DATA" WORK="$w" \
		SEED="$s" JOBS="$J" REPORT=/nonexistent lesson1 >"$T/make$s.log" 2>&1 ||
		{ tail -20 "$T/make$s.log"; echo "lesson1 bench: make train failed"; exit 1; }
	b=$(date +%s.%N)
	sec=$(echo "$b - $a" | bc -l | awk '{printf "%.0f", $1}')
	tta=$(awk -F '\t' '$1 == "summary" && $2 == "accuracy" {print $3}' "$w/valid.tta.tsv")
	echo "cnnpipe seed $s: head $(last_acc "$w/head.out") frozen $(last_acc "$w/frozen.out")" \
		"unfrozen $(last_acc "$w/unfrozen.out") tta $tta  wall $sec s"
	# when each stage's file was done, in seconds from the start
	done_at=$(cd "$w" && for f in train.images valid.images train.scaled valid.scaled model \
		train.act valid.act lr.tsv head.model frozen.model unfrozen.model valid.pred \
		valid.tta.pred confusion.txt; do
		[ -e "$f" ] && echo "$f $(stat -c %.3Y "$f")"
	done | awk -v a="$a" '{printf "%s%s %.0f", (NR > 1 ? ", " : ""), $1, $2 - a}')
	echo "cnnpipe seed $s stages done at (s): $done_at"
	wa="$wa $sec" ta="$ta $tta"
	[ -z "${LOGS:-}" ] || { mkdir -p "$LOGS" && cat "$w"/{head,frozen,unfrozen}.out "$w/valid.tta.tsv" >"$LOGS/cnnpipe$s.txt"; }
	rm -rf "$w"
	line=$("$PY" "$REPO/tests/bench/lesson1_torch.py" "$DATA" "$TINY/tiny.cfg" "$TINY/tiny.weights" \
		-s "$s" -t "$J" | tee "$T/torch$s.log" | tail -1)
	echo "PyTorch $line"
	[ -z "${LOGS:-}" ] || cp "$T/torch$s.log" "$LOGS/torch$s.txt"
	wb="$wb $(echo "$line" | sed 's/.* wall \([0-9]*\) s.*/\1/')"
	tb="$tb $(echo "$line" | sed 's/.* tta \([0-9.]*\) .*/\1/')"
done
ma=$(echo "$wa" | median) mb=$(echo "$wb" | median)
echo "lesson1 end to end, Tiny Darknet, dev set: cnnpipe $ma s, PyTorch $mb s (medians), ratio $(echo "$ma / $mb" | bc -l | awk '{printf "%.2f", $1}')x (target <= 0.5x)"
echo "lesson1 TTA accuracy, mean over seeds $SEEDS: cnnpipe $(echo "$ta" | mean), PyTorch $(echo "$tb" | mean)"
