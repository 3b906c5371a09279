#!/usr/bin/env bats
# tensor(1) and the stream format, end to end: round trips of every dtype
# through files and pipes, .npy interop, cat of shards, malformed input,
# bounded memory on a stream over 1 GiB, write errors.

load helpers
bats_require_minimum_version 1.5.0

setup() {
	T="$BATS_TEST_TMPDIR"
	export PYTHONPATH="$REPO/tests"
}

# py CODE: runs Python (Debian's, with numpy) with the stream module loaded.
py() {
	"$PYTHON" -c "import sys, numpy as np; from cnnpipe_stream import *; $1" "${@:2}"
}

@test "usage errors exit 2 with the synopsis" {
	run tensor
	assert_failure 2
	assert_output --partial "usage: tensor info [FILE|-]"
	run tensor frobnicate
	assert_failure 2
	assert_output --partial "unknown command 'frobnicate'"
	run tensor head -n x
	assert_failure 2
	run tensor head -q
	assert_failure 2
	run tensor cat
	assert_failure 2
	run tensor info a b
	assert_failure 2
}

@test "usage equals the man page SYNOPSIS" {
	command -v groff >/dev/null || skip "groff is not installed"
	groff -mandoc -Tutf8 -P-c -rLL=300n "$REPO/man/man1/tensor.1" 2>/dev/null | col -b |
		sed -n '/^SYNOPSIS/,/^DESCRIPTION/p' | sed '1d;$d;/^ *$/d;s/^ *//' > "$T/synopsis"
	tensor --help | sed 's/^usage: //;s/^ *//' > "$T/usage"
	diff "$T/synopsis" "$T/usage"
}

@test "every dtype round trips through files and pipes byte for byte" {
	py '
recs = [{"u8": np.arange(24, dtype=np.uint8).reshape(2, 3, 4) + i,
         "i8": (np.arange(6, dtype=np.int8) - 3) * (i + 1),
         "i32": np.array([-2**31, 2**31 - 1, i], dtype=np.int32),
         "i64": np.array([-2**63, 2**63 - 1, i], dtype=np.int64),
         "f16": np.array([0.5, -65504, np.inf, i], dtype=np.float16),
         "f32": np.array([[1e-38, -3.25], [np.nan, i]], dtype=np.float32),
         "f64": np.array([np.pi, -1e300, i], dtype=np.float64),
         "scalar": np.array(i, dtype=np.int32),
         "name": "cats/caf\u00e9.%d.jpg" % i if i != 2 else ""} for i in range(5)]
write_stream(sys.argv[1], {"kind": "test", "note": "h\u00e9 \u732b"}, recs, {"skipped": "3"})
' "$T/a.stream"
	run tensor validate "$T/a.stream"
	assert_success
	assert_output ""
	# files
	tensor cat "$T/a.stream" > "$T/b.stream"
	cmp "$T/a.stream" "$T/b.stream"
	# pipes, through two and three processes
	cat "$T/a.stream" | tensor cat - | tensor cat - > "$T/c.stream"
	cmp "$T/a.stream" "$T/c.stream"
	tensor cat - < "$T/a.stream" | tensor cat -o "$T/d.stream" -
	cmp "$T/a.stream" "$T/d.stream"
	# and the values, read back by the independent reader
	py '
m1, r1, t1 = read_stream(sys.argv[1]); m2, r2, t2 = read_stream("-")
assert m1 == m2 and t1 == t2 == {"skipped": "3"} and len(r1) == len(r2) == 5
for a, b in zip(r1, r2):
    for k in a:
        if isinstance(a[k], str): assert a[k] == b[k]
        else: assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and a[k].tobytes() == b[k].tobytes(), k
' "$T/a.stream" < "$T/c.stream"
}

@test "tensor info reports metadata, schema, records and checksums" {
	py '
recs = [{"image": np.zeros((4, 4, 3), np.uint8), "label": np.array(i % 2, np.int32),
         "name": "cats/%s.jpg" % ("x" * (i + 1))} for i in range(3)]
write_stream(sys.argv[1], {"kind": "images", "classes": "cats,dogs", "cfg": "a\nb"}, recs, {"skipped": "1"})
' "$T/i.stream"
	run tensor info "$T/i.stream"
	assert_success
	assert_line "records: 3"
	assert_line "schema: uniform"
	assert_line "checksums: ok"
	assert_line "  kind=images"
	assert_line "  cfg=a\\nb"
	assert_line "  skipped=1"
	assert_line "  image u8 (4,4,3)"
	assert_line "  label i32 ()"
	assert_line "  name str (varies)"
	# through a pipe, the name is "standard input"
	run bash -c "tensor info < '$T/i.stream'"
	assert_line "file: standard input"
	# a record with another schema is reported
	py '
write_stream(sys.argv[1], {}, [{"x": np.zeros(3, np.float32)}, {"x": np.zeros(4, np.float32)}])
' "$T/v.stream"
	run tensor info "$T/v.stream"
	assert_success
	assert_line "schema: varies (record 1: tensor x is f32 (4), the first record had f32 (3))"
}

@test "tensor meta and dump print metadata and values" {
	py '
write_stream(sys.argv[1], {"kind": "t", "k": "v=w"}, [{"x": np.array([1.5, -2], np.float32), "n": "a\"b"},
             {"x": np.array([3, 4], np.float32), "n": "c"}], {"skipped": "7"})
' "$T/m.stream"
	run tensor meta "$T/m.stream"
	assert_success
	assert_output "$(printf 'kind=t\nk=v=w\nskipped=7')"
	run tensor meta -k skipped "$T/m.stream"
	assert_output "7"
	run ! tensor meta -k nope "$T/m.stream"
	assert_output --partial "no metadata key nope"
	run tensor dump "$T/m.stream"
	assert_success
	assert_line '0 x f32 (2) 1.5 -2'
	assert_line '0 n str (3) "a\"b"'
	assert_line '1 x f32 (2) 3 4'
	run tensor dump -t x -r 1 "$T/m.stream"
	assert_output '1 x f32 (2) 3 4'
	run ! tensor dump -r 5 "$T/m.stream"
	assert_output --partial "no record 5"
	run ! tensor dump -t y "$T/m.stream"
	assert_output --partial "no tensor y"
}

@test "tensor head takes the first N records as a valid stream" {
	py '
write_stream(sys.argv[1], {"kind": "t"}, [{"i": np.array(i, np.int64)} for i in range(5)], {"skipped": "1"})
' "$T/h.stream"
	tensor head -n 2 "$T/h.stream" > "$T/h2.stream"
	run tensor dump "$T/h2.stream"
	assert_output "$(printf '0 i i64 () 0\n1 i i64 () 1')"
	run tensor meta "$T/h2.stream"
	assert_output "kind=t"
	tensor head -n 0 - < "$T/h.stream" > "$T/h0.stream"
	run tensor info "$T/h0.stream"
	assert_line "records: 0"
	tensor head "$T/h.stream" | cmp - <(tensor head -n 5 "$T/h.stream")
}

@test "tensor cat of shards equals the unsharded stream, counters summed" {
	py '
recs = [{"image": np.full((2, 2, 3), i, np.uint8), "label": np.array(i % 2, np.int32),
         "name": "cats/%d.jpg" % i} for i in range(7)]
meta = {"kind": "images", "classes": "cats,dogs", "size": "2"}
write_stream(sys.argv[1] + "/all.stream", meta, recs, {"skipped": "5"})
write_stream(sys.argv[1] + "/s0.stream", meta, recs[:3], {"skipped": "2"})
write_stream(sys.argv[1] + "/s1.stream", meta, [], {"skipped": "0"})
write_stream(sys.argv[1] + "/s2.stream", meta, recs[3:], {"skipped": "3"})
' "$T"
	tensor cat "$T/s0.stream" "$T/s1.stream" "$T/s2.stream" > "$T/cat.stream"
	cmp "$T/all.stream" "$T/cat.stream"
	tensor cat "$T/s0.stream" - "$T/s2.stream" < "$T/s1.stream" | cmp "$T/all.stream" -
}

@test "tensor cat refuses different metadata or schema, naming the key" {
	py '
d = sys.argv[1]
r = [{"x": np.zeros(2, np.float32)}]
write_stream(d + "/a.stream", {"kind": "images", "classes": "cats,dogs"}, r, {"note": "x"})
write_stream(d + "/b.stream", {"kind": "images", "classes": "dogs,cats"}, r)
write_stream(d + "/c.stream", {"kind": "images"}, r)
write_stream(d + "/d.stream", {"kind": "images", "classes": "cats,dogs"}, [{"x": np.zeros(3, np.float32)}])
write_stream(d + "/e.stream", {"kind": "images", "classes": "cats,dogs"}, r, {"note": "y"})
' "$T"
	run ! tensor cat "$T/a.stream" "$T/b.stream"
	assert_output --partial "$T/b.stream: header metadata differs from $T/a.stream: key classes"
	run ! tensor cat "$T/a.stream" "$T/c.stream"
	assert_output --partial "no key classes"
	run ! tensor cat "$T/c.stream" "$T/a.stream"
	assert_output --partial "extra key classes"
	run ! tensor cat "$T/a.stream" "$T/d.stream"
	assert_output --partial "$T/d.stream: record 0: schema differs: tensor x is f32 (3)"
	run ! tensor cat "$T/a.stream" "$T/e.stream"
	assert_output --partial "end metadata note: 'y' differs"
	run ! tensor cat -o "$T/out.stream" "$T/a.stream" "$T/b.stream"
	[ ! -e "$T/out.stream" ]
	! ls -A "$T" | grep '^\.cnnpipe\.'   # the temporary (cnnpipe(7))
}

@test "an end chunk may not set a header key again; its own keys follow the header's" {
	# The header says size=224; an end chunk saying size=64 would give a
	# reader that looked at open (precompute) another answer than one that
	# looked at the end (tensor meta).
	py '
write_stream(sys.argv[1], {"kind": "images", "size": "224"}, [{"x": np.zeros(2, np.uint8)}],
             {"skipped": "1", "size": "64", "kind": "predictions"})
write_stream(sys.argv[2], {"kind": "images", "size": "224"}, [], {"skipped": "1"})
' "$T/over.stream" "$T/ok.stream"
	for cmd in validate meta "meta -k size" info "cat -o $T/out" "head -n 5 -o $T/out"; do
		run ! tensor $cmd "$T/over.stream"
		assert_output "tensor: $T/over.stream: byte 320: metadata key size is in both the header and the end chunk"
		[ ! -e "$T/out" ]
	done
	run tensor meta "$T/ok.stream"
	assert_output "$(printf 'kind=images\nsize=224\nskipped=1')"
	run tensor info "$T/ok.stream"
	assert_line "end metadata:"
	assert_line "  skipped=1"
}

@test "metadata values over 8 MiB pass through cat and head unchanged" {
	# One limit, the reader's: a descriptor of at most 16 MiB.
	py '
big = "x" * (9 << 20)
write_stream(sys.argv[1], {"kind": "t", "note": big}, [{"v": np.arange(3, dtype=np.uint8)}],
             {"log": "y" * (9 << 20)})
write_stream(sys.argv[2], {"kind": "t", "note": big}, [{"v": np.arange(3, dtype=np.uint8)}])
' "$T/big.stream" "$T/bighead.stream"
	tensor validate "$T/big.stream"
	tensor cat "$T/big.stream" | cmp - "$T/big.stream"
	tensor cat -o "$T/cat.stream" - < "$T/big.stream"
	cmp "$T/cat.stream" "$T/big.stream"
	tensor head "$T/bighead.stream" | cmp - "$T/bighead.stream"
	run tensor meta -k note "$T/big.stream"
	[ "${#output}" -eq $((9 << 20)) ]
	# two shards: counters summed, the big value agreed
	tensor cat "$T/big.stream" "$T/big.stream" > "$T/two.stream"
	run tensor info "$T/two.stream"
	assert_line "records: 2"
}

@test "tensor to-npy keeps the data for a pipe in TMPDIR" {
	py 'write_stream(sys.argv[1], {}, [{"x": np.arange(4, dtype=np.float32)}] * 3)' "$T/x.stream"
	run bash -c "set -o pipefail; TMPDIR='$T/none' tensor to-npy '$T/x.stream' | cat > '$T/x.npy'"
	assert_failure 1
	assert_output "tensor: $T/none: cannot make a temporary file: No such file or directory"
	mkdir "$T/tmp"
	TMPDIR="$T/tmp" tensor to-npy "$T/x.stream" | cat > "$T/x.npy"
	py 'a = np.load(sys.argv[1]); assert a.shape == (3, 4) and a[2, 3] == 3' "$T/x.npy"
	[ -z "$(ls -A "$T/tmp")" ]   # unnamed: nothing left behind
	# a regular file needs no temporary file
	TMPDIR="$T/none" tensor to-npy -o "$T/y.npy" "$T/x.stream"
	cmp "$T/x.npy" "$T/y.npy"
}

@test ".npy round trips of every numpy dtype through from-npy and to-npy" {
	py '
d = sys.argv[1]
for t in ["<f4", "<i4", "|u1", "|i1", "<i8", "<f8", "<f2"]:
    a = (np.arange(2 * 3 * 5).reshape(2, 3, 5) - 7).astype(t)
    np.save(d + "/%s.npy" % t[1:], a)
np.save(d + "/v.npy", np.arange(4, dtype=np.float32))        # 1-d: scalars
np.save(d + "/lab.npy", np.array([0, 1, 1, 0], dtype=np.int32))
np.save(d + "/big.npy", np.zeros((3, 70000), np.uint8).reshape(3, 7, 10000))
' "$T"
	for t in f4 i4 u1 i1 i8 f8 f2 v big; do
		tensor from-npy "$T/$t.npy" > "$T/$t.stream"
		tensor to-npy "$T/$t.stream" > "$T/$t.out.npy"           # seekable output
		tensor to-npy - < "$T/$t.stream" | cat > "$T/$t.pipe.npy"   # pipe output
		tensor from-npy - < "$T/$t.npy" | tensor to-npy -o "$T/$t.o.npy"
		cmp "$T/$t.out.npy" "$T/$t.pipe.npy"
		cmp "$T/$t.out.npy" "$T/$t.o.npy"
		py '
a = np.load(sys.argv[1]); b = np.load(sys.argv[2])
assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes(), (a, b)
' "$T/$t.npy" "$T/$t.out.npy"
	done
	run tensor info "$T/v.stream"
	assert_line "  x f32 ()"
	# two arrays become two tensors of each record, with metadata
	tensor from-npy -n x -m kind=activations --meta classes=cats,dogs \
		"$T/v.npy" label="$T/lab.npy" > "$T/xl.stream"
	run tensor dump -r 2 "$T/xl.stream"
	assert_output "$(printf '2 x f32 () 2\n2 label i32 () 1')"
	run tensor meta -k classes "$T/xl.stream"
	assert_output "cats,dogs"
	# the stream written by the C API is read by the independent reader
	py '
m, r, t = read_stream(sys.argv[1])
assert m == {"kind": "activations", "classes": "cats,dogs"} and len(r) == 4
assert [float(x["x"]) for x in r] == [0, 1, 2, 3] and [int(x["label"]) for x in r] == [0, 1, 1, 0]
' "$T/xl.stream"
}

@test "bf16 and str tensors: bf16 becomes f32 in .npy, str is refused" {
	# A bf16 tensor, crafted by hand with the Python primitives.
	py '
import struct, cnnpipe_stream as cs
bits = np.array([0x3fc0, 0xc000, 0x7f80, 0x0001], "<u2")   # 1.5, -2, inf, tiny
nb = b"w"
desc = struct.pack("<H", 1) + nb + struct.pack("<BB", 6, 1) + struct.pack("<Q", 4) + struct.pack("<QQ", 64, 8)
out = cs.MAGIC + struct.pack("<I", 1) + b"\0" * 52 + cs._chunk(b"CNPH", b"", 0, 0)
out += cs._chunk(b"CNPR", desc, 1, 0, [bits.tobytes()]) + cs._chunk(b"CNPE", b"", 0, 1)
open(sys.argv[1], "wb").write(out)
' "$T/bf.stream"
	run tensor dump "$T/bf.stream"
	assert_output "0 w bf16 (4) 1.5 -2 inf 9.18354962e-41"
	tensor to-npy "$T/bf.stream" > "$T/bf.npy"
	py '
a = np.load(sys.argv[1]); assert a.dtype == np.float32 and a.shape == (1, 4)
assert a[0, 0] == 1.5 and a[0, 1] == -2 and np.isinf(a[0, 2]) and a[0, 3].view(np.uint32) == 0x10000
' "$T/bf.npy"
	tensor cat "$T/bf.stream" | cmp - "$T/bf.stream"
	py 'write_stream(sys.argv[1], {}, [{"name": "a"}])' "$T/s.stream"
	run ! tensor to-npy -t name "$T/s.stream"
	assert_output --partial "tensor name is text (str)"
	run ! tensor to-npy "$T/s.stream"
	assert_output --partial "no numeric tensor"
	py 'write_stream(sys.argv[1], {}, [{"a": np.zeros(1, np.uint8), "b": np.zeros(1, np.uint8)}])' "$T/ab.stream"
	run ! tensor to-npy "$T/ab.stream"
	assert_output --partial "choose one with -t"
}

@test "from-npy refuses unsupported or malformed .npy files" {
	py '
d = sys.argv[1]
np.save(d + "/fortran.npy", np.asfortranarray(np.zeros((2, 3), np.float32)))
np.save(d + "/big-endian.npy", np.zeros(3, ">f4"))
np.save(d + "/object.npy", np.array([1, "a"], dtype=object), allow_pickle=True)
np.save(d + "/bool.npy", np.zeros(3, bool))
np.save(d + "/zero-dim.npy", np.zeros((2, 0), np.float32))
np.save(d + "/scalar.npy", np.float32(1))
np.save(d + "/ok.npy", np.zeros((4, 3), np.float32))
b = open(d + "/ok.npy", "rb").read()
open(d + "/truncated.npy", "wb").write(b[:-5])
open(d + "/trailing.npy", "wb").write(b + b"x")
open(d + "/header-cut.npy", "wb").write(b[:30])
open(d + "/not.npy", "wb").write(b"PK\3\4" + b"\0" * 40)
h = b"{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (99999999999, 99999999999, 99999999999), }"
open(d + "/huge.npy", "wb").write(b"\x93NUMPY\x01\x00" + bytes([len(h) + 1, 0]) + h + b"\n")
h = b"{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (10, 8589934592), }"
open(d + "/toobig.npy", "wb").write(b"\x93NUMPY\x01\x00" + bytes([len(h) + 1, 0]) + h + b"\n")
' "$T"
	for case in "fortran:Fortran order" "big-endian:not supported" "object:not supported" \
		"bool:not supported" "zero-dim:dimension 1 is zero" "scalar:0-d array" \
		"truncated:truncated .npy data" "trailing:data after the array" \
		"header-cut:truncated .npy header" "not:bad magic" "huge:overflows" "toobig:would exceed"; do
		run ! tensor from-npy -o "$T/out.stream" "$T/${case%%:*}.npy"
		assert_failure 1
		assert_output --partial "tensor: $T/${case%%:*}.npy: "
		assert_output --partial "${case#*:}"
		[ ! -e "$T/out.stream" ]
	done
}

@test "every class of malformed stream is refused naming the file, exit 1" {
	"$PYTHON" "$REPO/tests/make_bad_streams.py" "$T/bad"
	run tensor validate "$T/bad/good.stream"
	assert_success
	n=0
	while IFS="$(printf '\t')" read -r f words; do
		for cmd in validate info "cat" "head -n 1000" meta; do
			run tensor $cmd "$T/bad/$f"
			[ "$status" -eq 1 ] || { echo "$cmd $f: status $status: $output"; false; }
			case "$output" in
			*"tensor: $T/bad/$f: byte "*"$words"*) ;;
			*) echo "$cmd $f: expected '$words': $output"; false ;;
			esac
		done
		# the same through a pipe
		run bash -c "tensor validate - < '$T/bad/$f'"
		[ "$status" -eq 1 ] && [[ "$output" == *"standard input: byte "*"$words"* ]] ||
			{ echo "pipe $f: $output"; false; }
		n=$((n + 1))
	done < "$T/bad/MANIFEST"
	[ "$n" -ge 40 ]
	run ! tensor validate "$T/nonexistent.stream"
	assert_output "tensor: $T/nonexistent.stream: No such file or directory"
	run ! tensor info "$T"
	assert_output "tensor: $T: byte 0: read error: Is a directory"
}

@test "a lying chunk length costs no memory beyond the input" {
	"$PYTHON" "$REPO/tests/make_bad_streams.py" "$T/bad"
	run /usr/bin/time -f "rss=%M" tensor validate "$T/bad/chunk-length-lie.stream"
	assert_failure 1
	rss=$(echo "$output" | sed -n 's/^rss=//p')
	echo "peak RSS ${rss} kB"
	[ "$rss" -lt 20000 ]
}

@test "a stream over 1 GiB passes through tensor cat in bounded memory" {
	# 1100 records of 1 MiB: from-npy | cat | info, generated on the fly.
	"$PYTHON" -c '
import sys, numpy.lib.format as F
F.write_array_header_2_0(sys.stdout.buffer, {"descr": "|u1", "fortran_order": False, "shape": (1100, 1 << 20)})' > "$T/hdr"
	{ cat "$T/hdr"; head -c $((1100 << 20)) /dev/zero; } |
		tensor from-npy -m kind=test - |
		/usr/bin/time -v -o "$T/cat.time" tensor cat - |
		/usr/bin/time -v -o "$T/info.time" tensor info - > "$T/info.out"
	grep -qx "records: 1100" "$T/info.out"
	grep -qx "checksums: ok" "$T/info.out"
	grep -qx "  x u8 (1048576)" "$T/info.out"
	cat_rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$T/cat.time")
	info_rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$T/info.time")
	echo "# 1.1 GiB stream: peak RSS tensor cat ${cat_rss} kB, tensor info ${info_rss} kB" >&3
	[ "$cat_rss" -lt 102400 ]
	[ "$info_rss" -lt 102400 ]
}

@test "write errors on standard output fail with exit 1" {
	py 'write_stream(sys.argv[1], {"k": "v"}, [{"x": np.zeros(100000, np.float32)}])' "$T/w.stream"
	for cmd in "cat" "head -n 1"; do
		run bash -c "tensor $cmd '$T/w.stream' > /dev/full"
		assert_failure 1
		assert_output --partial "write error"
	done
	run bash -c "tensor to-npy '$T/w.stream' > /dev/full"
	assert_failure 1
	run bash -c "tensor dump '$T/w.stream' > /dev/full"
	assert_failure 1
	assert_output --partial "write error"
	run bash -c "tensor info '$T/w.stream' > /dev/full"
	assert_failure 1
}

@test "the worked example in cnnpipe-tensor(5) is what the writers produce" {
	py '
write_stream(sys.argv[1], {"kind": "test"}, [{"v": np.array([1, 2, 3], np.uint8)}], {"skipped": "0"})
' "$T/ex.stream"
	# the C writer re-encodes it to the same bytes
	tensor cat "$T/ex.stream" | cmp - "$T/ex.stream"
	[ "$(stat -c %s "$T/ex.stream")" -eq 320 ]
	# every full line of the page's hex dump matches the file
	n=0
	while read -r off rest; do
		hex=$(echo "$rest" | cut -c1-48 | tr -d ' ')
		got=$(od -An -tx1 -v -j $((16#$off)) -N 16 "$T/ex.stream" | tr -d ' \n')
		[ "$hex" = "$got" ] || { echo "offset $off: page $hex, file $got"; false; }
		n=$((n + 1))
	done < <(grep -E '^[0-9a-f]{8}  ([0-9a-f]{2} ){8} ([0-9a-f]{2} ){7}[0-9a-f]{2}' "$REPO/man/man5/cnnpipe-tensor.5")
	[ "$n" -eq 12 ]
}
