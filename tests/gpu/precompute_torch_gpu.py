#!/usr/bin/python3
# PyTorch's side of tests/gpu/run.sh's benchmark: eval forward images/s of
# torchvision ResNet34's body (everything before the pool and classifier)
# at 224x224 on the GPU, as a user tuning PyTorch runs it: channels_last,
# cudnn.benchmark, torch.no_grad, a warm-up, synchronised timing; f32
# (TF32 off) or TF32, as cnnpipe's CNNPIPE_CUDA_TF32.
#   precompute_torch_gpu.py BATCH ROUNDS TF32(0|1)
import sys
import time

import torch
import torchvision

B, R, tf32 = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
torch.backends.cudnn.benchmark = True
torch.backends.cudnn.allow_tf32 = tf32
torch.backends.cuda.matmul.allow_tf32 = tf32
net = torchvision.models.resnet34()
body = torch.nn.Sequential(*list(net.children())[:-2]).cuda().eval()
body = body.to(memory_format=torch.channels_last)
x = torch.randn(B, 3, 224, 224, device="cuda").to(memory_format=torch.channels_last)
with torch.no_grad():
    for _ in range(3):
        body(x)
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(R):
        body(x)
    torch.cuda.synchronize()
    dt = time.perf_counter() - t
print("%.2f" % (B * R / dt))
