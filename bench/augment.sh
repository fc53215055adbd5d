#!/usr/bin/env bash
# segkit augment vs albumentations 2.0.8 (single-threaded img/s and ratio per transform).
# Provisions a venv with albumentations at ~/.cache/segkit/bench-venv (not the torch venv),
# builds the Rust bench example, runs both sides on the same 512x512 image in one run.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SEGKIT_BENCH_VENV:-$HOME/.cache/segkit/bench-venv}"
if ! "$VENV/bin/python" -c "import albumentations, cv2, PIL; assert albumentations.__version__ == '2.0.8'" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --progress-bar off albumentations==2.0.8 opencv-python-headless pillow
fi
cargo build --release -p segkit-augment --example bench
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
"$VENV/bin/python" bench/augment.py "${CARGO_TARGET_DIR:-target}/release/examples/bench" "$WORK" "${ITERS:-200}" "${ROUNDS:-3}"
