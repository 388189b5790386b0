"""Reliability figures: fuzz cases and failures, kill points and records lost, a soak of the
API and of the suite, and the API security checks passed.

Sections of ``bench/results/reliability.json`` (a run rewrites the sections it runs and
keeps the others):

- ``fuzz``: the fuzz tests (``tests/unit/test_fuzz_*.py``) with ``LEPTON_FUZZ_EXAMPLES``
  cases per test;
- ``crash``: the crash tests (``tests/integration/test_crash_*.py``) that SIGKILL real
  processes, with what each measured;
- ``soak``: ``lepton-nlp serve`` on the shipped models with the support, finance and
  recommender routes, soaked from concurrent clients over the mix of
  :data:`apps.api_soak.MIX` (:mod:`lepton_nlp.serve.soak`: errors, latency per endpoint,
  server RSS growth after the warm-up); then four browser sessions at once on one running
  suite (``tests/apps/test_concurrent_sessions.py``), in rounds, with the suite's RSS;
- ``security``: the security tests (``tests/unit/test_security_*.py``) run now, each test
  case filed under the check it proves (:data:`SECURITY_CHECKS`).

    python bench/reliability.py                  # every section (soak: 10 minutes)
    python bench/reliability.py --examples 1000 --only fuzz
    python bench/reliability.py --only soak --soak-seconds 600
    python bench/reliability.py --only security
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import re
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
SESSIONS_TEST = "tests/apps/test_concurrent_sessions.py"
SECURITY_TESTS = sorted(
    str(p.relative_to(ROOT)) for p in ROOT.glob("tests/unit/test_security_*.py")
)
SECTIONS = ("fuzz", "crash", "soak", "security")

#: Each API security check and the tests (function names) that prove it. A security test
#: not named here is reported under "other", so a new one is counted, never dropped.
SECURITY_CHECKS: dict[str, list[str]] = {
    "no access beyond loopback without an API key": [
        "test_an_open_bind_without_keys_is_refused_with_the_fix",
        "test_loopback_binds_need_no_key",
        "test_insecure_is_explicit_and_warned_about",
        "test_cli_refuses_an_open_bind_and_accepts_insecure",
        "test_support_cli_refuses_an_open_bind",
        "test_the_suite_launcher_stays_on_loopback",
        "test_every_route_needs_the_key_mounted_ones_too",
        "test_keys_come_from_the_environment_or_a_key_file",
        "test_a_real_server_on_all_interfaces_lets_only_key_holders_in",
    ],
    "API keys compared in constant time": ["test_keys_are_compared_in_constant_time"],
    "a key limited to a scope opens only that scope's routes": [
        "test_a_key_limited_to_a_scope_opens_only_that_scopes_routes"
    ],
    "keys and secrets never logged or committed": [
        "test_keys_never_reach_logs_errors_or_reprs",
        "test_no_secret_is_written_into_the_repository",
        "test_the_secret_scan_finds_secrets_and_spares_placeholders",
        "test_the_worker_never_prints_the_database_password",
    ],
    "body, upload, text and batch limits": [
        "test_an_endless_body_is_refused_once_it_passes_the_limit",
        "test_a_body_on_a_get_is_refused_unread",
        "test_mounted_routes_get_the_servers_limits",
        "test_deeply_nested_or_odd_json_gets_a_4xx_not_a_crash",
        "test_input_limits_name_the_limit",
    ],
    "no path traversal": [
        "test_a_file_named_in_a_request_stays_in_its_folder",
        "test_contained_path_refuses_every_way_out",
        "test_safe_filename_keeps_only_a_bare_name",
        "test_studio_uploads_stay_in_their_folder",
        "test_an_artifacts_name_cannot_move_its_onnx_cache",
        "test_symlinks_out_of_an_artifact_are_refused_and_never_zipped",
        "test_a_fifo_in_an_artifact_is_refused_without_blocking",
    ],
    "no unsafe unpickling or code from files": [
        "test_the_payload_is_live_when_unpickled_plainly",
        "test_shipped_artifacts_hold_nothing_that_runs_code",
        "test_a_pickle_in_an_artifact_is_refused_and_never_run",
        "test_a_plain_pickle_disguised_as_weights_is_refused",
        "test_remote_code_and_code_files_are_refused",
        "test_a_damaged_marker_is_an_artifact_error_not_a_crash",
        "test_loaders_underneath_refuse_pickles_too",
        "test_no_product_code_can_run_code_from_a_file",
        "test_the_yaml_loader_is_the_safe_one",
        "test_the_scan_finds_what_it_looks_for",
    ],
    "no unescaped HTML from outside in the pages": [
        "test_escape_markdown_shows_text_as_written",
        "test_every_page_lets_only_escaped_text_through_as_html",
        "test_the_static_check_catches_unescaped_html",
        "test_highlighting_escapes_the_text_and_the_labels",
        "test_support_page_shows_a_customers_payload_as_text",
        "test_studio_try_page_escapes_inputs_and_outputs",
    ],
    "installed packages past known advisories": [
        "test_installed_packages_are_past_known_advisories"
    ],
}


def _pytest(files: list[str], env: dict[str, str], cases: list | None = None) -> dict:
    """Run pytest on ``files``; passed/failed test counts, seconds and the failing tests.
    ``cases``, when given, gets ``(test name, outcome)`` for every test case."""
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
                outcome = "passed"
                if case.find("failure") is not None or case.find("error") is not None:
                    failed.append(f"{case.get('classname')}::{case.get('name')}")
                    outcome = "failed"
                elif case.find("skipped") is not None:
                    outcome = "skipped"
                if cases is not None:
                    cases.append((case.get("name"), outcome))
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


def security(env: dict[str, str], stamp: dict) -> dict:
    """Run the security tests; file each case under its check (:data:`SECURITY_CHECKS`)."""
    cases: list[tuple[str, str]] = []
    run = _pytest(SECURITY_TESTS, env, cases)
    owner = {test: check for check, tests in SECURITY_CHECKS.items() for test in tests}
    checks: dict[str, dict] = {
        check: {"tests": 0, "passed": 0, "failed": 0, "skipped": 0, "failing": []}
        for check in [*SECURITY_CHECKS, "other"]
    }
    for name, outcome in cases:
        check = checks[owner.get(re.sub(r"\[.*\]$", "", name), "other")]
        check["tests"] += 1
        check[outcome] += 1
        if outcome == "failed":
            check["failing"].append(name)
    if not checks["other"]["tests"]:
        del checks["other"]
    for check in checks.values():
        # A check holds when its tests ran and none failed (a skip is not a pass).
        check["held"] = check["tests"] > 0 and check["failed"] == 0 and check["passed"] > 0
    return {
        "files": SECURITY_TESTS,
        "checks": len(checks),
        "checks_held": sum(c["held"] for c in checks.values()),
        "test_cases": len(cases),
        "passed": sum(o == "passed" for _, o in cases),
        "failed": sum(o == "failed" for _, o in cases),
        "skipped": sum(o == "skipped" for _, o in cases),
        "by_check": checks,
        **run,
        **stamp,
    }


def soak(args: argparse.Namespace, env: dict[str, str], stamp: dict, folder: Path) -> dict:
    """The API soak on the shipped models, then the concurrent browser sessions."""
    sys.path.insert(0, str(ROOT))  # apps/ from this checkout
    import psutil

    from apps.api_soak import MIX, shipped_server
    from lepton_nlp.serve.soak import run_soak

    server, mix = shipped_server(folder / "api", torch_threads=args.torch_threads)
    with server:
        idle = psutil.Process(server.pid).memory_info().rss / 2**20
        result = run_soak(
            server.url,
            mix,
            pid=server.pid,
            clients=args.soak_clients,
            seconds=args.soak_seconds,
            max_requests=args.soak_max_requests,
            warmup_seconds=args.soak_warmup,
            sample_interval=args.sample_interval,
            max_growth_mib=args.max_growth_mib,
        )
        exit_code = server.stop()
    log = server.log_tail(10**7)
    http = result.to_dict()
    print(json.dumps({k: v for k, v in http.items() if k != "rss_samples_mib"}, indent=1))
    http = {
        "models": "finance-sentiment on /v1/classify; the support bot (banking77-intent, "
        "MiniLM FAQ, support-policy-qa, dialogsum-summarizer for handoffs), the finance "
        "pipeline and the demo recommender (hybrid, MiniLM) as their routes build them",
        "mix_weights": MIX,
        "server_ready_seconds": server.started_seconds,
        "idle_rss_mib": round(idle, 1),
        **http,
        "server_exit_code": exit_code,
        "server_log_tracebacks": log.count("Traceback (most recent call last)"),
    }
    report = folder / "sessions.json"
    run = _pytest(
        [SESSIONS_TEST],
        {**env, "LEPTON_SOAK_REPORT": str(report), "LEPTON_SOAK_ROUNDS": str(args.rounds)},
    )
    sessions = json.loads(report.read_text()) if report.is_file() else {}
    return {
        "requests": http["requests"],
        "errors": http["errors"],
        "memory_growth_mib": http["memory"]["growth_mib"],
        "held": http["held"] and run["tests_failed"] == 0 and run["tests"] > 0,
        "http": http,
        "streamlit": {**sessions, **run},
        **stamp,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", action="append", choices=SECTIONS, help="run only this section (repeatable)"
    )
    parser.add_argument("--examples", type=int, default=200, help="cases per fuzz test")
    parser.add_argument("--skip-fuzz", action="store_true")
    parser.add_argument("--skip-api", action="store_true", help="no schemathesis run")
    parser.add_argument("--skip-crash", action="store_true")
    parser.add_argument("--soak-seconds", type=float, default=600, help="measured soak")
    parser.add_argument("--soak-warmup", type=float, default=120, help="unmeasured warm-up")
    parser.add_argument("--soak-clients", type=int, default=4)
    parser.add_argument("--soak-max-requests", type=int, default=200_000)
    parser.add_argument("--sample-interval", type=float, default=1.0, help="RSS every N s")
    parser.add_argument(
        "--max-growth-mib", type=float, default=32.0, help="RSS growth the soak tolerates"
    )
    parser.add_argument("--torch-threads", type=int, default=1, help="the API server's")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of browser sessions")
    args = parser.parse_args()
    only = set(args.only or SECTIONS)
    skipped = {"fuzz": args.skip_fuzz, "crash": args.skip_crash}
    run_sections = {s for s in SECTIONS if s in only and not skipped.get(s)}

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    out = RESULTS / "reliability.json"
    stamp = {
        "command": " ".join(["python", *sys.argv]),
        "machine": machine(),
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }

    def save(name: str, section: dict) -> None:
        # Read again at each write: sections another run wrote meanwhile are kept.
        result = json.loads(out.read_text()) if out.is_file() else {}
        result[name] = section
        RESULTS.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")

    with tempfile.TemporaryDirectory() as folder:
        if "fuzz" in run_sections:
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
            save(
                "fuzz",
                {
                    "examples_per_test": args.examples,
                    "cases": sum(t["cases"] for t in targets.values()),
                    "failures": sum(t["failures"] for t in targets.values()),
                    "targets": targets,
                    **run,
                    **stamp,
                },
            )
        if "crash" in run_sections:
            report = Path(folder) / "crash.json"
            run = _pytest(CRASH_TESTS, {**env, "LEPTON_CRASH_REPORT": str(report)})
            scenarios = json.loads(report.read_text()) if report.is_file() else {}
            save(
                "crash",
                {
                    "kill_points": sum(s["kill_points"] for s in scenarios.values()),
                    "records_lost": sum(s.get("lost", 0) for s in scenarios.values()),
                    "records_duplicated": sum(s.get("duplicated", 0) for s in scenarios.values()),
                    "scenarios": scenarios,
                    **run,
                    **stamp,
                },
            )
        if "security" in run_sections:
            save("security", security(env, stamp))
        if "soak" in run_sections:
            save("soak", soak(args, env, stamp, Path(folder)))
    result = json.loads(out.read_text())
    print(json.dumps({k: v for k, v in result.items() if k in run_sections}, indent=2)[:20000])


if __name__ == "__main__":
    main()
