#!/usr/bin/python3
"""Regenerates the fuzz seed corpora (small valid inputs):
tests/fuzz/corpus/stream/*.stream and tests/fuzz/corpus/npy/*.npy."""
import io
import os
import sys

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


main()
