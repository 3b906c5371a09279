#!/usr/bin/python3
# PyTorch-free peer of tests/bench/augment.sh: fast.ai 0.7's side-on
# training transform (max_zoom 1.1: RandomScale p 0.75, RandomRotate(10)
# p 0.75 with a reflected border and bilinear sampling, RandomLighting(0.05,
# 0.05), RandomFlip, RandomCrop) as a user writes it with PIL and NumPy
# (cv2, fast.ai's own, is not in Debian's python3 here), over the scaled
# photos of an images stream; prints images/s.
#   augment_pil.py SCALED.stream SIZE ROUNDS
import os
import sys
import time

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from cnnpipe_stream import read_stream  # noqa: E402

path, sz, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
srcs = [r["image"] for r in read_stream(path)[1]]
rng = np.random.default_rng(0)


def transform(a):
    im = Image.fromarray(a)
    m = rng.uniform(1, 1.1) if rng.random() < 0.75 else 1.0
    targ = int(m * sz)
    h, w = a.shape[:2]
    r = targ / min(h, w)
    im = im.resize((max(int(w * r), targ), max(int(h * r), targ)), Image.BOX)
    x = np.asarray(im)
    deg = rng.uniform(-10, 10)
    if rng.random() < 0.75:   # reflect the border: pad, rotate, cut back
        p = max(x.shape[:2]) // 4
        big = Image.fromarray(np.pad(x, ((p, p), (p, p), (0, 0)), mode="symmetric"))
        big = big.rotate(deg, Image.BILINEAR)
        x = np.asarray(big)[p:-p, p:-p]
    x = x.astype(np.float32) / 255
    b, c0 = rng.uniform(-0.05, 0.05), rng.uniform(-0.05, 0.05)
    c = -1 / (c0 - 1) if c0 < 0 else 1 + c0
    mu = x.mean()
    x = np.clip((x - mu) * c + mu + b, 0, 1)
    if rng.random() < 0.5:
        x = x[:, ::-1]
    y0 = int(rng.random() * (x.shape[0] - sz))
    x0 = int(rng.random() * (x.shape[1] - sz))
    return (x[y0:y0 + sz, x0:x0 + sz] * 255 + 0.5).astype(np.uint8)


for a in srcs[:8]:
    transform(a)   # warm-up
t = time.perf_counter()
for _ in range(rounds):
    for a in srcs:
        transform(a)
print("%.1f" % (rounds * len(srcs) / (time.perf_counter() - t)))
