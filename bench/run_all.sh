#!/usr/bin/env bash
# Runs every benchmark of the core in sequence (hours on 2 CPU cores); logs beside the results.
set -u
cd "$(dirname "$0")"
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
py=../.venv/bin/python
for name in "$@"; do
  echo "== $name $(date -u +%FT%TZ)"
  $py "$name.py" training.overwrite=true > "results/$name.log" 2>&1 || echo "!! $name failed (see bench/results/$name.log)"
done
