#!/usr/bin/env python3
"""PyTorch twin of segkit's UNet (same module tree, so the same state_dict names).

Two uses:
  train_torch.py step --threads 2 --steps 10 [--batch 2 --size 256] [--channels-last]
      time a training step (forward + CE+Dice loss + backward + AdamW) like segkit's bench
  train_torch.py epoch DATASET --threads 2 --workers 2
      time one epoch over the train split of a segkit dataset (PIL decode, random 256² crop,
      flips) through a DataLoader with 2 workers, batch 2, same model/loss/optimizer
  train_torch.py make-dataset DIR N SIZE
      write a synthetic segkit dataset (N SIZE² PNG images, one bright square each)
  train_torch.py check CKPT IMAGE PROBS.npy
      load a segkit checkpoint with safetensors + load_state_dict(strict=True), run the image
      (whole, no tiling) and print the max abs difference to segkit's saved probabilities
"""
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class DoubleConv(nn.Module):
    def __init__(self, cin, cout, norm):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.norm1 = make_norm(norm, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.norm2 = make_norm(norm, cout)

    def forward(self, x):
        x = F.relu(self.norm1(self.conv1(x)))
        return F.relu(self.norm2(self.conv2(x)))


def make_norm(kind, ch):
    if kind == "batch":
        return nn.BatchNorm2d(ch)
    if kind == "group":
        return nn.GroupNorm(8, ch)
    return nn.GroupNorm(ch, ch)  # instance norm with affine parameters, as segkit


class Up(DoubleConv):
    def __init__(self, deep, skip, up, norm):
        super().__init__(deep + skip if up == "bilinear" else 2 * skip, skip, norm)
        if up == "transposed":
            self.up = nn.ConvTranspose2d(deep, skip, 2, stride=2)


class UNet(nn.Module):
    def __init__(self, base=32, depth=4, up="bilinear", norm="group", out_channels=2):
        super().__init__()
        ch = [base << i for i in range(depth + 1)]
        self.depth = depth
        self.encoder = nn.ModuleList([DoubleConv(3 if i == 0 else ch[i - 1], ch[i], norm) for i in range(depth + 1)])
        self.decoder = nn.ModuleList([Up(ch[depth - j], ch[depth - j - 1], up, norm) for j in range(depth)])
        self.head = nn.Conv2d(ch[0], out_channels, 1)

    def forward(self, x):
        h, w = x.shape[2:]
        m = 1 << self.depth
        ph, pw = (m - h % m) % m, (m - w % m) % m
        x = F.pad(x, (0, pw, 0, ph))
        skips = []
        cur = self.encoder[0](x)
        for enc in self.encoder[1:]:
            skips.append(cur)
            cur = enc(F.max_pool2d(cur, 2))
        for block in self.decoder:
            skip = skips.pop()
            if hasattr(block, "up"):
                upd = block.up(cur)
            else:
                upd = F.interpolate(cur, size=skip.shape[2:], mode="bilinear", align_corners=False)
            cur = DoubleConv.forward(block, torch.cat([skip, upd], 1))
        return self.head(cur)[:, :, :h, :w]


def ce_dice(logits, target, weights):
    ce = F.cross_entropy(logits, target, weight=weights, ignore_index=255)
    valid = (target != 255).unsqueeze(1).float()
    clean = torch.where(target == 255, torch.zeros_like(target), target)
    p = logits.softmax(1) * valid
    g = F.one_hot(clean, logits.shape[1]).permute(0, 3, 1, 2).float() * valid
    tp = (p * g).sum((0, 2, 3))
    dice = (2 * tp + 1) / (p.sum((0, 2, 3)) + g.sum((0, 2, 3)) + 1)
    return ce + (1 - dice[1:].mean())


def time_steps(net, args, default_steps):
    """Median seconds of a training step (forward + CE+Dice + backward + AdamW) of `net` on a
    random batch; the same work as segkit's bench_step. Also used by vgg_torch.py."""
    threads = int(args[args.index("--threads") + 1]) if "--threads" in args else 2
    steps = int(args[args.index("--steps") + 1]) if "--steps" in args else default_steps
    batch = int(args[args.index("--batch") + 1]) if "--batch" in args else 2
    size = int(args[args.index("--size") + 1]) if "--size" in args else 256
    torch.set_num_threads(threads)
    net.train()
    x = torch.randn(batch, 3, size, size)
    if "--channels-last" in args:  # what segkit does on the CPU; not the default here
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4)
    y = (torch.rand(batch, size, size) > 0.9).long()
    w = torch.tensor([0.5, 5.0])
    times = []
    for i in range(steps + 2):
        t = time.perf_counter()
        opt.zero_grad()
        loss = ce_dice(net(x), y, w)
        loss.backward()
        opt.step()
        loss.item()
        if i >= 2:  # warm-up steps excluded, as on the segkit side
            times.append(time.perf_counter() - t)
    times.sort()
    print(json.dumps({"median_step_s": times[len(times) // 2], "threads": threads}))


def step(args):
    torch.manual_seed(0)
    time_steps(UNet(), args, 10)


class CropDataset(torch.utils.data.Dataset):
    def __init__(self, root, size=256):
        import os
        self.root, self.size = root, size
        with open(os.path.join(root, "ImageSets/Segmentation/train.txt")) as f:
            self.stems = [l.strip() for l in f if l.strip()]
        files = {e["stem"]: e["file"] for e in json.load(open(os.path.join(root, "dataset.json")))["images"]}
        self.files = [files[s] for s in self.stems]

    def __len__(self):
        return len(self.stems)

    def __getitem__(self, i):
        import os
        import numpy as np
        from PIL import Image

        img = np.asarray(Image.open(os.path.join(self.root, self.files[i])).convert("RGB"))
        mask = np.asarray(Image.open(os.path.join(self.root, "SegmentationClass", self.stems[i] + ".png")))
        h, w = mask.shape
        y, x = np.random.randint(0, h - self.size + 1), np.random.randint(0, w - self.size + 1)
        img, mask = img[y : y + self.size, x : x + self.size], mask[y : y + self.size, x : x + self.size]
        if np.random.rand() < 0.5:
            img, mask = img[:, ::-1], mask[:, ::-1]
        if np.random.rand() < 0.5:
            img, mask = img[::-1], mask[::-1]
        if np.random.rand() < 0.5:
            img, mask = img.transpose(1, 0, 2), mask.T
        x = (torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float() / 255 - 0.5) / 0.25
        return x, torch.from_numpy(np.ascontiguousarray(mask)).long()


def epoch(args):
    root = args[0]
    threads = int(args[args.index("--threads") + 1]) if "--threads" in args else 2
    workers = int(args[args.index("--workers") + 1]) if "--workers" in args else 2
    t0 = time.perf_counter()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    ds = CropDataset(root)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, shuffle=True, num_workers=workers)
    net = UNet()
    net.train()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4)
    w = torch.tensor([0.5, 5.0])
    for x, y in loader:
        opt.zero_grad()
        loss = ce_dice(net(x), y, w)
        loss.backward()
        opt.step()
        loss.item()
    print(json.dumps({"epoch_s": time.perf_counter() - t0, "images": len(ds), "threads": threads}))


def make_dataset(root, n, size):
    import os
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for d in ["JPEGImages", "SegmentationClass", "ImageSets/Segmentation"]:
        os.makedirs(os.path.join(root, d), exist_ok=True)
    images = []
    for i in range(n):
        stem = f"img{i:03d}"
        img = rng.integers(60, 110, (size, size, 3), dtype=np.uint8)
        mask = np.zeros((size, size), np.uint8)
        s = int(rng.integers(10, 40))
        y, x = rng.integers(0, size - s, 2)
        mask[y : y + s, x : x + s] = 1
        img[mask == 1] += 90
        Image.fromarray(img).save(os.path.join(root, "JPEGImages", stem + ".png"))
        Image.fromarray(mask, "L").save(os.path.join(root, "SegmentationClass", stem + ".png"))
        images.append({"stem": stem, "file": f"JPEGImages/{stem}.png", "width": size, "height": size})
    manifest = {"format": "segkit-dataset", "version": 1, "ignore_index": 255,
                "classes": [{"id": 0, "name": "_background_", "color": [0, 0, 0]}, {"id": 1, "name": "defect", "color": [128, 0, 0]}],
                "images": images, "history": []}
    json.dump(manifest, open(os.path.join(root, "dataset.json"), "w"), indent=2)
    stems = [im["stem"] for im in images]
    open(os.path.join(root, "ImageSets/Segmentation/train.txt"), "w").write("\n".join(stems[: n * 3 // 4]) + "\n")
    open(os.path.join(root, "ImageSets/Segmentation/val.txt"), "w").write("\n".join(stems[n * 3 // 4 :]) + "\n")


def read_safetensors(path):
    """The safetensors format by hand (8-byte header size, JSON header, raw little-endian
    data), so the check needs only torch and numpy; same result as safetensors.torch.load_file."""
    import numpy as np

    with open(path, "rb") as f:
        raw = f.read()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    dtypes = {"F32": np.float32, "I64": np.int64, "F64": np.float64}
    state = {}
    for name, info in header.items():
        a, b = info["data_offsets"]
        arr = np.frombuffer(raw[8 + n + a : 8 + n + b], dtype=dtypes[info["dtype"]]).reshape(info["shape"])
        state[name] = torch.from_numpy(arr.copy())
    return state, meta


def check(ckpt, image, probs_path):
    import numpy as np
    from PIL import Image

    state, meta = read_safetensors(ckpt)
    cfg = json.loads(meta["model"])
    out = 1 if cfg["head"] == "sigmoid" else cfg["num_classes"]
    net = UNet(cfg["base"], cfg["depth"], cfg["up"], cfg["norm"], out)
    net.load_state_dict(state, strict=True)
    net.eval()
    img = torch.from_numpy(np.asarray(Image.open(image).convert("RGB"))).permute(2, 0, 1).float() / 255
    mean = torch.tensor(cfg["mean"]).view(3, 1, 1)
    std = torch.tensor(cfg["std"]).view(3, 1, 1)
    with torch.no_grad():
        logits = net(((img - mean) / std).unsqueeze(0))[0]
    p = logits.sigmoid() if cfg["head"] == "sigmoid" else logits.softmax(0)
    theirs = torch.from_numpy(np.load(probs_path))
    print(json.dumps({"max_abs_diff": float((p - theirs).abs().max()), "shape": list(theirs.shape)}))


if __name__ == "__main__":
    if sys.argv[1] == "step":
        step(sys.argv[2:])
    elif sys.argv[1] == "epoch":
        epoch(sys.argv[2:])
    elif sys.argv[1] == "make-dataset":
        make_dataset(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif sys.argv[1] == "check":
        check(*sys.argv[2:5])
    else:
        sys.exit(__doc__)
