#!/usr/bin/env bats
# pretrained: weights files -> cnnpipe model files.  References: torchvision
# (tests/torch_ref.py) and an independent PyTorch darknet (tests/ref_darknet.py).
load helpers

setup_file() {
	export T="$BATS_FILE_TMPDIR"
	if /usr/bin/python3 -c 'import torch, torchvision' 2>/dev/null; then
		/usr/bin/python3 "$BATS_TEST_DIRNAME/torch_ref.py" weights "$T/r34.pth" resnet34 0
		/usr/bin/python3 "$BATS_TEST_DIRNAME/torch_ref.py" images "$T/im224.stream" 3 224
	fi
}

meta() {  # meta FILE KEY
	/usr/bin/python3 -c 'import sys; sys.path.insert(0, sys.argv[1])
from cnnpipe_stream import read_stream
m, r, e = read_stream(sys.argv[2]); print(m.get(sys.argv[3], ""))' "$BATS_TEST_DIRNAME" "$1" "$2"
}

@test "pretrained: ResNet34 state_dict (zip .pth) with --imagenet gives torchvision's logits" {
	skip_without_torch
	run pretrained -a resnet34 -w "$T/r34.pth" --imagenet -o "$T/r34i.model"
	assert_success
	precompute -m "$T/r34i.model" --full -j 2 "$T/im224.stream" > "$T/pred.stream"
	run "$PYTHON" "$BATS_TEST_DIRNAME/torch_ref.py" logits "$T/r34.pth" resnet34 "$T/im224.stream" "$T/pred.stream" 1e-5
	echo "$output" >&3
	assert_success
	assert_equal "$(meta "$T/r34i.model" head)" imagenet
	assert_equal "$(meta "$T/r34i.model" num_classes)" 1000
}

@test "pretrained: ResNet18 and ResNet50 (bottleneck blocks) with --imagenet give torchvision's logits" {
	skip_without_torch
	for arch in resnet18 resnet50; do
		"$PYTHON" "$BATS_TEST_DIRNAME/torch_ref.py" weights "$T/$arch.pth" $arch 5
		run pretrained -a $arch -w "$T/$arch.pth" --imagenet -o "$T/$arch.model"
		assert_success
		precompute -m "$T/$arch.model" --full -j 2 "$T/im224.stream" > "$T/$arch.pred"
		run "$PYTHON" "$BATS_TEST_DIRNAME/torch_ref.py" logits "$T/$arch.pth" $arch "$T/im224.stream" "$T/$arch.pred" 1e-5
		echo "$output" >&3
		assert_success
		rm -f "$T/$arch.pth" "$T/$arch.model"
	done
}

@test "pretrained: legacy .pth and safetensors give the same model" {
	skip_without_torch
	"$PYTHON" "$BATS_TEST_DIRNAME/torch_ref.py" weights "$T/r18.pth" resnet18 3 zip
	"$PYTHON" "$BATS_TEST_DIRNAME/torch_ref.py" weights "$T/r18l.pth" resnet18 3 legacy
	"$PYTHON" "$BATS_TEST_DIRNAME/torch_ref.py" weights "$T/r18.safetensors" resnet18 3 safetensors
	pretrained -a resnet18 -w "$T/r18.pth" -c cats,dogs --seed 5 -o "$T/a.model"
	pretrained -a resnet18 -w "$T/r18l.pth" -c cats,dogs --seed 5 -o "$T/b.model"
	pretrained -a resnet18 -w "$T/r18.safetensors" -c cats,dogs --seed 5 -o "$T/c.model"
	# identical but for the provenance (file name and size)
	run "$PYTHON" -c 'import sys; sys.path.insert(0, sys.argv[1])
from cnnpipe_stream import read_stream
import numpy as np
rs = [read_stream(p)[1][0] for p in sys.argv[2:]]
assert all(r.keys() == rs[0].keys() for r in rs)
assert all(np.array_equal(r[k], rs[0][k]) for r in rs for k in r), "differ"
print(len(rs[0]), "tensors identical")' "$BATS_TEST_DIRNAME" "$T/a.model" "$T/b.model" "$T/c.model"
	assert_success
}

@test "pretrained: fast.ai head: classes, seeded init, frozen body" {
	skip_without_torch
	pretrained -a resnet34 -w "$T/r34.pth" -c cats,dogs --seed 7 -o "$T/h1.model"
	pretrained -a resnet34 -w "$T/r34.pth" --classes-from "$T/im224.stream" --seed 7 -o "$T/h2.model"
	pretrained -a resnet34 -w "$T/r34.pth" -c cats,dogs --seed 8 -o "$T/h3.model"
	cmp "$T/h1.model" "$T/h2.model"
	run cmp -s "$T/h1.model" "$T/h3.model"
	assert_failure
	assert_equal "$(meta "$T/h1.model" classes)" cats,dogs
	assert_equal "$(meta "$T/h1.model" head)" fastai
	assert_equal "$(meta "$T/h1.model" frozen)" 2
	assert_equal "$(meta "$T/h1.model" arch)" resnet34
	assert_equal "$(meta "$T/h1.model" mean)" 0.485000014,0.456,0.405999988
}

@test "pretrained: weights of another architecture name the first mismatch" {
	skip_without_torch
	run pretrained -a resnet18 -w "$T/r34.pth" -c 2 -o "$T/x.model"
	assert_failure 1
	assert_output --partial "unexpected tensor layer1.2.conv1.weight"
	run pretrained -a resnet50 -w "$T/r34.pth" -c 2 -o "$T/x.model"
	assert_failure 1
	assert_output --partial "layer1.0.conv1.weight has shape (64, 64, 3, 3), expected (64, 64, 1, 1)"
	[ ! -e "$T/x.model" ]
}

@test "pretrained: mis-shaped, extra and missing tensors are refused" {
	skip_without_torch
	for how in misshape extra missing; do
		"$PYTHON" "$BATS_TEST_DIRNAME/torch_ref.py" weights "$T/$how.pth" resnet34 0 $how
	done
	run pretrained -a resnet34 -w "$T/misshape.pth" -c 2 -o "$T/x.model"
	assert_failure 1
	assert_output --partial "layer2.0.conv1.weight has shape (128, 32, 3, 3), expected (128, 64, 3, 3)"
	run pretrained -a resnet34 -w "$T/extra.pth" -c 2 -o "$T/x.model"
	assert_failure 1
	assert_output --partial "unexpected tensor layer9.weight"
	run pretrained -a resnet34 -w "$T/missing.pth" --imagenet -o "$T/x.model"
	assert_failure 1
	assert_output --partial "missing tensor layer3.1.bn2.running_var"
	[ ! -e "$T/x.model" ]
}

@test "pretrained: usage errors and unreadable weights" {
	run pretrained -a vgg16 -w x.pth -c 2 -o m
	assert_failure 2
	assert_output --partial "unknown architecture"
	run pretrained -a resnet34 -w x.pth -o m
	assert_failure 2
	run pretrained -a darknet -w x.weights -c 2 -o m
	assert_failure 2
	assert_output --partial "needs --cfg"
	run pretrained -a resnet34 -w "$BATS_FILE_TMPDIR/nonexistent.pth" -c a,b -o "$BATS_FILE_TMPDIR/m"
	assert_failure 1
	assert_output --partial "nonexistent.pth"
	run pretrained -a resnet34 -w x.pth -c a,,b -o m
	assert_failure 1
	assert_output --partial "empty class name"
	head -c 1000 /dev/urandom > "$BATS_FILE_TMPDIR/junk.pth"
	run pretrained -a resnet34 -w "$BATS_FILE_TMPDIR/junk.pth" -c 2 -o "$BATS_FILE_TMPDIR/m"
	assert_failure 1
	assert_output --partial "junk.pth"
}

@test "pretrained: Tiny Darknet --imagenet equals an independent PyTorch build on dev photos" {
	skip_without_shared
	skip_without_torch
	local photos
	photos="$(ls -d "$DEVDATA"/valid/cats/* | head -5) $(ls -d "$DEVDATA"/valid/dogs/* | head -5)"
	"$PYTHON" "$BATS_TEST_DIRNAME/ref_darknet.py" images "$T/photos.stream" $photos
	pretrained -a darknet -w "$TINYDARKNET/tiny.weights" --cfg "$TINYDARKNET/tiny.cfg" \
		--imagenet --labels "$TINYDARKNET/imagenet.shortnames.list" -o "$T/tiny.model"
	precompute -m "$T/tiny.model" --full "$T/photos.stream" > "$T/tpred.stream"
	run "$PYTHON" "$BATS_TEST_DIRNAME/ref_darknet.py" check "$TINYDARKNET/tiny.cfg" \
		"$TINYDARKNET/tiny.weights" "$T/photos.stream" "$T/tpred.stream" \
		"$TINYDARKNET/imagenet.shortnames.list"
	echo "$output" >&3
	assert_success
	assert_output --partial "top-5 identical"
	assert_equal "$(meta "$T/tpred.stream" kind)" predictions
}

@test "pretrained: a darknet resnet-style cfg (shortcuts, a downsampling one) equals the PyTorch build" {
	skip_without_torch
	# The block structure of darknet's resnet cfgs: 7x7/2 stem, maxpool,
	# residual blocks whose shortcut adds a block's input (from=-3), one of
	# them onto a stride-2 output with twice the channels.
	cat > "$T/res.cfg" <<-'CFG'
	[net]
	width=32
	height=32
	channels=3
	[convolutional]
	batch_normalize=1
	filters=16
	size=7
	stride=2
	pad=1
	activation=leaky
	[maxpool]
	size=2
	stride=2
	[convolutional]
	batch_normalize=1
	filters=16
	size=3
	stride=1
	pad=1
	activation=leaky
	[convolutional]
	batch_normalize=1
	filters=16
	size=3
	stride=1
	pad=1
	activation=linear
	[shortcut]
	from=-3
	activation=leaky
	[convolutional]
	batch_normalize=1
	filters=32
	size=3
	stride=2
	pad=1
	activation=leaky
	[convolutional]
	batch_normalize=1
	filters=32
	size=3
	stride=1
	pad=1
	activation=linear
	[shortcut]
	from=-3
	activation=leaky
	[convolutional]
	filters=10
	size=1
	stride=1
	pad=1
	activation=linear
	[avgpool]
	[softmax]
	groups=1
	CFG
	"$PYTHON" "$BATS_TEST_DIRNAME/ref_darknet.py" randweights "$T/res.cfg" "$T/res.weights" 7
	seq 0 9 | sed 's/^/class/' > "$T/res.labels"
	"$PYTHON" "$BATS_TEST_DIRNAME/torch_ref.py" images "$T/im32.stream" 4 32
	pretrained -a darknet -w "$T/res.weights" --cfg "$T/res.cfg" --imagenet --labels "$T/res.labels" -o "$T/res.model"
	precompute -m "$T/res.model" --full "$T/im32.stream" > "$T/res.pred"
	run "$PYTHON" "$BATS_TEST_DIRNAME/ref_darknet.py" check "$T/res.cfg" "$T/res.weights" \
		"$T/im32.stream" "$T/res.pred" "$T/res.labels"
	echo "$output" | tail -1 >&3
	assert_success
	assert_output --partial "top-5 identical"
	# and its body takes a fast.ai head
	pretrained -a darknet -w "$T/res.weights" --cfg "$T/res.cfg" --classes-from "$T/im32.stream" -o "$T/resf.model"
	precompute -m "$T/resf.model" "$T/im32.stream" > "$T/res.act"
	assert_equal "$(meta "$T/res.act" features)" 64
}

@test "pretrained: Tiny Darknet with a fast.ai head; refuses a cfg that does not fit" {
	skip_without_shared
	pretrained -a darknet -w "$TINYDARKNET/tiny.weights" --cfg "$TINYDARKNET/tiny.cfg" -c cats,dogs -o "$T/tinyf.model"
	assert_equal "$(meta "$T/tinyf.model" mean)" 0,0,0
	assert_equal "$(meta "$T/tinyf.model" std)" 1,1,1
	sed 's/filters=32/filters=48/' "$TINYDARKNET/tiny.cfg" > "$T/bad.cfg"
	run pretrained -a darknet -w "$TINYDARKNET/tiny.weights" --cfg "$T/bad.cfg" -c 2 -o "$T/x.model"
	assert_failure 1
	[ ! -e "$T/x.model" ]
}

# poke FILE OFFSET FORMAT VALUE: overwrites bytes of FILE with struct.pack(FORMAT, VALUE)
poke() {
	"$PYTHON" -c 'import struct, sys
f = open(sys.argv[1], "r+b"); f.seek(int(sys.argv[2]))
v = sys.argv[4]; f.write(struct.pack(sys.argv[3], float(v) if "f" in sys.argv[3] else int(v)))' "$@"
}

tiny() {  # the crafted tiny darknet: 32x32, .weights version 0.2 (20-byte header)
	"$PYTHON" "$BATS_TEST_DIRNAME/make_tiny_darknet.py" "$T/tiny.cfg" "$T/tiny.weights"
}

@test "pretrained: a cfg a model file could not keep is refused: width 65536, a NUL byte, not UTF-8" {
	tiny
	sed 's/^width=32$/width=65536/' "$T/tiny.cfg" > "$T/w.cfg"
	run pretrained -a darknet -w "$T/tiny.weights" --cfg "$T/w.cfg" -c 2 -o "$T/x.model"
	assert_failure 1
	assert_output "pretrained: $T/w.cfg: section 1 [net] (line 1): width=65536: expected an integer in [1, 4096]"
	# a NUL in a comment: the model would keep the cfg cut there
	{ sed -n 1,9p "$T/tiny.cfg"; printf '# x\0y\n'; sed 1,9d "$T/tiny.cfg"; } > "$T/nul.cfg"
	run pretrained -a darknet -w "$T/tiny.weights" --cfg "$T/nul.cfg" -c 2 -o "$T/x.model"
	assert_failure 1
	assert_output "pretrained: $T/nul.cfg: line 10: a NUL byte (a cfg is text)"
	{ printf '# caf\351\n'; cat "$T/tiny.cfg"; } > "$T/latin1.cfg"
	run pretrained -a darknet -w "$T/tiny.weights" --cfg "$T/latin1.cfg" -c 2 -o "$T/x.model"
	assert_failure 1
	assert_output "pretrained: $T/latin1.cfg: line 1: not UTF-8 text"
	[ ! -e "$T/x.model" ]
}

@test "pretrained: what it writes at the caps precompute reads; past them it refuses first" {
	tiny
	# the largest input, its first layer's output just at the cap (2^28 values)
	"$PYTHON" "$BATS_TEST_DIRNAME/make_tiny_darknet.py" "$T/16.cfg" "$T/4k.weights" 1 16
	sed 's/^width=32$/width=4096/; s/^height=32$/height=4096/' "$T/16.cfg" > "$T/4k.cfg"
	pretrained -a darknet -w "$T/4k.weights" --cfg "$T/4k.cfg" -c cats,dogs -o "$T/4k.model"
	"$PYTHON" -c 'import sys; sys.path.insert(0, sys.argv[1])
from cnnpipe_stream import write_stream
write_stream(sys.argv[2], {"kind": "images", "classes": "cats,dogs", "size": "4096",
             "channels": "3", "labelled": "1"}, [])' "$BATS_TEST_DIRNAME" "$T/empty4k.stream"
	run precompute -b 1 -m "$T/4k.model" "$T/empty4k.stream"
	assert_success
	# one filter more is past the cap
	sed '0,/^filters=16$/s//filters=17/' "$T/4k.cfg" > "$T/4k17.cfg"
	run pretrained -a darknet -w "$T/4k.weights" --cfg "$T/4k17.cfg" -c cats,dogs -o "$T/x.model"
	assert_failure 1
	assert_output "pretrained: $T/4k17.cfg: section 2 [convolutional] (layer 0, line 6): output 17x4096x4096: more than 268435456 values per image"
	[ ! -e "$T/x.model" ]
}

@test "pretrained: a cfg implying a 3 GiB layer is refused before it is allocated" {
	tiny
	awk '/^filters=16$/ { print "filters=65536"; next }
	     /^size=3$/ && ++n == 2 { print "size=39"; next } { print }' "$T/tiny.cfg" > "$T/big.cfg"
	run sh -c 'ulimit -v 400000; exec pretrained -a darknet -w "$1" --cfg "$2" -c 2 -o "$3"' \
		sh "$T/tiny.weights" "$T/big.cfg" "$T/x.model"
	assert_failure 1
	assert_output "pretrained: $T/tiny.weights: layer 2 (convolutional): needs 3190816768 bytes at offset 1012, only 5544 left (truncated, or not the weights of this cfg)"
	[ ! -e "$T/x.model" ]
}

@test "pretrained: NaN weights or a negative running variance in the .weights are refused naming the tensor" {
	tiny
	# layer 0: 8 biases, 8 scales, 8 means, 8 variances after the 20-byte header
	cp "$T/tiny.weights" "$T/var.weights"
	poke "$T/var.weights" $((20 + 4 * 26)) '<f' -0.25
	run pretrained -a darknet -w "$T/var.weights" --cfg "$T/tiny.cfg" -c 2 -o "$T/x.model"
	assert_failure 1
	assert_output "pretrained: $T/var.weights: tensor layers.0.bn.running_var[2] is -0.25: a variance is >= 0"
	cp "$T/tiny.weights" "$T/nan.weights"
	poke "$T/nan.weights" $((20 + 4 * 32 + 4 * 7)) '<f' nan
	run pretrained -a darknet -w "$T/nan.weights" --cfg "$T/tiny.cfg" --imagenet -o "$T/x.model"
	assert_failure 1
	assert_output "pretrained: $T/nan.weights: tensor layers.0.conv.weight[7] is nan: parameters are finite"
	[ ! -e "$T/x.model" ]
}

@test "pretrained: a .weights with a bad version is refused naming the version, not a layer" {
	tiny
	cp "$T/tiny.weights" "$T/v.weights"
	poke "$T/v.weights" 4 '<i' 1      # 0.1: a 16-byte header, the file has 20
	run pretrained -a darknet -w "$T/v.weights" --cfg "$T/tiny.cfg" -c 2 -o "$T/x.model"
	assert_failure 1
	assert_output "pretrained: $T/v.weights: header: version 0.1.0 means a 16-byte header (a 32-bit \"seen\"), but the layers of the cfg fit the file exactly after a 20-byte one: a bad version number (or 4 bytes too many)"
	poke "$T/v.weights" 0 '<i' 1000
	run pretrained -a darknet -w "$T/v.weights" --cfg "$T/tiny.cfg" -c 2 -o "$T/x.model"
	assert_failure 1
	assert_output --partial "v.weights: header: version 1000.1.0 is not a darknet weights version"
	[ ! -e "$T/x.model" ]
}

@test "pretrained: Tiny Darknet's .weights with a bad major version blames the version" {
	skip_without_shared
	cp "$TINYDARKNET/tiny.weights" "$T/tv.weights"
	chmod u+w "$T/tv.weights"
	poke "$T/tv.weights" 0 '<i' 2
	run pretrained -a darknet -w "$T/tv.weights" --cfg "$TINYDARKNET/tiny.cfg" -c 2 -o "$T/x.model"
	assert_failure 1
	assert_output --partial "tv.weights: header: version 2.1.0 means a 20-byte header"
	refute_output --partial "layer 19"
}
