#!/usr/bin/env bats
# precompute: images -> body + concat-pool activations, vs torchvision.
load helpers

setup_file() {
	export T="$BATS_FILE_TMPDIR"
	if /usr/bin/python3 -c 'import torch, torchvision' 2>/dev/null; then
		/usr/bin/python3 "$BATS_TEST_DIRNAME/torch_ref.py" weights "$T/r18.pth" resnet18 1
		/usr/bin/python3 "$BATS_TEST_DIRNAME/torch_ref.py" images "$T/im.stream" 5 224 2
		/usr/bin/python3 "$BATS_TEST_DIRNAME/torch_ref.py" images "$T/im64.stream" 2 64 2
		"$BIN/pretrained" -a resnet18 -w "$T/r18.pth" -c cats,dogs -o "$T/r18.model"
		"$BIN/pretrained" -a resnet18 -w "$T/r18.pth" --imagenet -o "$T/r18i.model"
	fi
}

@test "precompute: ResNet18 body + concat pool = torchvision's, labels and names carried" {
	skip_without_torch
	precompute -m "$T/r18.model" -b 2 -j 2 "$T/im.stream" > "$T/act.stream"
	run "$PYTHON" "$BATS_TEST_DIRNAME/torch_ref.py" features "$T/r18.pth" resnet18 "$T/im.stream" "$T/act.stream" 1e-5
	echo "$output" >&3
	assert_success
	assert_output --partial "carried through"
}

@test "precompute: the batch size does not change the activations; stdin works" {
	skip_without_torch
	precompute -m "$T/r18.model" -b 5 < "$T/im.stream" > "$T/a5.stream"
	precompute -m "$T/r18.model" -b 1 - < "$T/im.stream" > "$T/a1.stream"
	run "$PYTHON" -c 'import sys; sys.path.insert(0, sys.argv[1])
from cnnpipe_stream import read_stream
import numpy as np
a, b = (np.stack([r["x"] for r in read_stream(p)[1]]) for p in sys.argv[2:])
d = np.abs(a - b).max(); print("max diff", d); assert a.shape == (5, 1024) and d < 1e-5' \
		"$BATS_TEST_DIRNAME" "$T/a5.stream" "$T/a1.stream"
	assert_success
}

@test "precompute: refuses images of another size" {
	skip_without_torch
	run precompute -m "$T/r18.model" "$T/im64.stream"
	assert_failure 1
	assert_output --partial "images of size 64, the model"
	assert_output --partial "needs 224"
}

@test "precompute: refuses an ImageNet classifier model" {
	skip_without_torch
	run precompute -m "$T/r18i.model" "$T/im.stream"
	assert_failure 1
	assert_output --partial "no fast.ai head"
}

@test "precompute: missing model, not a model, usage" {
	run precompute -m "$BATS_FILE_TMPDIR/none.model" /dev/null
	assert_failure 1
	assert_output --partial "none.model"
	skip_without_torch
	run precompute -m "$T/im.stream" "$T/im.stream"
	assert_failure 1
	assert_output --partial "not a cnnpipe model"
	run precompute "$T/im.stream"
	assert_failure 2
	assert_output --partial "usage: precompute -m MODEL"
	run precompute -m "$T/r18.model" -b 0 "$T/im.stream"
	assert_failure 2
}

@test "precompute: a truncated images stream is an error and leaves no output" {
	skip_without_torch
	head -c 200000 "$T/im.stream" > "$T/trunc.stream"
	run precompute -m "$T/r18.model" "$T/trunc.stream"
	assert_failure 1
	assert_output --partial "trunc.stream"
}

@test "precompute: refuses images whose classes (or their order) differ from the model's" {
	skip_without_torch
	"$BIN/pretrained" -a resnet18 -w "$T/r18.pth" -c dogs,cats -o "$T/rev.model"
	run precompute -m "$T/rev.model" "$T/im.stream"
	assert_failure 1
	assert_output --partial "im.stream: classes cats,dogs, but the model $T/rev.model was made for dogs,cats"
	"$BIN/pretrained" -a resnet18 -w "$T/r18.pth" -c 3 -o "$T/three.model"
	run precompute -m "$T/three.model" "$T/im.stream"
	assert_failure 1
	assert_output --partial "made for 0,1,2"
}

@test "precompute: a model file is read back whole: groups and channels must fit its network" {
	skip_without_torch
	for kv in groups=2 channels=1 groups=x; do
		"$PYTHON" -c 'import sys; sys.path.insert(0, sys.argv[1])
from cnnpipe_stream import read_stream, write_stream
meta, recs, tr = read_stream(sys.argv[2]); k, v = sys.argv[4].split("=")
meta[k] = v; write_stream(sys.argv[3], meta, recs, tr)' \
			"$BATS_TEST_DIRNAME" "$T/r18.model" "$T/bad.model" "$kv"
		run precompute -m "$T/bad.model" "$T/im.stream"
		assert_failure 1
		assert_output --partial "bad.model: meta ${kv%%=*}="
	done
	assert_output --partial "meta groups=x: need a whole number"
}

@test "precompute: the same bytes whatever the batch size and threads" {
	skip_without_torch
	precompute -m "$T/r18.model" -b 1 -j 1 "$T/im.stream" > "$T/det1.1"
	for b in 1 2 3 7; do
		for j in 1 2; do
			precompute -m "$T/r18.model" -b $b -j $j "$T/im.stream" > "$T/det$b.$j"
			cmp "$T/det1.1" "$T/det$b.$j"
		done
	done
}
