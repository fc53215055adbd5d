#!/usr/bin/env bash
# Tile 30 synthetic 2000x2000 photos into 512 tiles (overlap 0.25) with segkit and with a
# straightforward numpy+Pillow script (bench/tile.py), in one run, and print the ratio.
# Both keep every tile (--keep-empty 1) so they do the same work. segkit writes PNG tiles
# with fast deflate; Pillow writes PNG with its default (zlib level 6); sizes are printed,
# and, for the record, segkit on one thread and Pillow at compress_level=1.
#
#   bench/tile.sh            (SEGKIT=path/to/segkit, PYTHON=python with numpy+Pillow)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$HOME/.cache/segkit/torch-2.13.0/bin/python}
SEGKIT=${SEGKIT:-target/release/segkit}
N=${N:-30}
SIZE=${SIZE:-2000}
[ -x "$SEGKIT" ] || cargo build --release -p segkit --no-default-features
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

# the dataset: segkit synth + convert when convert is available, else the Python maker
if "$SEGKIT" synth "$W/labelme" --images "$N" --size "${SIZE}x${SIZE}" --seed 0 >/dev/null 2>&1 \
   && "$SEGKIT" convert "$W/labelme" "$W/ds" >/dev/null 2>&1; then
  echo "dataset: segkit synth + convert, $N images ${SIZE}x${SIZE}"
else
  rm -rf "$W/ds"
  "$PYTHON" bench/tile.py make "$W/ds" "$N" "$SIZE"
  echo "dataset: bench/tile.py make (segkit convert unavailable), $N images ${SIZE}x${SIZE}"
fi
sync

now() { date +%s.%N; }
t0=$(now)
"$SEGKIT" crop "$W/ds" "$W/segkit" --tile 512 --overlap 0.25 --keep-empty 1
t1=$(now)
"$PYTHON" bench/tile.py tile "$W/ds" "$W/pillow" 512 0.25
t2=$(now)
# for the record: what parallelism and the codec setting each contribute
RAYON_NUM_THREADS=1 "$SEGKIT" crop "$W/ds" "$W/segkit1" --tile 512 --overlap 0.25 --keep-empty 1 >/dev/null
t3=$(now)
"$PYTHON" bench/tile.py tile "$W/ds" "$W/pillow1" 512 0.25 1 >/dev/null
t4=$(now)

seg=$(echo "$t1 - $t0" | bc -l)
pil=$(echo "$t2 - $t1" | bc -l)
ns=$(ls "$W/segkit/JPEGImages" | wc -l)
np_=$(ls "$W/pillow/JPEGImages" | wc -l)
printf 'threads: %s (nproc)\n' "$(nproc)"
printf 'segkit crop --tile: %6.2f s  %d tiles  %s\n' "$seg" "$ns" "$(du -sh "$W/segkit" | cut -f1)"
printf 'numpy + Pillow:     %6.2f s  %d tiles  %s\n' "$pil" "$np_" "$(du -sh "$W/pillow" | cut -f1)"
printf 'speed-up: %.2fx\n' "$(echo "$pil / $seg" | bc -l)"
printf '  (segkit on 1 thread: %.2f s; Pillow with compress_level=1: %.2f s, %s)\n' \
  "$(echo "$t3 - $t2" | bc -l)" "$(echo "$t4 - $t3" | bc -l)" "$(du -sh "$W/pillow1" | cut -f1)"
