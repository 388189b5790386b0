"""A real ``lepton-nlp serve`` process on loopback: auth, health, limits, metrics, batching, SIGTERM.

Run as a script (``python test_serve_uvicorn.py --slow PORT``) it serves a deliberately slow
model, so the graceful-shutdown test can catch a request in flight.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
KEY = "integration-key-0123456789"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(command: list[str], port: int, timeout: float = 180) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "LEPTON_NLP_API_KEYS": KEY}
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{process.stdout.read()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"server not ready after {timeout} s:\n{process.stdout.read()}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def server():
    port = _free_port()
    command = [sys.executable, "-m", "lepton_nlp.cli", "serve", "--port", str(port)]
    command += ["-m", "finance-sentiment=data/models/finance-sentiment", "--embed"]
    command += ["-m", "conll2003-ner=data/models/conll2003-ner", "--shared-base"]
    command += ["--max-wait-ms", "30", "--max-batch-size", "16", "--torch-threads", "1"]
    process = _start(command, port)
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60) as c:
        yield SimpleNamespace(client=c, url=f"http://127.0.0.1:{port}", process=process)
    _stop(process)


def test_auth_health_and_predictions(server):
    c = server.client
    bare = httpx.post(f"{server.url}/v1/classify", json={"inputs": ["x"]})
    assert bare.status_code == 401 and "X-API-Key" in bare.text
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{server.url}/readyz").json()
    assert ready["models"] == {
        "finance-sentiment": "classification",
        "conll2003-ner": "ner",
        "all-MiniLM-L6-v2": "embedding",
    }
    answer = c.post(
        "/v1/classify",
        json={"model": "finance-sentiment", "inputs": ["Operating profit rose 40% to EUR 12m."]},
    )
    assert answer.status_code == 200 and answer.json()["results"][0]["label"] == "positive"
    ner = c.post("/v1/ner", json={"inputs": ["Nokia opened a plant in Oulu, Finland."]})
    entities = ner.json()["results"][0]["entities"]
    assert {(e["text"], e["label"]) for e in entities} >= {("Nokia", "ORG"), ("Finland", "LOC")}
    embed = c.post("/v1/embed", json={"inputs": ["a news item", "another"]}).json()
    vector = embed["results"][0]["embedding"]
    assert embed["dim"] == 384 and len(vector) == 384
    assert sum(v * v for v in vector) == pytest.approx(1.0, abs=1e-3)  # unit length
    assert "/v1/classify" in c.get("/openapi.json").json()["paths"]


def test_bad_input_gets_4xx_and_the_server_stays_up(server):
    c = server.client
    huge = c.post("/v1/classify", json={"inputs": ["a" * 10_000_000]})
    assert huge.status_code == 413 and "max_body_bytes" in huge.text
    many = c.post("/v1/classify", json={"inputs": ["hi"] * 100_000})
    assert many.status_code == 413 and "limit is 256 per request (max_items)" in many.text
    raw = c.post(
        "/v1/classify",
        content=b'{"inputs": ["\xff\xfe"]}',
        headers={"content-type": "application/json"},
    )
    assert raw.status_code == 400 and "UTF-8" in raw.text
    assert c.post("/v1/classify", json={"inputs": ["   "]}).status_code == 422
    unknown = c.post("/v1/classify", json={"model": "nope", "inputs": ["x"]})
    assert unknown.status_code == 404 and "finance-sentiment" in unknown.text
    assert c.post("/v1/classify", json={"inputs": ["Sales fell."]}).status_code == 200


def _batch_metrics(text: str) -> tuple[float, float]:
    def value(name: str) -> float:
        match = re.search(rf'^{name}{{model="finance-sentiment"}} (\S+)$', text, re.M)
        return float(match.group(1)) if match else 0.0

    return value("lepton_batch_size_count"), value("lepton_batch_size_sum")


def test_concurrent_requests_are_micro_batched(server):
    """32 requests of different lengths share a few padding-free batches, and each answer is
    the one the text gets alone."""
    before = _batch_metrics(server.client.get("/metrics").text)
    tail = " Demand for its products in Europe stayed strong, the company said."
    texts = [f"Net sales grew {i}%." + tail * (i % 4) for i in range(32)]

    async def burst() -> list:
        headers = {"X-API-Key": KEY}
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=120) as c:
            return await asyncio.gather(
                *[c.post("/v1/classify", json={"inputs": [text]}) for text in texts]
            )

    answers = asyncio.run(burst())
    assert [a.status_code for a in answers] == [200] * 32
    metrics = server.client.get("/metrics").text
    batches, items = (a - b for a, b in zip(_batch_metrics(metrics), before, strict=True))
    assert items == 32
    assert batches <= 16, f"32 concurrent requests ran as {batches} batches"
    assert 'lepton_http_requests_total{method="POST",path="/v1/classify",status="200"}' in metrics
    for text, answer in list(zip(texts, answers, strict=True))[:8]:
        alone = server.client.post("/v1/classify", json={"inputs": [text]}).json()["results"][0]
        batched = answer.json()["results"][0]
        assert batched["label"] == alone["label"]
        for label, score in alone["scores"].items():
            assert abs(batched["scores"][label] - score) < 1e-4


def test_default_backend_serves_the_checked_int8_model_batch_independently():
    """The shipped sentiment model's int8 check passed, so a server on the default backend
    (auto) runs it in int8; its calibrated ranges keep each answer the text's answer alone."""
    port = _free_port()
    command = [sys.executable, "-m", "lepton_nlp.cli", "serve", "--port", str(port)]
    command += ["-m", "finance-sentiment=data/models/finance-sentiment", "--max-wait-ms", "50"]
    process = _start(command, port)
    try:
        headers = {"X-API-Key": KEY}
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=url, headers=headers, timeout=60) as c:
            models = c.get("/v1/models").json()["models"]
            assert models["finance-sentiment"]["backend"] == "torch-int8"
            texts = [
                "Operating profit rose to EUR 13.1 mn from EUR 8.7 mn.",
                "The company said it would cut 300 jobs in Finland after sales fell.",
                "Shares were flat.",
                "Net sales decreased by 5% but the order book grew strongly in Asia and Europe.",
            ]
            together = c.post("/v1/classify", json={"inputs": texts}).json()["results"]
            for text, joint in zip(texts, together, strict=True):
                alone = c.post("/v1/classify", json={"inputs": [text]}).json()["results"][0]
                assert alone["label"] == joint["label"]
                for label, score in alone["scores"].items():
                    assert abs(joint["scores"][label] - score) < 1e-6
    finally:
        _stop(process)


class _SlowModel:
    info = SimpleNamespace(task="classification")

    def predict(self, inputs):
        time.sleep(3)
        return [{"label": "slow", "score": 1.0, "scores": {"slow": 1.0}} for _ in inputs]


def test_sigterm_finishes_the_request_in_flight():
    port = _free_port()
    process = _start([sys.executable, __file__, "--slow", str(port)], port, timeout=60)
    result = {}

    def call():
        result["answer"] = httpx.post(
            f"http://127.0.0.1:{port}/v1/classify",
            json={"inputs": ["wait for me"]},
            headers={"X-API-Key": KEY},
            timeout=30,
        )

    thread = threading.Thread(target=call)
    thread.start()
    time.sleep(1.0)  # the request is now inside predict
    process.send_signal(signal.SIGTERM)
    thread.join(30)
    assert result["answer"].status_code == 200
    assert result["answer"].json()["results"][0]["label"] == "slow"
    # uvicorn re-raises the signal once shut down cleanly, so the exit status says SIGTERM.
    assert process.wait(30) in (0, -signal.SIGTERM)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)


if __name__ == "__main__" and sys.argv[1:2] == ["--slow"]:
    from lepton_nlp.serve import load_serve_settings, run_server

    settings = load_serve_settings(None, {"port": int(sys.argv[2]), "log_level": "warning"})
    run_server(settings, models={"slow": _SlowModel()})
