"""The HTTP API through FastAPI's test client: endpoints per task, limits, auth, batching."""

from __future__ import annotations

import asyncio
import threading
import time
from types import SimpleNamespace

import httpx
import pytest
from fastapi.testclient import TestClient

from lepton_nlp.cli import build_parser, main
from lepton_nlp.config import ConfigError
from lepton_nlp.inference import Predictor
from lepton_nlp.serve import MicroBatcher, ServeSettings, create_app, load_serve_settings

KEY = "test-key-0123456789abcdef"


class FakeModel:
    """Answers like a predictor of ``task``; records each predict call's size."""

    def __init__(self, task: str, delay: float = 0.0):
        self.info = SimpleNamespace(task=task)
        self.delay = delay
        self.calls: list[int] = []

    def predict(self, inputs: list) -> list[dict]:
        self.calls.append(len(inputs))
        time.sleep(self.delay)
        out = []
        for item in inputs:
            text = item if isinstance(item, str) else str(item)
            if "boom" in text:
                raise ValueError("this model cannot read 'boom'")
            if "crash" in text:
                raise RuntimeError("internal failure")
            out.append(_answer(self.info.task, item))
        return out


def _answer(task: str, item) -> dict:
    if task == "classification":
        return {"label": "positive", "score": 0.8, "scores": {"positive": 0.8, "negative": 0.2}}
    if task == "ner":
        return {"text": item, "entities": [], "tags": ["O"] * len(item.split())}
    if task == "relation":
        return {"label": "Located(e1,e2)", "score": 0.7, "scores": {"Located(e1,e2)": 0.7}}
    if task == "qa":
        return {"answer": item["context"][:4], "start": 0, "end": 4, "score": 0.9}
    if task == "summarization":
        return {"generated_text": item[:10]}
    if task == "translation":
        return {"generated_text": item[::-1]}
    return {"embedding": [0.6, 0.8]}


@pytest.fixture
def client():
    settings = ServeSettings(max_items=8, max_text_chars=100, max_body_bytes=4096)
    models = {"sentiment": FakeModel("classification"), "ner": FakeModel("ner")}
    with TestClient(create_app(models, settings)) as test_client:
        yield test_client


def test_a_trained_artifact_answers_classify(tiny_artifact):
    predictor = Predictor.from_artifact(tiny_artifact)
    with TestClient(create_app({"tiny": predictor})) as c:
        answer = c.post("/v1/classify", json={"model": "tiny", "inputs": ["good value", "awful"]})
        assert answer.status_code == 200
        body = answer.json()
        assert body["model"] == "tiny" and len(body["results"]) == 2
        expected = predictor.predict(["good value", "awful"])
        assert [r["label"] for r in body["results"]] == [e["label"] for e in expected]
        assert sum(body["results"][0]["scores"].values()) == pytest.approx(1.0, abs=1e-3)
        # The model may be left out when it is the only one of its task.
        assert c.post("/v1/classify", json={"inputs": ["fine"]}).status_code == 200
        paths = c.get("/openapi.json").json()["paths"]
        assert "/v1/classify" in paths and "/v1/ner" not in paths
        # /v1/models says what backend=auto chose for this artifact.
        assert c.get("/v1/models").json()["models"]["tiny"]["backend"] == predictor.backend
        assert predictor.backend in ("torch", "torch-int8")


def test_each_task_gets_its_typed_endpoint():
    tasks = ["classification", "ner", "relation", "qa", "summarization", "translation", "embedding"]
    models = {task: FakeModel(task) for task in tasks}
    with TestClient(create_app(models)) as c:
        spec = c.get("/openapi.json").json()
        for path in ["classify", "ner", "relations", "qa", "summarize", "translate", "embed"]:
            assert f"/v1/{path}" in spec["paths"]
        assert "QaRequest" in spec["components"]["schemas"]
        assert (
            c.post("/v1/ner", json={"inputs": ["Nokia is in Espoo"]}).json()["results"][0]["tags"]
            == ["O"] * 4
        )
        rel = {"text": "Nokia is in Espoo", "head": [0, 5], "tail": [12, 17]}
        assert c.post("/v1/relations", json={"inputs": [rel]}).json()["results"][0]["score"] == 0.7
        bad_span = {"text": "Nokia", "head": [0, 5], "tail": [3, 9]}
        answer = c.post("/v1/relations", json={"inputs": [bad_span]})
        assert answer.status_code == 422 and "len(text) = 5" in answer.text
        qa = {"question": "Who?", "context": "Nokia is in Espoo"}
        assert c.post("/v1/qa", json={"inputs": [qa]}).json()["results"][0]["answer"] == "Noki"
        summary = c.post("/v1/summarize", json={"inputs": ["a long text"]}).json()
        assert summary["results"] == [{"generated_text": "a long tex"}]
        assert c.post("/v1/translate", json={"inputs": ["abc"]}).json()["results"] == [
            {"generated_text": "cba"}
        ]
        embed = c.post("/v1/embed", json={"inputs": ["x", "y"]}).json()
        assert embed["dim"] == 2 and len(embed["results"]) == 2
        assert c.get("/v1/models").json()["models"]["qa"]["endpoint"] == "/v1/qa"


def test_model_names_are_checked(client):
    answer = client.post("/v1/classify", json={"model": "nope", "inputs": ["x"]})
    assert answer.status_code == 404 and "loaded classification models: sentiment" in answer.text
    answer = client.post("/v1/classify", json={"model": "ner", "inputs": ["x"]})
    assert answer.status_code == 422 and "send it to /v1/ner" in answer.text
    with TestClient(
        create_app({"a": FakeModel("classification"), "b": FakeModel("classification")})
    ) as c:
        answer = c.post("/v1/classify", json={"inputs": ["x"]})
        assert answer.status_code == 422 and "a, b" in answer.text
    with pytest.raises(ValueError, match="no endpoint"):
        create_app({"odd": FakeModel("speech")})


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"inputs": [""]}, 422, "empty or only whitespace"),
        ({"inputs": ["ok", " \n\t "]}, 422, "inputs[1] is empty"),
        ({"inputs": ["x" * 101]}, 413, "limit is 100 characters (max_text_chars)"),
        ({"inputs": ["x"] * 9}, 413, "limit is 8 per request (max_items)"),
        ({"inputs": ["x"] * 100_000}, 413, "max_body_bytes"),
        ({"inputs": "just a string"}, 422, "valid list"),
        ({"inputs": []}, 422, "at least 1"),
        ({"texts": ["x"]}, 422, "Field required"),
        ({"inputs": [1, 2]}, 422, "valid string"),
        ([1, 2, 3], 422, "dictionary"),
    ],
)
def test_bad_requests_get_a_4xx_naming_the_problem(client, body, status, words):
    answer = client.post("/v1/classify", json=body)
    assert answer.status_code == status, answer.text
    assert words in answer.text
    # ...and the server keeps answering.
    assert client.post("/v1/classify", json={"inputs": ["fine"]}).status_code == 200


def test_bad_bytes_and_huge_bodies(client):
    post = client.post
    json_type = {"content-type": "application/json"}
    answer = post("/v1/classify", content=b'{"inputs": ["caf\xe9"]}', headers=json_type)
    assert answer.status_code == 400 and "not valid UTF-8" in answer.text
    answer = post("/v1/classify", content=b'{"inputs": [', headers=json_type)
    assert answer.status_code == 422 and "JSON decode error" in answer.text
    answer = post("/v1/classify", content=b'{"inputs": ["\\ud800 lone"]}', headers=json_type)
    assert answer.status_code == 422 and "unpaired surrogate" in answer.text
    ten_mb = b'{"inputs": ["' + b"a" * 10_000_000 + b'"]}'
    answer = post("/v1/classify", content=ten_mb, headers=json_type)
    assert answer.status_code == 413 and "4096 bytes (max_body_bytes)" in answer.text
    answer = post("/v1/classify", content=b"inputs=x", headers={"content-type": "text/plain"})
    assert answer.status_code == 415 and "application/json" in answer.text
    assert post("/v1/classify", json={"inputs": ["still up"]}).status_code == 200


def test_prediction_errors_are_answered_and_contained(client):
    answer = client.post("/v1/classify", json={"inputs": ["boom"]})
    assert answer.status_code == 422 and "cannot read 'boom'" in answer.text
    answer = client.post("/v1/classify", json={"inputs": ["crash"]})
    assert answer.status_code == 500 and "logged" in answer.text
    assert client.post("/v1/classify", json={"inputs": ["fine"]}).status_code == 200


def test_api_keys():
    settings = ServeSettings(api_keys=[KEY])
    with TestClient(create_app({"m": FakeModel("classification")}, settings)) as c:
        body = {"inputs": ["x"]}
        assert c.post("/v1/classify", json=body).status_code == 401
        wrong = c.post("/v1/classify", json=body, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and "X-API-Key" in wrong.text
        bearer = c.post("/v1/classify", json=body, headers={"Authorization": f"Bearer {KEY}"})
        assert bearer.status_code == 200
        assert c.post("/v1/classify", json=body, headers={"X-API-Key": KEY}).status_code == 200
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers={"X-API-Key": KEY}).status_code == 200
        assert c.get("/healthz").status_code == 200 and c.get("/readyz").status_code == 200
        assert "HTTPBearer" in c.get("/openapi.json").json()["components"]["securitySchemes"]


def test_settings_refuse_open_binds_without_keys(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="needs API keys"):
        ServeSettings(host="0.0.0.0")
    assert ServeSettings(host="0.0.0.0", api_keys=[KEY]).api_keys == [KEY]
    assert ServeSettings(host="::1").host == "::1"
    with pytest.raises(ConfigError, match="at least 16"):
        ServeSettings(api_keys=["short"])
    with pytest.raises(ConfigError, match="shared_base needs backend torch"):
        ServeSettings(shared_base=True, backend="onnx")
    with pytest.raises(ConfigError, match="not one of auto, torch"):
        ServeSettings(backend="tensorrt")
    config = tmp_path / "serve.yaml"
    config.write_text("models:\n  s: some/folder\nmax_batch_sze: 4\n")
    with pytest.raises(ConfigError, match="Did you mean max_batch_size"):
        load_serve_settings(config)
    config.write_text("models:\n  s: some/folder\nhost: 0.0.0.0\nmax_wait_ms: 2\n")
    monkeypatch.setenv("LEPTON_NLP_API_KEYS", f"{KEY}, other-key-0123456789")
    settings = load_serve_settings(config, {"port": 9000, "models": {"t": "x"}, "host": None})
    assert settings.port == 9000 and settings.max_wait_ms == 2.0 and settings.host == "0.0.0.0"
    assert settings.models == {"s": "some/folder", "t": "x"}
    assert settings.api_keys == [KEY, "other-key-0123456789"]
    keys = tmp_path / "keys.txt"
    keys.write_text(f"{KEY}\n\n")
    monkeypatch.delenv("LEPTON_NLP_API_KEYS")
    assert load_serve_settings(None, {"api_key_file": str(keys)}).api_keys == [KEY]
    # Same YAML rules as run configs: only true/false are booleans ("no" is not False).
    config.write_text("models:\n  s: some/folder\nbatching: no\n")
    with pytest.raises(ConfigError, match="batching"):
        load_serve_settings(config)
    config.write_text("- a list, not settings\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_serve_settings(config)


def test_health_ready_and_metrics(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["models"]["ner"] == "ner"
    client.post("/v1/classify", json={"inputs": ["a", "b", "c"]})
    client.post("/v1/classify", json={"model": "zzz", "inputs": ["a"]})
    text = client.get("/metrics").text
    assert 'lepton_http_requests_total{method="POST",path="/v1/classify",status="200"} 1.0' in text
    assert 'lepton_http_requests_total{method="POST",path="/v1/classify",status="404"} 1.0' in text
    assert 'lepton_batch_size_sum{model="sentiment"} 3.0' in text
    assert 'lepton_http_request_duration_seconds_count{path="/v1/classify"} 2.0' in text
    assert 'lepton_model_info{model="ner",task="ner"} 1.0' in text


async def _concurrent(app, n: int, body: dict) -> list[httpx.Response]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            return await asyncio.gather(*[c.post("/v1/classify", json=body) for _ in range(n)])


@pytest.mark.parametrize("batching", [True, False])
def test_concurrent_requests_are_micro_batched(batching):
    model = FakeModel("classification", delay=0.05)
    settings = ServeSettings(batching=batching, max_batch_size=8, max_wait_ms=20)
    app = create_app({"m": model}, settings)
    answers = asyncio.run(_concurrent(app, 20, {"inputs": ["x"]}))
    assert [a.status_code for a in answers] == [200] * 20
    if batching:
        assert max(model.calls) == 8 and len(model.calls) <= 5 and sum(model.calls) == 20
    else:
        assert model.calls == [1] * 20


def test_batcher_isolates_a_bad_request_and_splits_big_ones():
    model = FakeModel("classification", delay=0.02)
    sizes = []

    async def scenario():
        batcher = MicroBatcher(
            "m",
            model.predict,
            max_batch_size=4,
            max_wait_ms=30,
            on_batch=lambda n, r, s: sizes.append(n),
        )
        await batcher.start()
        jobs = [batcher.submit(["a"]), batcher.submit(["boom"]), batcher.submit(["b", "c"])]
        jobs.append(batcher.submit(["x"] * 6))  # larger than a batch: runs alone
        results = await asyncio.gather(*jobs, return_exceptions=True)
        await batcher.close()
        return results

    results = asyncio.run(scenario())
    assert isinstance(results[1], ValueError)
    assert len(results[0]) == 1 and len(results[2]) == 2 and len(results[3]) == 6
    assert sizes == [4, 6]  # the first three requests together, then the big one


def test_full_queue_answers_503_with_retry_after():
    release = threading.Event()

    class Blocking(FakeModel):
        def predict(self, inputs):
            release.wait(10)
            return super().predict(inputs)

    settings = ServeSettings(max_items=2, max_queue_items=2)
    app = create_app({"m": Blocking("classification")}, settings)

    async def scenario():
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                first = asyncio.create_task(c.post("/v1/classify", json={"inputs": ["a", "b"]}))
                await asyncio.sleep(0.2)
                second = await c.post("/v1/classify", json={"inputs": ["c"]})
                release.set()
                return await first, second

    first, second = asyncio.run(scenario())
    assert first.status_code == 200
    assert second.status_code == 503 and second.headers["retry-after"] == "1"
    assert "max_queue_items 2" in second.text


def test_cli_serve_checks_its_flags(capsys):
    assert main(["serve", "--model", "no-equals-sign"]) == 2
    assert "NAME=ARTIFACT_FOLDER" in capsys.readouterr().err
    assert main(["serve", "--model", "x=/nonexistent/folder", "--host", "0.0.0.0"]) == 2
    assert "needs API keys" in capsys.readouterr().err
    assert main(["serve", "--model", "x=/nonexistent/folder"]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--help"])
    assert "LEPTON_NLP_API_KEYS" in capsys.readouterr().out
