#!/usr/bin/python3
"""Writes one malformed tensor stream per class of damage into DIR, and
DIR/MANIFEST: lines "file<TAB>words the reader's message must contain".
Built from the primitives of cnnpipe_stream.py, so that each stream is wrong
in exactly one way (CRCs are valid unless the checksum is the damage).

    make_bad_streams.py DIR
"""
import os
import struct
import sys
import zlib

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cnnpipe_stream import MAGIC, _chunk, _meta_desc, encode_record  # noqa: E402

PRE = MAGIC + struct.pack("<I", 1) + b"\0" * 52


def header(meta=None):
    meta = {"kind": "test"} if meta is None else meta
    return _chunk(b"CNPH", _meta_desc(meta), len(meta), 0)


def end(n, meta=None):
    meta = meta or {}
    return _chunk(b"CNPE", _meta_desc(meta), len(meta), n)


def rec(i=0):
    return encode_record({"x": np.arange(6, dtype=np.float32).reshape(2, 3),
                          "name": "cats/cat.%d.jpg" % i}, i)


def raw_record(name, code, dims, nbytes, seq=0, data=b""):
    """A record chunk with one tensor whose descriptor says anything."""
    nb = name.encode()
    desc = struct.pack("<H", len(nb)) + nb + struct.pack("<BB", code, len(dims))
    desc += b"".join(struct.pack("<Q", d & 0xFFFFFFFFFFFFFFFF) for d in dims)
    off = (32 + len(desc) + 16 + 63) & ~63   # canonical: right after the descriptor
    desc += struct.pack("<QQ", off, nbytes)
    return _chunk(b"CNPR", desc, 1, seq, [data] if data else [])


def raw_meta_chunk(tag, desc, count, seq=0):
    return _chunk(tag, desc, count, seq)


def kv(k, v):
    return struct.pack("<I", len(k)) + k + struct.pack("<I", len(v)) + v


def main():
    d = sys.argv[1]
    os.makedirs(d, exist_ok=True)
    good = PRE + header() + rec(0) + rec(1) + end(2)
    r0 = len(PRE) + len(header())            # first record's offset
    cases = {
        "empty": (b"", "empty stream"),
        "wrong-magic": (b"GIF89a" + good[6:], "bad magic"),
        "text": (b"hello, world\n" * 10, "bad magic"),
        "unknown-version": (good[:8] + struct.pack("<I", 2) + good[12:],
                            "unsupported format version 2"),
        "dirty-preamble": (good[:40] + b"\1" + good[41:], "nonzero reserved byte"),
        "truncated-preamble": (good[:40], "truncated preamble"),
        "truncated-header": (good[:64 + 20], "truncated chunk header"),
        "truncated-header-chunk": (good[:r0 - 10], "truncated chunk"),
        "truncated-payload": (good[:r0 + 100], "truncated chunk"),
        "no-end-chunk": (good[:-64], "no end chunk"),
        "checksum": (good[:r0 + 70] + bytes([good[r0 + 70] ^ 4]) + good[r0 + 71:],
                     "checksum mismatch"),
        "no-header-chunk": (PRE + rec(0) + end(1), "expected a CNPH chunk"),
        "unknown-tag": (PRE + header() + b"JUNK" + rec(0)[4:] + end(1), "unknown chunk tag"),
        "chunk-length-odd": (PRE + header()[:8] + struct.pack("<Q", 100) + header()[16:],
                             "not a positive multiple of 64"),
        # A length that claims 3 GiB in a tiny stream: refused without
        # allocating it (the buffer grows only as bytes arrive).
        "chunk-length-lie": (PRE + header() + rec(0)[:8] + struct.pack("<Q", 3 << 30) +
                             rec(0)[16:] + end(1), "truncated chunk"),
        "chunk-length-huge": (PRE + header() + rec(0)[:8] + struct.pack("<Q", 1 << 62) +
                              rec(0)[16:] + end(1), "exceeds the cap"),
        "shape-overflow": (PRE + header() + raw_record("x", 7, [1 << 39, 1 << 39], 0) + end(1),
                           "overflows"),
        "shape-over-cap": (PRE + header() + raw_record("x", 7, [1 << 31, 4], 1 << 35) + end(1),
                           "overflows the record cap"),
        "zero-dim": (PRE + header() + raw_record("x", 7, [0, 3], 0) + end(1),
                     "dimension 0 is zero"),
        "negative-dim": (PRE + header() + raw_record("x", 7, [-1], 4) + end(1),
                         "negative or absurd"),
        "too-many-dims": (PRE + header() + raw_record("x", 1, [1] * 9, 1, data=b"\1") + end(1),
                          "9 dimensions"),
        "nbytes-mismatch": (PRE + header() + raw_record("x", 1, [4], 3, data=b"abc") + end(1),
                            "its shape needs 4"),
        "str-2d": (PRE + header() + raw_record("s", 9, [2, 2], 4, data=b"abcd") + end(1),
                   "a str tensor has 1 dimension, not 2"),
        "unknown-dtype": (PRE + header() + raw_record("x", 42, [4], 4, data=b"abcd") + end(1),
                          "unknown dtype code 42"),
        "bad-tensor-name": (PRE + header() + raw_record("a b", 1, [1], 1, data=b"a") + end(1),
                            "invalid name"),
        "duplicate-tensor": (PRE + header() + _dup_tensor() + end(1), "appears twice"),
        "garbage-metadata": (PRE + raw_meta_chunk(b"CNPH", bytes(range(7, 107)), 3) +
                             end(0), "runs past the descriptor"),
        "metadata-bad-key": (PRE + raw_meta_chunk(b"CNPH", kv(b"a=b c", b"1"), 1) + end(0),
                             "invalid key"),
        "metadata-not-utf8": (PRE + raw_meta_chunk(b"CNPH", kv(b"k", b"\xff\xfe"), 1) + end(0),
                              "not UTF-8"),
        "metadata-nul": (PRE + raw_meta_chunk(b"CNPH", kv(b"k", b"a\0b"), 1) + end(0),
                         "NUL byte"),
        "metadata-duplicate": (PRE + raw_meta_chunk(b"CNPH", kv(b"k", b"1") + kv(b"k", b"2"), 2)
                               + end(0), "appears twice"),
        "metadata-stray": (PRE + raw_meta_chunk(b"CNPH", kv(b"k", b"1") + b"zz", 1) + end(0),
                           "stray bytes"),
        "metadata-padding": (PRE + _dirty_meta_padding() + end(0),
                             "nonzero padding after the metadata"),
        # 2 entries claimed in 10 bytes: each takes 9 at least.
        "metadata-count-lie": (PRE + raw_meta_chunk(b"CNPH", kv(b"k", b"v"), 2) + end(0),
                               "2 metadata entries cannot fit a descriptor of 10 bytes"),
        # A record descriptor over the 16 MiB cap of every descriptor, in a
        # chunk long enough to hold it.
        "record-descriptor-over-cap": (PRE + header() + _record_header(64 << 20, (16 << 20) + 1),
                                       "descriptor length 16777217 exceeds the cap"),
        # The end chunk may not set again what the header set.
        "end-repeats-header": (PRE + header({"kind": "images", "size": "224"}) + rec(0) +
                               end(1, {"skipped": "0", "size": "64"}),
                               "metadata key size is in both the header and the end chunk"),
        "sequence-gap": (PRE + header() + rec(0) + rec(2) + end(2), "sequence number 2"),
        "end-count": (PRE + header() + rec(0) + end(5), "end chunk counts 5"),
        "after-end": (good + b"\0" * 64, "data after the end chunk"),
        "second-header": (PRE + header() + rec(0) + header() + end(1),
                          "unexpected header chunk"),
    }
    with open(os.path.join(d, "MANIFEST"), "w") as m:
        for name, (data, words) in sorted(cases.items()):
            path = os.path.join(d, name + ".stream")
            with open(path, "wb") as f:
                f.write(data)
            m.write("%s.stream\t%s\n" % (name, words))
    with open(os.path.join(d, "good.stream"), "wb") as f:
        f.write(good)


def _dirty_meta_padding():
    c = bytearray(header())
    c[-1] = 1
    struct.pack_into("<I", c, 4, zlib.crc32(bytes(c[8:])) & 0xFFFFFFFF)
    return bytes(c)


def _record_header(length, desc):
    """The first 32 bytes of a record chunk (the rest never arrives)."""
    return b"CNPR" + struct.pack("<IQIIQ", 0, length, desc, 1, 0)


def _dup_tensor():
    r = encode_record({"x": np.zeros(2, np.uint8), "y": np.zeros(2, np.uint8)}, 0)
    # rename y to x inside the descriptor and fix the CRC
    b = bytearray(r)
    i = b.index(b"\x01\x00y", 32)
    b[i + 2] = ord("x")
    struct.pack_into("<I", b, 4, zlib.crc32(bytes(b[8:])) & 0xFFFFFFFF)
    return bytes(b)


main()
