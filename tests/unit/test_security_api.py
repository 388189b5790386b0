"""The HTTP API's security: nobody in without a key beyond loopback, keys compared in
constant time and never shown, limits on every body, mounted routes under the same rules."""

from __future__ import annotations

import asyncio
import hmac
import importlib.util
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from lepton_nlp.cli import main
from lepton_nlp.errors import ConfigError, LimitError
from lepton_nlp.security import InputLimits
from lepton_nlp.serve import ServeSettings, create_app, load_serve_settings
from lepton_nlp.serve.app import TASK_ROUTES
from tests.unit.security_routes import FILES_ENV

ROOT = Path(__file__).resolve().parents[2]
KEY = "sec-key-0123456789abcdef-XYZ"
OTHER = "second-key-abcdefghijklmnop"
WRONG = KEY[:-1] + "Q"  # right prefix, wrong last character
TEST_ROUTES = "tests.unit.security_routes:router"
#: Application routers checked when present (the finance and recommender apps mount theirs).
APP_ROUTERS = ["apps.support.api:router", "apps.finance.api:router", "apps.recommender.api:router"]
PUBLIC = {"/healthz", "/readyz"}


class FakeModel:
    def __init__(self, task: str):
        self.info = SimpleNamespace(task=task)

    def predict(self, inputs: list) -> list[dict]:
        if any("crash" in str(item) for item in inputs):
            raise RuntimeError("internal failure")
        return [{"label": "x", "score": 1.0, "scores": {"x": 1.0}} for _ in inputs]


def _models() -> dict:
    return {task: FakeModel(task) for task in TASK_ROUTES}


def _present(spec: str) -> bool:
    module = spec.split(":")[0]
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its package does not exist (yet)
        return False


@pytest.fixture
def support_bot():
    from apps.support import api
    from tests.unit.support_standins import make_bot

    api.set_bot(make_bot())
    yield
    api.set_bot(None)


# --- who may bind where -------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "10.0.0.5", "myhost.example"])
def test_an_open_bind_without_keys_is_refused_with_the_fix(host):
    with pytest.raises(ConfigError) as refused:
        ServeSettings(host=host)
    message = str(refused.value)
    assert "LEPTON_NLP_API_KEYS" in message and "--insecure" in message and host in message


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_binds_need_no_key(host):
    assert not ServeSettings(host=host).open_to_anyone


def test_insecure_is_explicit_and_warned_about(caplog, monkeypatch):
    import uvicorn

    from lepton_nlp.serve import run_server

    settings = ServeSettings(host="0.0.0.0", insecure=True)
    assert settings.open_to_anyone
    assert not ServeSettings(host="0.0.0.0", api_keys=[KEY]).open_to_anyone
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, *a, **k: None)
    with caplog.at_level(logging.WARNING, logger="lepton_nlp.serve.server"):
        run_server(settings, models={"m": FakeModel("classification")})
    assert "WITHOUT API keys (--insecure)" in caplog.text


def test_cli_refuses_an_open_bind_and_accepts_insecure(capsys, monkeypatch):
    monkeypatch.delenv("LEPTON_NLP_API_KEYS", raising=False)
    code = main(["serve", "--routes", TEST_ROUTES, "--host", "0.0.0.0", "--port", "8123"])
    assert code == 2
    assert "needs API keys" in capsys.readouterr().err
    started = []
    monkeypatch.setattr("lepton_nlp.serve.run_server", started.append)
    assert main(["serve", "--routes", TEST_ROUTES, "--host", "0.0.0.0", "--insecure"]) == 0
    assert started[0].insecure and started[0].host == "0.0.0.0"


def test_support_cli_refuses_an_open_bind(monkeypatch, capsys):
    from apps.support.cli import main as support_main

    monkeypatch.delenv("LEPTON_NLP_API_KEYS", raising=False)
    assert support_main(["serve", "--host", "0.0.0.0"]) != 0
    assert "needs API keys" in capsys.readouterr().err


def test_the_suite_launcher_stays_on_loopback(monkeypatch, capsys, tmp_path):
    from apps import launch

    monkeypatch.setenv("LEPTON_HOME", str(tmp_path))
    for name in ("HF_HUB_OFFLINE", "PYTHONPATH", "TOKENIZERS_PARALLELISM"):
        monkeypatch.setenv(name, os.environ.get(name, ""))  # launch sets them; undone after
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(launch, "running_suite", lambda: None)
    monkeypatch.setattr(launch, "port_in_use", lambda address, port: False)
    started = []
    monkeypatch.setattr(launch.os, "execv", lambda exe, command: started.append(command))
    assert launch.main(["--address", "0.0.0.0"]) == 2 and not started
    assert "Refusing to serve the suite on 0.0.0.0" in capsys.readouterr().out
    launch.main(["--address", "0.0.0.0", "--insecure"])
    assert started[-1][started[-1].index("--server.address") + 1] == "0.0.0.0"
    launch.main(["--address", "127.0.0.1"])
    assert len(started) == 2


# --- every route behind the key -----------------------------------------------------------------


def _call(client: TestClient, method: str, path: str, headers: dict | None = None):
    path = re.sub(r"\{[^}]+\}", "1", path)
    body = None if method in ("GET", "HEAD") else {}
    return client.request(method, path, json=body, headers=headers or {})


def test_every_route_needs_the_key_mounted_ones_too(support_bot):
    routers = [TEST_ROUTES, *(r for r in APP_ROUTERS if _present(r))]
    settings = ServeSettings(api_keys=[KEY, OTHER], routes=routers)
    app = create_app(_models(), settings)
    # Every operation the API offers, as its OpenAPI document lists them (included routers
    # too); a route left out of the document is listed by app.routes.
    routes = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
        if path not in PUBLIC
    }
    routes |= {
        (method, route.path)
        for route in app.routes
        if isinstance(route, APIRoute) and route.path not in PUBLIC
        for method in route.methods
    }
    routes = sorted(routes)
    assert len(routes) >= 20, routes  # every task endpoint, the support bot's, the test routes
    with TestClient(app) as client:
        for method, path in routes:
            for headers in (
                None,
                {"X-API-Key": WRONG},
                {"Authorization": f"Bearer {WRONG}"},
                {"Authorization": f"Basic {KEY}"},
                {"X-API-Key": ""},
            ):
                answer = _call(client, method, path, headers)
                assert answer.status_code == 401, (method, path, headers, answer.text)
        # The right key (either one, either header) opens them: the core's own routes and ours.
        for method, path in routes:
            if path.startswith("/v1/") or path in ("/hello", "/echo", "/metrics"):
                for headers in ({"X-API-Key": KEY}, {"Authorization": f"Bearer {OTHER}"}):
                    assert _call(client, method, path, headers).status_code != 401, (method, path)
        assert client.get("/healthz").status_code == 200  # probes stay open
        assert client.get("/readyz").status_code == 200


def test_a_key_limited_to_a_scope_opens_only_that_scopes_routes(support_bot):
    """A chat system's client key cannot read the handoff desk (every customer's
    conversation); an agent key can, and can do nothing else; a key alone opens everything."""
    client_key, agent_key, ops_key = "client-key-0123456789ab", "agent-key-0123456789abc", "o" * 20
    settings = ServeSettings(
        api_keys=[KEY, f"{client_key} client", f"{agent_key} agent", f"{ops_key} ops"],
        routes=["apps.support.api:router"],
    )
    app = create_app(_models(), settings)
    spec = app.openapi()["paths"]
    assert spec["/handoff"]["get"]["x-api-scope"] == "agent"
    assert spec["/handoff/{handoff_id}/reply"]["post"]["x-api-scope"] == "agent"
    assert "x-api-scope" not in spec["/webhooks/rest/webhook"]["post"]  # client: the default
    chat = {"sender": "scope-test", "message": "my card is lost"}
    with TestClient(app) as client:

        def status(method, path, key, body=None):
            return client.request(method, path, json=body, headers={"X-API-Key": key}).status_code

        assert status("POST", "/webhooks/rest/webhook", client_key, chat) == 200
        assert status("POST", "/v1/classify", client_key, {"inputs": ["hi"]}) == 200
        for method, path in [
            ("GET", "/handoff"),
            ("GET", "/handoff/1"),
            ("POST", "/handoff/1/close"),
        ]:
            assert status(method, path, client_key) == 403, path
            assert status(method, path, ops_key) == 403, path
        assert status("GET", "/metrics", client_key) == 403
        answer = client.get("/handoff", headers={"X-API-Key": client_key})
        assert "agent" in answer.json()["detail"] and client_key not in answer.text
        assert status("GET", "/handoff", agent_key) == 200
        assert status("GET", "/handoff/1", agent_key) == 404  # in, and no such handoff
        assert status("POST", "/webhooks/rest/webhook", agent_key, chat) == 403
        assert status("GET", "/metrics", ops_key) == 200
        for path in ("/handoff", "/metrics"):
            assert status("GET", path, KEY) == 200  # a key alone: every scope
        assert status("GET", "/handoff", WRONG) == 401  # a wrong key is still 401, not 403
    with pytest.raises(ConfigError, match="Did you mean 'agent'"):
        load_serve_settings({"api_keys": [f"{KEY} agnet"]})
    with pytest.raises(ConfigError, match="not shown") as error:
        load_serve_settings({"api_keys": ["first-half-of-a-key second-half-of-the-key"]})
    assert "second-half" not in str(error.value)


def test_keys_are_compared_in_constant_time(monkeypatch):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr("lepton_nlp.serve.app.hmac.compare_digest", spy)
    keys = [KEY, OTHER, "third-key-" + "z" * 40]
    app = create_app(_models(), ServeSettings(api_keys=keys, routes=[TEST_ROUTES]))
    with TestClient(app) as client:
        for sent, status in [(KEY, 200), ("short-wrong", 401), ("x" * 500, 401), (OTHER, 200)]:
            calls.clear()
            assert client.get("/hello", headers={"X-API-Key": sent}).status_code == status
            # Every key compared (no early exit on a match), as digests of one length.
            assert calls == [(32, 32)] * len(keys), (sent, calls)


def test_keys_never_reach_logs_errors_or_reprs(caplog, capsys, tmp_path, monkeypatch):
    logging.getLogger().setLevel(logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    settings = ServeSettings(api_keys=[KEY], routes=[TEST_ROUTES])
    app = create_app(_models(), settings)
    with TestClient(app) as client:
        for headers in ({"X-API-Key": KEY}, {"Authorization": f"Bearer {WRONG}"}, {}):
            client.post("/v1/classify", json={"inputs": ["fine"]}, headers=headers)
            client.post("/v1/classify", json={"inputs": ["crash"]}, headers=headers)  # 500
            client.post("/v1/classify", json={"inputs": ["x" * 20_000]}, headers=headers)
            client.get("/metrics", headers=headers)
        metrics = client.get("/metrics", headers={"X-API-Key": KEY}).text
    shown = [repr(settings), str(settings), metrics, caplog.text, *capsys.readouterr()]
    # Settings errors: a key of the wrong shape is refused without being quoted.
    for bad in ([KEY[:8]], [f" {KEY} "], f"{KEY}", [12345678901234567890]):
        with pytest.raises(ConfigError) as error:
            load_serve_settings({"api_keys": bad})
        shown.append(str(error.value))
    config = tmp_path / "serve.yaml"
    config.write_text(f"routes: [{TEST_ROUTES}]\napi_keys: [{KEY}]\n")
    with pytest.raises(ConfigError, match="keep keys out of config files") as error:
        load_serve_settings(config)
    shown.append(str(error.value))
    assert "internal failure" in caplog.text  # the logs did record the requests' failures
    for text in shown:
        assert KEY not in text and WRONG not in text and KEY[:8] not in text
        assert "12345678901234567890" not in text


def test_keys_come_from_the_environment_or_a_key_file(tmp_path, monkeypatch):
    monkeypatch.setenv("LEPTON_NLP_API_KEYS", f"{KEY},{OTHER}")
    assert load_serve_settings(None, {"host": "0.0.0.0"}).api_keys == [KEY, OTHER]
    monkeypatch.delenv("LEPTON_NLP_API_KEYS")
    keys = tmp_path / "keys"
    keys.write_text(f"# the chat system\n{OTHER} client\n\n{KEY}\n")
    settings = load_serve_settings(None, {"host": "0.0.0.0", "api_key_file": str(keys)})
    assert settings.api_keys == [f"{OTHER} client", KEY] and not settings.open_to_anyone


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_real_server_on_all_interfaces_lets_only_key_holders_in(tmp_path):
    """uvicorn in its own process, bound to 0.0.0.0 with debug logs and the access log on:
    requests without the key get 401, with it 200, and the key appears in no output."""
    port = _free_port()
    config = tmp_path / "serve.yaml"
    config.write_text(
        f"host: 0.0.0.0\nport: {port}\nroutes: [{TEST_ROUTES}]\nlog_level: debug\n"
        "graceful_timeout_s: 1\n"
    )
    script = (
        "import logging, sys; logging.basicConfig(level=logging.DEBUG);"
        "from lepton_nlp.serve import load_serve_settings, run_server;"
        "run_server(load_serve_settings(sys.argv[1]))"
    )
    env = {**os.environ, "LEPTON_NLP_API_KEYS": KEY, "PYTHONPATH": str(ROOT)}
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-c", script, str(config)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 90
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, log.read_text()
            assert time.time() < deadline, "the server did not start"
            time.sleep(0.3)
        assert httpx.get(f"{url}/hello").status_code == 401
        assert httpx.get(f"{url}/hello", headers={"X-API-Key": WRONG}).status_code == 401
        assert httpx.get(f"{url}/hello", headers={"X-API-Key": KEY}).status_code == 200
        bearer = {"Authorization": f"Bearer {KEY}"}
        assert httpx.post(f"{url}/echo", json={"text": "hi"}, headers=bearer).json() == {
            "text": "hi"
        }
        assert httpx.get(f"{url}/metrics", headers=bearer).status_code == 200
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    output = log.read_text(errors="replace")
    assert '"GET /hello HTTP/1.1" 401' in output  # the access log is on, and says who got in
    assert '"GET /hello HTTP/1.1" 200' in output
    assert KEY not in output and WRONG not in output


# --- limits ---------------------------------------------------------------------------------------


def _asgi(app, method: str, path: str, headers: list, chunks, limit_chunks: int = 100_000):
    """Send a request chunk by chunk straight to the ASGI app; (status, chunks it read)."""
    read = 0
    sent = []

    async def receive() -> dict:
        nonlocal read
        if read >= limit_chunks:
            return {"type": "http.disconnect"}
        read += 1
        more = read < limit_chunks
        return {"type": "http.request", "body": next(chunks), "more_body": more}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "scheme": "http",
        "server": ("127.0.0.1", 80),
        "client": ("127.0.0.1", 5000),
        "headers": headers,
    }

    async def run() -> None:
        async with app.router.lifespan_context(app):
            await app(scope, receive, send)

    asyncio.run(run())
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, read


def test_an_endless_body_is_refused_once_it_passes_the_limit():
    app = create_app(_models(), ServeSettings(max_body_bytes=10_000, routes=[TEST_ROUTES]))

    def endless():
        yield b'{"inputs": ["'
        while True:
            yield b"a" * 1000

    # Chunked (no Content-Length): the middleware stops reading just past the limit.
    headers = [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")]
    status, read = _asgi(app, "POST", "/v1/classify", headers, endless())
    assert status == 413 and read <= 12
    status, read = _asgi(app, "DELETE", "/items", headers, endless())
    assert status == 413 and read <= 12
    # A Content-Length over the limit: refused before a byte is read.
    big = [(b"content-type", b"application/json"), (b"content-length", b"999999999")]
    status, read = _asgi(app, "POST", "/v1/classify", big, endless())
    assert status == 413 and read == 0


def test_a_body_on_a_get_is_refused_unread():
    app = create_app(_models(), ServeSettings(routes=[TEST_ROUTES]))
    headers = [(b"content-type", b"application/json"), (b"content-length", b"5000000")]
    status, read = _asgi(app, "GET", "/hello", headers, iter([b"x" * 100] * 10))
    assert status == 413 and read == 0
    with TestClient(app) as client:
        assert client.get("/hello").json() == {"hello": "world"}


def test_mounted_routes_get_the_servers_limits():
    settings = ServeSettings(max_text_chars=50, max_items=3, routes=[TEST_ROUTES])
    with TestClient(create_app({}, settings)) as client:
        assert client.post("/echo", json={"text": "ok"}).status_code == 200
        long = client.post("/echo", json={"text": "x" * 51})
        assert long.status_code == 413 and "max_text_chars" in long.json()["detail"]
        many = client.post("/count", json={"texts": ["a"] * 4})
        assert many.status_code == 413 and "max_items" in many.json()["detail"]
        assert client.post("/count", json={"texts": ["a"] * 3}).json() == {"count": 3}


def test_deeply_nested_or_odd_json_gets_a_4xx_not_a_crash():
    with TestClient(create_app(_models(), ServeSettings(max_body_bytes=2**20))) as client:
        nested = "[" * 200_000 + "]" * 200_000
        for body in (nested, '{"inputs": [1e999999]}', '{"inputs": "\\ud800"}', "nul\x00"):
            answer = client.post(
                "/v1/classify", content=body, headers={"content-type": "application/json"}
            )
            assert 400 <= answer.status_code < 500, (body[:20], answer.status_code)


def test_input_limits_name_the_limit():
    limits = InputLimits(max_text_chars=5, max_items=2, max_upload_bytes=10, max_audio_seconds=1)
    assert limits.check_text("12345") == "12345"
    cases = [
        (lambda: limits.check_text("123456", "message"), "max_text_chars", "message is 6"),
        (lambda: limits.check_items(3), "max_items", "has 3 inputs"),
        (lambda: limits.check_upload(11), "max_upload_bytes", "is 11 bytes"),
        (lambda: limits.check_audio_seconds(1.5), "max_audio_seconds", "lasts 1.5 s"),
    ]
    for check, name, words in cases:
        with pytest.raises(LimitError, match=words) as error:
            check()
        assert error.value.limit == name and name in str(error.value)
    with pytest.raises(ConfigError, match="max_items must be a positive number"):
        InputLimits(max_items=0)
    settings = ServeSettings(max_text_chars=7, max_upload_bytes=99, max_audio_seconds=30)
    assert settings.limits == InputLimits(7, 256, 99, 30.0)


# --- paths named in requests ---------------------------------------------------------------------


def test_a_file_named_in_a_request_stays_in_its_folder(tmp_path, monkeypatch):
    files = tmp_path / "files"
    files.mkdir()
    (files / "ok.txt").write_text("fine")
    (tmp_path / "secret.txt").write_text("do not show")
    (files / "link.txt").symlink_to(tmp_path / "secret.txt")
    monkeypatch.setenv(FILES_ENV, str(files))
    with TestClient(create_app({}, ServeSettings(routes=[TEST_ROUTES]))) as client:
        assert client.post("/files/read", json={"name": "ok.txt"}).json() == {"text": "fine"}
        for name in (
            "../secret.txt",
            "sub/../../secret.txt",
            str(tmp_path / "secret.txt"),
            "link.txt",
            "ok.txt\x00.png",
            "",
        ):
            answer = client.post("/files/read", json={"name": name})
            assert answer.status_code == 400, (name, answer.text)
            assert "do not show" not in answer.text
