#!/usr/bin/env bash
# The segkit demo: synthetic labelme photos of parts → dataset → curation → training →
# prediction → HTML report. Usage: scripts/demo.sh SEGKIT_BINARY OUT_DIR
# Each stage prints its one-line summary; the last line is the report to open.
set -euo pipefail
segkit=$(realpath "$1")
out=$2
rm -rf "$out"
mkdir -p "$out"
cd "$out"
stage() { printf '\n== %s\n' "$*"; }

stage "1. synth: 24 labelme annotations of 1024x1024 parts (front/back/side, 4 defect classes)"
"$segkit" synth labelme --images 24 --size 1024x1024 --seed 7

stage "2. convert: labelme JSON -> VOC dataset (pixel-identical to labelme)"
"$segkit" convert labelme dataset --labels labelme/labels.txt

stage "3. stats: class shares, instance sizes, suggested class weights"
"$segkit" stats dataset

stage "4. split: views from the labelme flags; stratified train/val split, grouped by source photo"
"$segkit" split dataset --view-from-flags --val 0.25 --seed 0

stage "4b. crop: full-resolution 512 px tiles (how 2000 px photos are cut instead of shrunk)"
"$segkit" crop dataset tiles --tile 512 --overlap 0.25 --keep-empty 0.1

# 7 epochs of the default recipe take about 6.5 minutes on 2 CPU cores; the cosine schedule
# is sized to the epochs, so the run ends with a decayed learning rate.
stage "5. train: default recipe (crops centred on defects, ce+dice, augmentation), ${SEGKIT_DEMO_EPOCHS:-7} epochs"
"$segkit" train dataset --out run --epochs "${SEGKIT_DEMO_EPOCHS:-7}" --time-budget "${SEGKIT_DEMO_BUDGET:-8m}"

stage "6. predict: overlays for the val images"
"$segkit" predict --checkpoint run/checkpoints/best.safetensors $(sed "s|^|dataset/JPEGImages/|; s|$|.jpg|" dataset/ImageSets/Segmentation/val.txt) --out predictions --format overlay

stage "7. report: self-contained HTML for the advisor"
"$segkit" report run --out run/report.html
"$segkit" report dataset --out dataset/report.html

printf '\ndemo done. Open:\n%s\n' "$(realpath run/report.html)"
