#!/usr/bin/python3
"""Regenerates the fuzz seed corpora (small valid inputs):
tests/fuzz/corpus/stream/*.stream, tests/fuzz/corpus/npy/*.npy,
tests/fuzz/corpus/darknet_cfg/* (a head byte, '0' fast.ai or '1' ImageNet,
then a cfg) and tests/fuzz/corpus/model_file/*.model (made by bin/pretrained
from a tiny cfg and random weights; skipped when it is not built)."""
import io
import os
import random
import struct
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
from cnnpipe_stream import write_stream  # noqa: E402


def main():
    sd = os.path.join(HERE, "corpus", "stream")
    nd = os.path.join(HERE, "corpus", "npy")
    os.makedirs(sd, exist_ok=True)
    os.makedirs(nd, exist_ok=True)
    write_stream(os.path.join(sd, "empty.stream"), {}, [])
    write_stream(os.path.join(sd, "meta.stream"),
                 {"kind": "images", "classes": "cats,dogs", "size": "2"}, [],
                 {"skipped": "3", "kind": "images"})
    recs = [{"image": np.arange(12, dtype=np.uint8).reshape(2, 2, 3) + i,
             "label": np.array(i % 2, dtype=np.int32), "name": "cats/c%d.jpg" % i}
            for i in range(3)]
    write_stream(os.path.join(sd, "images.stream"),
                 {"kind": "images", "labelled": "1"}, recs, {"skipped": "0"})
    dts = [np.uint8, np.int8, np.int32, np.int64, np.float16, np.float32, np.float64]
    rec = {"t%d" % i: np.arange(6, dtype=d).reshape(3, 2) for i, d in enumerate(dts)}
    rec["s"] = ""
    rec["u"] = "h\u00e9"
    write_stream(os.path.join(sd, "dtypes.stream"), {"k": "v"}, [rec, {}])
    for name, a in [("f4", np.arange(6, dtype="<f4").reshape(2, 3)),
                    ("u1", np.arange(4, dtype="|u1")),
                    ("i8", np.arange(8, dtype="<i8").reshape(2, 2, 2)),
                    ("f2", np.ones((1, 1), dtype="<f2")),
                    ("f8", np.zeros((3,), dtype="<f8")),
                    ("i4", np.arange(3, dtype="<i4").reshape(3, 1))]:
        b = io.BytesIO()
        np.save(b, a)
        with open(os.path.join(nd, name + ".npy"), "wb") as f:
            f.write(b.getvalue())

    darknet_seeds()


# 8x8 input, a batch-normalised 3x3 convolutional, a maxpool, then darknet's
# classifier tail (1x1 convolutional, avgpool, softmax).
TINY_CFG = """[net]
width=8
height=8
channels=3
[convolutional]
batch_normalize=1
filters=4
size=3
stride=1
pad=1
activation=leaky
[maxpool]
size=2
stride=2
[convolutional]
filters=3
size=1
stride=1
pad=1
activation=linear
[avgpool]
[softmax]
groups=1
"""

# darknet's resnet blocks: a shortcut of the same size, then one onto a
# stride-2 output with more channels.
RES_CFG = """[net]
width=16
height=16
channels=3
[convolutional]
batch_normalize=1
filters=4
size=3
stride=1
pad=1
activation=leaky
[convolutional]
batch_normalize=1
filters=4
size=3
stride=1
pad=1
activation=linear
[shortcut]
from=-2
activation=leaky
[convolutional]
batch_normalize=1
filters=8
size=3
stride=2
pad=1
activation=relu
[shortcut]
from=-2
[convolutional]
filters=5
size=1
stride=1
pad=1
activation=linear
[avgpool]
[softmax]
"""


def darknet_seeds():
    cd = os.path.join(HERE, "corpus", "darknet_cfg")
    md = os.path.join(HERE, "corpus", "model_file")
    os.makedirs(cd, exist_ok=True)
    os.makedirs(md, exist_ok=True)
    for name, head, cfg in [("tiny-fastai", "0", TINY_CFG), ("tiny-imagenet", "1", TINY_CFG),
                            ("res-fastai", "0", RES_CFG), ("res-imagenet", "1", RES_CFG)]:
        with open(os.path.join(cd, name), "w") as f:
            f.write(head + cfg)
    pretrained = os.path.join(HERE, "..", "..", "bin", "pretrained")
    if not os.path.exists(pretrained):
        print("make_corpus.py: no bin/pretrained: model_file seeds not made")
        return
    rng = random.Random(1)
    out = [struct.pack("<3iq", 0, 2, 0, 0)]
    for filters, c, size, bn in [(4, 3, 3, 1), (3, 4, 1, 0)]:
        n = filters * (4 if bn else 1) + filters * c * size * size
        out.append(struct.pack("<%df" % n, *(rng.uniform(0.5, 1.5) for _ in range(n))))
    with tempfile.TemporaryDirectory() as t:
        cfg, weights = os.path.join(t, "tiny.cfg"), os.path.join(t, "tiny.weights")
        with open(cfg, "w") as f:
            f.write(TINY_CFG)
        with open(weights, "wb") as f:
            f.write(b"".join(out))
        for name, how in [("tiny-imagenet", ["--imagenet"]), ("tiny-fastai", ["-c", "cats,dogs"])]:
            subprocess.run([pretrained, "-a", "darknet", "-w", weights, "--cfg", cfg] + how +
                           ["-o", os.path.join(md, name + ".model")], check=True)


main()
