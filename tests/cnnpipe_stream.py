"""Reader and writer of the cnnpipe tensor stream, written from
man/man5/cnnpipe-tensor.5 alone: it doubles as the check that the page
defines the bytes.  Used by the tests and fixture scripts (numpy only).

    from cnnpipe_stream import read_stream, write_stream
    meta, records, trailer = read_stream("x.stream")
    write_stream("y.stream", {"kind": "images"}, [{"image": arr, "name": "a.jpg"}])
"""
import struct
import sys
import zlib

import numpy as np

MAGIC = b"\x89CNP\r\n\x1a\n"
DTYPES = {1: np.uint8, 2: np.int8, 3: np.int32, 4: np.int64, 5: np.float16,
          6: None, 7: np.float32, 8: np.float64, 9: "str"}


def _align(n):
    return (n + 63) & ~63


def _chunk(tag, desc, count, seq, data_parts=()):
    body = bytearray(struct.pack("<QIIQ", 0, len(desc), count, seq) + desc)
    body += b"\0" * (_align(8 + len(body)) - 8 - len(body))
    for part in data_parts:
        body += part
        body += b"\0" * (_align(8 + len(body)) - 8 - len(body))
    total = 8 + len(body)
    struct.pack_into("<Q", body, 0, total)
    crc = zlib.crc32(bytes(body)) & 0xFFFFFFFF
    return tag + struct.pack("<I", crc) + bytes(body)


def _meta_desc(meta):
    d = b""
    for k, v in meta.items():
        kb, vb = k.encode(), str(v).encode()
        d += struct.pack("<I", len(kb)) + kb + struct.pack("<I", len(vb)) + vb
    return d


def _code(arr):
    if isinstance(arr, str):
        return 9
    for c, t in DTYPES.items():
        if t is not None and t != "str" and arr.dtype == np.dtype(t):
            return c
    raise ValueError("unsupported dtype %s" % arr.dtype)


def encode_record(tensors, seq):
    items = []
    for name, a in tensors.items():
        if isinstance(a, str):
            raw = a.encode()
            items.append((name, 9, (len(raw),), raw))
        else:
            a = np.array(a, copy=False, order="C")  # keeps 0-d shapes
            if a.dtype.byteorder == ">":
                a = a.astype(a.dtype.newbyteorder("<"))
            items.append((name, _code(a), a.shape, a.tobytes()))
    desc_len = sum(4 + len(n.encode()) + 8 * len(s) + 16 for n, _, s, _ in items)
    pos = _align(32 + desc_len)
    desc = b""
    for name, code, shape, raw in items:
        nb = name.encode()
        desc += struct.pack("<H", len(nb)) + nb + struct.pack("<BB", code, len(shape))
        desc += b"".join(struct.pack("<Q", d) for d in shape)
        desc += struct.pack("<QQ", pos, len(raw))
        pos = _align(pos + len(raw))
    return _chunk(b"CNPR", desc, len(items), seq, [raw for *_, raw in items])


def write_stream(path, meta, records, trailer=None):
    out = bytearray(MAGIC + struct.pack("<I", 1) + b"\0" * 52)
    out += _chunk(b"CNPH", _meta_desc(meta), len(meta), 0)
    for i, rec in enumerate(records):
        out += encode_record(rec, i)
    trailer = trailer or {}
    out += _chunk(b"CNPE", _meta_desc(trailer), len(trailer), len(records))
    if path == "-":
        sys.stdout.buffer.write(out)
    else:
        with open(path, "wb") as f:
            f.write(out)


class StreamError(Exception):
    pass


def _read_chunk(buf, off):
    if off + 32 > len(buf):
        raise StreamError("byte %d: truncated" % off)
    tag = buf[off:off + 4]
    crc, length, desc_len, count, seq = struct.unpack_from("<IQIIQ", buf, off + 4)
    if length % 64 or length < 64 or off + length > len(buf):
        raise StreamError("byte %d: bad chunk length" % off)
    if zlib.crc32(buf[off + 8:off + length]) & 0xFFFFFFFF != crc:
        raise StreamError("byte %d: checksum mismatch" % off)
    return tag, length, buf[off + 32:off + 32 + desc_len], count, seq


def _parse_meta(desc, count):
    meta, p = {}, 0
    for _ in range(count):
        (kl,) = struct.unpack_from("<I", desc, p)
        k = desc[p + 4:p + 4 + kl].decode()
        p += 4 + kl
        (vl,) = struct.unpack_from("<I", desc, p)
        meta[k] = desc[p + 4:p + 4 + vl].decode()
        p += 4 + vl
    return meta


def _parse_record(buf, off, desc, count):
    rec, p = {}, 0
    for _ in range(count):
        (nl,) = struct.unpack_from("<H", desc, p)
        name = desc[p + 2:p + 2 + nl].decode()
        code, ndim = desc[p + 2 + nl], desc[p + 3 + nl]
        p += 4 + nl
        shape = struct.unpack_from("<%dQ" % ndim, desc, p)
        p += 8 * ndim
        doff, nbytes = struct.unpack_from("<QQ", desc, p)
        p += 16
        raw = buf[off + doff:off + doff + nbytes]
        if code == 9:
            rec[name] = raw.decode()
        elif code == 6:   # bf16: the upper half of an f32
            u = np.frombuffer(raw, "<u2").astype(np.uint32) << 16
            rec[name] = u.view(np.float32).reshape(shape)
        else:
            rec[name] = np.frombuffer(raw, np.dtype(DTYPES[code]).newbyteorder("<")).reshape(shape)
    return rec


def read_stream(path):
    """Returns (header metadata, list of records as dicts, end-chunk metadata)."""
    if path == "-":
        buf = sys.stdin.buffer.read()
    else:
        with open(path, "rb") as f:
            buf = f.read()
    if buf[:8] != MAGIC:
        raise StreamError("bad magic")
    (version,) = struct.unpack_from("<I", buf, 8)
    if version != 1:
        raise StreamError("unknown version %d" % version)
    off = 64
    tag, length, desc, count, _ = _read_chunk(buf, off)
    if tag != b"CNPH":
        raise StreamError("no header chunk")
    meta = _parse_meta(desc, count)
    off += length
    records = []
    while True:
        tag, length, desc, count, seq = _read_chunk(buf, off)
        if tag == b"CNPE":
            if seq != len(records):
                raise StreamError("record count mismatch")
            trailer = _parse_meta(desc, count)
            if meta.keys() & trailer.keys():
                raise StreamError("byte %d: end chunk repeats header keys %s"
                                  % (off, sorted(meta.keys() & trailer.keys())))
            return meta, records, trailer
        if tag != b"CNPR" or seq != len(records):
            raise StreamError("byte %d: unexpected chunk" % off)
        records.append(_parse_record(buf, off, desc, count))
        off += length
