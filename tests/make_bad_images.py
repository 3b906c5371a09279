#!/usr/bin/python3
# Damaged and oversized images for tests/imgprep.bats, made from generated
# pictures (never from the dev photos).
#   make_bad_images.py flips DIR      DIR/ok.jpg, DIR/extra.jpg (bytes between
#                                     the scan and EOI) and DIR/flip00..39.jpg
#                                     (one bit of the scan flipped each, seeded)
#   make_bad_images.py png FILE W H   a WxH 16-bit RGBA PNG, all zero: a few
#                                     hundred KB that claim 8 bytes a pixel
#   make_bad_images.py bomb FILE MB   a 100x100 RGB PNG whose IDAT stream goes
#                                     on to inflate to MB MiB more
#   make_bad_images.py progressive FILE W H
#                                     a progressive 4:4:4 JPEG whose header
#                                     claims WxH (the data is a 64x64 image's)
import io
import random
import struct
import sys
import zlib

import numpy as np
from PIL import Image


def photo(w, h, seed):
    """Smooth gradients with noise: compresses like a photo."""
    y, x = np.mgrid[0:h, 0:w]
    a = np.stack([x * 200.0 / w, y * 200.0 / h, (x + y) * 100.0 / (w + h)], -1)
    a += np.random.default_rng(seed).normal(0, 12, (h, w, 3))
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def jpeg(im, **kw):
    buf = io.BytesIO()
    im.save(buf, "JPEG", **kw)
    return buf.getvalue()


def flips(d):
    b = jpeg(photo(160, 120, 3), quality=90)
    open(d + "/ok.jpg", "wb").write(b)
    assert b[-2:] == b"\xff\xd9"
    open(d + "/extra.jpg", "wb").write(b[:-2] + bytes(range(1, 41)) + b[-2:])
    sos = b.index(b"\xff\xda")
    start = sos + 2 + int.from_bytes(b[sos + 2:sos + 4], "big")
    r = random.Random(1)
    for k in range(40):
        c = bytearray(b)
        c[r.randrange(start, len(c) - 2)] ^= 1 << r.randrange(8)
        open(d + "/flip%02d.jpg" % k, "wb").write(c)


def chunk(t, data):
    return struct.pack(">I", len(data)) + t + data + struct.pack(">I", zlib.crc32(t + data))


def png(path, w, h):
    co = zlib.compressobj(9)
    row = bytes(1 + 8 * w)     # filter byte, then RGBA at 16 bits
    idat = b"".join(co.compress(row) for _ in range(h)) + co.flush()
    ihdr = struct.pack(">IIBBBBB", w, h, 16, 6, 0, 0, 0)
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) +
                           chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def bomb(path, mb):
    co = zlib.compressobj(9)
    idat = b"".join(co.compress(bytes(1 + 3 * 100)) for _ in range(100))
    idat += b"".join(co.compress(bytes(1 << 20)) for _ in range(mb)) + co.flush()
    ihdr = struct.pack(">IIBBBBB", 100, 100, 8, 2, 0, 0, 0)
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) +
                           chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def progressive(path, w, h):
    b = bytearray(jpeg(photo(64, 64, 4), quality=90, progressive=True, subsampling=0))
    i = b.index(b"\xff\xc2")
    b[i + 5:i + 9] = struct.pack(">HH", h, w)
    open(path, "wb").write(b)


cmd = sys.argv[1]
if cmd == "flips":
    flips(sys.argv[2])
elif cmd == "png":
    png(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
elif cmd == "bomb":
    bomb(sys.argv[2], int(sys.argv[3]))
elif cmd == "progressive":
    progressive(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
else:
    sys.exit("make_bad_images.py: unknown command " + cmd)
