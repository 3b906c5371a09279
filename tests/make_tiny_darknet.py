#!/usr/bin/python3
# A tiny darknet network for tests/pipeline.bats: writes CFG (32x32 input,
# two batch-normalised convolutionals around a maxpool, then darknet's
# classifier tail) and a matching WEIGHTS file of random values (fixed seed).
#
#   make_tiny_darknet.py CFG WEIGHTS [SEED [FILTERS]]
#
# FILTERS: of the first convolutional (default 8).
#
# .weights as formats/darknet.c reads it: a header of int32 major, minor,
# revision and then "seen" (int64 from version 0.2, so 20 bytes here); then
# for each convolutional in cfg order, all little-endian f32: biases[f],
# and with batch_normalize scales[f], rolling means[f], rolling variances[f]
# (positive), then weights[f][c][size][size].  Nothing may follow.
import random
import struct
import sys

CFG = """[net]
width=32
height=32
channels=3

[convolutional]
batch_normalize=1
filters={f0}
size=3
stride=1
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
filters=10
size=1
stride=1
pad=1
activation=linear

[avgpool]

[softmax]
groups=1
"""


def convs(f0):
    """(filters, input channels, size, batch_normalize) of each convolutional."""
    return [(f0, 3, 3, 1), (16, f0, 3, 1), (10, 16, 1, 0)]


def main():
    if len(sys.argv) not in (3, 4, 5):
        sys.exit("usage: make_tiny_darknet.py CFG WEIGHTS [SEED [FILTERS]]")
    cfg, weights = sys.argv[1], sys.argv[2]
    rng = random.Random(int(sys.argv[3]) if len(sys.argv) >= 4 else 1)
    f0 = int(sys.argv[4]) if len(sys.argv) == 5 else 8
    with open(cfg, "w") as f:
        f.write(CFG.replace("{f0}", str(f0)))

    def floats(n, lo, hi):
        return struct.pack("<%df" % n, *(rng.uniform(lo, hi) for _ in range(n)))

    out = [struct.pack("<3iq", 0, 2, 0, 0)]
    for filters, c, size, bn in convs(f0):
        out.append(floats(filters, -0.1, 0.1))              # biases
        if bn:
            out.append(floats(filters, 0.5, 1.5))           # scales
            out.append(floats(filters, -0.1, 0.1))          # rolling means
            out.append(floats(filters, 0.5, 1.5))           # rolling variances
        scale = (2.0 / (c * size * size)) ** 0.5
        out.append(floats(filters * c * size * size, -scale, scale))
    with open(weights, "wb") as f:
        f.write(b"".join(out))


if __name__ == "__main__":
    main()
