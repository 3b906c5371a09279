#!/usr/bin/python3
# The lesson-1 recipe of pipelines/lesson1.mk written directly in PyTorch,
# as a fast.ai 0.7 user's notebook would run it: the peer of `make train`
# for tests/bench/lesson1.sh (wall time, and the accuracy after each step,
# seed by seed).  Written from fastai/{transforms,conv_learner,learner,
# sgdr,layers}.py (0.7) and darknet's semantics (../shared/models/README.md);
# it shares nothing with cnnpipe but the recipe (cv2.INTER_AREA's weights
# come from tests/augment_ref.py, the test reference of augment(1)).
#
#   lesson1_torch.py DATA CFG WEIGHTS [-s SEED] [-t THREADS] [--sz 224] [--bs 64]
#
# DATA holds train/CLASS/*.jpg and valid/CLASS/*.jpg.  The photos are decoded
# once (PIL) and kept in memory, as make train keeps them in WORK; every
# transform then runs on tensors.  Prints fast.ai's epoch tables, each
# stage's seconds, and a last line:
#   lesson1_torch: seed S head A frozen A unfrozen A tta A  wall T s
import argparse
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from augment_ref import area_matrix  # noqa: E402  cv2.INTER_AREA's weights

ap = argparse.ArgumentParser()
ap.add_argument("data")
ap.add_argument("cfg")
ap.add_argument("weights")
ap.add_argument("-s", "--seed", type=int, default=0)
ap.add_argument("-t", "--threads", type=int, default=os.cpu_count())
ap.add_argument("--sz", type=int, default=224)
ap.add_argument("--bs", type=int, default=64)
A = ap.parse_args()
torch.set_num_threads(A.threads)
random.seed(A.seed)
np.random.seed(A.seed)
torch.manual_seed(A.seed)
SZ, BS = A.sz, A.bs
T0 = time.perf_counter()
times = {}


def stage(name, t):
    times[name] = time.perf_counter() - t
    print("# %s: %.1f s" % (name, times[name]), flush=True)


# ---- the photos ----------------------------------------------------------------

t = time.perf_counter()
classes = sorted(os.listdir(os.path.join(A.data, "train")))


def photos(split):
    xs, ys = [], []
    for y, c in enumerate(classes):
        d = os.path.join(A.data, split, c)
        for f in sorted(os.listdir(d)):
            im = np.asarray(Image.open(os.path.join(d, f)).convert("RGB"))
            xs.append(torch.from_numpy(im.copy()).permute(2, 0, 1))   # u8 (3, H, W)
            ys.append(y)
    return xs, torch.tensor(ys)


TX, TY = photos("train")
VX, VY = photos("valid")
stage("decode", t)

# ---- fast.ai's transforms (transforms.py), on float tensors in [0, 1] ----------


def rand0(s):
    return random.random() * (s * 2) - s


def resize_area(x, nh, nw):
    # cv2.resize(..., INTER_AREA): each output pixel the overlap-weighted
    # mean of the source pixels its area covers (shrinking and enlarging)
    h, w = x.shape[1:]
    a = torch.from_numpy(area_matrix(h, nh)).float()      # (nh, h)
    b = torch.from_numpy(area_matrix(w, nw)).float().t()  # (w, nw)
    return a @ x @ b


def scale_min(x, targ):
    # scale_min: the shorter side to targ, each side max(floor(side*r), targ)
    h, w = x.shape[1:]
    r = targ / min(h, w)
    nh, nw = max(math.floor(h * r), targ), max(math.floor(w * r), targ)
    return x if (nh, nw) == (h, w) else resize_area(x, nh, nw)


def rotate(x, deg):
    # rotate_cv: about the centre, bilinear, cv2.BORDER_REFLECT
    h, w = x.shape[1:]
    a = math.radians(deg)
    th = torch.tensor([[math.cos(a), -math.sin(a) * h / w, 0],
                       [math.sin(a) * w / h, math.cos(a), 0]], dtype=torch.float32)
    g = F.affine_grid(th[None], (1, 3, h, w), align_corners=False)
    return F.grid_sample(x[None], g, mode="bilinear", padding_mode="reflection",
                         align_corners=False)[0]


def lighting(x, b, c):
    if b == 0 and c == 1:
        return x
    m = x.mean()
    return ((x - m) * c + m + b).clamp(0, 1)


def center_crop(x, sz):
    h, w = x.shape[1:]
    r, c = (h - sz) // 2, (w - sz) // 2
    return x[:, r:r + sz, c:c + sz]


def val_tfm(u8):
    # tfms_from_model(..., sz): Scale(sz), CenterCrop(sz)
    return center_crop(scale_min(u8.float() / 255, SZ), SZ)


def trn_tfm(u8):
    # aug_tfms=transforms_side_on, max_zoom=1.1: RandomScale(sz, 1.1) (p 0.75),
    # RandomRotate(10) (p 0.75), RandomLighting(0.05, 0.05), RandomFlip(),
    # then RandomCrop(sz)
    x = u8.float() / 255
    mult = random.uniform(1.0, 1.1) if random.random() < 0.75 else 1
    x = scale_min(x, int(mult * SZ))
    if random.random() < 0.75:
        x = rotate(x, rand0(10))
    b, c = rand0(0.05), rand0(0.05)
    x = lighting(x, b, -1 / (c - 1) if c < 0 else c + 1)
    if random.random() < 0.5:
        x = x.flip(2)
    h, w = x.shape[1:]
    r0 = math.floor(random.uniform(0, 1) * (h - SZ))
    c0 = math.floor(random.uniform(0, 1) * (w - SZ))
    return x[:, r0:r0 + SZ, c0:c0 + SZ]


def batches(xs, ys, tfm, shuffle):
    # Tiny Darknet takes [0, 1] RGB: fast.ai's normaliser with mean 0, std 1
    idx = torch.randperm(len(xs)).tolist() if shuffle else list(range(len(xs)))
    for i in range(0, len(idx), BS):
        j = idx[i:i + BS]
        x = torch.stack([tfm(xs[k]) for k in j]).contiguous(memory_format=torch.channels_last)
        yield x, ys[j]


# ---- the network: Tiny Darknet's body, fast.ai's head -------------------------


def darknet_body(cfg, weights):
    secs = []   # [(section, {key: value})], comments and blank lines dropped
    for line in open(cfg):
        line = line.split("#")[0].strip()
        if line.startswith("["):
            secs.append((line.strip("[]"), {}))
        elif "=" in line:
            secs[-1][1][line.split("=")[0].strip()] = line.split("=", 1)[1].strip()
    buf = open(weights, "rb").read()
    major, minor, _ = np.frombuffer(buf, "<i4", 3, 0)
    off = 12 + (8 if major * 10 + minor >= 2 and major < 1000 and minor < 1000 else 4)

    def take(n):
        nonlocal off
        a = torch.from_numpy(np.frombuffer(buf, "<f4", n, off).copy())
        off += 4 * n
        return a
    convs = [i for i, (k, _) in enumerate(secs) if k == "convolutional"]
    layers, groups, c, size = [], [[]], int(secs[0][1]["channels"]), int(secs[0][1]["height"])
    for i, (k, o) in enumerate(secs[1:convs[-1]], 1):
        if k == "maxpool":
            s = int(o["stride"])
            layers.append(nn.MaxPool2d(int(o["size"]), s))
            size //= s
        else:
            f, ks = int(o["filters"]), int(o.get("size", 1))
            conv = nn.Conv2d(c, f, ks, 1, ks // 2, bias=False)
            bn = nn.BatchNorm2d(f)
            bn.bias.data[:] = take(f)
            bn.weight.data[:] = take(f)
            bn.running_mean[:] = take(f)
            # darknet divides by sqrt(var) + 1e-6; PyTorch by sqrt(var + eps)
            v = take(f).clamp(min=0)
            bn.running_var[:] = ((v.double().sqrt() + 1e-6) ** 2 - bn.eps).clamp(min=0).float()
            conv.weight.data[:] = take(f * c * ks * ks).view(f, c, ks, ks)
            layers += [conv, bn, nn.LeakyReLU(0.1, inplace=True)]
            c = f
        # fast.ai's split of a ResNet (its first group ends at stride 8), as
        # cnnpipe applies it to darknet: a new group once maps pass stride 8
        if len(groups) == 1 and size * 8 < int(secs[0][1]["height"]):
            groups.append([])
        groups[-1] += layers[len(sum(groups, [])):]
    return nn.Sequential(*layers), [nn.Sequential(*g) for g in groups], c


class ConcatPool(nn.Module):   # AdaptiveConcatPool2d + Flatten: max, then mean
    def forward(self, x):
        return torch.cat([torch.amax(x, (2, 3)), torch.mean(x, (2, 3))], 1)


def fastai_head(nf, k):
    # ConvnetBuilder: xtra_fc [512], ps [0.25, 0.5]; apply_init(kaiming_normal)
    h = nn.Sequential(nn.BatchNorm1d(nf), nn.Dropout(0.25), nn.Linear(nf, 512), nn.ReLU(),
                      nn.BatchNorm1d(512), nn.Dropout(0.5), nn.Linear(512, k), nn.LogSoftmax(1))
    for m in h:
        if isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight)
            m.bias.data.zero_()
    return h


body, groups, C = darknet_body(A.cfg, A.weights)
if len(groups) != 2:
    sys.exit("lesson1_torch: %s: expected the body to split into 2 groups" % A.cfg)
body = body.to(memory_format=torch.channels_last)
head = fastai_head(2 * C, len(classes))
pool = ConcatPool()

# ---- fitting (learner.py fit, sgdr.py CosAnneal / LR_Finder) -------------------


def cos_anneal(nb, mult, n):
    # CosAnneal.calc_lr per batch: init/100 for the first nb/20 batches, then
    # half a cosine over each cycle, the cycle nb*mult^k batches long
    out, it = [], 0
    for i in range(n):
        if i < nb / 20:
            it += 1
            out.append(0.01)
            continue
        out.append(0.5 * (math.cos(math.pi * it / nb) + 1))
        it += 1
        if it == nb:
            it, nb = 0, nb * mult
    return out


def table_header():
    print("%-10s %-10s %-10s %-10s" % ("epoch", "trn_loss", "val_loss", "accuracy"), flush=True)


def validate(f):
    # learner.validate: the model in eval mode, mean NLL and accuracy
    lp = f(False)
    return F.nll_loss(lp, VY).item(), (lp.argmax(1) == VY).float().mean().item()


def fit(params_lrs, epochs, sched, step_batches, val_fn, set_mode):
    # SGD_Momentum(0.9), no weight decay: fast.ai 0.7's default optimiser
    opt = torch.optim.SGD([{"params": p, "lr": lr} for p, lr in params_lrs], momentum=0.9)
    base = [lr for _, lr in params_lrs]
    it = 0
    table_header()
    acc = None
    # learner.py fit: the smoothed loss and its batch count run on over
    # the epochs of one fit (reset by the next fit only)
    avg, n = 0.0, 0
    for ep in range(epochs):
        set_mode()
        for x, y in step_batches():
            f = sched[it] if sched else 1.0
            for g, lr in zip(opt.param_groups, base):
                g["lr"] = lr * f
            loss = F.nll_loss(x(), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            it += 1
            n += 1
            avg = avg * 0.98 + loss.item() * 0.02   # LossRecorder's smoothing
        vl, acc = validate(val_fn)
        print("%5d      %.6f   %.6f   %.3f" % (ep, avg / (1 - 0.98 ** n), vl, acc), flush=True)
    return acc


# precompute=True: the body's activations of train and valid through the
# validation transform, once
t = time.perf_counter()
body.eval()
with torch.no_grad():
    def acts(xs, ys):
        return torch.cat([pool(body(x)) for x, _ in batches(xs, ys, val_tfm, False)])
    TA, VA = acts(TX, TY), acts(VX, VY)
stage("precompute", t)


def act_batches():
    idx = torch.randperm(len(TA))
    for i in range(0, len(idx), BS):
        j = idx[i:i + BS]
        yield (lambda j=j: head(TA[j])), TY[j]


def head_val(train):
    head.eval()
    with torch.no_grad():
        return head(VA)


def head_mode():
    head.train()


# learn.lr_find(): 1e-5 to 10 over one epoch, stopping when the smoothed loss
# passes 4x its best; the head is put back as it was
t = time.perf_counter()
saved = {k: v.clone() for k, v in head.state_dict().items()}
nb = math.ceil(len(TA) / BS)
opt = torch.optim.SGD(head.parameters(), lr=1e-5, momentum=0.9)
head.train()
avg, best = 0.0, 1e9
for i, (x, y) in enumerate(act_batches()):
    for g in opt.param_groups:
        g["lr"] = 1e-5 * (10 / 1e-5) ** (i / nb)
    loss = F.nll_loss(x(), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    avg = avg * 0.98 + loss.item() * 0.02
    sm = avg / (1 - 0.98 ** (i + 1))
    if i > 10 and sm < best:
        best = sm
    if math.isnan(sm) or sm > 4 * best:
        break
head.load_state_dict(saved)
stage("lrfind", t)

# learn.fit(1e-2, 1)
t = time.perf_counter()
acc_head = fit([(head.parameters(), 1e-2)], 1, None, act_batches, head_val, head_mode)
stage("head", t)


def img_batches():
    for x, y in batches(TX, TY, trn_tfm, True):
        yield (lambda x=x: head(pool(body(x)))), y


def net_val(train):
    body.eval()
    head.eval()
    with torch.no_grad():
        return torch.cat([head(pool(body(x))) for x, _ in batches(VX, VY, val_tfm, False)])


# learn.precompute = False; learn.fit(1e-2, 3, cycle_len=1): the body frozen,
# its batch norms in eval mode (set_train_mode: not trainable)
for p in body.parameters():
    p.requires_grad_(False)


def frozen_mode():
    body.eval()
    head.train()


t = time.perf_counter()
nb = math.ceil(len(TX) / BS)
acc_frozen = fit([(head.parameters(), 1e-2)], 3, cos_anneal(nb, 1, 3 * nb), img_batches,
                 net_val, frozen_mode)
stage("frozen", t)

# learn.unfreeze(); learn.fit([1e-4, 1e-3, 1e-2], 3, cycle_len=1, cycle_mult=2)
for p in body.parameters():
    p.requires_grad_(True)


def unfrozen_mode():
    body.train()
    head.train()


t = time.perf_counter()
acc_unfrozen = fit([(groups[0].parameters(), 1e-4), (groups[1].parameters(), 1e-3),
                    (head.parameters(), 1e-2)], 7, cos_anneal(nb, 2, 7 * nb), img_batches,
                   net_val, unfrozen_mode)
stage("unfrozen", t)

# learn.TTA(): the validation transform once, the training transform 4 times;
# probabilities averaged
t = time.perf_counter()
body.eval()
head.eval()
with torch.no_grad():
    ps = [net_val(False).exp()]
    for _ in range(4):
        ps.append(torch.cat([head(pool(body(x))) for x, _ in batches(VX, VY, trn_tfm, False)]).exp())
    p = torch.stack(ps).mean(0)
acc_tta = (p.argmax(1) == VY).float().mean().item()
nll_plain = F.nll_loss(ps[0].log(), VY).item()
nll_tta = F.nll_loss(p.log(), VY).item()
stage("tta", t)
print("# TTA: accuracy %.3f -> %.3f, NLL %.4f -> %.4f" % (acc_unfrozen, acc_tta, nll_plain, nll_tta))
print("lesson1_torch: seed %d head %.3f frozen %.3f unfrozen %.3f tta %.3f  wall %.0f s  (%s)" % (
    A.seed, acc_head, acc_frozen, acc_unfrozen, acc_tta, time.perf_counter() - T0,
    ", ".join("%s %.0f" % kv for kv in times.items())), flush=True)
