#!/usr/bin/python3
# PyTorch side of tests/bench/train.sh: training images/s (forward, NLL on
# fast.ai's head, backward, SGD with momentum 0.9) at batch B, 224x224,
# channels_last, T threads, as a user tuning PyTorch would run it; or the
# head alone on activations in epochs/s.
#   train_torch.py unfrozen resnet34|darknet B T ROUNDS [CFG]
#   train_torch.py frozen resnet34|darknet B T ROUNDS [CFG]
#   train_torch.py head F N B T ROUNDS
# With TORCH_BF16=1 the unfrozen and frozen steps' forward runs under
# torch.autocast("cpu", dtype=torch.bfloat16) (oneDNN's bf16 kernels where
# the CPU has AVX-512 BF16), the peer of train --precision bf16.
import os
import sys
import time

import torch
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__))))
from precompute_torch_body import body_of  # noqa: E402


class ConcatPool(torch.nn.Module):
    def forward(self, x):
        return torch.cat([torch.amax(x, (2, 3)), torch.mean(x, (2, 3))], 1)


def head(F, K=2):   # fast.ai 0.7 ConvnetBuilder's head
    return torch.nn.Sequential(
        torch.nn.BatchNorm1d(F), torch.nn.Dropout(0.25), torch.nn.Linear(F, 512),
        torch.nn.ReLU(), torch.nn.BatchNorm1d(512), torch.nn.Dropout(0.5),
        torch.nn.Linear(512, K), torch.nn.LogSoftmax(1))


mode = sys.argv[1]
if mode == "head":
    F, N, B, T, R = (int(v) for v in sys.argv[2:7])
    torch.set_num_threads(T)
    h = head(F).train()
    opt = torch.optim.SGD(h.parameters(), lr=1e-2, momentum=0.9)
    x, y = torch.randn(N, F), torch.randint(0, 2, (N,))

    def epoch():
        perm = torch.randperm(N)
        for i in range(0, N, B):
            idx = perm[i:i + B]
            opt.zero_grad()
            torch.nn.functional.nll_loss(h(x[idx]), y[idx]).backward()
            opt.step()
    epoch()
    t = time.perf_counter()
    for _ in range(R):
        epoch()
    print("%.2f" % (R / (time.perf_counter() - t)))
    sys.exit(0)

arch, B, T, R = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(T)
body, C = body_of(arch, sys.argv[6] if len(sys.argv) > 6 else None)
h = head(2 * C)
body = body.to(memory_format=torch.channels_last)
x = torch.randn(B, 3, 224, 224).to(memory_format=torch.channels_last)
y = torch.randint(0, 2, (B,))
if mode == "unfrozen":
    body.train()
    params = list(body.parameters()) + list(h.parameters())
else:
    body.eval()
    for p in body.parameters():
        p.requires_grad_(False)
    params = list(h.parameters())
opt = torch.optim.SGD(params, lr=1e-3, momentum=0.9)


bf16 = os.environ.get("TORCH_BF16") == "1"


def step():
    opt.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        if mode == "unfrozen":
            f = body(x)
        else:
            with torch.no_grad():
                f = body(x)
        loss = torch.nn.functional.nll_loss(h(ConcatPool()(f.float())).float(), y)
    loss.backward()
    opt.step()


step()   # warm-up
t = time.perf_counter()
for _ in range(R):
    step()
print("%.2f" % (B * R / (time.perf_counter() - t)))
