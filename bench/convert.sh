#!/usr/bin/env bash
# Benchmark: `segkit convert` against the Python reference (the labelme oracle, i.e. labelme's
# shape_to_mask on Pillow 13.0.0, run in ONE Python process over all files, writing P-mode
# PNGs), on the same `segkit synth` annotations. Prints images/s for each, the ratio, and
# checks that the masks are identical.
#
#   bench/convert.sh [N_IMAGES=100] [SIZE=2000x2000] [ROUNDS=3]
#
# Rounds alternate the sides (oracle, segkit, oracle, ...) so that load from other processes
# hits both alike; the best round of each side is reported, and every round is printed.
# The default build is timed: since the trainer became a plugin that `segkit` opens only for
# the trainer's commands, it starts as fast as a build without the `train` feature (before,
# loading libtorch cost about 0.25 s at every start, halving this ratio).
#
# Needs a release build of segkit (make release) and SEGKIT_PYTHON (Pillow 13.0.0 + numpy;
# `make provision` makes it).
set -euo pipefail
N=${1:-100}
SIZE=${2:-2000x2000}
ROUNDS=${3:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SEGKIT=${SEGKIT:-$ROOT/target/release/segkit}
PY=${SEGKIT_PYTHON:-$HOME/.cache/segkit/torch-2.13.0/bin/python}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/segkit-bench-convert.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

echo "segkit synth: $N annotations of $SIZE ..."
"$SEGKIT" synth "$WORK/in" --images "$N" --size "$SIZE" --seed 1 >/dev/null
LABELS="$WORK/in/labels.txt"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"

now() { date +%s.%N; }
# time_it NAME COMMAND...: run, append "NAME wall-seconds cpu-seconds" to $WORK/times (CPU
# time, user + system over all threads, is what load from other processes changes least)
time_it() {
  local name=$1 t0 t1
  shift
  t0=$(now)
  /usr/bin/time -f "%U %S" -o "$WORK/cpu" "$@" >/dev/null
  t1=$(now)
  echo "$name $(echo "$t1 - $t0" | bc) $(awk '{print $1 + $2}' "$WORK/cpu")" >>"$WORK/times"
}
# Each round writes into fresh folders and nothing is deleted until the end: creating files
# right after deleting thousands makes ext4 search its recently-deleted inodes (a fifth of
# segkit's time in a profile), which no real first conversion pays.
for r in $(seq 1 "$ROUNDS"); do
  time_it oracle "$PY" "$ROOT/bench/convert.py" "$LABELS" "$WORK/r$r/oracle" "$WORK/in"
  time_it segkit env CI=1 "$SEGKIT" convert "$WORK/in" "$WORK/r$r/ds" --labels "$LABELS" --no-viz
  time_it viz env CI=1 "$SEGKIT" convert "$WORK/in" "$WORK/r$r/ds_viz" --labels "$LABELS"
done

"$PY" - "$WORK/r$ROUNDS" <<'PY'
import glob, os, sys
import numpy as np, PIL.Image
work = sys.argv[1]
bad = 0
files = sorted(glob.glob(os.path.join(work, "oracle", "*.png")))
for f in files:
    a = np.array(PIL.Image.open(f))
    for ds in ("ds", "ds_viz"):
        p = os.path.join(work, ds, "SegmentationClass", os.path.basename(f))
        bad += int((a != np.array(PIL.Image.open(p))).sum())
print(f"masks compared: {len(files)} per build, differing pixels: {bad}")
sys.exit(1 if bad or not files else 0)
PY

awk -v n="$N" '
  {
    if (!($1 in t) || $2 + 0 < t[$1]) t[$1] = $2 + 0
    if (!($1 in c) || $3 + 0 < c[$1]) c[$1] = $3 + 0
    all[$1] = all[$1] sprintf(" %.2f/%.2f", $2, $3)
  }
  END {
    o = t["oracle"]; oc = c["oracle"]
    for (k in all) printf "rounds (wall/cpu s) %-8s%s\n", k ":", all[k]
    printf "best round of each side; cpu = user + system seconds of all threads\n"
    printf "python oracle (Pillow 13.0.0, 1 process):    %7.1f images/s (%.2f s, cpu %.2f s)\n", n / o, o, oc
    printf "segkit convert --no-viz (default build):     %7.1f images/s (%.2f s, cpu %.2f s)  ratio %.1fx (cpu %.1fx)\n", n / t["segkit"], t["segkit"], c["segkit"], o / t["segkit"], oc / c["segkit"]
    printf "segkit convert with visualization (default): %7.1f images/s (%.2f s, cpu %.2f s)  ratio %.1fx\n", n / t["viz"], t["viz"], c["viz"], o / t["viz"]
  }' "$WORK/times"
