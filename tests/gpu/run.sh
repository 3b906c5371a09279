#!/bin/bash
# The GPU check (make gpu-check), on a machine with an NVIDIA GPU, in under
# 8 minutes: builds with the CUDA backend, runs every GPU test, benchmarks
# precompute on ResNet34 against PyTorch on the same GPU, and prints a
# summary table last.  Exits 1 when a test failed.
#
# It needs nvcc (CUDA_HOME, default /usr/local/cuda) and cuDNN: the
# toolkit's, else the one of the PyTorch installation (CUDNN_HOME from
# nvidia.cudnn).  Without Debian's build dependencies installed it unpacks
# tests/gpu/debs/*.deb (made by tests/gpu/fetch_debs.sh on a machine with
# apt) into build/gpu-deps and builds with DEPS_PREFIX there.
#   tests/gpu/run.sh            everything
#   SKIP_BENCH=1 tests/gpu/run.sh   the tests only
#   GPU_DEVICE=cpu ...   the comparisons' own check: "GPU" runs on the CPU
set -u
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$REPO"
SHARED="${CNNPIPE_SHARED:-$REPO/../shared}"
[ -d "$SHARED" ] || SHARED="$REPO/shared"
PY=${PY:-python3}
JOBS=${JOBS:-$(nproc)}
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
SUMMARY="$T/summary"
START=$(date +%s)
FAILED=0
GPU=${GPU_DEVICE:-cuda}

row() {  # row WHAT RESULT DETAIL
	printf '%-44s %-6s %s\n' "$1" "$2" "$3" >> "$SUMMARY"
	[ "$2" = FAIL ] && FAILED=1
	echo "== $1: $2 $3"
}
# step NAME CMD...: runs it, its output kept in $LOG (shown on failure)
NSTEP=0
step() {
	local name=$1 a b
	shift
	NSTEP=$((NSTEP + 1))
	LOG="$T/step$NSTEP.log"
	a=$(date +%s.%N)
	if "$@" > "$LOG" 2>&1; then
		b=$(date +%s.%N)
		row "$name" ok "$(printf '%.1f s' "$(echo "$b - $a" | bc -l)")"
	else
		b=$(date +%s.%N)
		tail -30 "$LOG"
		row "$name" FAIL "$(printf '%.1f s, see above' "$(echo "$b - $a" | bc -l)")"
	fi
}

echo "== the GPU:"
nvidia-smi -L 2>/dev/null || echo "nvidia-smi: no GPU listed"

# ---- build --------------------------------------------------------------------
MAKEVARS=(CUDA=1 "CUDA_HOME=$CUDA_HOME")
if [ ! -f "$CUDA_HOME/include/cudnn.h" ]; then
	CUDNN_HOME=${CUDNN_HOME:-$("$PY" -c 'import nvidia.cudnn as c; print(list(c.__path__)[0])' 2>/dev/null)}
	MAKEVARS+=("CUDNN_HOME=$CUDNN_HOME")
	echo "== cuDNN from $CUDNN_HOME"
fi
if [ ! -f /usr/include/jpeglib.h ] || [ ! -f /usr/include/stb/stb_image.h ] ||
   ! ls /usr/lib/*/libopenblas.so >/dev/null 2>&1; then
	D="$REPO/build/gpu-deps"
	mkdir -p "$D"
	for deb in "$REPO"/tests/gpu/debs/*.deb; do
		[ -f "$deb" ] || { echo "run.sh: no tests/gpu/debs/*.deb (tests/gpu/fetch_debs.sh)" >&2; exit 1; }
		if command -v dpkg >/dev/null; then
			dpkg -x "$deb" "$D"
		else   # a .deb is an ar archive holding data.tar.*
			(cd "$T" && ar x "$deb" && tar -xf data.tar.* -C "$D" && rm -f data.tar.* control.tar.* debian-binary)
		fi
	done
	# the -dev packages' libopenblas.so points at Debian's alternatives
	ln -sf libopenblas.so.0 "$D/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so" 2>/dev/null
	ln -sf openblas-pthread/cblas.h "$D/usr/include/x86_64-linux-gnu/cblas.h" 2>/dev/null
	MAKEVARS+=("DEPS_PREFIX=$D")
	echo "== build dependencies from $D"
fi
echo "== make tools gpu-tests ${MAKEVARS[*]}"
step "build (CUDA=1, sm_90)" make -j"$JOBS" "${MAKEVARS[@]}" tools gpu-tests
export PATH="$REPO/bin:$PATH"

# ---- the op and network tests ---------------------------------------------------------
# CNNPIPE_CUDA_SYNC=1: an asynchronous error is reported by the kernel that made it
export CNNPIPE_CUDA_SYNC=1
# (a test that skips here, on the GPU machine, is a failure)
gpu_test() {
	"$1" || return 1
	! grep -q "skipped" "$LOG"
}
step "every GPU op vs its CPU reference (f32)" gpu_test build/tests/gpu/test_cuda_ops
step "ResNet34 forward + a training step vs CPU" gpu_test build/tests/gpu/test_cuda_net
unset CNNPIPE_CUDA_SYNC

# ---- tools: tta and a short training, GPU against CPU ---------------------------------
C=a,b,c,d
tools_setup() {
	"$PY" tests/make_tiny_darknet.py "$T/tiny.cfg" "$T/tiny.weights" 3 &&
	pretrained -a darknet -w "$T/tiny.weights" --cfg "$T/tiny.cfg" -c "$C" --seed 4 -o "$T/tiny.model" &&
	"$PY" tests/make_images.py "$T/train.images" 256 32 "$C" --epochs 1 &&
	"$PY" tests/make_images.py "$T/valid.images" 64 32 "$C" --seed 2
}
step "synthetic model and images" tools_setup
# predictions equal within 1e-4 (log-probabilities: a 36-layer f32 forward
# in another order of rounding); labels and names the same
same_preds() {
	"$PY" - "$REPO/tests" "$1" "$2" <<'PYEOF'
import sys
sys.path.insert(0, sys.argv[1])
from cnnpipe_stream import read_stream
import numpy as np
a, b = read_stream(sys.argv[2])[1], read_stream(sys.argv[3])[1]
assert len(a) == len(b) and len(a) > 0, (len(a), len(b))
key = [k for k in a[0] if k in ("logp", "p", "x")][0]
pa = np.stack([r[key] for r in a]); pb = np.stack([r[key] for r in b])
d = np.abs(pa - pb).max() / max(1.0, np.abs(pa).max())
print("records", len(a), "key", key, "max rel diff", d)
assert d <= 1e-4, d
assert [r.get("name") for r in a] == [r.get("name") for r in b]
PYEOF
}
tta_same() {
	tta -m "$T/tiny.model" -n 0 "$T/valid.images" > "$T/cpu.pred" &&
	CNNPIPE_DEVICE=$GPU tta -m "$T/tiny.model" -n 0 "$T/valid.images" > "$T/gpu.pred" &&
	same_preds "$T/cpu.pred" "$T/gpu.pred"
}
step "tta -n 0: GPU predictions = CPU's (1e-4)" tta_same
precompute_same() {
	precompute -m "$T/tiny.model" "$T/valid.images" > "$T/cpu.act" &&
	CNNPIPE_DEVICE=$GPU precompute -m "$T/tiny.model" "$T/valid.images" > "$T/gpu.act" &&
	same_preds "$T/cpu.act" "$T/gpu.act"
}
step "precompute: GPU activations = CPU's (1e-4)" precompute_same
# one epoch through the frozen body, then one unfrozen: the same epoch
# lines within noise (accuracy within 3 points of 64 images, loss 5 %)
train_close() {
	local dev
	for dev in cpu cuda; do
		CNNPIPE_DEVICE=$([ $dev = cuda ] && echo "$GPU" || echo cpu) train -m "$T/tiny.model" -o "$T/$dev.f.model" --valid "$T/valid.images" \
			-b 16 --lr 1e-3 "$T/train.images" > "$T/$dev.f.out" &&
		CNNPIPE_DEVICE=$([ $dev = cuda ] && echo "$GPU" || echo cpu) train -m "$T/$dev.f.model" -o "$T/$dev.u.model" --unfreeze \
			--valid "$T/valid.images" -b 16 --lr 1e-4 "$T/train.images" > "$T/$dev.u.out" || return 1
	done
	paste "$T/cpu.f.out" "$T/cuda.f.out"; paste "$T/cpu.u.out" "$T/cuda.u.out"
	"$PY" - "$T" <<'PYEOF'
import sys, os
def last(p):
    rows = [l.split() for l in open(p) if l.strip() and l.split()[0].isdigit()]
    return [float(v.rstrip('%')) for v in rows[-1][1:4]]
for s in ("f", "u"):
    a, b = last(os.path.join(sys.argv[1], "cpu.%s.out" % s)), last(os.path.join(sys.argv[1], "cuda.%s.out" % s))
    print(s, "cpu", a, "gpu", b)
    assert abs(a[0] - b[0]) <= 0.05 * abs(a[0]) + 1e-3 and abs(a[1] - b[1]) <= 0.05 * abs(a[1]) + 1e-3, (a, b)
    acc_a, acc_b = a[2] * (100 if a[2] <= 1 else 1), b[2] * (100 if b[2] <= 1 else 1)
    assert abs(acc_a - acc_b) <= 3.2, (a, b)
PYEOF
}
step "train frozen + unfrozen: GPU epoch = CPU's" train_close
# The dev photos (when ../shared is here): Tiny Darknet's frozen fit over
# two augmented epochs reaches the CPU run's accuracy within 1.5 points
DEV="$SHARED/data/dogscats-dev"; TINY="$SHARED/models/tinydarknet"
dev_fit() {
	imgprep -s 224 "$DEV/train" > "$T/dtrain.images" &&
	imgprep -s 224 --classes-from "$T/dtrain.images" "$DEV/valid" > "$T/dvalid.images" &&
	imgprep --scale 291 --classes-from "$T/dtrain.images" "$DEV/train" > "$T/dtrain.scaled" &&
	pretrained -a darknet -w "$TINY/tiny.weights" --cfg "$TINY/tiny.cfg" \
		--classes-from "$T/dtrain.images" -o "$T/dev.model" || return 1
	local dev
	for dev in cpu cuda; do
		augment --epochs 2 "$T/dtrain.scaled" |
			CNNPIPE_DEVICE=$([ $dev = cuda ] && echo "$GPU" || echo cpu) train -m "$T/dev.model" -o "$T/dev.$dev.model" \
				--valid "$T/dvalid.images" --cycles 2 --cycle-len 1 > "$T/dev.$dev.out" || return 1
	done
	paste "$T/dev.cpu.out" "$T/dev.cuda.out"
	"$PY" - "$T/dev.cpu.out" "$T/dev.cuda.out" <<'PYEOF'
import sys
def acc(p):
    rows = [l.split() for l in open(p) if l.strip() and l.split()[0].isdigit()]
    v = float(rows[-1][3].rstrip('%')); return v * 100 if v <= 1 else v
a, b = acc(sys.argv[1]), acc(sys.argv[2]); print("accuracy cpu", a, "gpu", b)
assert abs(a - b) <= 1.5, (a, b)
PYEOF
}
if [ -d "$DEV" ] && [ -d "$TINY" ]; then
	step "dev photos: frozen fit, GPU accuracy = CPU's (1.5)" dev_fit
else
	row "dev photos: frozen fit" skip "$DEV absent"
fi

# ---- benchmark: precompute ResNet34 at 224, images/s, against PyTorch ----------------
bench() {
	"$PY" -c 'import torch, torchvision; assert torch.cuda.is_available()' 2>/dev/null ||
		{ echo "no torch/torchvision with CUDA"; return 2; }
	local B=64 R=8
	"$PY" tests/torch_ref.py weights "$T/r34.pth" resnet34 0 &&
	pretrained -a resnet34 -w "$T/r34.pth" -c cats,dogs -o "$T/r34.model" &&
	"$PY" tests/torch_ref.py images "$T/b1.stream" $B 224 &&
	"$PY" tests/torch_ref.py images "$T/bR.stream" $((B * (R + 1))) 224 || return 1
	secs() { local a b; a=$(date +%s.%N); "$@" > /dev/null || return 1; b=$(date +%s.%N); echo "$b - $a" | bc -l; }
	local mode t1 tR ours theirs
	for mode in f32 tf32; do
		local tf=0; [ $mode = tf32 ] && tf=1
		# one batch (start, model, cuDNN's algorithm search) subtracted
		t1=$(CNNPIPE_CUDA_TF32=$tf CNNPIPE_DEVICE=cuda secs precompute -m "$T/r34.model" -b $B "$T/b1.stream") || return 1
		tR=$(CNNPIPE_CUDA_TF32=$tf CNNPIPE_DEVICE=cuda secs precompute -m "$T/r34.model" -b $B "$T/bR.stream") || return 1
		ours=$(echo "$B * $R / ($tR - $t1)" | bc -l)
		theirs=$("$PY" tests/gpu/precompute_torch_gpu.py $B 20 $tf) || return 1
		printf 'precompute ResNet34 224 b%d %s: cnnpipe %.0f img/s, PyTorch %.0f img/s, ratio %.2fx\n' \
			$B $mode "$ours" "$theirs" "$(echo "$ours / $theirs" | bc -l)" | tee -a "$T/bench.txt"
	done
}
if [ "${SKIP_BENCH:-0}" != 1 ]; then
	bench > "$T/bench.log" 2>&1; rc=$?
	cat "$T/bench.log"
	if [ $rc -eq 0 ]; then
		while read -r l; do row "bench: ${l%%:*}" "" "${l#*: }"; done < "$T/bench.txt"
	elif [ $rc -eq 2 ]; then
		row "bench: precompute ResNet34" skip "$(tail -1 "$T/bench.log")"
	else
		row "bench: precompute ResNet34" FAIL "$(tail -1 "$T/bench.log")"
	fi
fi

echo
echo "== summary ($(( $(date +%s) - START )) s)"
cat "$SUMMARY"
exit $FAILED
