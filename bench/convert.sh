#!/usr/bin/env bash
# Benchmark: `segkit convert` against the Python reference (the labelme oracle, i.e. labelme's
# shape_to_mask on Pillow 13.0.0, run in ONE Python process over all files, writing P-mode
# PNGs), on the same `segkit synth` annotations. Prints images/s for each, the ratio, and
# checks that the masks are identical.
#
#   bench/convert.sh [N_IMAGES=100] [SIZE=2000x2000]
#
# Needs a release build of segkit (make release) and SEGKIT_PYTHON (Pillow 13.0.0 + numpy;
# `make provision` makes it).
set -euo pipefail
N=${1:-100}
SIZE=${2:-2000x2000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SEGKIT=${SEGKIT:-$ROOT/target/release/segkit}
PY=${SEGKIT_PYTHON:-$HOME/.cache/segkit/torch-2.13.0/bin/python}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/segkit-bench-convert.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

echo "segkit synth: $N annotations of $SIZE ..."
"$SEGKIT" synth "$WORK/in" --images "$N" --size "$SIZE" --seed 1 >/dev/null
LABELS="$WORK/in/labels.txt"

now() { date +%s.%N; }
t0=$(now)
"$PY" "$ROOT/bench/convert.py" "$LABELS" "$WORK/oracle" "$WORK/in" >/dev/null
t1=$(now)
CI=1 "$SEGKIT" convert "$WORK/in" "$WORK/ds" --labels "$LABELS" --no-viz >/dev/null
t2=$(now)
CI=1 "$SEGKIT" convert "$WORK/in" "$WORK/ds_viz" --labels "$LABELS" >/dev/null
t3=$(now)

# Process start-up alone (a build with the `train` feature loads libtorch at start-up).
ts0=$(now); "$SEGKIT" --version >/dev/null; ts1=$(now)

"$PY" - "$WORK" <<'PY'
import glob, os, sys
import numpy as np, PIL.Image
work = sys.argv[1]
bad = 0
files = sorted(glob.glob(os.path.join(work, "oracle", "*.png")))
for f in files:
    a = np.array(PIL.Image.open(f))
    b = np.array(PIL.Image.open(os.path.join(work, "ds", "SegmentationClass", os.path.basename(f))))
    bad += int((a != b).sum())
print(f"masks compared: {len(files)}, differing pixels: {bad}")
sys.exit(1 if bad or not files else 0)
PY

awk -v st="$(echo "$ts1 - $ts0" | bc)" -v n="$N" -v o="$(echo "$t1 - $t0" | bc)" -v s="$(echo "$t2 - $t1" | bc)" -v v="$(echo "$t3 - $t2" | bc)" -v cores="$(nproc)" 'BEGIN {
  printf "cores: %d, images: %d, segkit start-up: %.2f s (included below)\n", cores, n, st
  printf "python oracle (Pillow 13.0.0, 1 process): %7.2f images/s (%.2f s)\n", n / o, o
  printf "segkit convert --no-viz:                  %7.2f images/s (%.2f s)  ratio %.1fx\n", n / s, s, o / s
  printf "segkit convert (with visualization):      %7.2f images/s (%.2f s)  ratio %.1fx\n", n / v, v, o / v
  printf "segkit convert --no-viz without start-up:  %7.2f images/s  ratio %.1fx\n", n / (s - st), o / (s - st)
}'
