#!/usr/bin/python3
# PyTorch side of tests/bench/ops_conv.c: the same ResNet34 convolution
# shapes, channels_last, timed the same way; plus the whole resnet34 eval
# forward for reference.  Run with
#   GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736
# usage: ops_conv.py [batch] [threads] [reps]
import sys
import time

import torch
import torch.nn.functional as F

batch = int(sys.argv[1]) if len(sys.argv) > 1 else 64
threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
reps = int(sys.argv[3]) if len(sys.argv) > 3 else 1
torch.set_num_threads(threads)
L = [(3, 224, 64, 7, 2, 3, 1, "conv1 7x7/2"), (64, 56, 64, 3, 1, 1, 6, "layer1 3x3"),
     (64, 56, 128, 3, 2, 1, 1, "layer2.0 3x3/2"), (64, 56, 128, 1, 2, 0, 1, "layer2.0 ds 1x1/2"),
     (128, 28, 128, 3, 1, 1, 7, "layer2 3x3"), (128, 28, 256, 3, 2, 1, 1, "layer3.0 3x3/2"),
     (128, 28, 256, 1, 2, 0, 1, "layer3.0 ds 1x1/2"), (256, 14, 256, 3, 1, 1, 11, "layer3 3x3"),
     (256, 14, 512, 3, 2, 1, 1, "layer4.0 3x3/2"), (256, 14, 512, 1, 2, 0, 1, "layer4.0 ds 1x1/2"),
     (512, 7, 512, 3, 1, 1, 5, "layer4 3x3")]
total = flops_all = 0.0
print("%-20s %6s %9s %9s" % ("layer", "count", "ms", "GFLOP/s"))
with torch.no_grad():
    for C, H, K, R, st, pad, count, what in L:
        x = torch.rand(batch, C, H, H).to(memory_format=torch.channels_last)
        w = torch.rand(K, C, R, R).to(memory_format=torch.channels_last)
        F.conv2d(x, w, None, st, pad)
        t0 = time.perf_counter()
        for _ in range(reps):
            y = F.conv2d(x, w, None, st, pad)
        dt = (time.perf_counter() - t0) / reps
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
