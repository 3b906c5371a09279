#!/usr/bin/python3
# A predictions stream (kind=predictions, as tta(1) writes) for
# tests/confusion.bats, with known log-probabilities and labels.
#
#   make_predictions.py OUT CLASSES [options] < ROWS
#
# ROWS: one record a line, "NAME LABEL P0 P1 ...": LABEL a class index or
# "-" (no label tensor), then the probabilities, written as logp =
# log(P) in f32 (with --logp the numbers are the log-probabilities
# themselves; "nan", "inf", "-inf" are accepted).  Blank lines and lines
# starting with "#" are skipped.  The header: kind=predictions,
# classes=CLASSES, num_classes (the number of CLASSES), labelled (1 when
# any row has a label).
#
#   --random N      ignore stdin: N rows, label i % K, random probabilities
#   --seed S        of --random (default 1)
#   --meta KEY=VAL  set a header key (KEY= with nothing after it drops it)
#   --f64           write logp as f64 (a wrong stream)
#   --no-logp I     record I gets no logp (a wrong stream)
import argparse
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cnnpipe_stream import write_stream  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("classes")
ap.add_argument("--logp", action="store_true")
ap.add_argument("--random", type=int)
ap.add_argument("--seed", type=int, default=1)
ap.add_argument("--meta", action="append", default=[])
ap.add_argument("--f64", action="store_true")
ap.add_argument("--no-logp", type=int, default=-1)
a = ap.parse_args()
K = len(a.classes.split(","))

rows = []   # (name, label or None, [floats])
if a.random is not None:
    rng = np.random.default_rng(a.seed)
    for i in range(a.random):
        p = rng.dirichlet(np.ones(K))
        rows.append(("%d/%05d.jpg" % (i % K, i), i % K, list(p)))
else:
    for line in sys.stdin:
        f = line.split()
        if not f or f[0].startswith("#"):
            continue
        label = None if f[1] == "-" else int(f[1])
        rows.append((f[0], label, [float(v) for v in f[2:]]))

labelled = any(lab is not None for _, lab, _ in rows)
meta = {"kind": "predictions", "classes": a.classes, "num_classes": str(K),
        "labelled": "1" if labelled else "0"}
for kv in a.meta:
    k, v = kv.split("=", 1)
    if v:
        meta[k] = v
    else:
        meta.pop(k, None)

recs = []
for i, (name, label, vals) in enumerate(rows):
    if a.logp:
        lp = np.array(vals, np.float32)
    else:
        lp = np.array([math.log(v) if v > 0 else -math.inf for v in vals], np.float32)
    r = {}
    if i != a.no_logp:
        r["logp"] = lp.astype(np.float64) if a.f64 else lp
    if label is not None:
        r["label"] = np.array(label, np.int32)
    r["name"] = name
    recs.append(r)
write_stream(a.out, meta, recs)
