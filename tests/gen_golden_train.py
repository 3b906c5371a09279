#!/usr/bin/python3
# Golden training steps computed by PyTorch (Debian python3-torch), made at
# test time by tests/train.bats (skipped without torch): ten SGD steps
# (momentum 0.9, weight decay, per-batch learning rates from fast.ai's SGDR
# formula) of
#   head:   the fast.ai head (BatchNorm1d, Dropout, Linear 512, ReLU,
#           BatchNorm1d, Dropout, Linear K, LogSoftmax) on fixed activations;
#   resnet: a whole torchvision ResNet18 with that head at 32x32, unfrozen,
#           three layer groups (conv1..layer2, layer3..layer4, head) at three
#           rates (fast.ai's differential learning rates);
#   darknet: a small network of Tiny Darknet's kinds of layer (3x3 and 1x1
#           convolutions with batch norm and leaky ReLU 0.1, 2x2 maxpools) at
#           32x32 with that head, unfrozen, its groups split where cnnpipe
#           splits a darknet body (after the last layer at stride 8);
#   tinydarknet: Tiny Darknet's own body (random weights) at GOLDEN_SIZE
#           (224) in batches of GOLDEN_BS (64): the dev-set training's
#           shapes and kernel paths.
# Dropout is off (p = 0) in both, so the masks need not agree.
# usage: /usr/bin/python3 tests/gen_golden_train.py head|resnet|darknet|tinydarknet
#            OUT.stream [STEPS]
#
# OUT: record 0 = the initial state_dict with our names (f32); record 1 =
# x (all samples), y (i32), order (i32: the samples of each batch, batches
# of bs in sequence), lr (f64 (steps, 3): the rates of the three groups),
# loss (f64 (steps)); record 2 = the state_dict after the steps (weights and
# running statistics).  Meta: steps, bs, momentum, wd, features, classes.
import math
import os
import sys

import numpy as np
import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cnnpipe_stream import write_stream  # noqa: E402

what, out = sys.argv[1], sys.argv[2]
torch.manual_seed(7)
torch.set_num_threads(1)
torch.set_default_dtype(torch.float32)
K, bs, steps, mom, wd = 2, 16, int(sys.argv[3]) if len(sys.argv) > 3 else 10, 0.9, 1e-3
# tinydarknet: Tiny Darknet's own body at SIZE (default 224) in batches of
# BS (default 64), the shapes (and kernel paths) of the dev-set training
SIZE = int(os.environ.get("GOLDEN_SIZE", "224")) if what == "tinydarknet" else 32
if what == "tinydarknet":
    bs = int(os.environ.get("GOLDEN_BS", "64"))


class ConcatPool(torch.nn.Module):
    def forward(self, x):   # fast.ai AdaptiveConcatPool2d: max, then avg
        return torch.cat([torch.amax(x, (2, 3), keepdim=True),
                          torch.mean(x, (2, 3), keepdim=True)], 1)


def head(F):
    h = torch.nn.ModuleDict({
        "bn1": torch.nn.BatchNorm1d(F), "fc1": torch.nn.Linear(F, 512),
        "bn2": torch.nn.BatchNorm1d(512), "fc2": torch.nn.Linear(512, K)})
    with torch.no_grad():
        for b in (h["bn1"], h["bn2"]):
            b.weight.uniform_(0.5, 1.5)
            b.bias.uniform_(-0.2, 0.2)
    return h


def head_forward(h, f):
    f = h["fc1"](h["bn1"](f))       # Dropout(0) between: the identity
    f = h["fc2"](h["bn2"](torch.relu(f)))
    return torch.log_softmax(f, 1)


if what == "head":
    F, N = 64, 40
    h = head(F)
    body = None
    x = torch.randn(N, F) * 2 + 0.5
    params = [("head." + k, v) for k, v in h.state_dict().items()]
    groups = [[], [], list(h.parameters())]
elif what in ("darknet", "tinydarknet"):
    F, N = 256, 48 if what == "darknet" else 2 * bs
    # (filters, size) per convolutional, "M" a 2x2/2 maxpool; the tail (a
    # 1x1 classifier, avgpool, softmax) is cut, as from Tiny Darknet
    layout = [(16, 3), "M", (32, 3), "M", (16, 1), (64, 3), "M", (32, 1), (128, 3),
              "M", (64, 1), (128, 3)]
    if what == "tinydarknet":
        layout = [(16, 3), "M", (32, 3), "M", (16, 1), (128, 3), (16, 1), (128, 3), "M",
                  (32, 1), (256, 3), (32, 1), (256, 3), "M", (64, 1), (512, 3), (64, 1),
                  (512, 3), (128, 1)]
    cfg = ["[net]", "width=%d" % SIZE, "height=%d" % SIZE, "channels=3", ""]
    body = torch.nn.ModuleDict()
    c, params, g0, g1, hw = 3, [], [], [], SIZE
    for i, l in enumerate(layout):
        if l == "M":
            cfg += ["[maxpool]", "size=2", "stride=2", ""]
            hw //= 2
            continue
        f, k = l
        cfg += ["[convolutional]", "batch_normalize=1", "filters=%d" % f,
                "size=%d" % k, "stride=1", "pad=1", "activation=leaky", ""]
        conv = torch.nn.Conv2d(c, f, k, padding=k // 2, bias=False)
        bn = torch.nn.BatchNorm2d(f)
        with torch.no_grad():
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 1.5)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.2, 0.2)
        body["c%d" % i], body["b%d" % i] = conv, bn
        params += [("layers.%d.conv.weight" % i, conv.weight)]
        params += [("layers.%d.bn.%s" % (i, n), t) for n, t in bn.state_dict().items()]
        (g0 if hw * 8 >= SIZE else g1).extend([conv.weight, bn.weight, bn.bias])
        c = f
    cfg += ["[convolutional]", "filters=10", "size=1", "stride=1", "pad=1",
            "activation=linear", "", "[avgpool]", "", "[softmax]", "groups=1", ""]
    h = head(F)
    x = torch.randn(N, 3, SIZE, SIZE)
    params += [("head." + k, v) for k, v in h.state_dict().items()]
    groups = [g0, g1, list(h.parameters())]
else:
    F, N = 1024, 48
    body = torchvision.models.resnet18()
    h = head(F)
    with torch.no_grad():
        for mod in body.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 1.5)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.2, 0.2)
    x = torch.randn(N, 3, 32, 32)
    sd = body.state_dict()
    params = [(k, v) for k, v in sd.items() if not k.startswith("fc.")]
    params += [("head." + k, v) for k, v in h.state_dict().items()]
    g0 = [p for n, p in body.named_parameters()
          if n.split(".")[0] in ("conv1", "bn1", "layer1", "layer2")]
    g1 = [p for n, p in body.named_parameters()
          if n.split(".")[0] in ("layer3", "layer4")]
    groups = [g0, g1, list(h.parameters())]


def state():
    return {k: v.detach().numpy().astype(np.float32).copy()
            for k, v in params if not k.endswith("num_batches_tracked")}


def net(xb):
    if body is None:
        return head_forward(h, xb)
    if what in ("darknet", "tinydarknet"):
        f = xb
        for i, l in enumerate(layout):
            if l == "M":
                f = torch.nn.functional.max_pool2d(f, 2, 2)
            else:
                f = torch.nn.functional.leaky_relu(body["b%d" % i](body["c%d" % i](f)), 0.1)
        return head_forward(h, torch.flatten(ConcatPool()(f), 1))
    m = body
    f = m.maxpool(m.relu(m.bn1(m.conv1(xb))))
    f = m.layer4(m.layer3(m.layer2(m.layer1(f))))
    return head_forward(h, torch.flatten(ConcatPool()(f), 1))


y = torch.randint(0, K, (N,), dtype=torch.int64)
init = state()
rng = np.random.default_rng(3)
order = np.concatenate([rng.permutation(N) for _ in range(steps * bs // N + 1)])[:steps * bs]
base = np.array([1e-4, 1e-3, 1e-2]) if body is not None else np.array([0, 0, 5e-2])
# fast.ai's CosAnneal over nb = 2 epochs of 5 batches (sgdr.py calc_lr)
nb, lrs, it, ci = 10.0, [], 0, 0
for _ in range(steps):
    if it < nb / 20:
        f = 1 / 100
    else:
        f = (math.cos(math.pi * ci / nb) + 1) / 2
    ci += 1
    it += 1
    lrs.append(base * f)
opt = torch.optim.SGD([{"params": g, "lr": 0.0} for g in groups if g],
                      lr=0.0, momentum=mom, weight_decay=wd)
if body is not None:
    body.train()
h.train()
losses = []
for s in range(steps):
    idx = torch.from_numpy(order[s * bs:(s + 1) * bs])
    live = [i for i in range(3) if groups[i]]
    for pg, gi in zip(opt.param_groups, live):
        pg["lr"] = float(lrs[s][gi])
    opt.zero_grad()
    loss = torch.nn.functional.nll_loss(net(x[idx]), y[idx])
    loss.backward()
    opt.step()
    losses.append(loss.item())
meta = {"kind": "golden", "what": what, "steps": str(steps), "bs": str(bs),
        "momentum": repr(mom), "wd": repr(wd), "features": str(F),
        "classes": str(K)}
if what in ("darknet", "tinydarknet"):
    meta["darknet_cfg"] = "\n".join(cfg)
    meta["size"] = str(SIZE)
rec = {"x": x.numpy().astype(np.float32), "y": y.numpy().astype(np.int32),
       "order": order.astype(np.int32), "lr": np.array(lrs, dtype=np.float64),
       "loss": np.array(losses, dtype=np.float64)}
write_stream(out, meta, [init, rec, state()])
