#!/usr/bin/python3
# PyTorch (torchvision) references for tests/pretrained.bats and
# tests/precompute.bats.  Debian's /usr/bin/python3 with python3-torch.
#
#   torch_ref.py images OUT N SIZE [SEED]      random u8 images stream
#   torch_ref.py weights OUT ARCH [SEED]        torch.save(state_dict), random
#                                               weights and BN statistics
#   torch_ref.py logits WEIGHTS ARCH IMAGES PRED [TOL]
#       torchvision's logits on IMAGES vs the `logits` of PRED (precompute
#       --full of a `pretrained --imagenet` model); prints the max abs diff
#   torch_ref.py features WEIGHTS ARCH IMAGES ACT [TOL]
#       torchvision's body + fast.ai concat pool (max, then avg) in eval mode
#       vs the `x` of ACT (precompute of a `pretrained -c` model)
import os
import struct
import sys

import numpy as np
import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cnnpipe_stream import read_stream, write_stream  # noqa: E402

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
torch.set_num_threads(2)


def model(arch, seed):
    torch.manual_seed(seed)
    m = getattr(torchvision.models, arch)()
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.1, 0.1)
                mod.running_var.uniform_(0.5, 2.0)
                mod.weight.uniform_(0.5, 1.0)
                mod.bias.uniform_(-0.1, 0.1)
    return m.eval()


def load(path, arch):
    m = getattr(torchvision.models, arch)()
    m.load_state_dict(torch.load(path))
    return m.eval()


def batch(images):
    _, recs, _ = read_stream(images)
    x = np.stack([r["image"] for r in recs]).astype(np.float32) / 255.0
    x = (x - MEAN) / STD
    return torch.from_numpy(x.transpose(0, 3, 1, 2).copy()), recs


def compare(name, got, want, tol):
    """tol is relative to max(1, max |want|)"""
    d = float(np.abs(got - want).max())
    s = max(1.0, float(np.abs(want).max()))
    print("%s: max abs diff %.3g (max |value| %.3g)" % (name, d, s))
    if not d <= tol * s:
        sys.exit("%s: max abs diff %.3g > %g * %.3g" % (name, d, tol, s))


cmd = sys.argv[1]
if cmd == "images":
    out, n, size = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    rng = np.random.default_rng(int(sys.argv[5]) if len(sys.argv) > 5 else 1)
    recs = [{"image": rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
             "label": np.array(i % 2, np.int32),
             "name": "%s/%d.jpg" % (("cats", "dogs")[i % 2], i)} for i in range(n)]
    write_stream(out, {"kind": "images", "classes": "cats,dogs", "size": str(size),
                       "channels": "3", "layout": "HWC", "labelled": "1",
                       "source": "random"}, recs, {"skipped": "0"})
elif cmd == "weights":
    # weights OUT ARCH [SEED] [zip|legacy|safetensors|misshape|extra|missing]
    out, arch = sys.argv[2], sys.argv[3]
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    how = sys.argv[5] if len(sys.argv) > 5 else "zip"
    sd = model(arch, seed).state_dict()
    if how == "misshape":
        sd["layer2.0.conv1.weight"] = sd["layer2.0.conv1.weight"][:, :32].clone()
    elif how == "extra":
        sd["layer9.weight"] = torch.zeros(3)
    elif how == "missing":
        del sd["layer3.1.bn2.running_var"]
    if how == "safetensors":
        # the format by hand (u64 header length, JSON header, raw data)
        import json
        hdr, data = {}, b""
        for k, v in sd.items():
            if v.dtype != torch.float32:
                continue
            raw = v.contiguous().numpy().tobytes()
            hdr[k] = {"dtype": "F32", "shape": list(v.shape),
                      "data_offsets": [len(data), len(data) + len(raw)]}
            data += raw
        h = json.dumps(hdr).encode()
        h += b" " * (-len(h) % 8)
        with open(out, "wb") as f:
            f.write(struct.pack("<Q", len(h)) + h + data)
    else:
        torch.save(sd, out, _use_new_zipfile_serialization=(how != "legacy"))
elif cmd == "logits":
    w, arch, images, pred = sys.argv[2:6]
    tol = float(sys.argv[6]) if len(sys.argv) > 6 else 1e-3
    x, _ = batch(images)
    with torch.no_grad():
        want = load(w, arch)(x).numpy()
    _, recs, _ = read_stream(pred)
    compare("%s logits" % arch, np.stack([r["logits"] for r in recs]), want, tol)
elif cmd == "features":
    w, arch, images, act = sys.argv[2:6]
    tol = float(sys.argv[6]) if len(sys.argv) > 6 else 1e-3
    x, src = batch(images)
    m = load(w, arch)
    body = torch.nn.Sequential(*list(m.children())[:-2])
    with torch.no_grad():
        f = body(x)
        want = torch.cat([f.amax((2, 3)), f.mean((2, 3))], 1).numpy()
    meta, recs, _ = read_stream(act)
    compare("%s features" % arch, np.stack([r["x"] for r in recs]), want, tol)
    for a, b in zip(src, recs):
        assert int(a["label"]) == int(b["label"]) and a["name"] == b["name"], "labels/names"
    assert len(recs) == len(src), "record count"
    assert meta["features"] == str(want.shape[1]) and meta["classes"] == "cats,dogs"
    print("labels, names, classes carried through")
else:
    sys.exit("unknown command " + cmd)
