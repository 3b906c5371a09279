#!/bin/bash
# precompute (body forward + concat pool, eval) images/s at batch 64 on
# 224x224 vs PyTorch's eval forward of the same body (channels_last, same
# batch and threads, glibc told to keep its heap), side by side, for
# torchvision ResNet34 and Tiny Darknet; and precompute's peak RSS over 64
# and over NBIG images (it must not grow with the number of images).
# cnnpipe's figure is measured over a run of 1 + ROUNDS batches minus a
# run of one batch, so model loading, process start and the first batch
# (its buffers' page faults, the filters' transforms) are not counted, as
# PyTorch's warm-up batch is not.
set -eu
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
SHARED="${CNNPIPE_SHARED:-$REPO/../shared}"
TINY="$SHARED/models/tinydarknet"
PY=/usr/bin/python3
J=${J:-2}; B=64; ROUNDS=${ROUNDS:-2}; NBIG=${NBIG:-1024}
export GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736
"$PY" -c 'import torch, torchvision' 2>/dev/null || { echo "precompute bench: no torch, skipped"; exit 0; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
PATH="$REPO/bin:$PATH"

"$PY" "$REPO/tests/torch_ref.py" images "$T/one.stream" $B 224
"$PY" "$REPO/tests/torch_ref.py" images "$T/im.stream" $((B * (ROUNDS + 1))) 224
secs() { local a b; a=$(date +%s.%N); "$@" >/dev/null 2>&1; b=$(date +%s.%N); echo "$b - $a" | bc -l; }
ours() {  # ours MODEL STREAM BATCHES: images/s (STREAM: 1 + BATCHES batches)
	local t1 tn
	t1=$(secs precompute -m "$1" -b $B -j $J "$T/one.stream")
	tn=$(secs precompute -m "$1" -b $B -j $J "$2")
	echo "$B * $3 / ($tn - $t1)" | bc -l | awk '{printf "%.2f", $1}'
}
line() {  # line NAME OURS THEIRS
	echo "$1 body forward, batch $B, $J threads: cnnpipe $2 img/s, PyTorch $3 img/s, ratio $(echo "$2 / $3" | bc -l | awk '{printf "%.2f", $1}')x"
}

"$PY" "$REPO/tests/torch_ref.py" weights "$T/r34.pth" resnet34 0
pretrained -a resnet34 -w "$T/r34.pth" -c cats,dogs -o "$T/r34.model"
line ResNet34 "$(ours "$T/r34.model" "$T/im.stream" $ROUNDS)" "$("$PY" "$REPO/tests/bench/precompute_torch.py" resnet34 $B $J $ROUNDS)"

if [ -d "$TINY" ]; then
	pretrained -a darknet -w "$TINY/tiny.weights" --cfg "$TINY/tiny.cfg" -c cats,dogs -o "$T/tiny.model"
	"$PY" "$REPO/tests/torch_ref.py" images "$T/im4.stream" $((B * (4 * ROUNDS + 1))) 224
	line "Tiny Darknet" "$(ours "$T/tiny.model" "$T/im4.stream" $((4 * ROUNDS)))" \
		"$("$PY" "$REPO/tests/bench/precompute_torch.py" darknet $B $J $((ROUNDS * 4)) "$TINY/tiny.cfg")"
else
	echo "Tiny Darknet: $TINY absent, skipped"
fi

rss() { /usr/bin/time -v "$@" 2>&1 >/dev/null | awk '/Maximum resident/ {printf "%.0f", $6/1024}'; }
"$PY" "$REPO/tests/torch_ref.py" images "$T/big.stream" "$NBIG" 224
"$PY" "$REPO/tests/torch_ref.py" images "$T/64.stream" 64 224
echo "precompute ResNet34 -b $B peak RSS: $(rss precompute -m "$T/r34.model" -b $B -j $J "$T/64.stream") MiB over 64 images, $(rss precompute -m "$T/r34.model" -b $B -j $J "$T/big.stream") MiB over $NBIG images"
