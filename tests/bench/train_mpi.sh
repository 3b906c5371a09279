#!/bin/bash
# Part of `make bench`: data-parallel train (mpirun) on this machine.
#   1. scaling: training images/s of 1 process against 2 ranks, one thread
#      each (Tiny Darknet unfrozen on 224x224 images, global batch 32;
#      K-batch run minus 1-batch run, so start-up is not counted), and the
#      CPU time an image, whose ratio is the scaling where each rank has a
#      core of its own;
#   2. the time of one all-reduce of ResNet34's gradients (21.8 M floats)
#      between 2 ranks (tests/bench/allreduce.c), against the compute time
#      of one ResNet34 step (unfrozen, batch 16 a rank, one thread) here;
#   3. the estimate on paper for 8 GPUs over NVLink and 2 nodes over
#      100 Gb/s (README.md, "Data-parallel training"), from the formula
#      t_ring = 2 (P-1)/P * bytes / bandwidth + 2 (P-1) * latency.
set -eu
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
SHARED="${CNNPIPE_SHARED:-$REPO/../shared}"
TINY="$SHARED/models/tinydarknet"
PY=/usr/bin/python3
K=${K:-4}
command -v mpirun > /dev/null || { echo "train_mpi bench: no mpirun, skipped"; exit 0; }
ldd "$REPO/bin/train" | grep -q libmpi || { echo "train_mpi bench: train built without MPI, skipped"; exit 0; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
PATH="$REPO/bin:$PATH"
secs() { local a b; a=$(date +%s.%N); "$@" >/dev/null 2>&1; b=$(date +%s.%N); echo "$b - $a" | bc -l; }
# CPU seconds (user + system) of a command and its children (mpirun's ranks)
cpus() { /usr/bin/time -f "%U %S" -o "$T/time" "$@" >/dev/null 2>&1; awk '{print $1 + $2}' "$T/time"; }
fmt() { awk '{printf "%.2f", $1}'; }
images() {  # images N: an images stream of N 224x224 photos, one epoch
	[ -e "$T/im$1" ] || "$PY" "$REPO/tests/make_images.py" "$T/im$1" "$1" 224 cats,dogs --epochs 1
	echo "$T/im$1"
}
cpi() {  # cpi "LAUNCH" MODEL B ARGS...: CPU ms an image, all ranks together
	local launch=$1 m=$2 b=$3 t1 tk
	shift 3
	t1=$(cpus $launch train -m "$m" -o "$T/o.model" -b "$b" -j 1 "$@" "$(images "$b")")
	tk=$(cpus $launch train -m "$m" -o "$T/o.model" -b "$b" -j 1 "$@" "$(images $((b * K)))")
	echo "($tk - $t1) * 1000 / ($b * ($K - 1))" | bc -l | fmt
}
ips() {  # ips "LAUNCH" MODEL B ARGS...: training images/s
	local launch=$1 m=$2 b=$3 t1 tk
	shift 3
	t1=$(secs $launch train -m "$m" -o "$T/o.model" -b "$b" -j 1 "$@" "$(images "$b")")
	tk=$(secs $launch train -m "$m" -o "$T/o.model" -b "$b" -j 1 "$@" "$(images $((b * K)))")
	echo "$b * ($K - 1) / ($tk - $t1)" | bc -l | fmt
}
echo "## load: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
two="mpirun -np 2 --oversubscribe"

# 1. scaling
if [ -d "$TINY" ]; then
	pretrained -a darknet -w "$TINY/tiny.weights" --cfg "$TINY/tiny.cfg" -c cats,dogs -o "$T/tiny.model"
	one=$(ips "" "$T/tiny.model" 32 --unfreeze --bn-batch 16)
	par=$(ips "$two" "$T/tiny.model" 32 --unfreeze)
	echo "Tiny Darknet unfrozen, global batch 32: 1 process $one img/s, 2 ranks $par img/s," \
	     "scaling $(echo "$par / $one" | bc -l | fmt)x (ideal 2)"
	# a loaded machine (or the scheduler's autogroup: one share a session)
	# gives 2 ranks no second core; the CPU time says what they would do
	# with one each: 2 * (CPU an image alone) / (CPU an image of both)
	c1=$(cpi "" "$T/tiny.model" 32 --unfreeze --bn-batch 16)
	c2=$(cpi "$two" "$T/tiny.model" 32 --unfreeze)
	echo "CPU an image: 1 process $c1 ms, 2 ranks $c2 ms together;" \
	     "scaling with a free core a rank $(echo "2 * $c1 / $c2" | bc -l | fmt)x"
else
	echo "scaling: $TINY absent, skipped"
fi

# 2. communication against computation
mkdir -p "$REPO/build/bench"
stamp="$REPO/build/comm.stamp"
nccl=""
grep -q NCCL=1 "$stamp" 2>/dev/null && nccl="-L/usr/local/cuda/lib64 -Wl,-rpath,/usr/local/cuda/lib64 -lnccl -lcudart"
cuda=""
ldd "$REPO/bin/train" | grep -q libcudart && cuda="-L/usr/local/cuda/lib64 -Wl,-rpath,/usr/local/cuda/lib64 -lcudart"
mpicc -std=c11 -O2 -march=native -Wall -Wextra -Werror -D_GNU_SOURCE -pthread -I"$REPO" \
	-o "$REPO/build/bench/allreduce" "$REPO/tests/bench/allreduce.c" "$REPO/build/libcnnpipe.a" \
	$nccl $cuda -lm
ar=$($two "$REPO/build/bench/allreduce" 21800000 10)
echo "$ar"
ar_ms=$(echo "$ar" | sed -n 's/.*: \([0-9.]*\) ms.*/\1/p')
if "$PY" -c 'import torch, torchvision' 2>/dev/null; then
	"$PY" "$REPO/tests/torch_ref.py" weights "$T/r34.pth" resnet34 0
	pretrained -a resnet34 -w "$T/r34.pth" -c cats,dogs -o "$T/r34.model"
	K=2
	r34=$(ips "" "$T/r34.model" 16 --unfreeze)
	step_ms=$(echo "16 / $r34 * 1000" | bc -l | fmt)
	echo "ResNet34 unfrozen step, batch 16, 1 thread: $step_ms ms; one all-reduce of its" \
	     "gradients $ar_ms ms = $(echo "$ar_ms / $step_ms * 100" | bc -l | fmt) % of it"
else
	echo "ResNet34 step: no torch for its weights, skipped"
fi

# 3. on paper: ring all-reduce of B = 87.2 MB over P participants
awk 'BEGIN {
	B = 21.8e6 * 4; step = 40e-3   # an H200 ResNet34 step at batch 64 (assumed)
	t8 = 2 * 7 / 8 * B / 450e9 + 2 * 7 * 5e-6          # NVLink 450 GB/s, 5 us a hop
	t2 = 2 * 1 / 2 * B / 12.5e9 + 2 * 1 * 10e-6        # 100 Gb/s, 10 us a hop
	printf "paper: 8 GPUs over NVLink: %.2f ms a step, efficiency %.1f %% (no overlap)\n", t8 * 1e3, 100 * step / (step + t8)
	printf "paper: 2 nodes over 100 Gb/s: %.2f ms a step, efficiency %.1f %% (no overlap)\n", t2 * 1e3, 100 * step / (step + t2)
}'
