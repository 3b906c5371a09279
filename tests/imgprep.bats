#!/usr/bin/env bats
# imgprep: discovery, order, threads, shards, PIL agreement, bad input; the
# --scale mode (no crop: the sources of augmentation).
bats_require_minimum_version 1.5.0
load helpers

setup() {
	T="$BATS_TEST_TMPDIR"
}

# py CODE...: run Python (Debian's) with the stream reader importable.
py() {
	PYTHONPATH="$REPO/tests" "$PYTHON" -c "$@"
}

# mkimg FILE WxH [convert options]: a small photo-like test image.
mkimg() {
	local f=$1 g=$2
	shift 2
	convert -size "$g" plasma:red-blue -seed 1 "$@" "$f"
}

mkset() {   # a labelled folder: 2 classes, 3 + 2 images of varied sizes
	mkdir -p "$T/set/dogs" "$T/set/cats"
	mkimg "$T/set/cats/b.jpg" 300x225
	mkimg "$T/set/cats/a.jpg" 225x300
	mkimg "$T/set/cats/c.png" 400x250
	mkimg "$T/set/dogs/z.jpg" 260x260
	mkimg "$T/set/dogs/y.jpg" 500x375
}

@test "imgprep: usage errors exit 2" {
	run imgprep
	assert_failure 2
	assert_output --partial "usage: imgprep [-s size | --scale side [--no-enlarge]] [-j threads] [--shard i/n] [--classes a,b,... | --classes-from STREAM] [--strict] [--accept-warnings] [-o out] DIR"
	run imgprep --shard 4/3 "$T"
	assert_failure 2
	run imgprep --classes a --classes-from x "$T"
	assert_failure 2
}

@test "imgprep: classes from sorted folder names, records in sorted order" {
	mkset
	run imgprep -s 64 -o "$T/out" "$T/set"
	assert_success
	assert_output --partial "5 images, 0 skipped"
	run py 'import sys; from cnnpipe_stream import read_stream
m, recs, tr = read_stream(sys.argv[1])
print(m["kind"], m["classes"], m["labelled"], m["size"], m["channels"], m["layout"], tr["skipped"])
for r in recs: print(r["name"], int(r["label"]), r["image"].shape, r["image"].dtype)' "$T/out"
	assert_success
	assert_output "images cats,dogs 1 64 3 HWC 0
cats/a.jpg 0 (64, 64, 3) uint8
cats/b.jpg 0 (64, 64, 3) uint8
cats/c.png 0 (64, 64, 3) uint8
dogs/y.jpg 1 (64, 64, 3) uint8
dogs/z.jpg 1 (64, 64, 3) uint8"
}

@test "imgprep: a flat folder gives an unlabelled stream" {
	mkdir "$T/flat"
	mkimg "$T/flat/2.jpg" 100x80
	mkimg "$T/flat/10.jpg" 80x100
	run imgprep -s 32 -o "$T/out" "$T/flat"
	assert_success
	run py 'import sys; from cnnpipe_stream import read_stream
m, recs, tr = read_stream(sys.argv[1])
print(m["labelled"], "classes" in m, [r["name"] for r in recs], ["label" in r for r in recs])' "$T/out"
	assert_output "0 False ['10.jpg', '2.jpg'] [False, False]"
}

@test "imgprep: --classes-from and --classes fix the label order; unknown folders are errors" {
	mkset
	imgprep -s 32 --classes dogs,cats -o "$T/ref" "$T/set" 2>/dev/null
	run py 'import sys; from cnnpipe_stream import read_stream
m, recs, tr = read_stream(sys.argv[1])
print(m["classes"], [(r["name"], int(r["label"])) for r in recs][:2])' "$T/ref"
	assert_output "dogs,cats [('dogs/y.jpg', 0), ('dogs/z.jpg', 0)]"
	# valid/ with only cats uses train's order from the stream
	mkdir -p "$T/valid/cats"
	mkimg "$T/valid/cats/v.jpg" 50x50
	run imgprep -s 32 --classes-from "$T/ref" -o "$T/v" "$T/valid"
	assert_success
	run py 'import sys; from cnnpipe_stream import read_stream
m, recs, tr = read_stream(sys.argv[1]); print(m["classes"], int(recs[0]["label"]))' "$T/v"
	assert_output "dogs,cats 1"
	run imgprep -s 32 --classes cats -o "$T/bad" "$T/set"
	assert_failure 1
	assert_output --partial "set/dogs: class folder not in the class list"
	[ ! -e "$T/bad" ]
	run imgprep -s 32 --classes-from "$T/set/cats/a.jpg" "$T/set"
	assert_failure 1
}

@test "imgprep: an empty class folder or an empty folder is an error" {
	mkset
	mkdir "$T/set/birds"
	run imgprep -s 32 -o "$T/out" "$T/set"
	assert_failure 1
	assert_output --partial "set/birds: no images"
	[ ! -e "$T/out" ]
	mkdir "$T/empty"
	run imgprep -s 32 "$T/empty"
	assert_failure 1
	assert_output --partial "empty: no images"
}

@test "imgprep: output is identical for -j 1 and -j 2, and tensor cat of 3 shards equals the whole" {
	mkset
	for i in 1 2 3 4 5 6; do mkimg "$T/set/dogs/x$i.jpg" 1${i}0x90; done
	head -c 100 "$T/set/cats/a.jpg" >"$T/set/dogs/x3.jpg"   # a skipped file
	imgprep -s 48 -j 1 -o "$T/j1" "$T/set" 2>/dev/null
	imgprep -s 48 -j 2 -o "$T/j2" "$T/set" 2>/dev/null
	cmp "$T/j1" "$T/j2"
	for i in 1 2 3; do imgprep -s 48 -j 2 --shard $i/3 -o "$T/s$i" "$T/set" 2>/dev/null; done
	run py 'import sys; from cnnpipe_stream import read_stream
print([len(read_stream(f)[1]) for f in sys.argv[1:]])' "$T/s1" "$T/s2" "$T/s3" "$T/j1"
	assert_output "[3, 3, 4, 10]"
	command -v tensor >/dev/null || skip "bin/tensor not built yet"
	tensor cat -o "$T/cat" "$T/s1" "$T/s2" "$T/s3"
	cmp "$T/cat" "$T/j1"
}

@test "imgprep: pixels agree with PIL (full decode, resize shorter side, centre crop)" {
	# Tolerance (documented in imgprep(1)): mean |diff| <= 1 and max <= 16
	# per image (measured: mean 0.2-0.8, max 1-9 on dev photos).  The
	# differences: INTER_AREA's exact area average vs PIL's BILINEAR tent,
	# and JPEG DCT downscaling (1/2 for the 1000x750 image).
	mkdir "$T/p"
	mkimg "$T/p/a.jpg" 1000x750 -quality 92
	mkimg "$T/p/b.jpg" 500x375 -quality 92
	mkimg "$T/p/c.png" 225x300
	mkimg "$T/p/d.jpg" 200x200 -quality 92
	imgprep -s 224 -o "$T/out" "$T/p" 2>/dev/null
	run py 'import sys, numpy as np
from cnnpipe_stream import read_stream
import pil_ref
m, recs, tr = read_stream(sys.argv[1])
for r in recs:
    ref = np.frombuffer(pil_ref.ref(sys.argv[2] + "/" + r["name"], 224), np.uint8).reshape(224, 224, 3)
    d = np.abs(ref.astype(int) - r["image"].astype(int))
    print(r["name"], "%.3f" % d.mean(), d.max(), "ok" if d.mean() <= 1.0 and d.max() <= 16 else "BAD")' "$T/out" "$T/p"
	echo "$output"
	assert_success
	refute_output --partial BAD
	assert_equal "$(grep -c ok <<<"$output")" 4
}

@test "imgprep: crop geometry of odd sizes is fast.ai's (225x300 -> 224)" {
	# Noise, so that a window one pixel off differs a lot: scaled to 224x298
	# the crop must start at row ceil(74/2) = 37 (not 36 or 38).
	mkdir "$T/g"
	py 'import sys, numpy as np
from PIL import Image
a = np.random.default_rng(1).integers(0, 256, (300, 225, 3), dtype=np.uint8)
Image.fromarray(a).save(sys.argv[1])' "$T/g/odd.png"
	imgprep -s 224 -o "$T/out" "$T/g" 2>/dev/null
	run "$PYTHON" "$REPO/tests/pil_ref.py" dims 225 300 224
	assert_output "224 298 0 37"
	run py 'import sys, numpy as np
from PIL import Image
from cnnpipe_stream import read_stream
import pil_ref
img = read_stream(sys.argv[1])[1][0]["image"].astype(int)
full, cx, cy = pil_ref.area_ref(np.asarray(Image.open(sys.argv[2])), 224)
d = [int(np.abs(img - full[y:y + 224, cx:cx + 224]).max()) for y in (cy - 1, cy, cy + 1)]
print(img.shape, full.shape, cx, cy, d[1] <= 1, d[0] > 50, d[2] > 50)' "$T/out" "$T/g/odd.png"
	assert_output "(224, 224, 3) (298, 224, 3) 0 37 True True True"
}

@test "imgprep: bad files are reported by name, skipped and counted; --strict makes them fatal" {
	mkset
	mkimg "$T/set/cats/prog.jpg" 120x90 -interlace JPEG
	mkimg "$T/set/cats/cmyk.jpg" 120x90 -colorspace CMYK
	mkimg "$T/set/cats/grey.jpg" 120x90 -colorspace Gray
	identify -verbose "$T/set/cats/prog.jpg" | grep -q "Interlace: JPEG"
	identify -format '%[colorspace]' "$T/set/cats/cmyk.jpg" | grep -q CMYK
	head -c 2000 "$T/set/dogs/y.jpg" >"$T/set/dogs/trunc.jpg"
	head -c 3000 /dev/urandom >"$T/set/dogs/random.jpg"
	: >"$T/set/dogs/zero.jpg"
	# SOF0 size patched to 65535x65535
	py 'import sys
b = bytearray(open(sys.argv[1], "rb").read())
i = b.index(b"\xff\xc0")
b[i+5:i+9] = b"\xff\xff\xff\xff"
open(sys.argv[2], "wb").write(b)' "$T/set/dogs/z.jpg" "$T/set/dogs/huge.jpg"
	py 'import sys, struct, zlib
ihdr = struct.pack(">IIBBBBB", 65535, 65535, 8, 2, 0, 0, 0)
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)))' "$T/set/dogs/huge.png"
	run imgprep -s 64 -o "$T/out" "$T/set"
	assert_success
	assert_line --partial "set/dogs/trunc.jpg: bad JPEG: Premature end of JPEG file (skipped)"
	assert_line --regexp "set/dogs/random.jpg: not an image .*\(skipped\)"
	assert_line --partial "set/dogs/zero.jpg: empty file (skipped)"
	assert_line --partial "set/dogs/huge.jpg: bad JPEG: Maximum supported image dimension is 65500 pixels (skipped)"
	assert_line --partial "set/dogs/huge.png: image too large: 65535x65535"
	assert_line --partial "5 skipped"
	run py 'import sys, numpy as np; from cnnpipe_stream import read_stream
m, recs, tr = read_stream(sys.argv[1])
print(len(recs), tr["skipped"])
for r in recs:
    if r["name"] in ("cats/cmyk.jpg", "cats/grey.jpg", "cats/prog.jpg"):
        im = r["image"].astype(int)
        print(r["name"], im.mean() > 20, int(np.abs(im[..., 0] - im[..., 1]).max() == 0))' "$T/out"
	assert_output "8 5
cats/cmyk.jpg True 0
cats/grey.jpg True 1
cats/prog.jpg True 0"
	run imgprep -s 64 --strict -o "$T/strict" "$T/set"
	assert_failure 1
	assert_output --partial "set/dogs/huge.jpg: bad JPEG"
	[ ! -e "$T/strict" ]
}

@test "imgprep: a 40000x40000 JPEG header is refused before decoding" {
	mkdir "$T/h"
	mkimg "$T/h/ok.jpg" 64x48
	py 'import sys
b = bytearray(open(sys.argv[1], "rb").read())
i = b.index(b"\xff\xc0")
b[i+5:i+9] = b"\x9c\x40\x9c\x40"
open(sys.argv[2], "wb").write(b)' "$T/h/ok.jpg" "$T/h/big.jpg"
	run imgprep -s 32 --strict -o "$T/out" "$T/h"
	assert_failure 1
	assert_output --partial "h/big.jpg: image too large: 40000x40000 (limits: 32768 per side, 100000000 pixels)"
}

# records STREAM: the number of records, the end chunk's skipped, the names.
records() {
	py 'import sys; from cnnpipe_stream import read_stream
m, recs, tr = read_stream(sys.argv[1])
print(len(recs), tr["skipped"], " ".join(r["name"] for r in recs))' "$1"
}

@test "imgprep: a JPEG libjpeg warns about is skipped and counted; fatal with --strict; used with --accept-warnings" {
	# 40 copies of a generated photo with one bit of the scan flipped each,
	# and one with garbage before its EOI: libjpeg decodes them all with a
	# warning at most ("Corrupt JPEG data: ..."), djpeg says which.
	mkdir -p "$T/w/dogs"
	"$PYTHON" "$REPO/tests/make_bad_images.py" flips "$T/w/dogs"
	run imgprep -s 64 -o "$T/out" "$T/w"
	assert_success
	assert_line --regexp "w/dogs/extra.jpg: bad JPEG: Corrupt JPEG data: [0-9]+ extraneous bytes before marker 0xd9 \(skipped\)$"
	refute_line --partial "ok.jpg"
	skipped=$(grep -c '(skipped)$' <<<"$output")
	warned=$(grep -c ': bad JPEG: Corrupt JPEG data: .*(skipped)$' <<<"$output")
	# every file is a record or a named skip, and the count says so
	run records "$T/out"
	read -r n k names <<<"$output"
	assert_equal "$((n + skipped))" 42
	assert_equal "$k" "$skipped"
	[[ " $names " == *" dogs/ok.jpg "* ]]
	# libjpeg-turbo's fast Huffman path turns a bad code into a zero without a
	# word; fed in pieces it warns, as djpeg does
	if command -v djpeg >/dev/null; then
		for f in "$T"/w/dogs/*.jpg; do
			djpeg "$f" 2>&1 >/dev/null | grep -q . && echo "${f##*/}"
		done >"$T/djpeg.warned"
		[ "$(wc -l <"$T/djpeg.warned")" -ge 5 ]
		while read -r f; do
			[[ " $names " != *" dogs/$f "* ]] || { echo "$f: djpeg warns, imgprep took it"; false; }
		done <"$T/djpeg.warned"
	fi
	# --strict: the first of them is fatal
	run ! imgprep -s 64 --strict -o "$T/strict" "$T/w"
	assert_failure 1
	assert_output --regexp "w/dogs/(extra|flip[0-9]+).jpg: bad JPEG: "
	[ ! -e "$T/strict" ]
	# --accept-warnings: the warned ones are used, named, and not counted
	run imgprep -s 64 --accept-warnings -o "$T/lenient" "$T/w"
	assert_success
	assert_line --regexp "w/dogs/extra.jpg: bad JPEG: Corrupt JPEG data: [0-9]+ extraneous bytes before marker 0xd9 \(used: --accept-warnings\)$"
	used=$(grep -c '(used: --accept-warnings)$' <<<"$output")
	assert_equal "$(grep -c '(skipped)$' <<<"$output")" "$((skipped - used))"
	[ "$used" -ge 1 ] && [ "$used" -le "$warned" ]
	run records "$T/lenient"
	read -r n2 k2 names2 <<<"$output"
	assert_equal "$n2" "$((n + used))"
	assert_equal "$k2" "$((skipped - used))"
	[[ " $names2 " == *" dogs/extra.jpg "* ]]
}

@test "imgprep: sub-folders, dangling and looping links, FIFOs in a class folder are named, skipped and counted" {
	mkset
	mkdir "$T/set/cats/sub"
	mkimg "$T/set/cats/sub/in.jpg" 40x40
	ln -s nowhere.jpg "$T/set/dogs/dangling.jpg"
	ln -s loop.jpg "$T/set/dogs/loop.jpg"
	mkfifo "$T/set/dogs/fifo.jpg"
	ln -s ../cats/a.jpg "$T/set/dogs/link.jpg"   # a link to an image is the image
	run imgprep -s 32 -o "$T/out" "$T/set"
	assert_success
	assert_line "imgprep: $T/set/cats/sub: a folder inside a class folder (skipped)"
	assert_line "imgprep: $T/set/dogs/dangling.jpg: a dangling symbolic link (skipped)"
	assert_line "imgprep: $T/set/dogs/loop.jpg: a symbolic link loop (skipped)"
	assert_line "imgprep: $T/set/dogs/fifo.jpg: not a regular file (skipped)"
	assert_line "imgprep: $T/set: 6 images, 4 skipped"
	run records "$T/out"
	assert_output "6 4 cats/a.jpg cats/b.jpg cats/c.png dogs/link.jpg dogs/y.jpg dogs/z.jpg"
	# one shard's count is its own; cat sums them
	for i in 1 2; do imgprep -s 32 --shard $i/2 -o "$T/s$i" "$T/set" 2>/dev/null; done
	tensor cat -o "$T/cat" "$T/s1" "$T/s2"
	cmp "$T/cat" "$T/out"
	run ! imgprep -s 32 --strict -o "$T/strict" "$T/set"
	assert_failure 1
	assert_output "imgprep: $T/set/cats/sub: a folder inside a class folder"
	[ ! -e "$T/strict" ]
	# flat: the same; at the top of a folder of class folders: no class to
	# put it in, an error
	mkdir "$T/flat"
	mkimg "$T/flat/a.jpg" 40x40
	ln -s gone "$T/flat/b.jpg"
	run imgprep -s 32 -o "$T/flat.out" "$T/flat"
	assert_success
	assert_line "imgprep: $T/flat/b.jpg: a dangling symbolic link (skipped)"
	assert_line "imgprep: $T/flat: 1 images, 1 skipped"
	ln -s gone "$T/set/birds"
	run ! imgprep -s 32 -o "$T/out2" "$T/set"
	assert_failure 1
	assert_output "imgprep: $T/set/birds: a dangling symbolic link, in a folder of class folders"
}

@test "imgprep: a run that skips every image fails and writes nothing" {
	mkdir -p "$T/bad/cats" "$T/bad/dogs"
	: >"$T/bad/cats/a.jpg"
	printf 'not an image' >"$T/bad/dogs/b.jpg"
	run ! imgprep -s 32 -o "$T/out" "$T/bad"
	assert_failure 1
	assert_line --partial "bad/cats/a.jpg: empty file (skipped)"
	assert_line "imgprep: $T/bad: no image could be used (2 skipped)"
	[ ! -e "$T/out" ]
	run ! imgprep --scale 32 -o "$T/out" "$T/bad"
	assert_failure 1
	assert_line "imgprep: $T/bad: no image could be used (2 skipped)"
	# a shard of good images succeeds beside it; one given no images too
	mkimg "$T/bad/dogs/c.jpg" 40x40
	run imgprep -s 32 --shard 2/2 -o "$T/s2" "$T/bad"
	assert_success
	assert_line "imgprep: $T/bad: 1 images, 1 skipped"
	run ! imgprep -s 32 --shard 1/2 -o "$T/s1" "$T/bad"
	assert_failure 1
	run imgprep -s 32 --shard 1/5 -o "$T/s5" "$T/bad"
	assert_success
	assert_line "imgprep: $T/bad: 0 images, 0 skipped"
}

@test "imgprep: a small file claiming a big image is refused before it is decoded; memory stays bounded" {
	# imgprep(1): what a decode needs is reckoned from the header and held
	# to 256 MiB.  A 6000x6000 16-bit RGBA PNG of ~280 KB would take stb_image
	# ~580 MB (8 bytes a pixel, twice); a progressive JPEG's header claiming
	# 10000x9000 (4:4:4) ~540 MB of DCT coefficients; a 100x100 PNG whose
	# ~200 KB of deflate go on to inflate to 200 MB (stb_image grows its
	# buffer for all of it).
	mkdir "$T/m" "$T/small"
	"$PYTHON" "$REPO/tests/make_bad_images.py" png "$T/m/big.png" 6000 6000
	"$PYTHON" "$REPO/tests/make_bad_images.py" bomb "$T/m/bomb.png" 200
	"$PYTHON" "$REPO/tests/make_bad_images.py" progressive "$T/m/prog.jpg" 10000 9000
	mkimg "$T/m/ok.jpg" 64x48
	mkimg "$T/small/ok.jpg" 64x48
	[ "$(stat -c %s "$T/m/big.png")" -lt 1000000 ]
	# the peak resident size (kB) of the child imgprep, then its output
	maxrss() {
		py 'import resource, subprocess, sys
p = subprocess.run(sys.argv[1:], stderr=subprocess.PIPE, text=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, p.returncode)
sys.stdout.write(p.stderr)' "$@"
	}
	run maxrss imgprep -j 1 -s 32 -o "$T/out" "$T/m"
	assert_success
	assert_line "imgprep: $T/m/big.png: image too large to decode: 6000x6000 would take 1031 MiB (limit 256 MiB) (skipped)"
	assert_line --regexp "^imgprep: $T/m/prog.jpg: image too large to decode: 10000x9000 would take 5[0-9][0-9] MiB \(limit 256 MiB\) \(skipped\)$"
	assert_line "imgprep: $T/m/bomb.png: bad PNG: pixel data that does not inflate, or inflates to over twice what 100x100 needs (skipped)"
	assert_line "imgprep: $T/m: 1 images, 3 skipped"
	read -r big rc <<<"${lines[0]}"
	run maxrss imgprep -j 1 -s 32 -o "$T/out.small" "$T/small"
	read -r base rc <<<"${lines[0]}"
	echo "peak RSS: $big kB with the big files, $base kB without"
	[ "$big" -lt $((base + 32768)) ]
}

@test "imgprep: names are escaped in messages: a newline or escape in one forges nothing" {
	mkdir -p "$T/n/cats"
	mkimg "$T/n/cats/ok.jpg" 40x40
	bad=$'x\nimgprep: forged: 9 images, 0 skipped\e[2J.jpg'
	: >"$T/n/cats/$bad"
	run imgprep -s 32 -o "$T/out" "$T/n"
	assert_success
	assert_line "imgprep: $T/n/cats/x\\nimgprep: forged: 9 images, 0 skipped\\x1b[2J.jpg: empty file (skipped)"
	refute_line --partial "forged: 9 images"$'\n'
	refute_line --regexp '^imgprep: forged'
	assert_equal "${#lines[@]}" 2
	# the record keeps its name as it is
	run py 'import sys; from cnnpipe_stream import read_stream
print(repr([r["name"] for r in read_stream(sys.argv[1])[1]]))' "$T/out"
	assert_output "['cats/ok.jpg']"
	run ! imgprep -s 32 --strict -o "$T/strict" "$T/n"
	assert_output "imgprep: $T/n/cats/x\\nimgprep: forged: 9 images, 0 skipped\\x1b[2J.jpg: empty file"
	# folder names: the summary's, a class name that is none
	mkdir -p "$T/d"$'\r'"/cats"
	mkimg "$T/d"$'\r'"/cats/ok.jpg" 40x40
	run imgprep -s 32 -o "$T/out2" "$T/d"$'\r'
	assert_success
	assert_output "imgprep: $T/d\\r: 1 images, 0 skipped"
	mkdir -p "$T/nl/a"$'\n'"b"
	run ! imgprep -s 32 -o "$T/out3" "$T/nl"
	assert_failure 1
	assert_output "imgprep: $T/nl: class name 'a\\nb' is empty or holds ',' or a newline"
}

@test "imgprep: CMYK and progressive JPEGs match PIL" {
	mkdir "$T/c"
	mkimg "$T/c/cmyk.jpg" 300x200 -colorspace CMYK -quality 95
	mkimg "$T/c/prog.jpg" 300x200 -interlace JPEG -quality 95
	imgprep -s 100 -o "$T/out" "$T/c" 2>/dev/null
	run py 'import sys, numpy as np
from cnnpipe_stream import read_stream
import pil_ref
m, recs, tr = read_stream(sys.argv[1])
for r in recs:
    # 200 -> 100 is exactly 2:1, where the PIL BOX filter is the exact area average
    ref = np.frombuffer(pil_ref.ref(sys.argv[2] + "/" + r["name"], 100, "box"), np.uint8).reshape(100, 100, 3)
    d = np.abs(ref.astype(int) - r["image"].astype(int))
    print(r["name"], "ok" if d.mean() <= 1.0 and d.max() <= 16 else "BAD %.2f %d" % (d.mean(), d.max()))' "$T/out" "$T/c"
	assert_output "cmyk.jpg ok
prog.jpg ok"
}

@test "imgprep: EXIF orientation is applied (as cv2.imread does)" {
	mkdir "$T/e"
	py 'import sys
from PIL import Image
im = Image.new("RGB", (120, 60), (255, 0, 0))
im.paste((0, 0, 255), (0, 0, 60, 60))    # left half blue
ex = Image.Exif(); ex[0x0112] = 6          # display rotated 90 deg clockwise
im.save(sys.argv[1], exif=ex.tobytes(), quality=95)' "$T/e/rot.jpg"
	imgprep -s 40 -o "$T/out" "$T/e" 2>/dev/null
	# shown upright it is 60 wide, 120 high, blue on top: the 40x40 centre
	# crop of 40x80 is rows 20..59 -> top half blue, bottom half red.
	run py 'import sys; from cnnpipe_stream import read_stream
im = read_stream(sys.argv[1])[1][0]["image"].astype(int)
print(im[5, 20].tolist() > [0], im[5, 20, 2] > 200, im[35, 20, 0] > 200)' "$T/out"
	assert_output "True True True"
}

@test "imgprep: dogscats-dev gives 2000 train and 500 valid records, classes cats,dogs" {
	[ -d "$DEVDATA" ] || skip "../shared/data/dogscats-dev is absent"
	imgprep -o "$T/train" "$DEVDATA/train" 2>/dev/null
	imgprep --classes-from "$T/train" -o "$T/valid" "$DEVDATA/valid" 2>/dev/null
	run py 'import sys; from cnnpipe_stream import read_stream
for f in sys.argv[1:]:
    m, recs, tr = read_stream(f)
    print(len(recs), m["classes"], tr["skipped"], recs[0]["image"].shape)' "$T/train" "$T/valid"
	assert_output "2000 cats,dogs 0 (224, 224, 3)
500 cats,dogs 0 (224, 224, 3)"
}

# ---- --scale: the shorter side to S, aspect kept, no crop ------------------

# scale_shapes STREAM: "name HxW label" per record, then the header keys.
scale_shapes() {
	py 'import sys; from cnnpipe_stream import read_stream
m, recs, tr = read_stream(sys.argv[1])
for r in recs:
    im = r["image"]
    print(r["name"], "%dx%d" % im.shape[:2], im.shape[2], im.dtype, int(r["label"]) if "label" in r else "-")
print(m["kind"], m.get("classes"), m["labelled"], m["scale"], "size" in m, m["channels"], m["layout"], tr["skipped"])' "$1"
}

@test "imgprep --scale: -s and --scale exclude each other; bad sides are usage errors" {
	mkset
	run ! imgprep -s 64 --scale 64 "$T/set"
	assert_failure 2
	assert_output --partial "-s and --scale exclude each other"
	run ! imgprep --scale 0 "$T/set"
	assert_failure 2
	run ! imgprep --scale 8193 "$T/set"
	assert_failure 2
	run ! imgprep --scale 12x "$T/set"
	assert_failure 2
}

@test "imgprep --scale: shorter side S, longer side max(floor(side*(S/shorter)), S), scale= not size=" {
	# landscape, portrait, square, odd, enlarged (all smaller than S on their
	# shorter side but the first two), a PNG; 85x40: 85*(224/40) is
	# 475.99999999999994 in double, so fast.ai's floor gives 475.
	mkdir -p "$T/sc/cats" "$T/sc/dogs"
	mkimg "$T/sc/cats/land.jpg" 1000x750
	mkimg "$T/sc/cats/port.jpg" 750x1000
	mkimg "$T/sc/cats/square.jpg" 260x260
	mkimg "$T/sc/dogs/odd.png" 333x250
	mkimg "$T/sc/dogs/wide.jpg" 85x40
	mkimg "$T/sc/dogs/tall.jpg" 40x85
	mkimg "$T/sc/dogs/small.jpg" 50x30
	run imgprep --scale 224 -o "$T/out" "$T/sc"
	assert_success
	assert_output --partial "7 images, 0 skipped"
	run scale_shapes "$T/out"
	assert_success
	assert_output "cats/land.jpg 224x298 3 uint8 0
cats/port.jpg 298x224 3 uint8 0
cats/square.jpg 224x224 3 uint8 0
dogs/odd.png 224x298 3 uint8 1
dogs/small.jpg 224x373 3 uint8 1
dogs/tall.jpg 475x224 3 uint8 1
dogs/wide.jpg 224x475 3 uint8 1
images cats,dogs 1 224 False 3 HWC 0"
	# the same sizes as pil_ref.py's (Python's) rounding
	for g in 1000x750 750x1000 260x260 333x250 85x40 40x85 50x30; do
		run "$PYTHON" "$REPO/tests/pil_ref.py" dims "${g%x*}" "${g#*x}" 224
		echo "$g ${output% * *}"
	done >"$T/py"
	run cat "$T/py"
	assert_output "1000x750 298 224
750x1000 224 298
260x260 224 224
333x250 298 224
85x40 475 224
40x85 224 475
50x30 373 224"
	# names, labels and order are the cropping mode's
	imgprep -s 32 -o "$T/crop" "$T/sc" 2>/dev/null
	run py 'import sys; from cnnpipe_stream import read_stream
a, b = (read_stream(f)[1] for f in sys.argv[1:])
print([(r["name"], int(r["label"])) for r in a] == [(r["name"], int(r["label"])) for r in b])' "$T/out" "$T/crop"
	assert_output "True"
}

@test "imgprep --scale --no-enlarge: photos under the side keep their size and pixels, larger ones shrink" {
	mkdir -p "$T/ne/cats" "$T/ne/dogs"
	mkimg "$T/ne/cats/land.jpg" 1000x750
	mkimg "$T/ne/cats/small.jpg" 200x150
	mkimg "$T/ne/dogs/odd.png" 333x250
	mkimg "$T/ne/dogs/tiny.jpg" 50x30
	imgprep --scale 224 --no-enlarge -o "$T/ne.s" "$T/ne" 2>/dev/null
	run scale_shapes "$T/ne.s"
	assert_success
	assert_output "cats/land.jpg 224x298 3 uint8 0
cats/small.jpg 150x200 3 uint8 0
dogs/odd.png 224x298 3 uint8 1
dogs/tiny.jpg 30x50 3 uint8 1
images cats,dogs 1 224 False 3 HWC 0"
	# shrunk as without the option; enlarged only without it
	imgprep --scale 224 -o "$T/ne.e" "$T/ne" 2>/dev/null
	run py 'import sys, numpy as np; from cnnpipe_stream import read_stream
ne, en = (dict((r["name"], r["image"]) for r in read_stream(f)[1]) for f in sys.argv[1:3])
assert np.array_equal(ne["cats/land.jpg"], en["cats/land.jpg"])   # shrunk alike
assert en["cats/small.jpg"].shape == (224, 298, 3)                  # enlarged without
print("ok")' "$T/ne.s" "$T/ne.e"
	assert_output "ok"
	run -2 imgprep -s 64 --no-enlarge "$T/ne"
	assert_output --partial "imgprep: --no-enlarge goes with --scale"
}

@test "imgprep --scale: EXIF orientation is applied before scaling (portrait stays portrait)" {
	mkdir "$T/e"
	py 'import sys
from PIL import Image
im = Image.new("RGB", (120, 60), (255, 0, 0))
im.paste((0, 0, 255), (0, 0, 60, 60))    # left half blue
for o, name in ((6, "rot6.jpg"), (3, "rot3.jpg")):
    ex = Image.Exif(); ex[0x0112] = o
    im.save(sys.argv[1] + "/" + name, exif=ex.tobytes(), quality=95)' "$T/e"
	imgprep --scale 40 -o "$T/out" "$T/e" 2>/dev/null
	# 6 (90 deg clockwise): shown 60 wide, 120 high, blue on top -> 40x80;
	# 3 (180 deg): 120x60, blue on the right -> 80x40.  The colours at a
	# quarter and at three quarters of the way down the diagonal:
	run py 'import sys; from cnnpipe_stream import read_stream
col = lambda p: "blue" if p[2] > 200 and p[0] < 60 else "red" if p[0] > 200 and p[2] < 60 else "?"
for r in read_stream(sys.argv[1])[1]:
    im = r["image"].astype(int)
    h, w = im.shape[:2]
    print(r["name"], im.shape, col(im[h // 4, w // 4]), col(im[3 * h // 4, 3 * w // 4]))' "$T/out"
	assert_output "rot3.jpg (40, 80, 3) red blue
rot6.jpg (80, 40, 3) blue red"
}

@test "imgprep --scale: pixels agree with PIL (fast.ai's resize_img) and with an exact area average" {
	# The cropping mode's tolerance (imgprep(1)): mean |diff| <= 1, max <= 16
	# per image, at 224 and at 291 = int(224*1.3) (1000x750 decodes at DCT
	# 1/2; 200x200 is enlarged; e.jpg is 400x300 stored, 300x400 shown).
	mkdir "$T/p"
	mkimg "$T/p/a.jpg" 1000x750 -quality 92
	mkimg "$T/p/b.jpg" 500x375 -quality 92
	mkimg "$T/p/c.png" 225x300
	mkimg "$T/p/d.jpg" 200x200 -quality 92
	mkimg "$T/p/e.png" 400x300
	py 'import sys
from PIL import Image
ex = Image.Exif(); ex[0x0112] = 8
Image.open(sys.argv[1]).save(sys.argv[2], exif=ex.tobytes(), quality=92)' "$T/p/e.png" "$T/p/e.jpg"
	rm "$T/p/e.png"
	for S in 224 291; do
		imgprep --scale $S -o "$T/out$S" "$T/p" 2>/dev/null
	done
	run py 'import sys, numpy as np
from cnnpipe_stream import read_stream
import pil_ref
for f in sys.argv[2:]:
    m, recs, tr = read_stream(f)
    S = int(m["scale"])
    for r in recs:
        tw, th, raw = pil_ref.scale_ref(sys.argv[1] + "/" + r["name"], S)
        ref = np.frombuffer(raw, np.uint8).reshape(th, tw, 3)
        d = np.abs(ref.astype(int) - r["image"].astype(int))
        print(S, r["name"], r["image"].shape, "%.3f" % d.mean(), d.max(),
              "ok" if d.mean() <= 1.0 and d.max() <= 16 else "BAD")' "$T/p" "$T/out224" "$T/out291"
	echo "$output"
	assert_success
	refute_output --partial BAD
	assert_equal "$(grep -c ok <<<"$output")" 10
	assert_line --partial "224 e.jpg (298, 224, 3)"
	# Enlarging 5.6 times (85x40 -> 475x224) the area filter is near
	# nearest-neighbour where PIL's BILINEAR blurs: held to the exact area
	# average instead, on noise (a one-pixel shift shows).
	mkdir "$T/g"
	py 'import sys, numpy as np
from PIL import Image
a = np.random.default_rng(2).integers(0, 256, (40, 85, 3), dtype=np.uint8)
Image.fromarray(a).save(sys.argv[1])' "$T/g/wide.png"
	imgprep --scale 224 -o "$T/g.out" "$T/g" 2>/dev/null
	run py 'import sys, numpy as np
from PIL import Image
from cnnpipe_stream import read_stream
import pil_ref
img = read_stream(sys.argv[1])[1][0]["image"].astype(int)
ref = pil_ref.area_ref(np.asarray(Image.open(sys.argv[2])), 224, crop=False).astype(int)
print(img.shape, ref.shape, int(np.abs(img - ref).max()) <= 1)' "$T/g.out" "$T/g/wide.png"
	assert_output "(224, 475, 3) (224, 475, 3) True"
}

@test "imgprep --scale: -j 1 and -j 2 give the same bytes; shards joined are the whole" {
	mkset
	for i in 1 2 3 4 5 6; do mkimg "$T/set/dogs/x$i.jpg" 1${i}0x9$i; done
	head -c 100 "$T/set/cats/a.jpg" >"$T/set/dogs/x3.jpg"   # a skipped file
	imgprep --scale 48 -j 1 -o "$T/j1" "$T/set" 2>/dev/null
	imgprep --scale 48 -j 2 -o "$T/j2" "$T/set" 2>/dev/null
	cmp "$T/j1" "$T/j2"
	for i in 1 2 3; do imgprep --scale 48 -j 2 --shard $i/3 -o "$T/s$i" "$T/set" 2>/dev/null; done
	# record by record: names, labels, shapes and pixels; skipped summed
	run py 'import sys, numpy as np; from cnnpipe_stream import read_stream
parts = [read_stream(f) for f in sys.argv[1:4]]
m, whole, tr = read_stream(sys.argv[4])
joined = [r for p in parts for r in p[1]]
same = len(joined) == len(whole) and all(a["name"] == b["name"] and int(a["label"]) == int(b["label"])
    and np.array_equal(a["image"], b["image"]) for a, b in zip(joined, whole))
print([len(p[1]) for p in parts], len(whole), same, all(p[0] == m for p in parts),
      sum(int(p[2]["skipped"]) for p in parts), tr["skipped"], len({r["image"].shape for r in whole}) > 3)' \
		"$T/s1" "$T/s2" "$T/s3" "$T/j1"
	assert_output "[3, 3, 4] 10 True True 1 1 True"
	# tensor cat lets the shapes of a scale stream vary
	tensor cat -o "$T/cat" "$T/s1" "$T/s2" "$T/s3"
	cmp "$T/cat" "$T/j1"
}

@test "imgprep --scale: precompute refuses the stream (no size), takes the cropped one" {
	mkset
	"$PYTHON" "$REPO/tests/make_tiny_darknet.py" "$T/tiny.cfg" "$T/tiny.weights" 1
	pretrained -a darknet -w "$T/tiny.weights" --cfg "$T/tiny.cfg" -c cats,dogs -o "$T/model" 2>/dev/null
	imgprep --scale 32 -o "$T/src" "$T/set" 2>/dev/null
	run ! precompute -m "$T/model" "$T/src"
	assert_failure 1
	assert_output --partial "scaled photos of varying size (imgprep --scale)"
	imgprep -s 32 -o "$T/crop" "$T/set" 2>/dev/null
	precompute -m "$T/model" "$T/crop" >"$T/act"
}

@test "imgprep --scale: bad files are reported, skipped and counted as by -s; --strict makes them fatal" {
	mkset
	head -c 2000 "$T/set/dogs/y.jpg" >"$T/set/dogs/trunc.jpg"
	head -c 3000 /dev/urandom >"$T/set/dogs/random.jpg"
	: >"$T/set/dogs/zero.jpg"
	py 'import sys
b = bytearray(open(sys.argv[1], "rb").read())
i = b.index(b"\xff\xc0")
b[i+5:i+9] = b"\x9c\x40\x9c\x40"
open(sys.argv[2], "wb").write(b)' "$T/set/dogs/z.jpg" "$T/set/dogs/huge.jpg"
	# 3000x1 to shorter side 64 would be 192000x64: refused before allocating
	convert -size 3000x1 xc:gray "$T/set/dogs/thin.png"
	run imgprep --scale 64 -o "$T/out" "$T/set"
	assert_success
	assert_line --partial "set/dogs/trunc.jpg: bad JPEG: Premature end of JPEG file (skipped)"
	assert_line --regexp "set/dogs/random.jpg: not an image .*\(skipped\)"
	assert_line --partial "set/dogs/zero.jpg: empty file (skipped)"
	assert_line --partial "set/dogs/huge.jpg: image too large: 40000x40000"
	assert_line --partial "set/dogs/thin.png: scaled image too large: 192000x64 (limits: 32768 per side, 100000000 pixels) (skipped)"
	assert_line --partial "5 images, 5 skipped"
	run py 'import sys; from cnnpipe_stream import read_stream
m, recs, tr = read_stream(sys.argv[1])
print(len(recs), tr["skipped"], [r["name"] for r in recs])' "$T/out"
	assert_output "5 5 ['cats/a.jpg', 'cats/b.jpg', 'cats/c.png', 'dogs/y.jpg', 'dogs/z.jpg']"
	run ! imgprep --scale 64 --strict -o "$T/strict" "$T/set"
	assert_failure 1
	assert_output --partial "set/dogs/huge.jpg: image too large"
	[ ! -e "$T/strict" ]
}

@test "imgprep --scale: dogscats-dev gives 2000 train records, each with min(H, W) = S" {
	[ -d "$DEVDATA" ] || skip "../shared/data/dogscats-dev is absent"
	imgprep --scale 291 -o "$T/train" "$DEVDATA/train" 2>/dev/null
	run py 'import sys; from cnnpipe_stream import read_stream
m, recs, tr = read_stream(sys.argv[1])
print(len(recs), m["classes"], m["scale"], "size" in m, tr["skipped"],
      all(min(r["image"].shape[:2]) == 291 and r["image"].shape[2] == 3 for r in recs))' "$T/train"
	assert_output "2000 cats,dogs 291 False 0 True"
}
