#!/usr/bin/python3
# Golden values for a whole torchvision ResNet18 (random weights, seeded) at
# a small input, forward in eval and train mode and backward, computed by
# PyTorch (Debian python3-torch).  The weights are 46 MB, too big to commit,
# so tests/net.bats makes this file at test time (skipped without torch).
# usage: /usr/bin/python3 tests/gen_golden_net.py OUT.stream [SIZE]
#
# OUT is a cnnpipe tensor stream: record 0 = the state_dict (f32, without
# num_batches_tracked); record 1 = x (N,3,S,S), g (N,1000) the upstream
# gradient, eval_logits, train_logits (after which the running stats are
# updated), dx = d(sum(train_logits*g))/dx, grad.<param> for every learnable
# tensor, after.<name> for every BN running stat after the train step.
import os
import sys

import numpy as np
import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cnnpipe_stream import write_stream  # noqa: E402

out = sys.argv[1]
size = int(sys.argv[2]) if len(sys.argv) > 2 else 64
torch.manual_seed(2024)
torch.set_num_threads(1)
m = torchvision.models.resnet18()
# Non-trivial BN statistics and affine parameters, so eval mode tests them.
with torch.no_grad():
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.2, 0.2)
            mod.running_var.uniform_(0.5, 1.5)
            mod.weight.uniform_(0.5, 1.5)
            mod.bias.uniform_(-0.2, 0.2)
sd = {k: v.detach().numpy().astype(np.float32).copy()
      for k, v in m.state_dict().items() if not k.endswith("num_batches_tracked")}
x = torch.randn(2, 3, size, size)
g = torch.randn(2, 1000)
rec = {"x": x.numpy(), "g": g.numpy()}
m.eval()
with torch.no_grad():
    rec["eval_logits"] = m(x).numpy()
m.train()
xr = x.clone().requires_grad_(True)
y = m(xr)
(y * g).sum().backward()
rec["train_logits"] = y.detach().numpy()
rec["dx"] = xr.grad.numpy()
for k, p in m.named_parameters():
    rec["grad." + k] = p.grad.numpy()
for k, v in m.state_dict().items():
    if "running" in k:
        rec["after." + k] = v.numpy().copy()
write_stream(out, {"kind": "golden", "arch": "resnet18", "size": str(size)},
             [sd, rec])
