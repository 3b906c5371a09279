#!/usr/bin/env bats
# precompute: images -> body + concat-pool activations, vs torchvision.
load helpers
bats_require_minimum_version 1.5.0

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

# A tiny darknet model (32x32, tests/make_tiny_darknet.py) and images for it,
# numpy only; edit_stream IN OUT [key=value | @tensor=expr | %record:label=N]...
tiny_setup() {
	"$PYTHON" "$BATS_TEST_DIRNAME/make_tiny_darknet.py" "$T/tiny.cfg" "$T/tiny.weights"
	pretrained -a darknet -w "$T/tiny.weights" --cfg "$T/tiny.cfg" -c cats,dogs -o "$T/tiny.model"
	"$PYTHON" -c 'import sys; sys.path.insert(0, sys.argv[1])
from cnnpipe_stream import write_stream
import numpy as np
rng = np.random.default_rng(1)
recs = [{"image": rng.integers(0, 256, (32, 32, 3), dtype=np.uint8),
         "label": np.array(i % 2, np.int32), "name": "%d.jpg" % i} for i in range(3)]
write_stream(sys.argv[2], {"kind": "images", "classes": "cats,dogs", "size": "32",
             "channels": "3", "layout": "HWC", "labelled": "1"}, recs)' \
		"$BATS_TEST_DIRNAME" "$T/im32.stream"
}

edit_stream() {
	"$PYTHON" -c 'import sys; sys.path.insert(0, sys.argv[1])
from cnnpipe_stream import read_stream, write_stream
import numpy as np
meta, recs, tr = read_stream(sys.argv[2])
for a in sys.argv[4:]:
    k, v = a.split("=", 1)
    if k[0] == "@":
        x = recs[0][k[1:]]
        recs[0][k[1:]] = np.asarray(eval(v, {"np": np, "x": x}), np.float32)
    elif k[0] == "%":
        i, name = k[1:].split(":")
        recs[int(i)][name] = np.array(int(v), np.int32)
    elif v == "-":
        del meta[k]
    else:
        meta[k] = v
write_stream(sys.argv[3], meta, recs, tr)' "$BATS_TEST_DIRNAME" "$@"
}

@test "precompute: labels outside the classes are refused, naming the record and the model" {
	tiny_setup
	edit_stream "$T/im32.stream" "$T/l7.stream" %1:label=7
	run precompute -m "$T/tiny.model" "$T/l7.stream"
	assert_failure 1
	assert_output "precompute: $T/l7.stream: record 1: label 7, but the model $T/tiny.model has 2 classes (labels 0 to 1: cats,dogs)"
	edit_stream "$T/im32.stream" "$T/l-3.stream" %2:label=-3 classes=-
	run precompute -m "$T/tiny.model" "$T/l-3.stream"
	assert_failure 1
	assert_output --partial "l-3.stream: record 2: label -3, but the model $T/tiny.model has 2 classes"
	# an ImageNet classifier: the stream's own classes bound its labels
	pretrained -a darknet -w "$T/tiny.weights" --cfg "$T/tiny.cfg" --imagenet -o "$T/tinyi.model"
	run precompute --full -m "$T/tinyi.model" "$T/l7.stream"
	assert_failure 1
	assert_output --partial "l7.stream: record 1: label 7, but the stream has 2 classes (labels 0 to 1: cats,dogs)"
}

@test "precompute: a stream with more classes than the model's outputs is refused" {
	tiny_setup
	edit_stream "$T/tiny.model" "$T/nc.model" classes=-
	edit_stream "$T/im32.stream" "$T/c3.stream" classes=a,b,c
	run precompute -m "$T/nc.model" "$T/c3.stream"
	assert_failure 1
	assert_output "precompute: $T/c3.stream: 3 classes (a,b,c), but the model $T/nc.model has 2"
}

@test "precompute: a model with a NaN or infinite weight, or a negative running variance, is refused naming the tensor" {
	tiny_setup
	edit_stream "$T/tiny.model" "$T/nan.model" '@layers.2.conv.weight=np.where(np.arange(x.size).reshape(x.shape) == 5, np.nan, x)'
	run precompute -m "$T/nan.model" "$T/im32.stream"
	assert_failure 1
	assert_output "precompute: $T/nan.model: tensor layers.2.conv.weight[5] is nan: parameters are finite"
	edit_stream "$T/tiny.model" "$T/inf.model" '@head.fc2.bias=x - np.inf'
	run precompute -m "$T/inf.model" "$T/im32.stream"
	assert_failure 1
	assert_output --partial "inf.model: tensor head.fc2.bias[0] is -inf"
	edit_stream "$T/tiny.model" "$T/var.model" '@layers.0.bn.running_var=np.where(np.arange(8) == 3, -0.5, x)'
	run precompute -m "$T/var.model" "$T/im32.stream"
	assert_failure 1
	assert_output "precompute: $T/var.model: tensor layers.0.bn.running_var[3] is -0.5: a variance is >= 0"
}

@test "precompute: a model whose classes are not num_classes names is refused" {
	tiny_setup
	edit_stream "$T/tiny.model" "$T/c3.model" classes=cats,dogs,birds
	edit_stream "$T/im32.stream" "$T/nc.stream" classes=-
	run precompute -m "$T/c3.model" "$T/nc.stream"
	assert_failure 1
	assert_output "precompute: $T/c3.model: classes: 3 names (cats,dogs,birds) for num_classes=2"
	edit_stream "$T/tiny.model" "$T/ce.model" classes=cats,
	run precompute -m "$T/ce.model" "$T/nc.stream"
	assert_failure 1
	assert_output --partial "ce.model: classes: an empty class name in 'cats,'"
}

@test "precompute: a cfg describing a network larger than the model's record is refused before it is allocated" {
	# the network's parameters are only listed until the record's shapes
	# match them, and the record's memory becomes theirs
	tiny_setup
	# layer 2 as a 65536-filter 39x39 convolution: 3.2 GB of weights in a
	# 90 kB file, refused within 400 MB of address space
	awk '/^filters=16$/ { print "filters=65536"; next }
	     /^size=3$/ && ++n == 2 { print "size=39"; next } { print }' "$T/tiny.cfg" > "$T/big.cfg"
	edit_stream "$T/tiny.model" "$T/big.model" "darknet_cfg=$(cat "$T/big.cfg")"
	run sh -c 'ulimit -v 400000; exec precompute -m "$1" "$2"' sh "$T/big.model" "$T/im32.stream"
	assert_failure 1
	assert_output "precompute: $T/big.model: tensor layers.2.conv.weight has shape (16, 8, 3, 3), expected (65536, 8, 39, 39)"
	# beyond what any model file holds: named as such, with the file
	sed 's/^size=39$/size=59/' "$T/big.cfg" > "$T/huge.cfg"
	edit_stream "$T/tiny.model" "$T/huge.model" "darknet_cfg=$(cat "$T/huge.cfg")"
	run sh -c 'ulimit -v 400000; exec precompute -m "$1" "$2"' sh "$T/huge.model" "$T/im32.stream"
	assert_failure 1
	assert_output --regexp "^precompute: $T/huge.model: the network needs [0-9]+ bytes of parameters, more than a model file holds \(4294967296\)$"
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

@test "precompute --shard i/n: the shards joined are the whole; a pipe and bad shards are refused" {
	tiny_setup
	precompute -m "$T/tiny.model" -j 2 "$T/im32.stream" > "$T/whole.act"
	for n in 2 3 5; do
		parts=()
		for ((i = 1; i <= n; i++)); do
			precompute -m "$T/tiny.model" -j 2 --shard $i/$n "$T/im32.stream" > "$T/p$i.act"
			parts+=("$T/p$i.act")
		done
		tensor cat "${parts[@]}" | cmp - "$T/whole.act"
	done
	assert_shard_refusals precompute "$T/im32.stream" -m "$T/tiny.model"
}

@test "precompute: CNNPIPE_PROFILE=1 prints each node's milliseconds, the output unchanged" {
	skip_without_torch
	precompute -m "$T/r18.model" -b 2 "$T/im.stream" > "$T/plain.act"
	CNNPIPE_PROFILE=1 precompute -m "$T/r18.model" -b 2 "$T/im.stream" > "$T/prof.act" 2> "$T/prof.err"
	cmp "$T/plain.act" "$T/prof.act"
	# a fused chain's time is its convolution's; the pool is its own node
	grep -Eq '^profile: conv1 +conv +[0-9]+\.[0-9] +0\.0$' "$T/prof.err"
	grep -Eq '^profile: maxpool +maxpool +[0-9]+\.[0-9] +0\.0$' "$T/prof.err"
	grep -Eq '^profile: total +[0-9]+\.[0-9] +0\.0$' "$T/prof.err"
	run ! grep -q '^profile: bn1 ' "$T/prof.err"
	precompute -m "$T/r18.model" -b 2 "$T/im.stream" 2> "$T/quiet.err" > /dev/null
	[ ! -s "$T/quiet.err" ]
}
