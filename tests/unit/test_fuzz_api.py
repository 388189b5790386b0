"""schemathesis against a real ``lepton-nlp serve`` on loopback: no 5xx, every response fits
its schema.

The server serves a tiny classification artifact and mounts the support and recommender
routers (on stand-ins, ``tests/unit/api_fuzz_routes.py``) with ``--routes``, as a deployment
would. schemathesis reads its OpenAPI document and sends generated requests, valid
(positive) and invalid (negative), to every operation.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.unit.fuzzing import EXAMPLES, FAILED, TRIED

ROOT = Path(__file__).resolve().parents[2]
#: Cases per operation and mode: a request costs more than a reader call, and the API has
#: some twenty operations (LEPTON_FUZZ_EXAMPLES=1000 gives 200 each).
API_EXAMPLES = max(2, EXAMPLES // 5)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tiny_artifact, tmp_path_factory):
    """``lepton-nlp serve`` with the tiny model and both app routers; its base URL."""
    from apps.recommender.service import train_recommender
    from tests.unit.test_recommender import WordsEmbedder, _catalogue, _events

    folder = tmp_path_factory.mktemp("api-fuzz")
    train_recommender(
        _catalogue(),
        _events(),
        folder / "rec",
        model="hybrid",
        config={"cf_config": {"factors": 8, "iterations": 5, "threads": 1}},
        embedder=WordsEmbedder(),
    )
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HF_HUB_OFFLINE": "1",
        "LEPTON_HOME": str(folder / "home"),
        "LEPTON_FUZZ_DB": f"sqlite:///{folder / 'api.db'}",
        "LEPTON_FUZZ_REC_FOLDER": str(folder / "rec"),
    }
    env.pop("LEPTON_NLP_API_KEYS", None)
    log = open(folder / "server.log", "wb")  # noqa: SIM115 - open while the server runs
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lepton_nlp.cli",
            "serve",
            "-m",
            f"tiny={tiny_artifact}",
            "--port",
            str(port),
            "--torch-threads",
            "1",
            "--routes",
            "tests.unit.api_fuzz_routes:support",
            "--routes",
            "tests.unit.api_fuzz_routes:recommender",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        assert process.poll() is None, (folder / "server.log").read_text()[-3000:]
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the server did not become ready"
        time.sleep(0.3)
    yield url
    process.terminate()
    process.wait(timeout=60)
    log.close()


def _operations(server: str) -> list:
    schema = schemathesis.openapi.from_url(f"{server}/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


# schemathesis' own pytest plugin (``schemathesis.pytest.from_fixture``) fails under pytest 9
# ('Function' object has no attribute '_nodeid'), so each operation's strategy is driven
# with hypothesis directly: the same cases, generated and checked by schemathesis.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_fuzz(server, mode):
    operations = _operations(server)
    assert len(operations) >= 10, [op.label for op in operations]
    failures = []
    for operation in operations:

        @settings(
            max_examples=API_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def call(case):
            TRIED["http_api"] += 1
            try:
                case.call_and_validate(
                    base_url=server,
                    timeout=30,
                    checks=[not_a_server_error, response_schema_conformance],
                )
            except BaseException:
                FAILED["http_api"] += 1
                raise

        try:
            call()
        except Unsatisfiable:
            assert mode == GenerationMode.NEGATIVE  # nothing to send wrong to GET /healthz
        except Exception as error:  # all operations run; each failure is reported below
            failures.append(f"{operation.label}: {error}")
    assert not failures, "\n\n".join(failures)
