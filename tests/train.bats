#!/usr/bin/env bats
# train and lrfind: fast.ai's fit and lr_find as pipeline stages.
load helpers
bats_require_minimum_version 1.5.0

setup_file() {
	export T="$BATS_FILE_TMPDIR"
	"$PYTHON" "$BATS_TEST_DIRNAME/make_tiny_darknet.py" "$T/tiny.cfg" "$T/tiny.weights" 3
	# the tiny network's head takes 2*16 features
	"$BIN/pretrained" -a darknet -w "$T/tiny.weights" --cfg "$T/tiny.cfg" -c cats,dogs \
		--seed 4 -o "$T/tiny.model"
	"$PYTHON" "$BATS_TEST_DIRNAME/make_activations.py" "$T/train.act" 640 32 cats,dogs 1
	"$PYTHON" "$BATS_TEST_DIRNAME/make_activations.py" "$T/valid.act" 200 32 cats,dogs 2
	# long enough to be interrupted: 6400 rows, 100 batches an epoch
	"$PYTHON" "$BATS_TEST_DIRNAME/make_activations.py" "$T/big.act" 6400 32 cats,dogs 5
	# images for the tiny network (32x32): 3 shuffled epochs, and plain
	"$PYTHON" "$BATS_TEST_DIRNAME/make_images.py" "$T/ep3.images" 96 32 cats,dogs --epochs 3
	"$PYTHON" "$BATS_TEST_DIRNAME/make_images.py" "$T/plain.images" 48 32 cats,dogs --seed 2
}

meta() { "$BIN/tensor" meta -k "$2" "$1"; }

# the interrupted runs' length: 60 epochs of big.act take 2 s optimised and
# about 10 s under the sanitizers, where 15 still outlast the signal
LONG=60
[ -z "${CNNPIPE_SANITIZE:-}" ] || LONG=15

@test "train: the head on activations learns; fast.ai's epoch lines; the log; a valid model" {
	run train -m "$T/tiny.model" -o "$T/a.model" --valid "$T/valid.act" --lr 1e-2 \
		--cycles 3 --cycle-len 1 --cycle-mult 2 --log "$T/a.tsv" -j 1 "$T/train.act"
	assert_success
	echo "$output" >&3
	assert_line --index 0 --regexp '^epoch +trn_loss +val_loss +accuracy'
	[ "${#lines[@]}" -eq 8 ]   # header + 1 + 2 + 4 epochs
	assert_line --index 7 --regexp '^    6 '
	acc=$(echo "${lines[7]}" | awk '{print $4}')
	awk -v a="$acc" 'BEGIN { exit !(a >= 0.9) }' || fail "accuracy $acc"
	tensor validate "$T/a.model"
	[ "$(meta "$T/a.model" kind)" = model ]
	! cmp -s "$T/a.model" "$T/tiny.model"
	[ ! -e "$T/a.model.ckpt" ]
	# 10 batches an epoch, 7 epochs; the header; the SGDR warm-up at lr/100
	[ "$(wc -l < "$T/a.tsv")" -eq 71 ]
	head -1 "$T/a.tsv" | grep -q '^epoch	iteration	lr0	lr1	lr2	loss	smoothed$'
	sed -n 2p "$T/a.tsv" | awk '{ exit !($3 == 0.0001 && $5 == 0.0001) }'
	# the trained model trains on
	train -m "$T/a.model" -o "$T/b.model" "$T/train.act" > /dev/null
	tensor validate "$T/b.model"
}

@test "train: on images through the frozen body, the epochs the input carries" {
	run train -m "$T/tiny.model" -o "$T/fr.model" --valid "$T/plain.images" --lr 1e-2 \
		--cycles 3 --cycle-len 1 -b 16 --log "$T/fr.tsv" -j 2 "$T/ep3.images"
	assert_success
	[ "${#lines[@]}" -eq 4 ]
	[ "$(wc -l < "$T/fr.tsv")" -eq 19 ]   # 6 batches x 3 epochs + header
	# frozen: the body's tensors are the model's, the head's moved
	"$PYTHON" -c 'import sys; sys.path.insert(0, sys.argv[1])
from cnnpipe_stream import read_stream
import numpy as np
a, b = (read_stream(p)[1][0] for p in sys.argv[2:])
body = [k for k in a if not k.startswith("head.")]
assert body and all(np.array_equal(a[k], b[k]) for k in body), "body moved"
assert not np.array_equal(a["head.fc2.weight"], b["head.fc2.weight"]), "head still"
assert not np.array_equal(a["head.bn1.running_mean"], b["head.bn1.running_mean"])' \
		"$BATS_TEST_DIRNAME" "$T/tiny.model" "$T/fr.model"
}

@test "train: from a pipe (augment | train) as from the file" {
	train -m "$T/tiny.model" -o "$T/p1.model" -b 16 --cycles 3 -j 2 "$T/ep3.images" > /dev/null
	cat "$T/ep3.images" | train -m "$T/tiny.model" -o "$T/p2.model" -b 16 --cycles 3 -j 2 > /dev/null
	cmp "$T/p1.model" "$T/p2.model"
	train -m "$T/tiny.model" -o "$T/p3.model" - < "$T/train.act" > /dev/null
	train -m "$T/tiny.model" -o "$T/p4.model" "$T/train.act" > /dev/null
	cmp "$T/p3.model" "$T/p4.model"
}

@test "train: unfrozen on images, a rate per layer group; each group moves" {
	run train -m "$T/tiny.model" -o "$T/un.model" --unfreeze --lr 1e-3,1e-2,5e-2 \
		--cycles 2 -b 16 --log "$T/un.tsv" -j 2 "$T/ep3.images"
	assert_success
	sed -n 2p "$T/un.tsv" | awk '{ exit !($3 == 0.001 && $4 == 0.01 && $5 == 0.05) }'
	"$PYTHON" -c 'import sys; sys.path.insert(0, sys.argv[1])
from cnnpipe_stream import read_stream
import numpy as np
a, b = (read_stream(p)[1][0] for p in sys.argv[2:])
for k in ("layers.0.conv.weight", "layers.2.conv.weight", "head.fc1.weight"):
    assert not np.array_equal(a[k], b[k]), k + " did not move"
assert read_stream(sys.argv[3])[0]["frozen"] == "0"' \
		"$BATS_TEST_DIRNAME" "$T/tiny.model" "$T/un.model"
	# --freeze-to 1: group 0 stays (at 32x32 the tiny body never passes
	# stride 8: all of it is group 0), the rest learns
	train -m "$T/tiny.model" -o "$T/f1.model" --freeze-to 1 -b 16 -j 2 "$T/ep3.images" > /dev/null
	"$PYTHON" -c 'import sys; sys.path.insert(0, sys.argv[1])
from cnnpipe_stream import read_stream
import numpy as np
a, b = (read_stream(p)[1][0] for p in sys.argv[2:])
assert np.array_equal(a["layers.0.conv.weight"], b["layers.0.conv.weight"])
assert np.array_equal(a["layers.2.conv.weight"], b["layers.2.conv.weight"])
assert not np.array_equal(a["head.fc1.weight"], b["head.fc1.weight"])' \
		"$BATS_TEST_DIRNAME" "$T/tiny.model" "$T/f1.model"
}

@test "train: images: more epochs than the input holds are refused before training" {
	run train -m "$T/tiny.model" -o "$T/x.model" --cycles 3 --cycle-len 1 --cycle-mult 2 "$T/ep3.images"
	assert_failure 1
	assert_output --partial "ep3.images: 3 epochs of images, the schedule needs 7 (augment --epochs 7)"
	run train -m "$T/tiny.model" -o "$T/x.model" --cycles 2 "$T/plain.images"
	assert_failure 1
	assert_output --partial "1 epochs of images, the schedule needs 2"
	"$PYTHON" "$BATS_TEST_DIRNAME/make_images.py" "$T/64.images" 8 64 cats,dogs
	run train -m "$T/tiny.model" -o "$T/x.model" "$T/64.images"
	assert_failure 1
	assert_output --partial "images of size 64, the model $T/tiny.model needs 32"
	[ ! -e "$T/x.model" ]
	# unshuffled images in label order: trained, with a warning
	run train -m "$T/tiny.model" -o "$T/warn.model" -b 16 "$T/plain.images"
	assert_success
	assert_output --partial "warning: $T/plain.images: its records are in label order"
}

@test "train: the same seed, the same model; another seed, another" {
	train -m "$T/tiny.model" -o "$T/s1.model" --seed 3 -j 2 "$T/train.act" > /dev/null
	train -m "$T/tiny.model" -o "$T/s2.model" --seed 3 -j 2 "$T/train.act" > /dev/null
	train -m "$T/tiny.model" -o "$T/s3.model" --seed 4 -j 2 "$T/train.act" > /dev/null
	cmp "$T/s1.model" "$T/s2.model"
	! cmp -s "$T/s1.model" "$T/s3.model"
}

@test "train --unfreeze -j 2: the same model, run after run (the threads' timing enters no sum)" {
	for i in 1 2 3 4; do
		train -m "$T/tiny.model" -o "$T/j$i.model" --unfreeze -b 48 -j 2 --seed 3 \
			"$T/ep3.images" > /dev/null
	done
	for i in 2 3 4; do
		cmp "$T/j1.model" "$T/j$i.model"
	done
}

@test "train: ten head steps, ten unfrozen ResNet18 and darknet steps (3 rate groups) = PyTorch" {
	skip_without_torch
	"$PYTHON" "$BATS_TEST_DIRNAME/gen_golden_train.py" head "$T/gh.stream"
	run "$UNIT/test_fit" --golden "$T/gh.stream"
	echo "$output" >&3
	assert_success
	# under the sanitizers (30 s a run of ten ResNet18 steps) three steps
	# reach every kernel the ten do; the numbers are checked in the
	# optimised build
	local steps=10
	[ -z "${CNNPIPE_SANITIZE:-}" ] || steps=3
	"$PYTHON" "$BATS_TEST_DIRNAME/gen_golden_train.py" resnet "$T/gr.stream" $steps
	run "$UNIT/test_fit" --golden "$T/gr.stream" --direct
	echo "$output" >&3
	assert_success
	run "$UNIT/test_fit" --golden "$T/gr.stream"
	echo "$output" >&3
	assert_success
	# Tiny Darknet's kinds of layer: 3x3 and 1x1 convolutions, batch norm,
	# leaky ReLU, maxpools; the groups split as cnnpipe splits a darknet body
	"$PYTHON" "$BATS_TEST_DIRNAME/gen_golden_train.py" darknet "$T/gd.stream"
	run "$UNIT/test_fit" --golden "$T/gd.stream" --direct
	echo "$output" >&3
	assert_success
	run "$UNIT/test_fit" --golden "$T/gd.stream"
	echo "$output" >&3
	assert_success
}

@test "train: Tiny Darknet's own body at 224, batches of 16: two unfrozen steps = PyTorch" {
	skip_without_torch
	# the dev-set training's shapes, and so its kernel paths, which the
	# 32x32 goldens above do not reach (random weights and images)
	[ -z "${CNNPIPE_SANITIZE:-}" ] || skip "224x224: minutes under the sanitizers"
	GOLDEN_BS=16 "$PYTHON" "$BATS_TEST_DIRNAME/gen_golden_train.py" tinydarknet "$T/gt.stream" 2
	run "$UNIT/test_fit" --golden "$T/gt.stream"
	echo "$output" >&3
	assert_success
	# the same steps from a trainer made for batches of 64: an epoch's
	# partial last batch
	run env TEST_FIT_CAP=64 "$UNIT/test_fit" --golden "$T/gt.stream"
	assert_success
}

# Interrupts a long run with signal $1, resumes it, and compares with an
# uninterrupted run.
interrupt_and_resume() {
	local sig=$1 args="--lr 1e-3 --cycles $LONG -j 1 --seed 9 --log"
	train -m "$T/tiny.model" -o "$T/full$sig.model" $args "$T/full$sig.tsv" "$T/big.act" > /dev/null
	train -m "$T/tiny.model" -o "$T/$sig.model" $args "$T/$sig.tsv" "$T/big.act" \
		> /dev/null 2> "$T/$sig.err" &
	local pid=$!
	sleep 0.4
	kill -"$sig" "$pid"
	local rc=0
	wait "$pid" || rc=$?
	[ "$rc" -eq 1 ] || fail "exit $rc: $(cat "$T/$sig.err")"
	grep -q "stopped by signal .* resume with --resume $T/$sig.model.ckpt" "$T/$sig.err"
	[ ! -e "$T/$sig.model" ]
	tensor validate "$T/$sig.model.ckpt"
	run train -o "$T/$sig.model" --resume "$T/$sig.model.ckpt" $args "$T/$sig.tsv" "$T/big.act"
	assert_success
	cmp "$T/full$sig.model" "$T/$sig.model"
	[ ! -e "$T/$sig.model.ckpt" ]
	# the log goes on where it stopped: every batch once
	cmp "$T/full$sig.tsv" "$T/$sig.tsv"
}

@test "train: SIGINT mid-run writes a checkpoint; --resume gives the same bytes" {
	interrupt_and_resume INT
}

@test "train: SIGTERM too" {
	interrupt_and_resume TERM
}

@test "train: SIGKILL leaves the last complete checkpoint valid and no half model" {
	train -m "$T/tiny.model" -o "$T/k.model" --lr 1e-3 --cycles $LONG -j 1 "$T/big.act" \
		> /dev/null 2>&1 &
	local pid=$!
	sleep 0.6
	kill -KILL "$pid"
	wait "$pid" || true
	[ -e "$T/k.model.ckpt" ] || skip "the machine was too slow to finish an epoch in 0.6 s"
	tensor validate "$T/k.model.ckpt"
	[ ! -e "$T/k.model" ]
	ls "$T" | grep -v -q '\.tmp' || true
	run train -o "$T/k.model" --resume "$T/k.model.ckpt" --lr 1e-3 --cycles $LONG -j 1 "$T/big.act"
	assert_success
	tensor validate "$T/k.model"
}

@test "train: a NaN loss stops the run naming epoch and batch; no model is written" {
	run train -m "$T/tiny.model" -o "$T/nan.model" --lr 1e6 --cycles 3 "$T/train.act"
	assert_failure 1
	assert_output --regexp "train: epoch [0-9]+, batch [0-9]+: the loss is (NaN|infinite)"
	[ ! -e "$T/nan.model" ]
}

@test "train: data that do not fit the model are refused before training, both sides named" {
	"$PYTHON" "$BATS_TEST_DIRNAME/make_activations.py" "$T/w.act" 20 48 cats,dogs
	run train -m "$T/tiny.model" -o "$T/x.model" "$T/w.act"
	assert_failure 1
	assert_output --partial "w.act: activations of 48 features, the model $T/tiny.model's head takes 32"
	"$PYTHON" "$BATS_TEST_DIRNAME/make_activations.py" "$T/o.act" 20 32 dogs,cats
	run train -m "$T/tiny.model" -o "$T/x.model" "$T/o.act"
	assert_failure 1
	assert_output --partial "o.act: classes dogs,cats, but the model $T/tiny.model was made for cats,dogs"
	"$PYTHON" "$BATS_TEST_DIRNAME/make_activations.py" "$T/u.act" 20 32 cats,dogs 1 --unlabelled
	run train -m "$T/tiny.model" -o "$T/x.model" "$T/u.act"
	assert_failure 1
	assert_output --partial "unlabelled"
	run train -m "$T/tiny.model" -o "$T/x.model" --unfreeze "$T/train.act"
	assert_failure 1
	assert_output --partial "unfreezing needs images"
	run train -m "$T/tiny.model" -o "$T/x.model" --valid "$T/tiny.model" "$T/train.act"
	assert_failure 1
	assert_output --partial "kind=model"
	run train -m "$T/tiny.model" -o "$T/x.model" - < "$T/plain.images"
	assert_failure 1
	assert_output --partial "-: an images stream without epoch marks (augment(1)) must be a file"
	run train -m "$T/tiny.model" -o "$T/x.model" --valid - "$T/train.act"
	assert_failure 2
	[ ! -e "$T/x.model" ]
}

@test "train: usage errors" {
	run train -m "$T/tiny.model" "$T/train.act"
	assert_failure 2
	assert_output --partial "usage: train -m MODEL -o OUT"
	run train -m "$T/tiny.model" -o "$T/x.model" --lr 1e-3,1e-2 "$T/train.act"
	assert_failure 2
	assert_output --partial "a list needs one per layer group (3)"
	run train -m "$T/tiny.model" -o "$T/x.model" --unfreeze --freeze-to 1 "$T/train.act"
	assert_failure 2
	run train -m "$T/tiny.model" -o "$T/x.model" --cycle-mult 0.5 "$T/train.act"
	assert_failure 2
}

@test "train --precision bf16: trains, not the f32 model; other precisions refused" {
	train -m "$T/tiny.model" -o "$T/p32.model" --unfreeze -b 16 -j 2 --seed 3 \
		--log "$T/p32.tsv" "$T/ep3.images" > /dev/null
	run train -m "$T/tiny.model" -o "$T/p16.model" --unfreeze -b 16 -j 2 --seed 3 \
		--precision bf16 --log "$T/p16.tsv" "$T/ep3.images"
	assert_success
	# the tiny body's 3x3 layers run in bf16: other bits, and the first
	# batch's loss (the same weights, before any step) within bf16's error
	# (later steps at this rate drift apart whatever perturbs them)
	! cmp -s "$T/p32.model" "$T/p16.model"
	awk -F '\t' 'FNR == 2 { l[FILENAME] = $6 } END {
		a = l[ARGV[1]]; b = l[ARGV[2]]; d = a - b; if (d < 0) d = -d
		print "first loss: f32 " a ", bf16 " b
		exit !(a > 0 && b > 0 && d > 0 && d < 0.05 * a) }' "$T/p32.tsv" "$T/p16.tsv"
	run train -m "$T/tiny.model" -o "$T/x.model" --precision fp16 "$T/train.act"
	assert_failure 2
	assert_output --partial "--precision: f32 or bf16, not 'fp16'"
}

@test "train: --resume with other options is refused" {
	train -m "$T/tiny.model" -o "$T/r.model" --lr 1e-3 --cycles $LONG -j 1 "$T/big.act" \
		> /dev/null 2>&1 &
	local pid=$!
	sleep 0.4
	kill -INT "$pid"
	wait "$pid" || true
	[ -e "$T/r.model.ckpt" ] || skip "no checkpoint"
	run train -o "$T/r.model" --resume "$T/r.model.ckpt" --lr 1e-2 --cycles $LONG -j 1 "$T/big.act"
	assert_failure 1
	assert_output --partial "made by another fit"
}

@test "train: --save-cycles writes a model after each SGDR cycle" {
	train -m "$T/tiny.model" -o "$T/c.model" --cycles 3 --cycle-len 1 --cycle-mult 2 \
		--save-cycles "$T/cyc" "$T/train.act" > /dev/null
	for k in 0 1 2; do tensor validate "$T/cyc_cyc_$k.model"; done
	[ ! -e "$T/cyc_cyc_3.model" ]
	cmp "$T/cyc_cyc_2.model" "$T/c.model"
}

@test "lrfind: the range test's table, a suggestion, the model untouched" {
	cp "$T/tiny.model" "$T/before.model"
	run --separate-stderr lrfind -m "$T/tiny.model" --iters 200 -j 1 "$T/train.act"
	assert_success
	[ "${lines[0]}" = "$(printf 'iteration\tlr\tloss\tsmoothed')" ]
	n=${#lines[@]}
	[ "$n" -gt 20 ] && [ "$n" -lt 201 ]   # stopped when the loss ran away
	echo "${lines[1]}" | awk '{ exit !($1 == 0 && $2 == 1e-05) }'
	[[ "$stderr" == *"suggested learning rate"*"an order of magnitude below"* ]]
	cmp "$T/before.model" "$T/tiny.model"
	run lrfind -m "$T/tiny.model" --linear --iters 5 "$T/train.act"
	assert_success
	echo "${lines[1]}" | awk '{ exit !($2 == 0) }'   # fast.ai's linear: 0 first
	run lrfind -m "$T/tiny.model" --start 1 --end 0.1 "$T/train.act"
	assert_failure 2
}

@test "train: learning for real: Tiny Darknet's head on the dev set reaches 91 %, augmentation keeps it" {
	skip_without_shared
	imgprep -s 224 "$DEVDATA/train" > "$T/dev.train.images"
	imgprep -s 224 --classes-from "$T/dev.train.images" "$DEVDATA/valid" > "$T/dev.valid.images"
	pretrained -a darknet -w "$TINYDARKNET/tiny.weights" --cfg "$TINYDARKNET/tiny.cfg" \
		--classes-from "$T/dev.train.images" -o "$T/td.model"
	precompute -m "$T/td.model" "$T/dev.train.images" > "$T/dev.train.act"
	precompute -m "$T/td.model" "$T/dev.valid.images" > "$T/dev.valid.act"
	run train -m "$T/td.model" -o "$T/td.head.model" --valid "$T/dev.valid.act" --lr 1e-2 \
		"$T/dev.train.act"
	assert_success
	echo "$output" >&3
	acc=$(echo "${lines[1]}" | awk '{print $4}')
	awk -v a="$acc" 'BEGIN { exit !(a >= 0.91) }' || fail "accuracy $acc < 0.91"
	# then fit(1e-2, 3, cycle_len=1) with augmentation through the frozen
	# body: not more than a point below
	imgprep --scale 291 "$DEVDATA/train" > "$T/dev.scaled"
	augment -s 224 --epochs 3 --seed 1 "$T/dev.scaled" > "$T/dev.aug"
	rm "$T/dev.scaled"
	run train -m "$T/td.head.model" -o "$T/td.aug.model" --valid "$T/dev.valid.images" \
		--lr 1e-2 --cycles 3 --cycle-len 1 "$T/dev.aug"
	assert_success
	echo "$output" >&3
	rm "$T/dev.aug"
	aug=$(echo "${lines[3]}" | awk '{print $4}')
	awk -v a="$aug" -v b="$acc" 'BEGIN { exit !(a >= b - 0.01) }' ||
		fail "with augmentation $aug, more than a point below $acc"
}
