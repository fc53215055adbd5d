#!/usr/bin/env bash
# Runs every benchmark in turn (each runs segkit and its peer in one run and prints the
# ratio). Usage: bash bench/run.sh [convert|tile|augment|train|report ...]
set -euo pipefail
cd "$(dirname "$0")/.."
which=("$@")
[[ ${#which[@]} -gt 0 ]] || which=(convert tile augment train train_vgg report)
for b in "${which[@]}"; do
  printf '\n==== bench/%s.sh\n' "$b"
  bash "bench/$b.sh"
done
