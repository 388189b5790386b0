"""A short soak of the real API process on loopback: mixed endpoints, bounded in time and
count, zero errors, memory flat after the warm-up (issue 23, item 3).

``lepton-nlp serve`` runs as a subprocess with a tiny classifier and the support, finance
and recommender routes mounted on stand-ins (``tests/unit/soak_routes.py``), and
:func:`lepton_nlp.serve.soak.run_soak` drives the mix of :data:`apps.api_soak.MIX` from
concurrent clients while it samples the server's RSS. The long version on the shipped
models is ``python bench/reliability.py --soak`` (``bench/results/reliability.json``).
A second server leaks on purpose, so the memory rule is shown to catch a leak.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from apps.api_soak import MIX, free_port, serve_command, suite_endpoints
from lepton_nlp.serve.soak import Endpoint, ServerProcess, memory_growth, run_soak

ROOT = Path(__file__).resolve().parents[2]
#: Seconds of the measured phase (LEPTON_SOAK_SECONDS runs it longer).
SECONDS = float(os.environ.get("LEPTON_SOAK_SECONDS", "10"))
#: What the short soak may grow by: some 500-800 requests in 10 s on a loaded 2-core
#: machine, so it catches a leak of ~30 KiB a request or more; smaller leaks need the long
#: run (bench/reliability.py --only soak) and its growth per request.
MAX_GROWTH_MIB = 16.0


def _env(folder: Path, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "LEPTON_HOME": str(folder / "home"),
        **extra,
    }
    env.pop("LEPTON_NLP_API_KEYS", None)
    return env


@pytest.fixture(scope="module")
def api(tiny_artifact, tmp_path_factory):
    """The API with the tiny model and the three apps' routes; (server, mix)."""
    from apps.recommender.service import train_recommender
    from tests.unit.test_recommender import WordsEmbedder, _catalogue, _events

    folder = tmp_path_factory.mktemp("soak")
    catalogue, events = _catalogue(), _events()
    train_recommender(
        catalogue,
        events,
        folder / "rec",
        model="hybrid",
        config={"cf_config": {"factors": 8, "iterations": 5, "threads": 1}},
        embedder=WordsEmbedder(),
    )
    port = free_port()
    routes = [f"tests.unit.soak_routes:{name}" for name in ("support", "finance", "recommender")]
    env = _env(
        folder,
        LEPTON_FUZZ_DB=f"sqlite:///{folder / 'api.db'}",
        LEPTON_FUZZ_REC_FOLDER=str(folder / "rec"),
        LEPTON_SOAK_FINANCE_DB=f"sqlite:///{folder / 'finance.db'}",
    )
    server = ServerProcess(
        serve_command(port, {"tiny": tiny_artifact}, routes),
        f"http://127.0.0.1:{port}",
        folder / "server.log",
        env=env,
        cwd=ROOT,
        ready_timeout=180,
    )
    mix = suite_endpoints("tiny", [item.id for item in catalogue], sorted(set(events.users)))
    with server:
        yield server, mix


def test_the_api_holds_a_mixed_soak(api):
    server, mix = api
    result = run_soak(
        server.url,
        mix,
        pid=server.pid,
        clients=4,
        seconds=SECONDS,
        max_requests=5000,
        warmup_seconds=3,
        sample_interval=0.25,
        max_growth_mib=MAX_GROWTH_MIB,
    )
    figures = result.to_dict()
    print(json.dumps({k: v for k, v in figures.items() if k != "rss_samples_mib"}, indent=1))
    assert result.errors == 0, result.error_examples
    assert result.warmup["requests"] > 0 and result.warmup["errors"] == 0, result.warmup
    assert set(result.endpoints) == set(MIX)
    for name, endpoint in result.endpoints.items():
        assert endpoint["requests"] > 0, f"{name} was never sent"
        if name in ("classify_empty", "support_too_long"):
            assert endpoint["expected_refusals"] == endpoint["requests"], (name, endpoint)
        else:
            assert endpoint["ok"] == endpoint["requests"], (name, endpoint)
        assert endpoint["p50_ms"] <= endpoint["p95_ms"] <= endpoint["p99_ms"]
    assert result.requests == sum(e["requests"] for e in result.endpoints.values())
    assert result.memory["held"], result.memory
    assert result.held
    assert server.process.poll() is None  # still serving after the soak


def test_the_memory_rule_catches_a_leaking_server(tmp_path):
    port = free_port()
    server = ServerProcess(
        serve_command(port, {}, ["tests.unit.soak_leaky_routes:router"]),
        f"http://127.0.0.1:{port}",
        tmp_path / "server.log",
        env=_env(tmp_path),
        cwd=ROOT,
        ready_path="/healthz",
        ready_timeout=120,
    )
    leak = Endpoint("leak", 1, lambda n: ("POST", "/leak", None, {}))
    with server:
        result = run_soak(
            server.url,
            [leak],
            pid=server.pid,
            clients=2,
            seconds=4,
            max_requests=200,  # at most 200 MiB kept
            warmup_seconds=0.5,
            sample_interval=0.1,
            max_growth_mib=MAX_GROWTH_MIB,
        )
    assert result.errors == 0, result.error_examples
    kept_mib = result.requests * 1.0
    # Roughly a third to two thirds of what was kept lies between the windows' medians.
    assert result.memory["growth_mib"] > MAX_GROWTH_MIB, (kept_mib, result.memory)
    assert not result.memory["held"] and not result.held
    assert result.memory["slope_mib_per_min"] > 0
    assert result.memory["growth_kib_per_request"] > 200


def test_the_rule_ignores_noise_and_judges_the_windows():
    flat = [(t * 0.5, 500 + (7 if t % 5 == 0 else 0) - (3 if t % 7 == 0 else 0)) for t in range(60)]
    held = memory_growth(flat, requests=600, max_growth_mib=4)
    assert held["held"] and abs(held["growth_mib"]) <= 1 and held["peak_mib"] == 507
    rising = [(t * 0.5, 500 + t * 0.5) for t in range(60)]
    leak = memory_growth(rising, requests=600, max_growth_mib=4)
    assert not leak["held"] and leak["growth_mib"] == pytest.approx(20)
    assert leak["slope_mib_per_min"] == pytest.approx(60)
    with pytest.raises(ValueError, match="at least 6"):
        memory_growth(flat[:5], requests=5, max_growth_mib=4)


def test_a_soak_refuses_a_bad_mix():
    with pytest.raises(ValueError, match="weight"):
        Endpoint("x", 0, lambda n: ("GET", "/", None, None))
    with pytest.raises(ValueError, match="at least one endpoint"):
        run_soak("http://127.0.0.1:9", [], pid=os.getpid())
    one = Endpoint("x", 1, lambda n: ("GET", "/", None, None))
    with pytest.raises(ValueError, match="unique"):
        run_soak("http://127.0.0.1:9", [one, one], pid=os.getpid())


def test_a_server_that_dies_is_reported_with_its_log(tmp_path):
    server = ServerProcess(
        [sys.executable, "-c", "import sys; print('no models here'); sys.exit(3)"],
        "http://127.0.0.1:9",
        tmp_path / "log",
        ready_timeout=30,
    )
    with pytest.raises(RuntimeError, match="(?s)exited with code 3.*no models here"), server:
        pass
