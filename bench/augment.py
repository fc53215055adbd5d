"""segkit augment vs albumentations 2.0.8: images/s per transform, single-threaded, 512x512 RGB.

Run through bench/augment.sh (it builds the Rust side and provisions the venv). Both sides
augment the same 512x512 image and mask (a labelme example photo and its VOC mask, resized),
with each transform at p=1 and the same parameters, in one run; prints a table with the ratio.
Usage: python augment.py SEGKIT_BENCH_BINARY WORKDIR [ITERS] [ROUNDS]
"""
import os
import subprocess
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
import cv2  # noqa: E402
import numpy as np  # noqa: E402
import albumentations as A  # noqa: E402
from PIL import Image  # noqa: E402

cv2.setNumThreads(1)

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "..", "shared", "data", "labelme-examples", "semantic_segmentation")

# name: (albumentations transform, segkit TOML body); same parameters on both sides.
CASES = {
    "HorizontalFlip": (A.HorizontalFlip(p=1), 'name = "HorizontalFlip"\np = 1.0'),
    "VerticalFlip": (A.VerticalFlip(p=1), 'name = "VerticalFlip"\np = 1.0'),
    "RandomRotate90": (A.RandomRotate90(p=1), 'name = "RandomRotate90"\np = 1.0'),
    "Rotate45": (
        A.Rotate(limit=45, border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=255, p=1),
        'name = "Rotate"\nlimit = 45\nborder_mode = 0\nfill = 0\nfill_mask = 255\np = 1.0',
    ),
    "RandomCrop256": (A.RandomCrop(256, 256, p=1), 'name = "RandomCrop"\nheight = 256\nwidth = 256\np = 1.0'),
    "Affine": (
        A.Affine(scale=(0.9, 1.1), translate_percent=(-0.1, 0.1), rotate=(-30, 30), shear=(-10, 10), fill_mask=255, p=1),
        'name = "Affine"\nscale = [0.9, 1.1]\ntranslate_percent = [-0.1, 0.1]\nrotate = [-30, 30]\n'
        'shear = [-10, 10]\nfill_mask = 255\np = 1.0',
    ),
    "BrightnessContrast": (
        A.RandomBrightnessContrast(p=1),
        'name = "RandomBrightnessContrast"\np = 1.0',
    ),
    "GaussNoise": (A.GaussNoise(std_range=(0.05, 0.1), p=1), 'name = "GaussNoise"\nstd_range = [0.05, 0.1]\np = 1.0'),
    "ElasticTransform": (
        A.ElasticTransform(alpha=30, sigma=5, fill_mask=255, p=1),
        'name = "ElasticTransform"\nalpha = 30\nsigma = 5\nfill_mask = 255\np = 1.0',
    ),
}

FULL_A = A.Compose([
    A.HorizontalFlip(p=0.5),
    A.VerticalFlip(p=0.5),
    A.RandomRotate90(p=0.5),
    A.Affine(scale=(0.9, 1.1), translate_percent=(-0.05, 0.05), rotate=(-15, 15), fill_mask=255, p=0.5),
    A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.5),
    A.OneOf([A.GaussNoise(std_range=(0.01, 0.04), p=1), A.GaussianBlur(blur_limit=(3, 5), p=1)], p=0.3),
])


def time_albu(t, img, mask, iters):
    for _ in range(max(1, iters // 10)):
        t(image=img, mask=mask)
    t0 = time.perf_counter()
    for _ in range(iters):
        t(image=img, mask=mask)
    return iters / (time.perf_counter() - t0)


def main():
    binary, work = sys.argv[1], sys.argv[2]
    iters = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    os.makedirs(work, exist_ok=True)
    img = cv2.cvtColor(cv2.imread(os.path.join(DATA, "data_annotated", "2011_000003.jpg")), cv2.COLOR_BGR2RGB)
    img = np.ascontiguousarray(cv2.resize(img, (512, 512), interpolation=cv2.INTER_AREA))
    mask = np.array(Image.open(os.path.join(DATA, "data_dataset_voc", "SegmentationClass", "2011_000003.png")))
    mask = np.ascontiguousarray(cv2.resize(mask, (512, 512), interpolation=cv2.INTER_NEAREST))
    img_path, mask_path = os.path.join(work, "image.png"), os.path.join(work, "mask.png")
    Image.fromarray(img).save(img_path)
    Image.fromarray(mask, mode="L").save(mask_path)

    files = []
    for name, (_, body) in CASES.items():
        path = os.path.join(work, f"{name}.toml")
        with open(path, "w") as f:
            f.write("[[transforms]]\n" + body + "\n")
        files.append(path)
    full = os.path.join(work, "FullPipeline.toml")
    with open(os.path.join(HERE, "..", "augment", "pipelines", "defects.toml")) as src, open(full, "w") as f:
        f.write(src.read())
    files.append(full)

    # The machine may be shared: alternate the two sides case by case, several rounds, and
    # keep each side's best round, so that both see the same background load.
    cases = list(CASES) + ["FullPipeline"]
    albu = {name: A.Compose([t]) for name, (t, _) in CASES.items()}
    albu["FullPipeline"] = FULL_A
    ours = {name: (0.0, 0.0) for name in cases}
    theirs = {name: 0.0 for name in cases}
    for _ in range(rounds):
        for name, path in zip(cases, files):
            out = subprocess.run([binary, img_path, mask_path, str(iters), path], check=True,
                                 capture_output=True, text=True).stdout.split()
            ours[name] = (max(ours[name][0], float(out[1])), max(ours[name][1], float(out[2])))
            theirs[name] = max(theirs[name], time_albu(albu[name], img, mask, iters))

    print(f"512x512 RGB + mask, single thread, best of {rounds} rounds of {iters} iterations; albumentations {A.__version__}, OpenCV {cv2.__version__}")
    print(f"{'transform':<20}{'albumentations':>16}{'segkit':>12}{'ratio':>9}")
    for name in cases:
        a, s = theirs[name], ours[name][0]
        print(f"{name:<20}{a:>13.0f}/s{s:>9.0f}/s{s / a:>8.2f}x")
    print()
    print(f"segkit multi-threaded (rayon, {os.cpu_count()} cores)")
    for name in cases:
        print(f"{name:<20}{ours[name][1]:>13.0f}/s")


if __name__ == "__main__":
    main()
