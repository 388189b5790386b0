"""What the crash tests measured, per scenario, for ``bench/reliability.py``.

Each crash test calls :func:`record` once per kill with what it found (records lost or
duplicated, runs left 'running', half-written artifacts that loaded, ...) before asserting
that those are zero. ``LEPTON_CRASH_REPORT`` names a JSON file that receives the totals when
the session ends; without it nothing is written.
"""

from __future__ import annotations

import atexit
import json
import os
from pathlib import Path
from typing import Any

RESULTS: dict[str, dict[str, Any]] = {}


def record(scenario: str, **found: float) -> None:
    """Add one kill point of ``scenario`` and what was found after it (summed; ``max_*`` kept
    as the largest)."""
    entry = RESULTS.setdefault(scenario, {"kill_points": 0})
    entry["kill_points"] += 1
    for key, value in found.items():
        if key.startswith("max_"):
            entry[key] = max(entry.get(key, value), value)
        else:
            entry[key] = entry.get(key, 0) + value


def _write() -> None:
    out = os.environ.get("LEPTON_CRASH_REPORT")
    if not out or not RESULTS:
        return
    path = Path(out)
    data = json.loads(path.read_text()) if path.is_file() else {}
    for scenario, entry in RESULTS.items():
        merged = data.setdefault(scenario, {})
        for key, value in entry.items():
            if key.startswith("max_"):
                merged[key] = max(merged.get(key, value), value)
            else:
                merged[key] = merged.get(key, 0) + value
    path.write_text(json.dumps(data, indent=2, sort_keys=True))


atexit.register(_write)
