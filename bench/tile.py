#!/usr/bin/env python3
"""The numpy + Pillow side of bench/tile.sh, and a fallback dataset maker.

  tile.py make OUT N SIZE     write a segkit dataset of N synthetic SIZExSIZE JPEG photos
                              with defect masks (used when `segkit convert` is unavailable)
  tile.py tile DATASET OUT T OVERLAP [LEVEL]
                              cut every image and mask of DATASET into TxT tiles the way a
                              notebook would: decode with Pillow, slice with numpy, save PNGs
                              (Pillow's default zlib level 6, or LEVEL), masks padded with 255;
                              keeps every tile
"""
import json
import math
import os
import sys

import numpy as np
from PIL import Image


def voc_palette():
    pal = []
    for i in range(256):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal += [r, g, b]
    return pal


def make(out, n, size):
    rng = np.random.default_rng(0)
    os.makedirs(f"{out}/JPEGImages", exist_ok=True)
    os.makedirs(f"{out}/SegmentationClass", exist_ok=True)
    images = []
    yy, xx = np.mgrid[0:size, 0:size]
    for i in range(n):
        stem = f"part{i:03d}"
        base = (96 + 40 * np.sin(xx / 97.0 + i) + 30 * np.cos(yy / 53.0)).astype(np.float32)
        img = np.stack([base, base * 0.9, base * 0.8], -1) + rng.normal(0, 12, (size, size, 3))
        mask = np.zeros((size, size), np.uint8)
        for _ in range(rng.integers(2, 8)):
            cls = int(rng.integers(1, 4))
            cx, cy, r = rng.integers(50, size - 50), rng.integers(50, size - 50), rng.integers(4, 40)
            mask[max(cy - r, 0):cy + r, max(cx - r // 3, 0):cx + r // 3] = cls
            img[mask == cls] *= 0.6
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(
            f"{out}/JPEGImages/{stem}.jpg", quality=92)
        m = Image.fromarray(mask, "P")
        m.putpalette(voc_palette())
        m.save(f"{out}/SegmentationClass/{stem}.png")
        vals, counts = np.unique(mask, return_counts=True)
        images.append({"stem": stem, "file": f"JPEGImages/{stem}.jpg", "width": size,
                       "height": size, "views": [], "source": f"{stem}.json",
                       "class_pixels": {str(v): int(c) for v, c in zip(vals, counts)},
                       "instances": []})
    names = ["_background_", "scratch", "dent", "crack"]
    pal = voc_palette()
    manifest = {"format": "segkit-dataset", "version": 1, "ignore_index": 255,
                "classes": [{"id": i, "name": nm, "color": pal[3 * i:3 * i + 3]}
                            for i, nm in enumerate(names)],
                "images": images, "history": []}
    with open(f"{out}/dataset.json", "w") as f:
        json.dump(manifest, f, indent=2)
    with open(f"{out}/class_names.txt", "w") as f:
        f.write("\n".join(names) + "\n")


def starts(length, tile, stride):
    if length <= tile:
        return [0]
    v = list(range(0, length - tile, stride))
    if not v or v[-1] != length - tile:
        v.append(length - tile)
    return v


def tile(dataset, out, t, overlap, level=6):
    stride = max(1, round(t * (1 - overlap)))
    os.makedirs(f"{out}/JPEGImages", exist_ok=True)
    os.makedirs(f"{out}/SegmentationClass", exist_ok=True)
    man = json.load(open(f"{dataset}/dataset.json"))
    pal = voc_palette()
    n = 0
    for e in man["images"]:
        img = np.asarray(Image.open(f"{dataset}/{e['file']}").convert("RGB"))
        mask = np.asarray(Image.open(f"{dataset}/SegmentationClass/{e['stem']}.png"))
        h, w = mask.shape
        for y in starts(h, t, stride):
            for x in starts(w, t, stride):
                ti = np.zeros((t, t, 3), np.uint8)
                tm = np.full((t, t), 255, np.uint8)
                ci, cm = img[y:y + t, x:x + t], mask[y:y + t, x:x + t]
                ti[:ci.shape[0], :ci.shape[1]] = ci
                tm[:cm.shape[0], :cm.shape[1]] = cm
                stem = f"{e['stem']}_x{x}_y{y}"
                Image.fromarray(ti).save(f"{out}/JPEGImages/{stem}.png", compress_level=level)
                m = Image.fromarray(tm, "P")
                m.putpalette(pal)
                m.save(f"{out}/SegmentationClass/{stem}.png", compress_level=level)
                n += 1
    print(f"wrote {n} tiles to {out}")


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        tile(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]),
             int(sys.argv[6]) if len(sys.argv) > 6 else 6)
