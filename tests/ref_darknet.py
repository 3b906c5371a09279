#!/usr/bin/python3
# An independent PyTorch build of a darknet classifier (cfg + .weights), the
# reference for cnnpipe's darknet import (tests/pretrained.bats).  Written
# from darknet's semantics (../shared/models/README.md), sharing no code with
# formats/darknet.c: convolutional (+ batch norm with darknet's epsilon
# OUTSIDE the square root: (x - mean) / (sqrt(var) + 1e-6)), leaky 0.1 /
# linear / relu, maxpool with darknet's padding rule (out = (w + padding -
# size)/stride + 1, window from -padding/2, padding defaults to size - 1),
# avgpool (global), shortcut, softmax.
#
#   ref_darknet.py images OUT PHOTO...   photos -> images stream (224, RGB,
#       shorter side scaled to 224 (PIL bilinear) then centre crop; the
#       class is the parent folder's name, cats or dogs)
#   ref_darknet.py randweights CFG OUT SEED   random .weights for CFG (batch
#       norm variances positive), darknet 0.2 header
#   ref_darknet.py check CFG WEIGHTS IMAGES PRED LABELS
#       reference probabilities on IMAGES vs exp(logp) of PRED (precompute
#       --full of `pretrained -a darknet --imagenet`): top-5 identical and
#       max abs diff <= 1e-4; prints the top-1 of each image
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cnnpipe_stream import read_stream, write_stream  # noqa: E402


def parse_cfg(path):
    secs = []
    for line in open(path):
        line = line.split("#")[0].strip()
        if not line:
            continue
        if line.startswith("["):
            secs.append((line.strip("[]"), {}))
        else:
            k, v = line.split("=", 1)
            secs[-1][1][k.strip()] = v.strip()
    return secs


class Darknet(torch.nn.Module):
    def __init__(self, cfg, weights):
        super().__init__()
        secs = parse_cfg(cfg)
        net = secs[0][1]
        c = int(net["channels"])
        self.layers = []
        buf = open(weights, "rb").read()
        major, minor, _ = struct.unpack_from("<3i", buf, 0)
        off = 12 + (8 if major * 10 + minor >= 2 and major < 1000 and minor < 1000 else 4)

        def take(n):
            nonlocal off
            a = np.frombuffer(buf, "<f4", n, off).copy()
            off += 4 * n
            return torch.from_numpy(a)

        for kind, o in secs[1:]:
            if kind in ("convolutional", "conv"):
                f, k = int(o["filters"]), int(o.get("size", 1))
                s = int(o.get("stride", 1))
                p = k // 2 if int(o.get("pad", 0)) else int(o.get("padding", 0))
                bn = int(o.get("batch_normalize", 0))
                L = {"t": "conv", "s": s, "p": p, "act": o.get("activation", "logistic"),
                     "b": take(f)}
                if bn:
                    L["scale"], L["mean"], L["var"] = take(f), take(f), take(f)
                L["w"] = take(f * c * k * k).reshape(f, c, k, k)
                c = f
            elif kind == "maxpool":
                k = int(o.get("size", 1))
                L = {"t": "max", "k": k, "s": int(o.get("stride", 1)),
                     "pad": int(o.get("padding", k - 1))}
            elif kind == "avgpool":
                L = {"t": "avg"}
            elif kind == "shortcut":
                L = {"t": "short", "from": int(o["from"]), "act": o.get("activation", "linear")}
            elif kind == "softmax":
                L = {"t": "softmax"}
            elif kind == "cost":
                continue
            else:
                raise SystemExit("ref_darknet: unsupported section [%s]" % kind)
            self.layers.append(L)
        if off != len(buf):
            raise SystemExit("ref_darknet: %d bytes of weights left over" % (len(buf) - off))

    @staticmethod
    def act(x, a):
        if a == "leaky":
            return torch.where(x > 0, x, 0.1 * x)
        if a == "relu":
            return torch.clamp(x, min=0)
        if a == "linear":
            return x
        raise SystemExit("ref_darknet: activation " + a)

    @staticmethod
    def shortcut(x, a):
        # darknet src/blas.c shortcut_cpu: maps of different sizes add on a
        # grid (stride into the larger, sample into the smaller) over the
        # first min(c) channels; the rest of x passes unchanged.
        if a.shape == x.shape:
            return x + a
        h1, w1, h2, w2 = a.shape[2], a.shape[3], x.shape[2], x.shape[3]
        stride, sample = max(w1 // w2, 1), max(w2 // w1, 1)
        c, h, w = min(a.shape[1], x.shape[1]), min(h1, h2), min(w1, w2)
        y = x.clone()
        y[:, :c, 0:h * sample:sample, 0:w * sample:sample] += \
            a[:, :c, 0:h * stride:stride, 0:w * stride:stride]
        return y

    def forward(self, x):
        outs = []
        for L in self.layers:
            t = L["t"]
            if t == "conv":
                x = F.conv2d(x, L["w"], None, L["s"], L["p"])
                if "scale" in L:
                    sh = (1, -1, 1, 1)
                    x = (x - L["mean"].view(sh)) / (L["var"].view(sh).sqrt() + 1e-6)
                    x = x * L["scale"].view(sh)
                x = x + L["b"].view(1, -1, 1, 1)
                x = self.act(x, L["act"])
            elif t == "max":
                lo = L["pad"] // 2
                x = F.pad(x, (lo, L["pad"] - lo, lo, L["pad"] - lo), value=float("-inf"))
                x = F.max_pool2d(x, L["k"], L["s"])
            elif t == "avg":
                x = x.mean((2, 3), keepdim=True)
            elif t == "short":
                i = L["from"] if L["from"] >= 0 else len(outs) + L["from"]
                x = self.act(self.shortcut(x, outs[i]), L["act"])
            elif t == "softmax":
                x = F.softmax(x.flatten(1), 1)
            outs.append(x)
        return x


def photo(path, size=224):
    from PIL import Image
    im = Image.open(path).convert("RGB")
    w, h = im.size
    s = size / min(w, h)
    im = im.resize((max(size, round(w * s)), max(size, round(h * s))), Image.BILINEAR)
    w, h = im.size
    l, t = (w - size) // 2, (h - size) // 2
    return np.asarray(im.crop((l, t, l + size, t + size)), dtype=np.uint8)


if sys.argv[1] == "images":
    recs = []
    for p in sys.argv[3:]:
        cls = os.path.basename(os.path.dirname(p))
        recs.append({"image": photo(p), "label": np.array(int(cls == "dogs"), np.int32),
                     "name": cls + "/" + os.path.basename(p)})
    write_stream(sys.argv[2], {"kind": "images", "classes": "cats,dogs", "size": "224",
                               "channels": "3", "layout": "HWC", "labelled": "1",
                               "source": "dev"}, recs, {"skipped": "0"})
elif sys.argv[1] == "randweights":
    cfg, out, seed = sys.argv[2], sys.argv[3], int(sys.argv[4])
    rng = np.random.default_rng(seed)
    parts, c = [], int(dict(parse_cfg(cfg)[0][1]).get("channels", 3))
    for kind, o in parse_cfg(cfg)[1:]:
        o = dict(o)
        if kind != "convolutional":
            continue
        f, k = int(o["filters"]), int(o.get("size", 1))
        parts.append(rng.uniform(-0.1, 0.1, f))                   # biases
        if int(o.get("batch_normalize", 0)):
            parts += [rng.uniform(0.5, 1.5, f), rng.uniform(-0.1, 0.1, f),
                      rng.uniform(0.5, 2.0, f)]                    # scales, mean, var
        parts.append(rng.normal(0, (2.0 / (c * k * k)) ** 0.5, f * c * k * k))
        c = f
    with open(out, "wb") as fo:
        fo.write(struct.pack("<iiiQ", 0, 2, 0, 0))
        fo.write(np.concatenate(parts).astype("<f4").tobytes())
elif sys.argv[1] == "check":
    cfg, weights, images, pred, labels = sys.argv[2:7]
    names = [l.strip() for l in open(labels)]
    m = Darknet(cfg, weights)
    _, src, _ = read_stream(images)
    x = torch.from_numpy(np.stack([r["image"] for r in src]).astype(np.float32) / 255.0)
    with torch.no_grad():
        want = m(x.permute(0, 3, 1, 2).contiguous()).numpy()
    _, recs, _ = read_stream(pred)
    got = np.exp(np.stack([r["logp"] for r in recs]).astype(np.float64))
    d = float(np.abs(got - want).max())
    same = True
    for i, r in enumerate(recs):
        a, b = np.argsort(-want[i])[:5], np.argsort(-got[i])[:5]
        same &= list(a) == list(b)
        print("%s: %s %.4f (reference %s %.4f)" % (r["name"], names[b[0]], got[i][b[0]],
                                                  names[a[0]], want[i][a[0]]))
    print("darknet probabilities: max abs diff %.3g; top-5 %s" % (d, "identical" if same else "DIFFER"))
    if not (same and d <= 1e-4):
        sys.exit(1)
else:
    sys.exit("unknown command")
