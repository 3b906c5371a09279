#!/bin/sh
# Part of `make bench`: conv2d_forward over ResNet34's and Tiny Darknet's
# convolutions (batch 64, 224x224, 2 threads, filters cached per layer as a
# network holds them) against PyTorch 1.13 on the same shapes, channels_last,
# GLIBC_TUNABLES as a tuned PyTorch user runs it.  The machine is shared:
# ours and PyTorch alternate RUNS times and the ratio is of the medians.
# usage: tests/bench/ops_conv.sh [batch] [threads]   (env RUNS, REPS)
set -eu
cd "$(dirname "$0")/../.."
B=${1:-64}
T=${2:-2}
RUNS=${RUNS:-3}
REPS=${REPS:-3}
make -s build/libcnnpipe.a
mkdir -p build/bench
${CC:-cc} -std=c11 -O2 -march=native -Wall -Wextra -Werror -D_GNU_SOURCE -pthread \
	-I. -o build/bench/ops_conv tests/bench/ops_conv.c \
	build/libcnnpipe.a -lopenblas -lm -lpthread
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
total() { sed -n 's/^total conv forward: \([0-9.]*\) s.*/\1/p' "$1"; }
median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
havetorch=0
/usr/bin/python3 -c 'import torch' 2>/dev/null && havetorch=1
for net in resnet34 darknet; do
	echo "## $net convolutions, batch $B, $T threads, $RUNS alternating runs, load: $(cut -d' ' -f1-3 /proc/loadavg)"
	: >"$tmp/ours"; : >"$tmp/theirs"
	for i in $(seq "$RUNS"); do
		build/bench/ops_conv -b "$B" -t "$T" -r "$REPS" -n "$net" >"$tmp/o$i"
		total "$tmp/o$i" >>"$tmp/ours"
		if [ $havetorch = 1 ]; then
			GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736 \
				/usr/bin/python3 tests/bench/ops_conv.py "$B" "$T" "$REPS" "$net" >"$tmp/p$i"
			total "$tmp/p$i" >>"$tmp/theirs"
		fi
	done
	echo "# cnnpipe (last run; Winograd F(4x4,3x3) for 3x3/1, direct for C <= 4, im2col + own kernel or OpenBLAS otherwise)"
	cat "$tmp/o$RUNS"
	ours=$(median <"$tmp/ours")
	if [ $havetorch = 1 ]; then
		echo "# PyTorch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)'), channels_last (last run)"
		cat "$tmp/p$RUNS"
		theirs=$(median <"$tmp/theirs")
		echo "$net convolutions: cnnpipe median ${ours} s ($(tr '\n' ' ' <"$tmp/ours")), PyTorch median ${theirs} s ($(tr '\n' ' ' <"$tmp/theirs")), ratio (speed) $(echo "$theirs $ours" | awk '{printf "%.2f", $1 / $2}')x"
	else
		echo "$net convolutions: cnnpipe median ${ours} s; PyTorch not installed: no comparison"
	fi
done
echo "## for reference, ResNet34: filters transformed on every call (no ConvCache); without Winograd;"
echo "## + residual + ReLU as separate passes (add_forward, relu_forward); the same fused (conv2d_forward_fused)"
build/bench/ops_conv -b "$B" -t "$T" --uncached | tail -1
CNNPIPE_NO_WINOGRAD=1 build/bench/ops_conv -b "$B" -t "$T" | tail -1
build/bench/ops_conv -b "$B" -t "$T" --epilogue separate | tail -1
build/bench/ops_conv -b "$B" -t "$T" --epilogue fused | tail -1
