#!/usr/bin/env python3
"""The reference side of `bench/convert.sh` and of the pixel-exactness tests.

Runs the labelme oracle (../shared/tools/labelme_oracle.py: labelme 7.x shape_to_mask
semantics on Pillow's ImageDraw) over many annotations in ONE Python process, writing a
P-mode PNG per annotation as labelme2voc.py does, and prints the elapsed seconds.

    python bench/convert.py LABELS.txt OUT_DIR (JSON_DIR | FILE.json ...) [--oracle PATH]

LABELS.txt follows labelme2voc.py: line 0 __ignore__ (-> 255), line 1 _background_ (-> 0),
then classes 1, 2, ...  OUT_DIR/<json stem>.png is written for every annotation.
"""
import argparse, glob, importlib.util, json, os, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_ORACLE = os.path.join(HERE, "..", "..", "shared", "tools", "labelme_oracle.py")


def load_oracle(path):
    spec = importlib.util.spec_from_file_location("labelme_oracle", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("labels")
    ap.add_argument("out_dir")
    ap.add_argument("inputs", nargs="+")
    ap.add_argument("--oracle", default=os.environ.get("SEGKIT_ORACLE", DEFAULT_ORACLE))
    a = ap.parse_args()
    oracle = load_oracle(a.oracle)
    import numpy as np
    import PIL.Image

    files = []
    for p in a.inputs:
        files += sorted(glob.glob(os.path.join(p, "*.json"))) if os.path.isdir(p) else [p]
    names = [l.strip() for l in open(a.labels, encoding="utf-8") if l.strip()]
    name_to_value = {n: i - 1 for i, n in enumerate(names)}
    palette = oracle.voc_colormap().flatten().tolist()
    os.makedirs(a.out_dir, exist_ok=True)
    t0 = time.perf_counter()
    for f in files:
        with open(f, encoding="utf-8") as fh:
            ann = json.load(fh)
        cls = oracle.rasterize(ann, name_to_value)
        png = PIL.Image.fromarray(cls.astype(np.uint8), mode="P")  # -1 wraps to 255
        png.putpalette(palette)
        png.save(os.path.join(a.out_dir, os.path.splitext(os.path.basename(f))[0] + ".png"))
    dt = time.perf_counter() - t0
    print(f"oracle: {len(files)} annotations in {dt:.3f} s ({len(files) / dt:.2f} images/s)")


if __name__ == "__main__":
    sys.exit(main())
