# The bodies the PyTorch sides of the benches run (precompute_torch.py,
# train_torch.py): torchvision's ResNet34 before its pool, or a darknet cfg's
# layers before the classifier's 1x1 convolution (weights do not matter).
import sys

import torch
import torchvision


def body_of(what, cfg=None):
    """Returns (body, channels of its output)."""
    if what == "resnet34":
        m = torchvision.models.resnet34()
        return torch.nn.Sequential(*list(m.children())[:-2]), 512
    secs = []
    for line in open(cfg):
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
    return torch.nn.Sequential(*layers), c
