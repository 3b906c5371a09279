#!/usr/bin/env bats
# tta: plain predictions (fast.ai's learn.predict) on images or activations,
# and test-time augmentation (learn.TTA) on scaled photos.
load helpers
bats_require_minimum_version 1.5.0

C=a,b,c,d,e,f,g,h   # eight classes: some tints alike, so accuracy is not 1

setup_file() {
	export T="$BATS_FILE_TMPDIR"
	"$PYTHON" "$BATS_TEST_DIRNAME/make_tiny_darknet.py" "$T/tiny.cfg" "$T/tiny.weights" 3
	"$BIN/pretrained" -a darknet -w "$T/tiny.weights" --cfg "$T/tiny.cfg" -c "$C" \
		--seed 4 -o "$T/tiny.model"
	"$PYTHON" "$BATS_TEST_DIRNAME/make_images.py" "$T/train.images" 400 32 "$C" --epochs 1
	"$PYTHON" "$BATS_TEST_DIRNAME/make_images.py" "$T/valid.images" 96 32 "$C" --seed 2
	# one epoch through the frozen body; its validation line is what tta
	# must reproduce
	"$BIN/train" -m "$T/tiny.model" -o "$T/m.model" --valid "$T/valid.images" -b 8 \
		--lr 1e-3 -j 2 "$T/train.images" > "$T/train.out"
	"$BIN/precompute" -m "$T/m.model" -j 2 "$T/valid.images" > "$T/valid.act"
	# photos: two per class, of varied shapes (two of them square)
	local i=0 k
	for k in ${C//,/ }; do
		mkdir -p "$T/photos/$k" "$T/test"
		for g in 40x30 33x52; do
			i=$((i + 1))
			convert -size "$g" plasma:red-blue -seed "$i" "$T/photos/$k/p$i.jpg"
		done
	done
	convert -size 32x32 plasma:red-blue -seed 90 "$T/photos/a/sq1.png"
	convert -size 64x64 plasma:red-blue -seed 91 "$T/photos/b/sq2.png"
	cp "$T/photos/a/p1.jpg" "$T/photos/c/p5.jpg" "$T/test/"
	"$BIN/imgprep" --scale 32 -j 2 "$T/photos" > "$T/photos.scaled" 2> /dev/null
	"$BIN/imgprep" -s 32 -j 2 "$T/photos" > "$T/photos.images" 2> /dev/null
}

# py CODE ARGS...: Python with the stream reader; arguments in sys.argv[1:].
py() {
	PYTHONPATH="$BATS_TEST_DIRNAME" "$PYTHON" -c "from cnnpipe_stream import read_stream
import numpy as np, sys
def recs(p): return read_stream(p)[1]
def logp(p): return np.array([r['logp'] for r in recs(p)], np.float64)
$1" "${@:2}"
}

@test "tta -n 0 on images: the accuracy and loss train --valid printed, the same bytes for any -b and -j" {
	tta -m "$T/m.model" -n 0 -b 8 -j 2 "$T/valid.images" > "$T/p0.pred"
	want=$(tail -1 "$T/train.out" | awk '{ print $3, $4 }')
	got=$(py '
rs = recs(sys.argv[1]); y = [int(r["label"]) for r in rs]; lp = logp(sys.argv[1])
nll = 0.0
for i, k in enumerate(y): nll -= float(np.float32(lp[i, k]))
def f6(v):   # fit.c: %.6f, trailing zeros cut
    s = ("%.6f" % v).rstrip("0")
    return s + "0" if s.endswith(".") else s
print(f6(nll / len(y)), f6(float(np.mean(lp.argmax(1) == np.array(y)))))' "$T/p0.pred")
	echo "train: $want, tta: $got"
	[ "$got" = "$want" ]
	awk -v a="${want#* }" 'BEGIN { exit !(a > 0.2 && a < 0.9) }'   # a real test
	tta -m "$T/m.model" -n 0 -b 64 -j 1 "$T/valid.images" | cmp - "$T/p0.pred"
	# the stream: predictions as precompute --full writes them
	[ "$(tensor meta -k kind "$T/p0.pred")" = predictions ]
	[ "$(tensor meta -k classes "$T/p0.pred")" = "$C" ]
	[ "$(tensor meta -k num_classes "$T/p0.pred")" = 8 ]
	[ "$(tensor meta -k labelled "$T/p0.pred")" = 1 ]
	[ "$(tensor meta -k tta "$T/p0.pred")" = 0 ]
	[ "$(tensor meta -k arch "$T/p0.pred")" = darknet ]
	[ "$(tensor meta -k model "$T/p0.pred")" = "$T/m.model" ]
	[ "$(tensor meta -k source "$T/p0.pred")" = make_images.py ]
	run tensor info "$T/p0.pred"
	assert_output --partial "records: 96"
	assert_output --partial "logp f32 (8)"
	assert_output --partial "label i32 ()"
	precompute --full -m "$T/m.model" "$T/valid.images" > "$T/full.pred"
	py 'a, b = logp(sys.argv[1]), logp(sys.argv[2])
assert np.array_equal(a, b), abs(a - b).max()
assert [r["name"] for r in recs(sys.argv[1])] == [r["name"] for r in recs(sys.argv[2])]' \
		"$T/p0.pred" "$T/full.pred"
}

@test "tta -n 0 on activations = on the images they came from" {
	tta -m "$T/m.model" -n 0 -j 2 "$T/valid.act" > "$T/a.pred"
	tta -m "$T/m.model" -n 0 -j 2 "$T/valid.images" > "$T/i.pred"
	py 'a, b = logp(sys.argv[1]), logp(sys.argv[2])
d = abs(a - b).max(); print("activations vs images: max diff %g" % d, file=sys.stderr); assert d <= 1e-5
ra, rb = recs(sys.argv[1]), recs(sys.argv[2])
assert [(r["name"], int(r["label"])) for r in ra] == [(r["name"], int(r["label"])) for r in rb]' \
		"$T/a.pred" "$T/i.pred"
	cat "$T/valid.act" | tta -m "$T/m.model" -n 0 -j 2 | cmp - "$T/a.pred"
}

@test "tta -n 4: the same seed the same bytes whatever -j, -b and a pipe; another seed differs" {
	tta -m "$T/m.model" --seed 3 -j 1 -b 5 "$T/photos.scaled" > "$T/s3a.pred"
	tta -m "$T/m.model" --seed 3 -j 2 -b 64 "$T/photos.scaled" > "$T/s3b.pred"
	cmp "$T/s3a.pred" "$T/s3b.pred"
	cat "$T/photos.scaled" | tta -m "$T/m.model" --seed 3 -j 2 | cmp - "$T/s3a.pred"
	tta -m "$T/m.model" --seed 4 -j 2 "$T/photos.scaled" > "$T/s4.pred"
	! cmp -s "$T/s3a.pred" "$T/s4.pred"
	[ "$(tensor meta -k tta "$T/s3a.pred")" = 4 ]
	[ "$(tensor meta -k seed "$T/s3a.pred")" = 3 ]
	[ "$(tensor meta -k augment "$T/s3a.pred")" = "zoom=1.1 rotate=10 lighting=0.05,0.05 flip=side-on" ]
	[ "$(tensor meta -k source "$T/s3a.pred")" = "$T/photos" ]
	run tensor info "$T/s3a.pred"
	assert_output --partial "records: 18"
	refute_output --partial passes
}

@test "tta --shard i/n: the shards joined with tensor cat are the whole, byte for byte" {
	tta -m "$T/m.model" --seed 3 -j 2 "$T/photos.scaled" > "$T/whole.pred"
	for n in 2 5 18 25; do
		parts=()
		for i in $(seq 1 $n); do
			tta -m "$T/m.model" --seed 3 -j 2 --shard $i/$n "$T/photos.scaled" > "$T/part.$i.pred"
			parts+=("$T/part.$i.pred")
		done
		tensor cat "${parts[@]}" | cmp - "$T/whole.pred"
	done
	# the shards of 25 records of 18 hold 0 or 1, none more
	run tensor info "$T/part.1.pred"
	assert_output --partial "records: 0"
	run tensor info "$T/part.2.pred"
	assert_output --partial "records: 1"
	# plain prediction too, and the end-chunk counter: in the last shard only
	tta -m "$T/m.model" -n 0 -j 2 "$T/photos.images" > "$T/whole0.pred"
	tta -m "$T/m.model" -n 0 -j 2 --shard 1/2 "$T/photos.images" > "$T/a0.pred"
	tta -m "$T/m.model" -n 0 -j 2 --shard 2/2 "$T/photos.images" > "$T/b0.pred"
	tensor cat "$T/a0.pred" "$T/b0.pred" | cmp - "$T/whole0.pred"
	# a pipe cannot be counted first: refused, nothing written
	assert_shard_refusals tta "$T/photos.scaled" -m "$T/m.model"
}

@test "tta --all: logp is the log of the mean probability; pass 0 is -n 0 on imgprep -s of the photos" {
	tta -m "$T/m.model" -n 4 --all --seed 1 -j 2 "$T/photos.scaled" > "$T/all.pred"
	run tensor info "$T/all.pred"
	assert_output --partial "passes f32 (5,8)"
	tta -m "$T/m.model" -n 4 --seed 1 -j 2 "$T/photos.scaled" > "$T/n4.pred"
	# the geometry is the same: --scale 32 and -s 32 of the same photos,
	# the validation transform of a photo whose shorter side is 32 its
	# centre crop
	tta -m "$T/m.model" -n 0 -j 2 "$T/photos.images" > "$T/plain.pred"
	py 'rs = recs(sys.argv[1])
P = np.array([r["passes"] for r in rs], np.float64); lp = logp(sys.argv[1])
want = np.log(np.exp(P).mean(1))
d = abs(lp - want) / np.maximum(1, abs(want))   # f32 resolution
print("logp vs log(mean(exp(passes))): %g" % d.max(), file=sys.stderr); assert d.max() <= 1e-6
assert np.array_equal(lp, logp(sys.argv[2])), "--all changed logp"
d0 = abs(P[:, 0] - logp(sys.argv[3])).max(); print("pass 0 vs -n 0: %g" % d0, file=sys.stderr); assert d0 <= 1e-5
for p in range(1, 5): assert abs(P[:, p] - P[:, 0]).max() > 1e-3, "pass %d = pass 0" % p' \
		"$T/all.pred" "$T/n4.pred" "$T/plain.pred"
	# -n 8: fast.ai counts its plain pass ceil(8/4) = 2 times
	tta -m "$T/m.model" -n 8 --all -j 2 "$T/photos.scaled" > "$T/all8.pred"
	py 'rs = recs(sys.argv[1])
P = np.exp(np.array([r["passes"] for r in rs], np.float64)); lp = logp(sys.argv[1])
want = np.log((2 * P[:, 0] + P[:, 1:].sum(1)) / 10)
assert (abs(lp - want) / np.maximum(1, abs(want))).max() <= 1e-6' "$T/all8.pred"
	# -n 0 --all: one pass, logp itself
	tta -m "$T/m.model" -n 0 --all "$T/photos.images" > "$T/all0.pred"
	py 'rs = recs(sys.argv[1])
assert all(r["passes"].shape == (1, 8) and np.array_equal(r["passes"][0], r["logp"]) for r in rs)' \
		"$T/all0.pred"
}

@test "tta: the augmentation options reach the views" {
	# no zoom, rotation, lighting or flip: a square source of the model's
	# size has one crop, so every pass is pass 0; another photo still moves
	tta -m "$T/m.model" --all --zoom 1 --rotate 0 --lighting 0,0 --no-flip \
		"$T/photos.scaled" > "$T/still.pred"
	[ "$(tensor meta -k augment "$T/still.pred")" = "zoom=1 rotate=0 lighting=0,0 flip=none" ]
	py 'rs = recs(sys.argv[1]); P = {r["name"]: r["passes"] for r in rs}
sq = P["a/sq1.png"]; assert all(np.array_equal(sq[p], sq[0]) for p in range(5))
assert any(not np.array_equal(P["a/p1.jpg"][p], P["a/p1.jpg"][0]) for p in range(1, 5))' \
		"$T/still.pred"
	tta -m "$T/m.model" --top-down "$T/photos.scaled" > "$T/td.pred"
	tta -m "$T/m.model" "$T/photos.scaled" > "$T/so.pred"
	! cmp -s "$T/td.pred" "$T/so.pred"
	[ "$(tensor meta -k augment "$T/td.pred")" = "zoom=1.1 rotate=10 lighting=0.05,0.05 flip=top-down" ]
}

@test "tta: unlabelled input is predicted, and the output has no label" {
	imgprep --scale 32 "$T/test" > "$T/test.scaled" 2> /dev/null
	imgprep -s 32 "$T/test" > "$T/test.images" 2> /dev/null
	for args in "-n 4 $T/test.scaled" "-n 0 $T/test.images"; do
		tta -m "$T/m.model" $args > "$T/u.pred"
		[ "$(tensor meta -k labelled "$T/u.pred")" = 0 ]
		run tensor info "$T/u.pred"
		assert_output --partial "records: 2"
		refute_output --partial "label i32"
		assert_output --partial "name str"
	done
}

@test "tta: input that does not fit the model is refused, both sides named, nothing written" {
	"$PYTHON" "$BATS_TEST_DIRNAME/make_images.py" "$T/64.images" 8 64 "$C"
	run --separate-stderr tta -m "$T/m.model" -n 0 "$T/64.images"
	assert_failure 1
	[ -z "$output" ]
	[[ "$stderr" == "tta: $T/64.images: images of size 64, the model $T/m.model needs 32" ]]
	"$PYTHON" "$BATS_TEST_DIRNAME/make_images.py" "$T/o.images" 8 32 h,g,f,e,d,c,b,a
	run --separate-stderr tta -m "$T/m.model" -n 0 "$T/o.images"
	assert_failure 1
	[ -z "$output" ]
	[[ "$stderr" == *"o.images: classes h,g,f,e,d,c,b,a, but the model $T/m.model was made for $C" ]]
	imgprep --scale 32 --classes h,g,f,e,d,c,b,a "$T/photos" > "$T/o.scaled" 2> /dev/null
	run -1 tta -m "$T/m.model" "$T/o.scaled"
	assert_output --partial "o.scaled: classes h,g,f,e,d,c,b,a, but the model $T/m.model was made for $C"
	"$PYTHON" "$BATS_TEST_DIRNAME/make_activations.py" "$T/w.act" 8 48 "$C"
	run -1 tta -m "$T/m.model" -n 0 "$T/w.act"
	assert_output --partial "w.act: activations of 48 features, the model $T/m.model's head takes 32"
	"$PYTHON" "$BATS_TEST_DIRNAME/make_activations.py" "$T/o.act" 8 32 h,g,f,e,d,c,b,a
	run -1 tta -m "$T/m.model" -n 0 "$T/o.act"
	assert_output --partial "o.act: classes h,g,f,e,d,c,b,a, but the model"
	# the wrong kind of images for the mode
	run --separate-stderr tta -m "$T/m.model" -n 4 "$T/photos.images"
	assert_failure 1
	[ -z "$output" ]
	[[ "$stderr" == *"photos.images: images of size 32, not scaled photos: test-time augmentation views whole photos (imgprep --scale)" ]]
	run -1 tta -m "$T/m.model" -n 0 "$T/photos.scaled"
	assert_output --partial "photos.scaled: scaled photos of varying size (imgprep --scale): -n 0 predicts on images of the model's size 32 (imgprep -s 32)"
	run -1 tta -m "$T/m.model" -n 4 "$T/valid.act"
	assert_output --partial "valid.act: activations: test-time augmentation views photos"
	run -1 tta -m "$T/m.model" -n 0 "$T/m.model"
	assert_output --partial "kind=model"
	# a label the model has no class for (a stream without classes)
	PYTHONPATH="$BATS_TEST_DIRNAME" "$PYTHON" -c 'import sys, numpy as np
from cnnpipe_stream import write_stream
write_stream(sys.argv[1], {"kind": "images", "size": "32", "channels": "3", "layout": "HWC",
    "labelled": "1"}, [{"image": np.zeros((32, 32, 3), np.uint8), "label": np.array(9, np.int32)}])' \
		"$T/k.images"
	run --separate-stderr tta -m "$T/m.model" -n 0 "$T/k.images"
	assert_failure 1
	[ -z "$output" ]
	[[ "$stderr" == "tta: $T/k.images: record 0: label 9, but the model $T/m.model has 8 classes (labels 0 to 7: $C)" ]]
}

@test "tta: usage errors exit 2 with the usage line" {
	run -2 tta "$T/valid.images"
	assert_output --partial "tta: -m MODEL is required"
	assert_output --partial "usage: tta -m MODEL [-n 4] [--seed N]"
	run -2 tta -m "$T/m.model" --no-flip --top-down "$T/photos.scaled"
	run -2 tta -m "$T/m.model" -n -1 "$T/photos.scaled"
	run -2 tta -m "$T/m.model" --lighting 0.1 "$T/photos.scaled"
	run -2 tta -m "$T/m.model" "$T/photos.scaled" "$T/photos.scaled"
	run -0 tta --help
	assert_output "usage: tta -m MODEL [-n 4] [--seed N] [--zoom 1.1] [--rotate 10] [--lighting 0.05,0.05] [--no-flip] [--top-down] [--all] [-b 64] [--shard i/n] [-j threads] [STREAM] > PREDICTIONS"
}

@test "tta: the dev set: Tiny Darknet's head, TTA not more than a point below plain prediction" {
	skip_without_shared
	imgprep -s 224 "$DEVDATA/train" > "$T/dev.train.images" 2> /dev/null
	imgprep --scale 224 --classes-from "$T/dev.train.images" "$DEVDATA/valid" \
		> "$T/dev.valid.scaled" 2> /dev/null
	pretrained -a darknet -w "$TINYDARKNET/tiny.weights" --cfg "$TINYDARKNET/tiny.cfg" \
		--classes-from "$T/dev.train.images" -o "$T/td.model"
	precompute -m "$T/td.model" "$T/dev.train.images" > "$T/dev.train.act"
	rm "$T/dev.train.images"
	train -m "$T/td.model" -o "$T/td.head.model" --lr 1e-2 "$T/dev.train.act" > /dev/null
	tta -m "$T/td.head.model" -n 4 --all "$T/dev.valid.scaled" > "$T/dev.pred"
	# pass 0 is plain prediction: --scale 224 = imgprep -s 224's geometry
	run py 'rs = recs(sys.argv[1]); y = np.array([int(r["label"]) for r in rs])
P = np.array([r["passes"] for r in rs]); lp = logp(sys.argv[1])
plain, tta = np.mean(P[:, 0].argmax(1) == y), np.mean(lp.argmax(1) == y)
print("%d images: plain %.3f, TTA %.3f" % (len(y), plain, tta))
sys.exit(not (len(y) == 500 and plain >= 0.9 and tta >= plain - 0.01))' "$T/dev.pred"
	echo "# $output" >&3
	assert_success
}
