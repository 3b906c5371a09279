#!/usr/bin/python3
# A synthetic images stream for tests/train.bats: N images S x S (u8 HWC),
# class k = i % K tinted its own colour with noise, so a network can learn
# them; optionally epoch marks as augment(1) writes them (meta epochs,
# epoch_size; an i32 `epoch` per record: each epoch a fresh permutation).
#   make_images.py OUT N S CLASSES [--epochs E] [--seed N]
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cnnpipe_stream import write_stream  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("n", type=int)
ap.add_argument("size", type=int)
ap.add_argument("classes")
ap.add_argument("--epochs", type=int, default=0)
ap.add_argument("--seed", type=int, default=1)
a = ap.parse_args()
K = len(a.classes.split(","))
rng = np.random.default_rng(a.seed)
tint = np.random.default_rng(99).integers(40, 216, (K, 3))
imgs = []
for i in range(a.n):
    k = i % K
    im = np.clip(tint[k] + rng.normal(0, 40, (a.size, a.size, 3)), 0, 255)
    imgs.append((im.astype(np.uint8), k, "%d/%05d.jpg" % (k, i)))
meta = {"kind": "images", "size": str(a.size), "channels": "3", "layout": "HWC",
        "classes": a.classes, "labelled": "1", "source": "make_images.py"}
recs = []
if a.epochs:
    meta["epochs"] = str(a.epochs)
    meta["epoch_size"] = str(a.n)
    for e in range(a.epochs):
        for j in rng.permutation(a.n):
            im, k, nm = imgs[j]
            recs.append({"image": im, "label": np.array(k, np.int32), "name": nm,
                         "epoch": np.array(e, np.int32)})
else:
    for im, k, nm in sorted(imgs, key=lambda t: t[1]):
        recs.append({"image": im, "label": np.array(k, np.int32), "name": nm})
write_stream(a.out, meta, recs)
