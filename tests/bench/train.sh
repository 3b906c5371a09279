#!/bin/bash
# Part of `make bench`: training speed against PyTorch side by side (same
# batch, threads, channels_last, the GLIBC_TUNABLES of the precompute
# bench): unfrozen images/s (forward + backward + SGD step) of ResNet34 at
# batch 16 and Tiny Darknet at batch 64; frozen-body images/s (ResNet34,
# batch 64); head-only epochs/s on 2000 precomputed ResNet34 activations;
# and train's peak RSS.  cnnpipe's figures are of a K-batch run minus a
# 1-batch run, so loading and process start are not counted.
set -eu
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
SHARED="${CNNPIPE_SHARED:-$REPO/../shared}"
TINY="$SHARED/models/tinydarknet"
PY=/usr/bin/python3
J=${J:-2}; K=${K:-3}
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
line() {  # line WHAT OURS THEIRS UNIT
	echo "$1: cnnpipe $2 $4, PyTorch $3 $4, ratio $(ratio "$2" "$3")x"
}
echo "## $J threads, load: $(cut -d' ' -f1-3 /proc/loadavg)"
"$PY" "$REPO/tests/torch_ref.py" weights "$T/r34.pth" resnet34 0
pretrained -a resnet34 -w "$T/r34.pth" -c cats,dogs -o "$T/r34.model"
line "ResNet34 unfrozen, batch 16" "$(ours "$T/r34.model" 16 --unfreeze)" \
	"$("$PY" "$REPO/tests/bench/train_torch.py" unfrozen resnet34 16 $J 2)" img/s
line "ResNet34 frozen body, batch 64" "$(ours "$T/r34.model" 64)" \
	"$("$PY" "$REPO/tests/bench/train_torch.py" frozen resnet34 64 $J 2)" img/s
if [ -d "$TINY" ]; then
	pretrained -a darknet -w "$TINY/tiny.weights" --cfg "$TINY/tiny.cfg" -c cats,dogs -o "$T/tiny.model"
	line "Tiny Darknet unfrozen, batch 64" "$(ours "$T/tiny.model" 64 --unfreeze)" \
		"$("$PY" "$REPO/tests/bench/train_torch.py" unfrozen darknet 64 $J 2 "$TINY/tiny.cfg")" img/s
else
	echo "Tiny Darknet: $TINY absent, skipped"
fi
# the head alone on 2000 activations of 1024 features (ResNet34's), batch 64
"$PY" "$REPO/tests/make_activations.py" "$T/r34.act" 2000 1024 cats,dogs
E=20
t1=$(secs train -m "$T/r34.model" -o "$T/o.model" -j $J --cycles 1 "$T/r34.act")
tk=$(secs train -m "$T/r34.model" -o "$T/o.model" -j $J --cycles $((E + 1)) "$T/r34.act")
line "head on activations (2000 x 1024), batch 64" \
	"$(echo "$E / ($tk - $t1)" | bc -l | awk '{printf "%.2f", $1}')" \
	"$("$PY" "$REPO/tests/bench/train_torch.py" head 1024 2000 64 $J $E)" epochs/s
rss() { /usr/bin/time -v "$@" 2>&1 >/dev/null | awk '/Maximum resident/ {printf "%.0f", $6/1024}'; }
echo "train ResNet34 --unfreeze -b 16 peak RSS: $(rss train -m "$T/r34.model" -o "$T/o.model" -b 16 -j $J --unfreeze "$(images 16)") MiB"
