#!/usr/bin/env bash
# segkit trainer vs PyTorch 2.13.0 on the same machine and thread count, in one run:
#  1. median time of one UNet training step (forward + CE+Dice + backward + AdamW) at batch
#     2×3×256×256, base 32, depth 4, GroupNorm, bilinear;
#  2. one epoch including data loading and augmentation (decode, random 256² crop, flips) over
#     a synthetic dataset (EPOCH_IMAGES 512² PNGs), PyTorch with a DataLoader of 2 workers;
#  3. segkit's sliding-window inference throughput on 2000×2000 images.
# Ratios are segkit/PyTorch (< 1 = segkit faster). Env: THREADS (2), STEPS (10),
# EPOCH_IMAGES (32), INFER (2 images).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SEGKIT_TORCH_VENV:-$HOME/.cache/segkit/torch-2.13.0}"
export PATH="$VENV/bin:$PATH" LIBTORCH_USE_PYTORCH=1 PYTHON_SYS_EXECUTABLE="$VENV/bin/python"
THREADS="${THREADS:-2}"
STEPS="${STEPS:-10}"
EPOCH_IMAGES="${EPOCH_IMAGES:-32}"
INFER="${INFER:-2}"
PY="$VENV/bin/python"
cargo build --release -p segkit-trainer --example bench_step --example bench_epoch >&2
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
"$PY" bench/train_torch.py make-dataset "$WORK/ds" "$EPOCH_IMAGES" 512

rust=$(target/release/examples/bench_step --threads "$THREADS" --steps "$STEPS")
py=$("$PY" bench/train_torch.py step --threads "$THREADS" --steps "$STEPS")
rust_epoch=$(target/release/examples/bench_epoch "$WORK/ds" --threads "$THREADS" --workers 2)
py_epoch=$("$PY" bench/train_torch.py epoch "$WORK/ds" --threads "$THREADS" --workers 2)
"$PY" - "$rust" "$py" "$rust_epoch" "$py_epoch" <<'PY'
import json, sys
r, p, re, pe = (json.loads(a) for a in sys.argv[1:5])
print(f"unet step 2x3x256x256, {r['threads']} threads: segkit {r['median_step_s']*1000:.0f} ms, "
      f"PyTorch {p['median_step_s']*1000:.0f} ms, ratio {r['median_step_s']/p['median_step_s']:.3f}")
print(f"epoch of {re['images']} images (load + crop + flips + train): segkit {re['epoch_s']:.1f} s, "
      f"PyTorch DataLoader(2 workers) {pe['epoch_s']:.1f} s, ratio {re['epoch_s']/pe['epoch_s']:.3f}")
PY
echo "sliding-window inference 2000x2000 (tile 256, overlap 0.25, gaussian), $THREADS threads: $(target/release/examples/bench_step --threads "$THREADS" --infer "$INFER")"
