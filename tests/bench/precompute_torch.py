#!/usr/bin/python3
# PyTorch side of tests/bench/precompute.sh: eval forward images/s of a
# body at batch B, 224x224, channels_last, T threads, as a user tuning
# PyTorch would run it (torch.no_grad, nn modules).
#   precompute_torch.py resnet34 B T ROUNDS
#   precompute_torch.py darknet B T ROUNDS CFG   (the body: every layer
#       before the classifier's 1x1 convolution; weights do not matter)
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from precompute_torch_body import body_of  # noqa: E402

what, B, T, R = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(T)
body = body_of(what, sys.argv[5] if len(sys.argv) > 5 else None)[0].eval()
body = body.to(memory_format=torch.channels_last)
x = torch.randn(B, 3, 224, 224).to(memory_format=torch.channels_last)
with torch.no_grad():
    body(x)  # warm-up
    t = time.perf_counter()
    for _ in range(R):
        body(x)
    dt = time.perf_counter() - t
print("%.2f" % (B * R / dt))
