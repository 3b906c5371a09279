#!/usr/bin/python3
# PyTorch side of tests/bench/precompute.sh: eval forward images/s of a
# body at batch B, 224x224, channels_last, T threads, as a user tuning
# PyTorch would run it (torch.no_grad, nn modules).
#   precompute_torch.py resnet34 B T ROUNDS
#   precompute_torch.py darknet B T ROUNDS CFG   (the body: every layer
#       before the classifier's 1x1 convolution; weights do not matter)
import sys
import time

import torch
import torchvision

what, B, T, R = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(T)
if what == "resnet34":
    m = torchvision.models.resnet34().eval()
    body = torch.nn.Sequential(*list(m.children())[:-2])
else:
    secs = []
    for line in open(sys.argv[5]):
        line = line.split("#")[0].strip()
        if line.startswith("["):
            secs.append((line.strip("[]"), {}))
        elif "=" in line:
            k, v = line.split("=", 1)
            secs[-1][1][k.strip()] = v.strip()
    layers, c = [], 3
    convs = [i for i, (k, _) in enumerate(secs) if k == "convolutional"]
    for i, (k, o) in enumerate(secs[1:convs[-1]], 1):
        if k == "convolutional":
            f, s = int(o["filters"]), int(o.get("size", 1))
            layers += [torch.nn.Conv2d(c, f, s, int(o.get("stride", 1)), s // 2, bias=False),
                       torch.nn.BatchNorm2d(f), torch.nn.LeakyReLU(0.1, inplace=True)]
            c = f
        elif k == "maxpool":
            layers.append(torch.nn.MaxPool2d(int(o["size"]), int(o["stride"])))
        else:
            sys.exit("bench: unsupported [%s]" % k)
    body = torch.nn.Sequential(*layers).eval()
body = body.to(memory_format=torch.channels_last)
x = torch.randn(B, 3, 224, 224).to(memory_format=torch.channels_last)
with torch.no_grad():
    body(x)  # warm-up
    t = time.perf_counter()
    for _ in range(R):
        body(x)
    dt = time.perf_counter() - t
print("%.2f" % (B * R / dt))
