#!/usr/bin/python3
# Golden fixtures for tests/unit/test_ops.c: every op of kernels/ops.h,
# forward and backward, computed by PyTorch (Debian python3-torch 1.13).
# usage: /usr/bin/python3 tests/gen_golden_ops.py [OUT]   (default
# tests/fixtures/ops_golden.bin)
#
# Format (little-endian, until the tensor stream is used here): magic
# b"OPSFIX01", then tensors: u32 name length, name, u32 dtype (0 f32, 1 i32,
# 2 u8), u32 ndim, i64 dims[ndim], raw data.  Names are "<case>.<tensor>".
import struct
import sys

import torch
import torch.nn.functional as F

torch.manual_seed(1234)
out = []


def put(name, t):
    t = t.detach().contiguous()
    if t.dtype == torch.float32:
        code = 0
    elif t.dtype in (torch.int32, torch.int64):
        t, code = t.to(torch.int32), 1
    elif t.dtype in (torch.uint8, torch.bool):
        t, code = t.to(torch.uint8), 2
    else:
        raise ValueError(t.dtype)
    b = name.encode()
    out.append(struct.pack("<I", len(b)) + b + struct.pack("<II", code, t.dim()) +
               struct.pack("<%dq" % t.dim(), *t.shape) + t.numpy().tobytes())


def leaf(*shape):
    return torch.randn(*shape).requires_grad_()


def conv(name, N, C, H, W, K, R, stride, pad, bias):
    x, w = leaf(N, C, H, W), leaf(K, C, R, R)
    b = leaf(K) if bias else None
    y = F.conv2d(x, w, b, stride=stride, padding=pad)
    dy = torch.randn_like(y)
    y.backward(dy)
    put(name + ".params", torch.tensor([stride, pad], dtype=torch.int32))
    for k, v in (("x", x), ("w", w), ("y", y), ("dy", dy), ("dx", x.grad), ("dw", w.grad)):
        put(name + "." + k, v)
    if bias:
        put(name + ".b", b)
        put(name + ".db", b.grad)


conv("conv_a", 2, 3, 9, 8, 4, 3, 1, 1, True)
conv("conv_b", 2, 5, 11, 10, 6, 3, 2, 1, False)
conv("conv_c", 3, 4, 7, 7, 5, 1, 2, 0, False)     # ResNet downsample 1x1/2
conv("conv_d", 1, 3, 15, 13, 4, 7, 2, 3, True)    # ResNet stem 7x7/2 pad 3
conv("conv_e", 2, 6, 5, 5, 3, 1, 1, 0, True)      # pointwise


def bn(name, shape, train):
    C = shape[1]
    x = (torch.randn(*shape) * 2 + 0.5).requires_grad_()
    m = torch.nn.BatchNorm2d(C) if len(shape) == 4 else torch.nn.BatchNorm1d(C)
    with torch.no_grad():
        m.weight.copy_(torch.randn(C))
        m.bias.copy_(torch.randn(C))
        m.running_mean.copy_(torch.randn(C))
        m.running_var.copy_(torch.rand(C) + 0.5)
    put(name + ".gamma", m.weight)
    put(name + ".beta", m.bias)
    put(name + ".rmean0", m.running_mean.clone())
    put(name + ".rvar0", m.running_var.clone())
    m.train(train)
    y = m(x)
    dy = torch.randn_like(y)
    y.backward(dy)
    for k, v in (("x", x), ("y", y), ("dy", dy), ("dx", x.grad),
                 ("dgamma", m.weight.grad), ("dbeta", m.bias.grad),
                 ("rmean1", m.running_mean), ("rvar1", m.running_var)):
        put(name + "." + k, v)


bn("bn2d_train", (3, 4, 5, 6), True)
bn("bn2d_eval", (3, 4, 5, 6), False)
bn("bn1d_train", (6, 5), True)
bn("bn1d_eval", (6, 5), False)


def unary(name, fn, x):
    x = x.requires_grad_()
    y = fn(x)
    dy = torch.randn_like(y)
    y.backward(dy)
    for k, v in (("x", x), ("y", y), ("dy", dy), ("dx", x.grad)):
        put(name + "." + k, v)


unary("relu", F.relu, torch.randn(2, 3, 4, 5))
unary("leaky", lambda t: F.leaky_relu(t, 0.1), torch.randn(2, 3, 4, 5))
unary("maxpool_3s2p1", lambda t: F.max_pool2d(t, 3, 2, 1), torch.randn(2, 3, 9, 9))
unary("maxpool_2s2", lambda t: F.max_pool2d(t, 2, 2), torch.randn(2, 3, 8, 7))
unary("avgpool_3s2p1", lambda t: F.avg_pool2d(t, 3, 2, 1), torch.randn(2, 3, 9, 8))
unary("avgpool_2s2", lambda t: F.avg_pool2d(t, 2, 2), torch.randn(2, 3, 8, 7))
# fastai/layers.py AdaptiveConcatPool2d: torch.cat([self.mp(x), self.ap(x)], 1)
unary("concat_pool", lambda t: torch.cat([F.adaptive_max_pool2d(t, 1),
                                          F.adaptive_avg_pool2d(t, 1)], 1).flatten(1),
      torch.randn(2, 3, 5, 4))
unary("global_avgpool", lambda t: F.adaptive_avg_pool2d(t, 1).flatten(1), torch.randn(2, 3, 5, 4))
unary("log_softmax", lambda t: F.log_softmax(t, 1), torch.randn(4, 10) * 3)

a, b = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
put("add.a", a)
put("add.b", b)
put("add.y", a + b)

x, w, b = leaf(4, 7), leaf(5, 7), leaf(5)
y = F.linear(x, w, b)
dy = torch.randn_like(y)
y.backward(dy)
for k, v in (("x", x), ("w", w), ("b", b), ("y", y), ("dy", dy), ("dx", x.grad),
             ("dw", w.grad), ("db", b.grad)):
    put("linear." + k, v)

# Dropout: PyTorch's mask cannot be reproduced (different RNG); the test
# rebuilds the mask from y != 0 and checks that our scaling and backward give
# the same y and dx with it.
x = (torch.rand(1000) + 0.5).requires_grad_()
y = F.dropout(x, 0.5, training=True)
dy = torch.randn_like(y)
y.backward(dy)
for k, v in (("x", x), ("y", y), ("dy", dy), ("dx", x.grad)):
    put("dropout." + k, v)

logp = F.log_softmax(torch.randn(4, 10), 1).requires_grad_()
target = torch.tensor([3, 0, 9, 3])
loss = F.nll_loss(logp, target)
(loss * 0.7).backward()
put("nll.logp", logp)
put("nll.target", target)
put("nll.loss", loss.reshape(1))
put("nll.dlogp", logp.grad)      # for dloss = 0.7

path = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/ops_golden.bin"
with open(path, "wb") as f:
    f.write(b"OPSFIX01" + b"".join(out))
