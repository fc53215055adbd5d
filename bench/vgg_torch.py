#!/usr/bin/env python3
"""PyTorch twin of segkit's unet-vgg16: the module tree of the unet-pytorch repo's
Unet(backbone="vgg") (torchvision VGG16 `features` as `vgg.features`, `up_concat4..1`,
`final`), so its state_dict names are segkit's checkpoint names.

Uses:
  vgg_torch.py make-weights DIR --classes C [--seed S] [--size N]
      write a random state dict as DIR/weights.pth (torch.save), DIR/weights_legacy.pth (the
      pre-1.6 format) and DIR/weights.safetensors,
      a random 1x3xNxN input and the model's logits for it as DIR/io.safetensors
      (tensors "x" and "logits"), and a torchvision-style VGG16 state dict
      (`features.*` + `classifier.*`) as DIR/torchvision_vgg16.pth
  vgg_torch.py step --threads 2 --steps 5 [--batch 2 --size 256]
      time a training step (forward + CE+Dice + backward + AdamW), like bench_step --arch unet-vgg16
  vgg_torch.py script-tiny OUT.pt --classes C
      torch.jit.script a tiny conv net (N x 3 x H x W -> N x C x H x W) for the torchscript: tests
  vgg_torch.py script-vgg OUT.pt --classes C
      torch.jit.script this unet-vgg16, for timing a torchscript: model in segkit
"""
import json
import sys
from typing import List

import torch
import torch.nn as nn
import torch.nn.functional as F

# The training step timed is train_torch.py's (same loss, optimizer and batch), on this model.
from train_torch import time_steps

VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


class VGG(nn.Module):
    def __init__(self):
        super().__init__()
        layers, cin = [], 3
        for v in VGG16:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(inplace=True)]
                cin = v
        self.features = nn.Sequential(*layers)

    def forward(self, x):
        # features[:4], [4:9], [9:16], [16:23], [23:30] as unet-pytorch slices them, written
        # as one loop so torch.jit.script accepts it; the fifth pool (30) is not applied.
        skips: List[torch.Tensor] = []
        for i, layer in enumerate(self.features):
            if i == 4 or i == 9 or i == 16 or i == 23:
                skips.append(x)
            if i < 30:
                x = layer(x)
        return skips[0], skips[1], skips[2], skips[3], x


class UnetUp(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.up = nn.UpsamplingBilinear2d(scale_factor=2)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, skip, deep):
        x = torch.cat([skip, self.up(deep)], 1)
        return self.relu(self.conv2(self.relu(self.conv1(x))))


class UnetVgg16(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.vgg = VGG()
        self.up_concat4 = UnetUp(1024, 512)
        self.up_concat3 = UnetUp(768, 256)
        self.up_concat2 = UnetUp(384, 128)
        self.up_concat1 = UnetUp(192, 64)
        self.final = nn.Conv2d(64, num_classes, 1)

    def forward(self, x):
        f1, f2, f3, f4, f5 = self.vgg(x)
        up4 = self.up_concat4(f4, f5)
        up3 = self.up_concat3(f3, up4)
        up2 = self.up_concat2(f2, up3)
        up1 = self.up_concat1(f1, up2)
        return self.final(up1)


def write_safetensors(path, tensors, metadata=None):
    """The safetensors format by hand (8-byte header size, JSON header, raw little-endian
    data), so nothing beyond torch is needed."""
    names = {torch.float32: "F32", torch.int64: "I64", torch.float64: "F64"}
    header, blobs, offset = {}, [], 0
    for k in sorted(tensors):
        t = tensors[k].detach().contiguous()
        b = t.numpy().tobytes()  # little-endian on every machine PyTorch runs on
        header[k] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little"))
        f.write(h)
        for b in blobs:
            f.write(b)


def arg(args, name, default):
    return type(default)(args[args.index(name) + 1]) if name in args else default


def make_weights(args):
    import os

    out = args[0]
    classes = arg(args, "--classes", 3)
    seed = arg(args, "--seed", 0)
    size = arg(args, "--size", 64)
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(seed)
    net = UnetVgg16(classes).eval()
    # Fresh PyTorch init has tiny logits; scale so a mistake in any layer shows.
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(1.5)
    state = net.state_dict()
    torch.save(state, os.path.join(out, "weights.pth"))
    # The pre-1.6 format, in which many published weights (unet-pytorch's) were saved.
    torch.save(state, os.path.join(out, "weights_legacy.pth"), _use_new_zipfile_serialization=False)
    write_safetensors(os.path.join(out, "weights.safetensors"), dict(state))
    x = torch.rand(1, 3, size, size)
    with torch.no_grad():
        logits = net(x)
    write_safetensors(os.path.join(out, "io.safetensors"), {"x": x, "logits": logits})
    # torchvision's VGG16 layout: features.* plus a classifier segkit has no use for.
    tv = {k[len("vgg."):]: v for k, v in state.items() if k.startswith("vgg.")}
    tv["classifier.0.weight"] = torch.zeros(8, 4)
    tv["classifier.0.bias"] = torch.zeros(8)
    torch.save(tv, os.path.join(out, "torchvision_vgg16.pth"))
    print(json.dumps({"tensors": len(state), "logits_abs_max": float(logits.abs().max())}))


def step(args):
    torch.manual_seed(0)
    time_steps(UnetVgg16(2), args, 5)


class Tiny(nn.Module):
    """A small conv net with GroupNorm, a stride-2 step and a bilinear way back up."""

    def __init__(self, classes):
        super().__init__()
        self.enc = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.GroupNorm(4, 16), nn.ReLU())
        self.down = nn.Sequential(nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU())
        self.dec = nn.Sequential(nn.Conv2d(48, 16, 3, padding=1), nn.ReLU())
        self.head = nn.Conv2d(16, classes, 1)

    def forward(self, x):
        a = self.enc(x)
        b = self.down(a)
        b = F.interpolate(b, size=a.shape[2:], mode="bilinear", align_corners=False)
        return self.head(self.dec(torch.cat([a, b], 1)))


def script_tiny(args):
    out = args[0]
    classes = arg(args, "--classes", 2)
    torch.manual_seed(0)
    torch.jit.script(Tiny(classes)).save(out)
    print(json.dumps({"saved": out}))


def script_vgg(args):
    out = args[0]
    classes = arg(args, "--classes", 2)
    torch.manual_seed(0)
    torch.jit.script(UnetVgg16(classes)).save(out)
    print(json.dumps({"saved": out}))


if __name__ == "__main__":
    cmds = {"make-weights": make_weights, "step": step, "script-tiny": script_tiny, "script-vgg": script_vgg}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        sys.exit(__doc__)
    cmds[sys.argv[1]](sys.argv[2:])
