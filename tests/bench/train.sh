#!/bin/bash
# Part of `make bench`: training speed against PyTorch side by side (same
# batch, threads, channels_last, the GLIBC_TUNABLES of the precompute
# bench): unfrozen images/s (forward + backward + SGD step) of ResNet34 at
# batch 16 and Tiny Darknet at batch 64; frozen-body images/s (ResNet34,
# batch 64); head-only epochs/s on 2000 precomputed ResNet34 activations;
# and train's peak RSS (cnnpipe's and PyTorch's, the same batch); and the
# unfrozen figures with bf16 products on both sides.
# cnnpipe's figures are of a K-batch run minus a 1-batch run, so loading
# and process start are not counted; PyTorch's time K-1 steps after its
# warm-up step.  K=5 by default, and each row's cnnpipe figure once
# untimed first: with 2 timed batches (K=3) and no warm-up, the first run
# of a row came out 1.3-2.2x the others (its 1-batch run, after the
# previous row's processes, paid more for its first page faults).  The machine is shared: cnnpipe and
# PyTorch alternate RUNS times and the ratio is of the medians; every run's
# figure is printed, so the spread (the noise) shows.
set -eu
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
SHARED="${CNNPIPE_SHARED:-$REPO/../shared}"
TINY="$SHARED/models/tinydarknet"
PY=/usr/bin/python3
J=${J:-2}; K=${K:-5}; RUNS=${RUNS:-3}
export GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736
"$PY" -c 'import torch, torchvision' 2>/dev/null || { echo "train bench: no torch, skipped"; exit 0; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
PATH="$REPO/bin:$PATH"
secs() { local a b; a=$(date +%s.%N); "$@" >/dev/null 2>&1; b=$(date +%s.%N); echo "$b - $a" | bc -l; }
ratio() { echo "$1 / $2" | bc -l | awk '{printf "%.2f", $1}'; }
images() {  # images N: an images stream of N 224x224 photos, one epoch
	[ -e "$T/im$1" ] || "$PY" "$REPO/tests/make_images.py" "$T/im$1" "$1" 224 cats,dogs --epochs 1
	echo "$T/im$1"
}
ours() {  # ours MODEL B ARGS...: training images/s
	local m=$1 b=$2 t1 tk
	shift 2
	t1=$(secs train -m "$m" -o "$T/o.model" -b "$b" -j $J "$@" "$(images "$b")")
	tk=$(secs train -m "$m" -o "$T/o.model" -b "$b" -j $J "$@" "$(images $((b * K)))")
	echo "$b * ($K - 1) / ($tk - $t1)" | bc -l | awk '{printf "%.2f", $1}'
}
median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
# side WHAT UNIT 'OURS-COMMAND' 'THEIRS-COMMAND': RUNS alternating runs of
# each, then medians, every figure, and the ratio of the medians
side() {
	local what=$1 unit=$2 a="" b="" i
	eval "$3" > /dev/null   # warm-up, not counted (see above)
	for i in $(seq "$RUNS"); do
		a="$a $(eval "$3")"
		b="$b $(eval "$4")"
	done
	local ma mb
	ma=$(echo "$a" | median)
	mb=$(echo "$b" | median)
	echo "$what: cnnpipe $ma $unit (runs:$a), PyTorch $mb $unit (runs:$b), ratio $(ratio "$ma" "$mb")x"
}
echo "## $J threads, $RUNS alternating runs, load: $(cut -d' ' -f1-3 /proc/loadavg)"
"$PY" "$REPO/tests/torch_ref.py" weights "$T/r34.pth" resnet34 0
pretrained -a resnet34 -w "$T/r34.pth" -c cats,dogs -o "$T/r34.model"
TT="$PY $REPO/tests/bench/train_torch.py"
side "ResNet34 unfrozen, batch 16" img/s \
	'ours "$T/r34.model" 16 --unfreeze' "$TT unfrozen resnet34 16 $J $((K - 1))"
side "ResNet34 frozen body, batch 64" img/s \
	'ours "$T/r34.model" 64' "$TT frozen resnet34 64 $J $((K - 1))"
if [ -d "$TINY" ]; then
	pretrained -a darknet -w "$TINY/tiny.weights" --cfg "$TINY/tiny.cfg" -c cats,dogs -o "$T/tiny.model"
	side "Tiny Darknet unfrozen, batch 64" img/s \
		'ours "$T/tiny.model" 64 --unfreeze' "$TT unfrozen darknet 64 $J $((K - 1)) $TINY/tiny.cfg"
else
	echo "Tiny Darknet: $TINY absent, skipped"
fi
# bf16 products (train --precision bf16) against PyTorch's bf16 autocast
# (oneDNN's bf16 convolutions), the same unfrozen steps; BF16=0 skips them
if [ "${BF16:-1}" != 0 ]; then
	side "ResNet34 unfrozen, batch 16, bf16" img/s \
		'ours "$T/r34.model" 16 --unfreeze --precision bf16' "TORCH_BF16=1 $TT unfrozen resnet34 16 $J $((K - 1))"
	if [ -d "$TINY" ]; then
		side "Tiny Darknet unfrozen, batch 64, bf16" img/s \
			'ours "$T/tiny.model" 64 --unfreeze --precision bf16' \
			"TORCH_BF16=1 $TT unfrozen darknet 64 $J $((K - 1)) $TINY/tiny.cfg"
	fi
fi
# the head alone on 2000 activations of 1024 features (ResNet34's), batch 64
"$PY" "$REPO/tests/make_activations.py" "$T/r34.act" 2000 1024 cats,dogs
E=20
head_ours() {
	local t1 tk
	t1=$(secs train -m "$T/r34.model" -o "$T/o.model" -j $J --cycles 1 "$T/r34.act")
	tk=$(secs train -m "$T/r34.model" -o "$T/o.model" -j $J --cycles $((E + 1)) "$T/r34.act")
	echo "$E / ($tk - $t1)" | bc -l | awk '{printf "%.2f", $1}'
}
side "head on activations (2000 x 1024), batch 64" epochs/s head_ours "$TT head 1024 2000 64 $J $E"
rss() { /usr/bin/time -v "$@" 2>&1 >/dev/null | awk '/Maximum resident/ {printf "%.0f", $6/1024}'; }
images 16 >/dev/null
echo "peak RSS, ResNet34 unfrozen, batch 16: cnnpipe train $(rss train -m "$T/r34.model" -o "$T/o.model" -b 16 -j $J --unfreeze "$T/im16") MiB, PyTorch $(rss $TT unfrozen resnet34 16 $J 2) MiB"
if [ -d "$TINY" ]; then
	images 64 >/dev/null
	echo "peak RSS, Tiny Darknet unfrozen, batch 64: cnnpipe train $(rss train -m "$T/tiny.model" -o "$T/o.model" -b 64 -j $J --unfreeze "$T/im64") MiB, PyTorch $(rss $TT unfrozen darknet 64 $J 2 "$TINY/tiny.cfg") MiB"
fi
