"""Reliability figures: fuzz cases tried and failures per target, kill points and records lost.

Runs the fuzz tests (``tests/unit/test_fuzz_*.py``) with ``LEPTON_FUZZ_EXAMPLES`` cases per
test, and the crash tests (``tests/integration/test_crash_*.py``) that SIGKILL real
processes, collecting what each measured. Writes the ``fuzz`` and ``crash`` sections of
``bench/results/reliability.json``; other sections in that file (soak, security) are kept.

    python bench/reliability.py                  # 200 cases per fuzz test, every crash test
    python bench/reliability.py --examples 1000 --skip-crash
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from common import RESULTS, ROOT, machine

FUZZ_TESTS = ["tests/unit/test_fuzz_readers.py", "tests/unit/test_fuzz_apps.py"]
API_TEST = "tests/unit/test_fuzz_api.py"
CRASH_TESTS = [
    "tests/integration/test_crash_training.py",
    "tests/integration/test_crash_stores.py",
    "tests/integration/test_crash_studio.py",
]


def _pytest(files: list[str], env: dict[str, str]) -> dict:
    """Run pytest on ``files``; passed/failed test counts, seconds and the failing tests."""
    start = time.monotonic()
    with tempfile.NamedTemporaryFile(suffix=".xml") as junit:
        completed = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "-o",
                "junit_family=xunit2",
                f"--junitxml={junit.name}",
                *files,
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        failed = []
        tests = 0
        try:
            for case in ET.parse(junit.name).iter("testcase"):
                tests += 1
                if case.find("failure") is not None or case.find("error") is not None:
                    failed.append(f"{case.get('classname')}::{case.get('name')}")
        except ET.ParseError:
            pass
    print(completed.stdout[-3000:], completed.stderr[-2000:], sep="\n")
    return {
        "tests": tests,
        "tests_failed": len(failed),
        "failing_tests": failed,
        "seconds": round(time.monotonic() - start, 1),
        "exit_code": completed.returncode,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=200, help="cases per fuzz test")
    parser.add_argument("--skip-fuzz", action="store_true")
    parser.add_argument("--skip-api", action="store_true", help="no schemathesis run")
    parser.add_argument("--skip-crash", action="store_true")
    args = parser.parse_args()

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    out = RESULTS / "reliability.json"
    result = json.loads(out.read_text()) if out.is_file() else {}
    stamp = {
        "command": " ".join(["python", *sys.argv]),
        "machine": machine(),
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    with tempfile.TemporaryDirectory() as folder:
        if not args.skip_fuzz:
            report = Path(folder) / "fuzz.json"
            files = FUZZ_TESTS + ([] if args.skip_api else [API_TEST])
            run = _pytest(
                files,
                {
                    **env,
                    "LEPTON_FUZZ_EXAMPLES": str(args.examples),
                    "LEPTON_FUZZ_REPORT": str(report),
                },
            )
            targets = json.loads(report.read_text()) if report.is_file() else {}
            result["fuzz"] = {
                "examples_per_test": args.examples,
                "cases": sum(t["cases"] for t in targets.values()),
                "failures": sum(t["failures"] for t in targets.values()),
                "targets": targets,
                **run,
                **stamp,
            }
        if not args.skip_crash:
            report = Path(folder) / "crash.json"
            run = _pytest(CRASH_TESTS, {**env, "LEPTON_CRASH_REPORT": str(report)})
            scenarios = json.loads(report.read_text()) if report.is_file() else {}
            result["crash"] = {
                "kill_points": sum(s["kill_points"] for s in scenarios.values()),
                "records_lost": sum(s.get("lost", 0) for s in scenarios.values()),
                "records_duplicated": sum(s.get("duplicated", 0) for s in scenarios.values()),
                "scenarios": scenarios,
                **run,
                **stamp,
            }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k in ("fuzz", "crash")}, indent=2))


if __name__ == "__main__":
    main()
