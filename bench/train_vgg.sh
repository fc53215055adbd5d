#!/usr/bin/env bash
# unet-vgg16 and torchscript: models, segkit vs PyTorch 2.13.0 on the same machine and thread
# count, in one run: median time of one training step (forward + CE+Dice + backward + AdamW)
# at batch 2×3×256×256 of
#  1. segkit's unet-vgg16 (tch) vs the same architecture in PyTorch (eager);
#  2. that PyTorch model exported with torch.jit.script, trained by segkit as
#     `torchscript:PATH`, vs the model in PyTorch (eager).
# Ratios are segkit/PyTorch (< 1 = segkit faster; target ≤ 1.05). Slow: a VGG16 step takes
# seconds on a CPU. Env: THREADS (2), STEPS (3), ROUNDS (2).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SEGKIT_TORCH_VENV:-$HOME/.cache/segkit/torch-2.13.0}"
export PATH="$VENV/bin:$PATH" LIBTORCH_USE_PYTORCH=1 PYTHON_SYS_EXECUTABLE="$VENV/bin/python"
THREADS="${THREADS:-2}"
STEPS="${STEPS:-3}"
PY="$VENV/bin/python"
cargo build --release -p segkit-trainer --example bench_step >&2
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
"$PY" bench/vgg_torch.py script-vgg "$WORK/vgg.pt" --classes 2 >&2

# The sides alternate for ROUNDS rounds and each keeps its best median, so a load change on
# a shared machine does not land on one side only.
ROUNDS="${ROUNDS:-2}"
results=()
for _ in $(seq "$ROUNDS"); do
  results+=("R $(target/release/examples/bench_step --arch unet-vgg16 --threads "$THREADS" --steps "$STEPS")")
  results+=("P $("$PY" bench/vgg_torch.py step --threads "$THREADS" --steps "$STEPS")")
  results+=("S $(target/release/examples/bench_step --arch "torchscript:$WORK/vgg.pt" --threads "$THREADS" --steps "$STEPS")")
done
printf '%s\n' "${results[@]}" | "$PY" -c '
import json, sys
best = {}
for line in sys.stdin:
    side, js = line.split(" ", 1)
    r = json.loads(js)
    best[side] = min(best.get(side, float("inf")), r["median_step_s"])
    threads = r["threads"]
r, p, s = best["R"], best["P"], best["S"]
print(f"unet-vgg16 step 2x3x256x256, {threads} threads: segkit {r*1000:.0f} ms, PyTorch {p*1000:.0f} ms, ratio {r/p:.3f}")
print(f"torchscript:vgg.pt step, {threads} threads: segkit {s*1000:.0f} ms, PyTorch (eager) {p*1000:.0f} ms, ratio {s/p:.3f}")
'
