#!/usr/bin/env bats
# train under mpirun: data-parallel over MPI on this machine's CPUs.  Each
# rank takes its ghost batches of every global batch; the result is a
# one-process run's with the same -b and --bn-batch (README.md,
# "Data-parallel training").
load helpers
bats_require_minimum_version 1.5.0

setup_file() {
	export T="$BATS_FILE_TMPDIR"
	# as root Open MPI's mpirun asks for both
	export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
	# no network interfaces are probed beyond this machine
	export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none
	command -v mpirun > /dev/null || return 0
	"$PYTHON" "$BATS_TEST_DIRNAME/make_tiny_darknet.py" "$T/tiny.cfg" "$T/tiny.weights" 3
	"$BIN/pretrained" -a darknet -w "$T/tiny.weights" --cfg "$T/tiny.cfg" -c cats,dogs \
		--seed 4 -o "$T/tiny.model"
	"$PYTHON" "$BATS_TEST_DIRNAME/make_activations.py" "$T/train.act" 640 32 cats,dogs 1
	"$PYTHON" "$BATS_TEST_DIRNAME/make_activations.py" "$T/valid.act" 200 32 cats,dogs 2
	"$PYTHON" "$BATS_TEST_DIRNAME/make_activations.py" "$T/big.act" 6400 32 cats,dogs 5
	"$PYTHON" "$BATS_TEST_DIRNAME/make_images.py" "$T/ep3.images" 96 32 cats,dogs --epochs 3
	"$PYTHON" "$BATS_TEST_DIRNAME/make_images.py" "$T/plain.images" 48 32 cats,dogs --seed 2
}

setup() {
	command -v mpirun > /dev/null ||
		skip "mpirun is absent (apt-get install openmpi-bin libopenmpi-dev)"
	ldd "$BIN/train" | grep -q libmpi ||
		skip "$BIN/train is built without MPI (mpicc was not found)"
}

mpi() { mpirun -np "$1" --oversubscribe "${@:2}"; }

# Two models' tensors within 1e-5: absolute, or relative beyond 1 (the
# running variances reach thousands, where a float's step is above 1e-5).
same_weights() {
	"$PYTHON" -c 'import sys; sys.path.insert(0, sys.argv[1])
from cnnpipe_stream import read_stream
import numpy as np
a, b = (read_stream(p)[1][0] for p in sys.argv[2:4])
assert set(a) == set(b), "other tensors"
worst = max((float(np.max(np.abs(a[k].astype(np.float64) - b[k]) /
                           np.maximum(1, np.abs(a[k])))), k) for k in a)
print("largest difference %.3g (%s)" % worst)
sys.exit(worst[0] > float(sys.argv[4]))' "$BATS_TEST_DIRNAME" "$1" "$2" "${3:-1e-5}"
}

@test "mpi: the head on activations, 2 ranks = 1 process with the same batch and --bn-batch" {
	local args="--valid $T/valid.act --lr 1e-2 --cycles 2 --cycle-len 1 -j 1"
	run train -m "$T/tiny.model" -o "$T/one.model" $args --bn-batch 32 --log "$T/one.tsv" \
		"$T/train.act"
	assert_success
	local one="$output"
	run mpi 2 train -m "$T/tiny.model" -o "$T/two.model" $args --log "$T/two.tsv" "$T/train.act"
	assert_success
	# rank 0 alone writes the epoch lines, the log, the model
	[ "$output" = "$one" ]
	same_weights "$T/one.model" "$T/two.model"
	[ "$(wc -l < "$T/two.tsv")" -eq "$(wc -l < "$T/one.tsv")" ]
	tensor validate "$T/two.model"
	[ ! -e "$T/two.model.ckpt" ]
	# the default ghost batch under 2 ranks is half the batch: the whole
	# batch's statistics (one process, no --bn-batch) are another run
	train -m "$T/tiny.model" -o "$T/whole.model" $args "$T/train.act" > /dev/null
	run ! same_weights "$T/whole.model" "$T/two.model"
}

@test "mpi: a partial last batch and an idle rank (3 ranks, 2 ghost batches)" {
	local args="--valid $T/valid.act --cycles 2 -b 48 --bn-batch 24 -j 1"
	train -m "$T/tiny.model" -o "$T/p1.model" $args "$T/train.act" > "$T/p1.out"
	run mpi 3 train -m "$T/tiny.model" -o "$T/p3.model" $args "$T/train.act"
	assert_success
	assert_output --partial "--bn-batch 24: 2 ghost batches a batch for 3 ranks: 1 of them idle"
	same_weights "$T/p1.model" "$T/p3.model"
	grep -q "^    1 " "$T/p1.out"
}

@test "mpi: images through the frozen body and unfrozen, 2 ranks = 1 process" {
	local args="--cycles 3 -b 16 -j 1"
	train -m "$T/tiny.model" -o "$T/f1.model" --valid "$T/plain.images" $args \
		--bn-batch 8 "$T/ep3.images" > "$T/f1.out"
	mpi 2 train -m "$T/tiny.model" -o "$T/f2.model" --valid "$T/plain.images" $args \
		"$T/ep3.images" > "$T/f2.out"
	cmp "$T/f1.out" "$T/f2.out"
	same_weights "$T/f1.model" "$T/f2.model"
	# unfrozen: the body's batch norms over ghost batches too
	args="--unfreeze --lr 1e-3,1e-2,5e-2 --cycles 2 -b 16 -j 1"
	train -m "$T/tiny.model" -o "$T/u1.model" $args --bn-batch 8 "$T/ep3.images" > /dev/null
	# from a pipe, as augment | train gives it: every rank reads its own
	mpi 2 sh -c "cat '$T/ep3.images' | train -m '$T/tiny.model' -o '$T/u2.model' $args" \
		> /dev/null
	same_weights "$T/u1.model" "$T/u2.model"
	"$PYTHON" -c 'import sys; sys.path.insert(0, sys.argv[1])
from cnnpipe_stream import read_stream
import numpy as np
a, b = (read_stream(p)[1][0] for p in sys.argv[2:])
body = [k for k in a if not k.startswith("head.") and k.endswith(".weight")]
assert body and all(not np.array_equal(a[k], b[k]) for k in body), "the body did not move"' \
		"$BATS_TEST_DIRNAME" "$T/tiny.model" "$T/u2.model"
}

@test "mpi: SIGTERM stops every rank after the same batch; resumes under 2 ranks or 1" {
	local args="--lr 1e-3 --cycles 8 -j 1 --seed 9"
	mpi 2 train -m "$T/tiny.model" -o "$T/full.model" $args --log "$T/full.tsv" \
		"$T/big.act" > /dev/null
	mpirun -np 2 --oversubscribe train -m "$T/tiny.model" -o "$T/s.model" $args \
		--log "$T/s.tsv" "$T/big.act" > /dev/null 2> "$T/s.err" &
	local mp=$!
	for _ in $(seq 300); do [ -e "$T/s.model.ckpt" ] && break; sleep 0.1; done
	# the signal to every rank, as a terminal's ^C reaches its process group
	# (signalled itself, mpirun may tear the job down before the ranks'
	# messages are forwarded)
	kill -TERM $(pgrep -P "$mp" -x train)
	local rc=0
	wait "$mp" || rc=$?
	[ "$rc" -ne 0 ] || fail "mpirun exit 0: $(cat "$T/s.err")"
	# both ranks stop and name the same batch: each by the signal, or one by
	# the signal and the other by the agreement, as mpirun's forwarding of
	# it to the two ranks races the step
	grep -q 'stopped by signal 15 at epoch' "$T/s.err"
	[ "$(grep -cE "stopped by (signal 15|another rank's signal) at epoch" "$T/s.err")" -eq 2 ]
	[ "$(grep -o 'epoch [0-9]*, batch [0-9]*' "$T/s.err" | sort -u | wc -l)" -eq 1 ]
	[ ! -e "$T/s.model" ]
	tensor validate "$T/s.model.ckpt"
	[ "$(tensor meta -k ranks "$T/s.model.ckpt")" = 2 ]
	tensor meta -k fit "$T/s.model.ckpt" | grep -q ' bn_batch=32$'
	cp "$T/s.model.ckpt" "$T/s1.ckpt"
	cp "$T/s.tsv" "$T/s1.tsv"
	# the same ranks: the same bytes, the log every batch once
	run mpi 2 train -o "$T/s.model" --resume "$T/s.model.ckpt" $args --log "$T/s.tsv" "$T/big.act"
	assert_success
	cmp "$T/full.model" "$T/s.model"
	cmp "$T/full.tsv" "$T/s.tsv"
	# one process with the ghost batch the checkpoint names: the same run
	run train -o "$T/s1.model" --resume "$T/s1.ckpt" $args "$T/big.act"
	assert_failure 1
	assert_output --partial "made by another fit"
	assert_output --partial "bn_batch=32), not this one"
	train -o "$T/s1.model" --resume "$T/s1.ckpt" $args --bn-batch 32 "$T/big.act" > /dev/null
	same_weights "$T/full.model" "$T/s1.model" 1e-4
}

@test "mpi: SIGTERM to one rank alone: the others stop after the same batch too" {
	mpirun -np 2 --oversubscribe train -m "$T/tiny.model" -o "$T/o.model" --lr 1e-3 \
		--cycles 60 -j 1 "$T/big.act" > /dev/null 2> "$T/o.err" &
	local mp=$!
	for _ in $(seq 300); do [ -e "$T/o.model.ckpt" ] && break; sleep 0.1; done
	kill -TERM $(pgrep -P "$mp" -x train | sort -n | tail -1)
	local rc=0
	wait "$mp" || rc=$?
	[ "$rc" -ne 0 ]
	grep -q "^train (rank 1): stopped by signal 15 at epoch" "$T/o.err"
	grep -q "^train: stopped by another rank's signal at epoch" "$T/o.err"
	local b
	b=$(grep -o 'epoch [0-9]*, batch [0-9]*' "$T/o.err" | sort -u)
	[ "$(echo "$b" | wc -l)" -eq 1 ]
	[ "$(tensor meta -k batch "$T/o.model.ckpt")" = "${b##* }" ]
	tensor validate "$T/o.model.ckpt"
}

@test "mpi: a rank killed mid-run ends the job with an error, no hang; the checkpoint stays valid" {
	mpirun -np 2 --oversubscribe train -m "$T/tiny.model" -o "$T/k.model" --lr 1e-3 \
		--cycles 60 -j 1 "$T/big.act" > /dev/null 2> "$T/k.err" &
	local mp=$!
	for _ in $(seq 300); do [ -e "$T/k.model.ckpt" ] && break; sleep 0.1; done
	[ -e "$T/k.model.ckpt" ]
	local ranks
	ranks=$(pgrep -P "$mp" -x train | sort -n)
	[ "$(echo "$ranks" | wc -w)" -eq 2 ]
	kill -KILL $(echo "$ranks" | tail -1)
	# within 60 s, not never
	for _ in $(seq 600); do kill -0 "$mp" 2> /dev/null || break; sleep 0.1; done
	if kill -0 "$mp" 2> /dev/null; then
		kill -KILL "$mp" $ranks 2> /dev/null
		fail "mpirun still runs 60 s after a rank was killed"
	fi
	local rc=0
	wait "$mp" || rc=$?
	[ "$rc" -ne 0 ]
	grep -q "exited on signal 9" "$T/k.err"
	for p in $ranks; do ! kill -0 "$p" 2> /dev/null; done
	[ ! -e "$T/k.model" ]
	tensor validate "$T/k.model.ckpt"
}

@test "mpi: usage: a ghost batch larger than the batch" {
	run train -m "$T/tiny.model" -o "$T/x.model" -b 16 --bn-batch 32 "$T/train.act"
	assert_failure 2
	assert_output --partial "--bn-batch 32: more than the batch (-b 16)"
	run train -m "$T/tiny.model" -o "$T/x.model" --bn-batch 0 "$T/train.act"
	assert_failure 2
}

@test "mpi: the dev set's activations (../shared): 2 ranks = 1 process, the same accuracy" {
	skip_without_shared
	imgprep -s 224 "$DEVDATA/train" > "$T/dev.train.images" 2> /dev/null
	imgprep -s 224 --classes-from "$T/dev.train.images" "$DEVDATA/valid" \
		> "$T/dev.valid.images" 2> /dev/null
	pretrained -a darknet -w "$TINYDARKNET/tiny.weights" --cfg "$TINYDARKNET/tiny.cfg" \
		--classes-from "$T/dev.train.images" -o "$T/td.model"
	precompute -m "$T/td.model" "$T/dev.train.images" > "$T/dev.train.act"
	precompute -m "$T/td.model" "$T/dev.valid.images" > "$T/dev.valid.act"
	rm "$T/dev.train.images" "$T/dev.valid.images"
	local args="--valid $T/dev.valid.act --lr 1e-2 --cycles 2 --cycle-len 1"
	run train -m "$T/td.model" -o "$T/dv1.model" $args --bn-batch 32 -j 2 "$T/dev.train.act"
	assert_success
	local one="$output"
	run mpi 2 train -m "$T/td.model" -o "$T/dv2.model" $args -j 1 "$T/dev.train.act"
	assert_success
	echo "$output" >&3
	[ "$output" = "$one" ]
	acc=$(echo "${lines[2]}" | awk '{print $4}')
	awk -v a="$acc" 'BEGIN { exit !(a >= 0.91) }' || fail "accuracy $acc < 0.91"
	same_weights "$T/dv1.model" "$T/dv2.model"
}

@test "mpi: NCCL between GPUs: 2 ranks = 1 process on the GPU" {
	[ -f "$REPO/build/comm.stamp" ] && grep -q 'NCCL=1' "$REPO/build/comm.stamp" ||
		skip "this build has no NCCL"
	local gpus
	gpus=$(nvidia-smi -L 2> /dev/null | grep -c '^GPU' || true)
	[ "$gpus" -ge 2 ] || skip "NCCL needs two GPUs; $gpus answer here"
	local args="--valid $T/plain.images --unfreeze --cycles 2 -b 16"
	CNNPIPE_DEVICE=cuda train -m "$T/tiny.model" -o "$T/g1.model" $args --bn-batch 8 \
		"$T/ep3.images" > "$T/g1.out"
	CNNPIPE_DEVICE=cuda mpi 2 train -m "$T/tiny.model" -o "$T/g2.model" $args \
		"$T/ep3.images" > "$T/g2.out"
	same_weights "$T/g1.model" "$T/g2.model" 1e-4
}
