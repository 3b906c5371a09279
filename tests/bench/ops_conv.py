#!/usr/bin/python3
# PyTorch side of tests/bench/ops_conv.c: the same convolution shapes
# (ResNet34's, or Tiny Darknet's body), channels_last, timed the same way
# (median of reps calls after a warm-up); plus, with --net, the whole
# resnet34 eval forward for reference.  Run with
#   GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736
# usage: ops_conv.py [batch] [threads] [reps] [resnet34|darknet] [--net]
import statistics
import sys
import time

import torch
import torch.nn.functional as F

args = [a for a in sys.argv[1:] if not a.startswith("--")]
batch = int(args[0]) if len(args) > 0 else 64
threads = int(args[1]) if len(args) > 1 else 2
reps = int(args[2]) if len(args) > 2 else 1
net = args[3] if len(args) > 3 else "resnet34"
torch.set_num_threads(threads)
RESNET34 = [(3, 224, 64, 7, 2, 3, 1, "conv1 7x7/2"), (64, 56, 64, 3, 1, 1, 6, "layer1 3x3"),
            (64, 56, 128, 3, 2, 1, 1, "layer2.0 3x3/2"), (64, 56, 128, 1, 2, 0, 1, "layer2.0 ds 1x1/2"),
            (128, 28, 128, 3, 1, 1, 7, "layer2 3x3"), (128, 28, 256, 3, 2, 1, 1, "layer3.0 3x3/2"),
            (128, 28, 256, 1, 2, 0, 1, "layer3.0 ds 1x1/2"), (256, 14, 256, 3, 1, 1, 11, "layer3 3x3"),
            (256, 14, 512, 3, 2, 1, 1, "layer4.0 3x3/2"), (256, 14, 512, 1, 2, 0, 1, "layer4.0 ds 1x1/2"),
            (512, 7, 512, 3, 1, 1, 5, "layer4 3x3")]
# ../shared/models/tinydarknet/tiny.cfg up to the 1000-filter classifier
DARKNET = [(3, 224, 16, 3, 1, 1, 1, "c1 3x3 3-16"), (16, 112, 32, 3, 1, 1, 1, "c2 3x3 16-32"),
           (32, 56, 16, 1, 1, 0, 1, "c3 1x1 32-16"), (16, 56, 128, 3, 1, 1, 2, "c4 3x3 16-128"),
           (128, 56, 16, 1, 1, 0, 1, "c5 1x1 128-16"), (128, 28, 32, 1, 1, 0, 1, "c7 1x1 128-32"),
           (256, 28, 32, 1, 1, 0, 1, "c9 1x1 256-32"),
           (32, 28, 256, 3, 1, 1, 2, "c8 3x3 32-256"), (256, 14, 64, 1, 1, 0, 1, "c11 1x1 256-64"),
           (64, 14, 512, 3, 1, 1, 2, "c12 3x3 64-512"), (512, 14, 64, 1, 1, 0, 1, "c13 1x1 512-64"),
           (512, 14, 128, 1, 1, 0, 1, "c15 1x1 512-128")]
L = DARKNET if net == "darknet" else RESNET34
total = flops_all = 0.0
print("%-20s %6s %9s %9s" % ("layer", "count", "ms", "GFLOP/s"))
with torch.no_grad():
    for C, H, K, R, st, pad, count, what in L:
        x = torch.rand(batch, C, H, H).to(memory_format=torch.channels_last)
        w = torch.rand(K, C, R, R).to(memory_format=torch.channels_last)
        F.conv2d(x, w, None, st, pad)
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            y = F.conv2d(x, w, None, st, pad)
            times.append(time.perf_counter() - t0)
        dt = statistics.median(times)
        flops = 2.0 * y.numel() * C * R * R
        print("%-20s %6d %9.1f %9.1f" % (what, count, dt * 1e3, flops / dt * 1e-9))
        total += dt * count
        flops_all += flops * count
print("total conv forward: %.3f s for %d images = %.1f images/s, %.1f GFLOP/s" %
      (total, batch, batch / total, flops_all / total * 1e-9))
if "--net" in sys.argv:
    import torchvision
    m = torchvision.models.resnet34().eval().to(memory_format=torch.channels_last)
    x = torch.rand(batch, 3, 224, 224).to(memory_format=torch.channels_last)
    with torch.no_grad():
        m(x)
        t0 = time.perf_counter()
        m(x)
        dt = time.perf_counter() - t0
    print("resnet34 eval forward: %.3f s = %.1f images/s" % (dt, batch / dt))
