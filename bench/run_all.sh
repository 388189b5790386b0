#!/usr/bin/env bash
# Runs the benchmarks named, in sequence (hours on 2 CPU cores); logs beside the results.
# Run them alone: a second heavy process on the same cores slows training several-fold.
set -u
cd "$(dirname "$0")"
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
py=../.venv/bin/python
for name in "$@"; do
  echo "== $name $(date -u +%FT%TZ)"
  $py "$name.py" > "results/$name.log" 2>&1 || echo "!! $name failed (see bench/results/$name.log)"
done
