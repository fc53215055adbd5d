#!/usr/bin/env bash
# Times `segkit report` and `segkit compare` on a 30-image, 50-epoch run (the issue's target:
# under 2 s and under 10 MB) at two photo sizes, and prints the ratio to the target.
# Usage: bash bench/report.sh [path/to/segkit]   (run from the repository root)
set -euo pipefail
SEGKIT=${1:-target/release/segkit}
cargo build --release -q -p segkit-reports --example bench_fixture
[ -x "$SEGKIT" ] || { echo "build segkit first (make build)"; exit 1; }
FIX=target/release/examples/bench_fixture
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
printf '%-34s %8s %9s %8s\n' "case" "seconds" "size" "s/target"
for size in "1024 768" "2000 2000"; do
  set -- $size
  dir="$TMP/${1}x$2"
  "$FIX" "$dir" 30 "$1" "$2" 50 >/dev/null
  for what in report compare; do
    out="$dir/$what.html"
    if [ $what = report ]; then cmd=("$SEGKIT" report "$dir/runs/a" --out "$out");
    else cmd=("$SEGKIT" compare "$dir/runs/a" "$dir/runs/b" --out "$out"); fi
    start=$(date +%s.%N)
    "${cmd[@]}" >/dev/null 2>&1
    end=$(date +%s.%N)
    secs=$(echo "$end - $start" | bc -l)
    bytes=$(stat -c %s "$out")
    printf '%-34s %8.2f %7.1fMB %8.2f\n' "$what 30 imgs ${1}x$2, 50 epochs" "$secs" "$(echo "$bytes/1048576" | bc -l)" "$(echo "$secs/2" | bc -l)"
  done
done
echo "threads: $(nproc) (rayon uses all); target: < 2 s and < 10 MB per page"
