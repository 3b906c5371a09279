#!/bin/sh
# Part of `make bench`: conv2d_forward over ResNet34's convolutions (batch 64,
# 224x224, 2 threads) against PyTorch 1.13 on the same shapes, channels_last,
# side by side.  usage: tests/bench/ops_conv.sh [batch] [threads]
set -eu
cd "$(dirname "$0")/../.."
B=${1:-64}
T=${2:-2}
make -s build/libcnnpipe.a
mkdir -p build/bench
${CC:-cc} -std=c11 -O2 -march=native -Wall -Wextra -Werror -D_GNU_SOURCE -pthread \
	-Ilibcommon -Iformats -Ikernels -o build/bench/ops_conv tests/bench/ops_conv.c \
	build/libcnnpipe.a -lopenblas -lm -lpthread
echo "## cnnpipe conv2d_forward (Winograd F(4x4,3x3) for 3x3/1, im2col+sgemm otherwise)"
ours=$(build/bench/ops_conv -b "$B" -t "$T" | tee /dev/stderr | sed -n 's/^total conv forward: \([0-9.]*\) s.*/\1/p')
echo "## cnnpipe conv2d_forward, im2col+sgemm only"
CNNPIPE_NO_WINOGRAD=1 build/bench/ops_conv -b "$B" -t "$T" | tail -1
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
	echo "## PyTorch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)'), channels_last"
	theirs=$(GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736 \
		/usr/bin/python3 tests/bench/ops_conv.py "$B" "$T" | tee /dev/stderr |
		sed -n 's/^total conv forward: \([0-9.]*\) s.*/\1/p')
	echo "ResNet34 convolutions, batch $B, $T threads: cnnpipe ${ours} s, PyTorch ${theirs} s," \
	     "ratio (speed) $(echo "$theirs $ours" | awk '{printf "%.2f", $1 / $2}')x"
else
	echo "PyTorch not installed: no comparison"
fi
