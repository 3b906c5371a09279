#!/usr/bin/env bats
# augment: each transform against the NumPy/PIL reference (tests/augment_ref.py)
# with the parameters augment drew (--params), the draws' statistics, epochs
# and determinism, memory from a file and a pipe, bad input.
bats_require_minimum_version 1.5.0
load helpers

setup() {
	T="$BATS_TEST_TMPDIR"
	SHAPES="$BATS_FILE_TMPDIR/shapes"    # shorter side 24: exact crops
	BIGGER="$BATS_FILE_TMPDIR/bigger"    # to scale, up and down
	BOTH="$BATS_FILE_TMPDIR/both"
}

# py CODE ARGS...: Debian's Python with the stream reader importable.
py() {
	PYTHONPATH="$REPO/tests" "$PYTHON" -c "$@"
}

ref() {
	PYTHONPATH="$REPO/tests" "$PYTHON" "$REPO/tests/augment_ref.py" "$@"
}

# mksrc OUT HxW...: an images stream of sources of these shapes (labels
# alternate, names c<label>/<i>.jpg), each half smooth and half noise.
mksrc() {
	local out=$1
	shift
	py 'import sys
import numpy as np
from cnnpipe_stream import write_stream
rng = np.random.default_rng(len(sys.argv))
recs = []
for i, s in enumerate(sys.argv[2:]):
    h, w = map(int, s.split("x"))
    yy, xx = np.mgrid[0:h, 0:w]
    smooth = np.stack([128 + 100 * np.sin(xx / 5.3 + yy / 7.1), 128 + 90 * np.cos(yy / 4.2),
                       128 + 60 * np.sin((xx + yy) / 3.7)], -1)
    img = 0.6 * smooth + 0.4 * rng.integers(0, 256, (h, w, 3))
    recs.append({"image": img.clip(0, 255).astype(np.uint8), "label": np.array(i % 2, np.int32),
                 "name": "c%d/%d.jpg" % (i % 2, i)})
write_stream(sys.argv[1], {"kind": "images", "classes": "cats,dogs", "labelled": "1",
             "channels": "3", "layout": "HWC", "source": "dir"}, recs)' "$out" "$@"
}

setup_file() {
	local s="24x31 37x24 24x24 24x25 30x24 24x40" b="40x52 61x45 48x48 33x40 45x33 50x70"
	mksrc "$BATS_FILE_TMPDIR/shapes" $s
	mksrc "$BATS_FILE_TMPDIR/bigger" $b
	mksrc "$BATS_FILE_TMPDIR/both" $s $b
}

@test "augment: usage errors exit 2 with the usage line" {
	cp "$SHAPES" "$T/s"
	local usage="usage: augment [-s size] [--zoom 1.1] [--rotate 10] [--lighting 0.05,0.05] [--no-flip] [--top-down] [--epochs N] [--seed N] [-j threads] [--shard i/n] [--params] [IMAGES]"
	for bad in "-s 0" "-s 9000" "--zoom 0.9" "--zoom x" "--rotate -1" "--rotate 181" \
	           "--lighting 0.1" "--lighting x,0.1" "--lighting 0.1,2" "--lighting -0.1,0" \
	           "--epochs 0" "--seed -1" "-j 0" "--no-flip --top-down" "--bogus" \
	           "--shard 0/2" "--shard 3/2" "--shard 1/0" "--shard x"; do
		run -2 augment $bad "$T/s"
		assert_output --partial "$usage"
		assert_line --index 0 --regexp "^augment: "
	done
	run -2 augment "$T/s" "$T/s"
	assert_output --partial "one IMAGES stream"
}

@test "augment: metadata, epoch tensors, each epoch a permutation of the sources" {
	cp "$BOTH" "$T/s"
	augment -s 24 --epochs 3 --seed 5 "$T/s" > "$T/o"
	run py 'import sys
from cnnpipe_stream import read_stream
m, recs, tr = read_stream(sys.argv[1])
_, src, _ = read_stream(sys.argv[2])
print(" ".join("%s=%s" % kv for kv in m.items()))
n = int(m["epoch_size"])
names = sorted(r["name"] for r in src)
label = {r["name"]: int(r["label"]) for r in src}
orders = []
for e in range(int(m["epochs"])):
    ep = recs[e * n:(e + 1) * n]
    assert all(int(r["epoch"]) == e and r["epoch"].shape == () for r in ep)
    assert sorted(r["name"] for r in ep) == names
    assert all(int(r["label"]) == label[r["name"]] for r in ep)
    assert all(r["image"].shape == (24, 24, 3) for r in ep)
    orders.append([r["name"] for r in ep])
print(len(recs), len(set(map(tuple, orders))), orders[0] != names)' "$T/o" "$T/s"
	assert_success
	assert_output "kind=images classes=cats,dogs labelled=1 size=24 channels=3 layout=HWC source=dir epochs=3 epoch_size=12
36 3 True"
}

@test "augment: the same seed gives the same bytes for -j 1 and -j 2, file and pipe" {
	cp "$BOTH" "$T/s"
	augment -s 24 --epochs 4 --seed 7 -j 1 "$T/s" > "$T/j1"
	augment -s 24 --epochs 4 --seed 7 -j 2 "$T/s" > "$T/j2"
	cmp "$T/j1" "$T/j2"
	augment -s 24 --epochs 4 --seed 7 -j 2 < "$T/s" > "$T/p2"
	cmp "$T/j1" "$T/p2"
	cat "$T/s" | augment -s 24 --epochs 4 --seed 7 -j 1 - > "$T/p1"
	cmp "$T/j1" "$T/p1"
	augment -s 24 --epochs 4 --seed 8 -j 2 "$T/s" > "$T/other"
	run ! cmp -s "$T/j1" "$T/other"
	# --params adds a tensor, and changes no image
	augment -s 24 --epochs 4 --seed 7 --params "$T/s" > "$T/params"
	run py 'import sys
from cnnpipe_stream import read_stream
a, b = read_stream(sys.argv[1])[1], read_stream(sys.argv[2])[1]
print(all((x["image"] == y["image"]).all() and x["name"] == y["name"] for x, y in zip(a, b)),
      len(a) == len(b), "params" in b[0], "params" in a[0])' "$T/j1" "$T/params"
	assert_output "True True True False"
}

# run_ref SIZE AUGMENT-OPTIONS -- REF-OPTIONS: augment --params the sources
# in $T/s for 10 epochs, then the reference on every record.
run_ref() {
	local sz=$1
	shift
	local aopts=()
	while [ "$1" != "--" ]; do aopts+=("$1"); shift; done
	shift
	augment -s "$sz" --epochs 10 --params "${aopts[@]}" "$T/s" > "$T/o"
	run ref check "$T/s" "$T/o" "$sz" "$@"
}

@test "augment --shard i/n: the shards joined with tensor cat are the whole, byte for byte" {
	cp "$BOTH" "$T/s"
	augment -s 24 --epochs 3 --seed 7 --params -j 2 "$T/s" > "$T/whole"
	local n i parts
	for n in 2 3 7; do
		parts=()
		for ((i = 1; i <= n; i++)); do
			augment -s 24 --epochs 3 --seed 7 --params -j 2 --shard $i/$n "$T/s" > "$T/part$i"
			parts+=("$T/part$i")
		done
		tensor cat "${parts[@]}" | cmp - "$T/whole"
	done
	# a shard across an epoch's end holds the records of both
	run tensor info "$T/part2"
	refute_output --partial "records: 0"
}

@test "augment: the random crop alone is exact (plain crop of a source with shorter side = size)" {
	cp "$SHAPES" "$T/s"
	run_ref 24 --zoom 1 --rotate 0 --lighting 0,0 --no-flip -- --zoom 1 --rotate 0 --lighting 0,0 --mode none
	assert_success
	assert_output "60 records, max |diff| 0, differing values 0"
}

@test "augment: the flip is exact" {
	cp "$SHAPES" "$T/s"
	run_ref 24 --zoom 1 --rotate 0 --lighting 0,0 -- --zoom 1 --rotate 0 --lighting 0,0
	assert_success
	assert_output "60 records, max |diff| 0, differing values 0"
}

@test "augment: the dihedral group (--top-down) is exact" {
	cp "$SHAPES" "$T/s"
	run_ref 24 --zoom 1 --rotate 0 --lighting 0,0 --top-down -- --zoom 1 --rotate 0 --lighting 0,0 --mode top-down
	assert_success
	assert_output "60 records, max |diff| 0, differing values 0"
}

# The float transforms: ours in f32, the reference in f64; they round
# differently only at exact ties (k + 1/2 levels), which the integer-valued
# averages of a resize do meet: within one level.
@test "augment: scale_min (area, up and down) within one level" {
	cp "$BIGGER" "$T/s"
	run_ref 32 --zoom 1.5 --rotate 0 --lighting 0,0 --no-flip -- --tol 1 --zoom 1.5 --rotate 0 --lighting 0,0 --mode none
	assert_success
	assert_output --regexp "^60 records, max \|diff\| [01], "
}

@test "augment: rotation (reflected border, bilinear, centre (w/2, h/2)) within one level" {
	cp "$SHAPES" "$T/s"
	run_ref 24 --zoom 1 --rotate 40 --lighting 0,0 --no-flip -- --tol 1 --zoom 1 --rotate 40 --lighting 0,0 --mode none
	assert_success
	assert_output --regexp "^60 records, max \|diff\| [01], "
}

@test "augment: lighting (clipped) within one level" {
	cp "$SHAPES" "$T/s"
	run_ref 24 --zoom 1 --rotate 0 --lighting 0.4,0.4 --no-flip -- --tol 1 --zoom 1 --rotate 0 --lighting 0.4,0.4 --mode none
	assert_success
	assert_output --regexp "^60 records, max \|diff\| [01], "
}

@test "augment: all of lesson 1's transforms together within one level, side-on and top-down" {
	cp "$BOTH" "$T/s"
	run_ref 24 -- --tol 1
	assert_success
	assert_output --regexp "^120 records, max \|diff\| [01], "
	run_ref 24 --top-down --zoom 1.3 --rotate 30 -- --tol 1 --zoom 1.3 --rotate 30 --mode top-down
	assert_success
	assert_output --regexp "^120 records, max \|diff\| [01], "
}

@test "augment: 20000 draws: probabilities, the angle uniform in +-10, zoom, lighting, crop" {
	mksrc "$T/s" 8x12
	augment -s 8 --epochs 20000 --params -j 2 "$T/s" | tensor to-npy -t params > "$T/p.npy"
	run ref stats "$T/p.npy" 8 12 8
	assert_success
	assert_line "20000 draws: ok"
	augment -s 8 --epochs 8000 --params --top-down -j 2 "$T/s" | tensor to-npy -t params > "$T/q.npy"
	run ref stats "$T/q.npy" 8 12 8 --top-down
	assert_success
	assert_line "8000 draws: ok"
}

@test "augment: memory from a file is bounded by the index, a pipe holds the sources" {
	py 'import sys
import numpy as np
from cnnpipe_stream import write_stream
rng = np.random.default_rng(3)
write_stream(sys.argv[1], {"kind": "images", "labelled": "0"},
             [{"image": rng.integers(0, 256, (120, 160, 3), dtype=np.uint8), "name": "%d" % i}
              for i in range(300)])' "$T/s"
	local stream_kb=$(( $(stat -c %s "$T/s") / 1024 ))   # 17 MB
	/usr/bin/time -f %M -o "$T/file.kb" augment -s 32 -j 2 "$T/s" > "$T/o1"
	/usr/bin/time -f %M -o "$T/pipe.kb" augment -s 32 -j 2 < "$T/s" > "$T/o2"
	cmp "$T/o1" "$T/o2"
	local file_kb=$(tail -n 1 "$T/file.kb") pipe_kb=$(tail -n 1 "$T/pipe.kb")
	echo "stream $stream_kb KB, file $file_kb KB, pipe $pipe_kb KB"
	# the pipe holds the sources (about the stream), the file does not; the
	# file's peak is under the stream's size even under ASan (12 MB there,
	# 3 MB in a plain build)
	[ $((pipe_kb - file_kb)) -gt $((stream_kb * 3 / 4)) ]
	[ "$file_kb" -lt "$stream_kb" ]
}

@test "augment: an unlabelled stream stays unlabelled; an empty one gives an empty epoch" {
	py 'import sys
import numpy as np
from cnnpipe_stream import write_stream
write_stream(sys.argv[1], {"kind": "images", "labelled": "0"},
             [{"image": np.zeros((9, 10, 3), np.uint8), "name": "a"}])
write_stream(sys.argv[2], {"kind": "images", "labelled": "1"}, [])' "$T/u" "$T/e"
	augment -s 8 --epochs 2 "$T/u" > "$T/o"
	run py 'import sys
from cnnpipe_stream import read_stream
m, recs, _ = read_stream(sys.argv[1])
print(m["labelled"], "classes" in m, len(recs), ["label" in r for r in recs])' "$T/o"
	assert_output "0 False 2 [False, False]"
	augment --epochs 3 "$T/e" > "$T/o"
	run tensor meta -k epoch_size "$T/o"
	assert_output "0"
}

@test "augment: fixed-size imgprep output is a valid input" {
	mkdir -p "$T/d/cats" "$T/d/dogs"
	convert -size 60x45 plasma:red-blue -seed 1 "$T/d/cats/a.jpg"
	convert -size 45x60 plasma:green-blue -seed 2 "$T/d/dogs/b.jpg"
	imgprep -s 36 -o "$T/s" "$T/d" 2>/dev/null
	augment -s 32 --epochs 2 "$T/s" > "$T/o"
	run tensor meta -k classes "$T/o"
	assert_output "cats,dogs"
	imgprep --help | grep -q -- --scale || skip "imgprep --scale has not landed"
	imgprep --scale 36 -o "$T/v" "$T/d" 2>/dev/null
	augment -s 32 --epochs 2 --params "$T/v" > "$T/o"
	run ref check "$T/v" "$T/o" 32 --tol 1
	assert_success
}

@test "augment: bad input fails naming the file and what is wrong, with no output" {
	cp "$SHAPES" "$T/s"
	# not an images stream
	py 'import sys
import numpy as np
from cnnpipe_stream import write_stream
write_stream(sys.argv[1], {"kind": "activations"}, [{"x": np.zeros(4, np.float32)}])
write_stream(sys.argv[2], {"kind": "images", "labelled": "1"},
             [{"image": np.zeros((30, 30, 3), np.uint8), "label": np.array(0, np.int32), "name": "ok"},
              {"image": np.zeros((30, 30), np.uint8), "label": np.array(0, np.int32), "name": "grey"}])
write_stream(sys.argv[3], {"kind": "images"},
             [{"image": np.zeros((30, 30, 3), np.uint8), "name": "nolabel"}])' "$T/act" "$T/grey" "$T/nolabel"
	run -1 augment -s 24 "$T/act"
	assert_output "augment: $T/act: not an images stream (kind=activations)"
	printf 'hello' > "$T/text"
	run -1 augment -s 24 "$T/text"
	assert_output --partial "augment: $T/text: byte 0: not a cnnpipe tensor stream"
	run -1 augment -s 24 "$T/grey"
	assert_output "augment: $T/grey: record 1 (grey): no u8 image tensor of shape (H, W, 3)"
	run -1 augment -s 24 "$T/nolabel"
	assert_output --partial "record 0 (nolabel): no label"
	# a crop size larger than a source: the source is scaled up, as fast.ai's
	# RandomScale does (its shorter side to int(mult*sz) >= sz)
	augment -s 40 --epochs 1 "$T/s" > "$T/up"
	run tensor info "$T/up"
	assert_output --partial "image u8 (40,40,3)"
	# truncated, from a file and from a pipe: nothing on the standard output
	head -c 5000 "$T/s" > "$T/cut"
	run -1 --separate-stderr augment -s 24 "$T/cut"
	assert_output ""
	[[ "$stderr" == "augment: $T/cut: byte "*"truncated"* ]]
	run -1 --separate-stderr sh -c "cat '$T/cut' | augment -s 24"
	assert_output ""
	[[ "$stderr" == "augment: standard input: byte "*"truncated"* ]]
	run -1 augment -s 24 "$T/missing"
	assert_output --partial "augment: $T/missing: No such file or directory"
}

@test "augment: a write error on the standard output is a failed run" {
	[ -w /dev/full ] || skip "/dev/full is absent"
	cp "$SHAPES" "$T/s"
	run -1 sh -c "augment -s 24 --epochs 20 '$T/s' > /dev/full"
	assert_output --partial "write error"
}
