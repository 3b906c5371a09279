#!/usr/bin/python3
"""A NumPy/PIL reference of augment(1)'s transforms, each a function of
fixed parameters, written from fastai/transforms.py (0.7) and OpenCV's
definitions (cv2 itself is not needed):

  scale_min(x, targ)        cv2.resize(x, scale_to dims, INTER_AREA), as
                            overlap matrices in float64
  rotate(x, deg)            cv2.warpAffine(x, getRotationMatrix2D((c//2, r//2),
                            deg, 1), BORDER_REFLECT, bilinear); the matrix
                            built and inverted as OpenCV does, float64
  lighting(x, b, c)         fast.ai's lighting(): one mean, clip to [0, 1]
  dihedral(x, k, flip)      np.rot90 then np.fliplr, done by PIL's transpose
  crop(x, y0, x0, sz)       RandomCrop's slice
  to_u8(x)                  floor(255 x + 0.5)

    augment_ref.py check SRC OUT SIZE [--tol T] [--zoom Z] [--rotate D]
                         [--lighting B,C] [--mode side-on|top-down|none]
        For every record of OUT (augment --params), finds its source in SRC
        by name, checks its parameters against the options (ranges, the
        derived sizes and crop bounds), applies the reference with those
        parameters and compares: prints "N records, max |diff| D, differing
        values K" and fails when D > T (default 0: exact).
    augment_ref.py stats PARAMS.npy H W SIZE [--top-down]
        The draws of many records (tensor to-npy -t params) from one H x W
        source: each probability and range within 4 sigma.
"""
import functools
import math
import sys

import numpy as np
from PIL import Image

from cnnpipe_stream import read_stream

# ---- the transforms ----------------------------------------------------------


def scale_dims(h, w, targ):
    """fastai scale_min's size: each side max(floor(side*ratio), targ)."""
    ratio = targ / min(h, w)
    return max(math.floor(h * ratio), targ), max(math.floor(w * ratio), targ)


@functools.lru_cache(maxsize=None)
def area_matrix(n, m):
    """(m, n): row i averages source [i*n/m, (i+1)*n/m) by overlap."""
    i = np.arange(m)[:, None]
    a, b = i * n / m, np.minimum((i + 1) * n / m, n)
    j = np.arange(n)[None, :]
    overlap = np.clip(np.minimum(j + 1, b) - np.maximum(j, a), 0, None)
    return overlap / (b - a)


def scale_min(x, targ):
    h, w = x.shape[:2]
    th, tw = scale_dims(h, w, targ)
    y = (area_matrix(h, th) @ x.reshape(h, -1)).reshape(th, w, -1)   # columns
    return area_matrix(w, tw) @ y                                    # rows


def reflect(i, n):
    """cv2.BORDER_REFLECT: fedcba|abcdef|fedcba."""
    i = np.mod(i, 2 * n)
    return np.where(i < n, i, 2 * n - 1 - i)


def rotate(x, deg):
    r, c = x.shape[:2]
    cx, cy = c // 2, r // 2
    t = math.radians(deg)
    a, b = math.cos(t), math.sin(t)
    m = np.array([[a, b, (1 - a) * cx - b * cy],
                  [-b, a, b * cx + (1 - a) * cy],
                  [0, 0, 1]])
    inv = np.linalg.inv(m)          # warpAffine maps dst through M^-1
    ys, xs = np.mgrid[0:r, 0:c].astype(np.float64)
    sx = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]
    sy = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]
    x0, y0 = np.floor(sx), np.floor(sy)
    fx, fy = (sx - x0)[..., None], (sy - y0)[..., None]
    x0, y0 = x0.astype(int), y0.astype(int)
    xa, xb, ya, yb = reflect(x0, c), reflect(x0 + 1, c), reflect(y0, r), reflect(y0 + 1, r)
    return ((1 - fy) * ((1 - fx) * x[ya, xa] + fx * x[ya, xb]) +
            fy * ((1 - fx) * x[yb, xa] + fx * x[yb, xb]))


def lighting(x, b, c):
    if b == 0 and c == 1:
        return x
    mu = np.average(x)
    return np.clip((x - mu) * c + mu + b, 0., 1.)


_ROT = {1: Image.Transpose.ROTATE_90, 2: Image.Transpose.ROTATE_180,
        3: Image.Transpose.ROTATE_270}


def dihedral(x, k, flip):
    """np.fliplr(np.rot90(x, k)) if flip else np.rot90(x, k), by PIL."""
    chans = []
    for ch in range(x.shape[2]):
        im = Image.fromarray(x[:, :, ch].astype(np.float32), "F")
        if k:
            im = im.transpose(_ROT[k])
        if flip:
            im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        chans.append(np.asarray(im, dtype=np.float64))
    return np.stack(chans, -1)


def crop(x, y0, x0, sz):
    return x[y0:y0 + sz, x0:x0 + sz]


def to_u8(x):
    return np.clip(np.floor(x * 255 + 0.5), 0, 255).astype(np.uint8)


def augment(src, p, sz):
    """src: (h, w, 3) u8; p: the params tensor of augment --params."""
    mult, new_sz, deg, b, c, k, flip, y0, x0 = [float(v) for v in p]
    x = src.astype(np.float64) / 255
    x = scale_min(x, int(new_sz))
    if deg != 0:
        x = rotate(x, deg)
    x = lighting(x, b, c)
    if k or flip:
        x = dihedral(x, int(k), int(flip))
    return to_u8(crop(x, int(y0), int(x0), sz))

# ---- check ---------------------------------------------------------------------


def opts(argv, spec):
    out, i = dict(spec), 0
    rest = []
    while i < len(argv):
        if argv[i].startswith("--") and argv[i][2:] in spec:
            key = argv[i][2:]
            if isinstance(spec[key], bool):
                out[key] = True
                i += 1
            else:
                out[key] = argv[i + 1]
                i += 2
        else:
            rest.append(argv[i])
            i += 1
    return out, rest


def check_params(p, h, w, sz, o):
    """The derivations and ranges of one record's draws; a list of faults."""
    mult, new_sz, deg, b, c, k, flip, y0, x0 = [float(v) for v in p]
    zoom, D = float(o["zoom"]), float(o["rotate"])
    B, C = [float(v) for v in o["lighting"].split(",")]
    bad = []
    if not (mult == 1 or 1 <= mult < zoom or (zoom == 1 and mult == 1)):
        bad.append("mult %r outside [1, %g)" % (mult, zoom))
    if new_sz != max(int(np.float64(np.float32(mult)) * sz), sz):
        bad.append("new_sz %r is not int(mult*size)" % new_sz)
    if abs(deg) > D:
        bad.append("deg %r outside +-%g" % (deg, D))
    if abs(b) > B + 1e-7:
        bad.append("b %r outside +-%g" % (b, B))
    if not (1 / (1 + C) - 1e-6 <= c <= 1 + C + 1e-6):
        bad.append("c %r outside [1/(1+%g), 1+%g]" % (c, C, C))
    if o["mode"] != "top-down" and k != 0:
        bad.append("rot90 %r without --top-down" % k)
    if o["mode"] == "none" and flip != 0:
        bad.append("flipped with --no-flip")
    th, tw = scale_dims(h, w, int(new_sz))
    H, W = (tw, th) if int(k) % 2 else (th, tw)
    if not (0 <= y0 <= max(H - sz - 1, 0) and 0 <= x0 <= max(W - sz - 1, 0)):
        bad.append("crop (%r, %r) outside the %dx%d image" % (y0, x0, H, W))
    return bad


def cmd_check(argv):
    o, rest = opts(argv, {"tol": "0", "zoom": "1.1", "rotate": "10",
                          "lighting": "0.05,0.05", "mode": "side-on"})
    src_path, out_path, sz = rest[0], rest[1], int(rest[2])
    _, srcs, _ = read_stream(src_path)
    by_name = {r["name"]: r for r in srcs}
    _, outs, _ = read_stream(out_path)
    worst, ndiff, faults = 0, 0, []
    for i, r in enumerate(outs):
        s = by_name[r["name"]]
        h, w = s["image"].shape[:2]
        faults += ["record %d: %s" % (i, f) for f in check_params(r["params"], h, w, sz, o)]
        ref = augment(s["image"], r["params"], sz)
        d = np.abs(ref.astype(int) - r["image"].astype(int))
        worst = max(worst, int(d.max()))
        ndiff += int((d > 0).sum())
    print("%d records, max |diff| %d, differing values %d" % (len(outs), worst, ndiff))
    for f in faults[:10]:
        print(f)
    return 1 if faults or worst > int(o["tol"]) else 0

# ---- stats -----------------------------------------------------------------------


def within(name, got, want, n, fails):
    """A fraction of n draws within 4 sigma of its probability."""
    sigma = math.sqrt(want * (1 - want) / n)
    ok = abs(got - want) <= 4 * sigma
    print("%-22s %.4f  (want %.4f +- %.4f)%s" % (name, got, want, 4 * sigma, "" if ok else "  FAIL"))
    if not ok:
        fails.append(name)


def cmd_stats(argv):
    o, rest = opts(argv, {"top-down": False})
    p = np.load(rest[0]).astype(np.float64)
    h, w, sz = int(rest[1]), int(rest[2]), int(rest[3])
    n = len(p)
    mult, deg, b, c, k, flip, x0 = p[:, 0], p[:, 2], p[:, 3], p[:, 4], p[:, 5], p[:, 6], p[:, 8]
    fails = []
    scaled, rotated = mult != 1, deg != 0
    within("scaled (p 0.75)", scaled.mean(), 0.75, n, fails)
    within("rotated (p 0.75)", rotated.mean(), 0.75, n, fails)
    within("flipped (p 0.5)", flip.mean(), 0.5, n, fails)
    within("rotated and flipped", (rotated & (flip == 1)).mean(), 0.375, n, fails)
    # U(-10, 10) among the rotated: ten bins of 0.1 each
    hist = np.histogram(deg[rotated], bins=10, range=(-10, 10))[0]
    for i, cnt in enumerate(hist):
        within("angle bin %d" % i, cnt / rotated.sum(), 0.1, rotated.sum(), fails)
    if not (deg.min() >= -10 and deg.max() < 10 and deg.min() < -9.9 and deg.max() > 9.9):
        fails.append("angle range %g..%g" % (deg.min(), deg.max()))
    # zoom U(1, 1.1) among the scaled: its fraction below 1.05
    within("zoom < 1.05 | scaled", (mult[scaled] < 1.05).mean(), 0.5, scaled.sum(), fails)
    if not (mult.min() >= 1 and mult.max() < 1.1):
        fails.append("zoom range")
    # lighting: b = U(-0.05, 0.05); c0 = U(-0.05, 0.05) mapped to c
    within("b < 0", (b < 0).mean(), 0.5, n, fails)
    within("c < 1", (c < 1).mean(), 0.5, n, fails)
    c0 = np.where(c < 1, 1 - 1 / c, c - 1)
    within("|c0| < 0.025", (np.abs(c0) < 0.025).mean(), 0.5, n, fails)
    if not (np.abs(b).max() <= 0.05 and np.abs(c0).max() <= 0.05 + 1e-6):
        fails.append("lighting range")
    # the crop column: floor(U(0,1)*(W - sz)), each start 1/(W - sz), never W - sz
    span = w - sz if not o["top-down"] else 0   # (rot90 swaps the axes)
    for s in range(span):
        within("crop x0 = %d" % s, (x0 == s).mean(), 1 / span, n, fails)
    if span and x0.max() >= span:
        fails.append("crop x0 reached %d" % x0.max())
    if o["top-down"]:
        for q in range(4):
            within("rot90 = %d" % q, (k == q).mean(), 0.25, n, fails)
    elif k.any():
        fails.append("rot90 without --top-down")
    print("%d draws: %s" % (n, "ok" if not fails else "FAIL " + ", ".join(fails)))
    return 1 if fails else 0


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "check":
        sys.exit(cmd_check(sys.argv[2:]))
    if cmd == "stats":
        sys.exit(cmd_stats(sys.argv[2:]))
    sys.exit(__doc__)
