#!/usr/bin/python3
# Synthetic activations for tests/train.bats: N rows of F features, class k
# drawn around its own random centre (so a head can learn them), labels in
# class order k = i % K, names "k/i".
#   make_activations.py OUT N F CLASSES [SEED] [--unlabelled]
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cnnpipe_stream import write_stream  # noqa: E402

out, N, F, classes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
seed = int(sys.argv[5]) if len(sys.argv) > 5 and sys.argv[5][0] != "-" else 1
unlabelled = "--unlabelled" in sys.argv
K = len(classes.split(","))
rng = np.random.default_rng(seed)
centres = np.random.default_rng(1000).normal(0, 1, (K, F)).astype(np.float32)
recs = []
for i in range(N):
    k = i % K
    x = (centres[k] + rng.normal(0, 1.5, F)).astype(np.float32)
    r = {"x": x, "name": "%d/%d" % (k, i)}
    if not unlabelled:
        r["label"] = np.array(k, dtype=np.int32)
    recs.append(r)
meta = {"kind": "activations", "classes": classes,
        "labelled": "0" if unlabelled else "1", "features": str(F), "arch": "darknet"}
write_stream(out, meta, recs)
