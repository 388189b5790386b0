"""The support bot's HTTP API (Rasa REST shapes, parse, audio, handoff) on stand-ins."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from apps.support import api
from apps.support.dialogue import SupportBot
from lepton_nlp.errors import ConfigError
from lepton_nlp.serve.app import create_app, load_router
from lepton_nlp.serve.settings import ServeSettings
from tests.unit.support_standins import StandInAnswers, StandInNLU


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 10
        return self.now


@pytest.fixture()
def bot() -> SupportBot:
    return SupportBot(StandInNLU(), StandInAnswers(), clock=Clock())


def _transcriber(audio: bytes) -> str:
    from lepton_nlp.speech import AudioTooLong, SpeechError

    if audio.startswith(b"BAD"):
        raise SpeechError("not an audio file")
    if audio.startswith(b"LONG"):
        raise AudioTooLong("the audio is 120:00 min long, over the limit of 2:00 min", 7200, 120)
    return "" if audio.startswith(b"SILENCE") else "how do I activate my card"


@pytest.fixture()
def client(bot) -> TestClient:
    app = FastAPI()
    app.include_router(api.router)
    app.dependency_overrides[api.get_bot] = lambda: bot
    app.dependency_overrides[api.get_transcriber] = lambda: _transcriber
    return TestClient(app)


def test_webhook_rasa_shape(client):
    answer = client.post("/webhooks/rest/webhook", json={"sender": "u1", "message": "activate"})
    assert answer.status_code == 200
    [message] = answer.json()
    assert message["recipient_id"] == "u1" and message["text"].startswith("Answer to")
    assert message["custom"]["answer"]["source"] == "policies/cards.md#x"
    assert "buttons" not in message
    [unsure] = client.post(
        "/webhooks/rest/webhook", json={"sender": "u2", "message": "topup broke"}
    ).json()
    assert unsure["buttons"][0] == {"title": "Top up failed", "payload": "/top_up_failed"}


def test_webhook_bad_requests(client):
    assert client.post("/webhooks/rest/webhook", json={"sender": "u1"}).status_code == 422
    assert client.post("/webhooks/rest/webhook", json={"message": "hi"}).status_code == 422
    empty = client.post("/webhooks/rest/webhook", json={"sender": "u1", "message": "  "})
    assert empty.status_code == 422 and "empty" in empty.json()["detail"]
    long = client.post(
        "/webhooks/rest/webhook",
        json={"sender": "u1", "message": "a" * (api.MAX_MESSAGE_CHARS + 1)},
    )
    assert long.status_code == 413 and "limit" in long.json()["detail"]


def _rasa_error(response, status: int) -> str:
    body = response.json()
    assert response.status_code == status, body
    assert body["status"] == "failure" and body["code"] == status
    assert isinstance(body["message"], str) and body["detail"] == body["message"]
    return body["message"]


def test_malformed_requests_get_one_plain_sentence_in_rasa_shape(client, bot):
    post = client.post
    said = _rasa_error(post("/webhooks/rest/webhook", json={"sender": "u1"}), 422)
    assert said.startswith("Missing field message.") and '{"sender":' in said
    said = _rasa_error(post("/webhooks/rest/webhook", json={}), 422)
    assert "Missing fields sender, message" in said
    said = _rasa_error(post("/webhooks/rest/webhook"), 422)
    assert said.startswith("The request has no body")
    said = _rasa_error(
        post(
            "/webhooks/rest/webhook",
            content=b"sender=u1",
            headers={"content-type": "application/json"},
        ),
        422,
    )
    assert said.startswith("The body is not valid JSON")
    said = _rasa_error(post("/webhooks/rest/webhook", json={"sender": "u1", "message": 42}), 422)
    assert said.startswith("message: Input should be a valid string (got 42)")
    body = post("/webhooks/rest/webhook", json={"sender": "u1"}).json()
    assert body["reason"] == "BadRequest" and body["details"]["errors"][0]["loc"] == [
        "body",
        "message",
    ]
    said = _rasa_error(post("/model/parse", json={"txt": "hi"}), 422)
    assert said == 'Missing field text. Send JSON {"text": "<text>"}.'
    said = _rasa_error(post("/webhooks/rest/audio", data={"sender": "u1"}), 422)
    assert "Missing field file" in said and "multipart" in said
    # Errors raised by the routes themselves have the same shape.
    assert "empty" in _rasa_error(
        post("/webhooks/rest/webhook", json={"sender": "u1", "message": " "}), 422
    )
    assert _rasa_error(client.get("/handoff/99"), 404).startswith("No handoff 99")
    assert bot.store.states == {} and bot.store.events == []  # nothing half-accepted


def test_openapi_documents_the_error_shape(client):
    spec = client.get("/openapi.json").json()
    webhook = spec["paths"]["/webhooks/rest/webhook"]["post"]["responses"]
    assert webhook["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/SupportError")
    assert {"status", "reason", "message", "code"} <= set(
        spec["components"]["schemas"]["SupportError"]["properties"]
    )


def test_duplicate_by_message_id(client, bot):
    body = {"sender": "u1", "message": "exchange rate", "message_id": "abc"}
    first = client.post("/webhooks/rest/webhook", json=body).json()
    again = client.post("/webhooks/rest/webhook", json=body).json()
    assert first == again and len(bot.answers.asked) == 1


def test_parse_shape(client):
    result = client.post("/model/parse", json={"text": "refund £20 from Amazon"}).json()
    assert result["intent"] == {"name": "request_refund", "confidence": 0.9}
    assert result["intent_ranking"][0]["name"] == "request_refund"
    entities = {e["entity"]: e for e in result["entities"]}
    assert entities["AMOUNT"]["value"] == 20.0 and entities["AMOUNT"]["start"] == 7
    assert entities["ORG"]["value"] == "Amazon"
    assert result["out_of_scope"] is False and result["sentiment"]["label"] == "neutral"
    oos = client.post("/model/parse", json={"text": "weather?"}).json()
    assert oos["out_of_scope"] is True and oos["intent"]["name"] is None
    assert client.post("/model/parse", json={"text": ""}).status_code == 422
    assert client.post("/model/parse", json={}).status_code == 422


def test_audio(client):
    ok = client.post(
        "/webhooks/rest/audio",
        data={"sender": "u1"},
        files={"file": ("v.wav", b"RIFF....", "audio/wav")},
    )
    assert ok.status_code == 200
    assert ok.json()[0]["custom"]["transcript"] == "how do I activate my card"
    not_audio = client.post(
        "/webhooks/rest/audio", data={"sender": "u1"}, files={"file": ("a.txt", b"x", "text/plain")}
    )
    assert not_audio.status_code == 415
    bad = client.post(
        "/webhooks/rest/audio",
        data={"sender": "u1"},
        files={"file": ("a.wav", b"BAD", "audio/wav")},
    )
    assert bad.status_code == 422 and "not an audio file" in bad.json()["detail"]
    silent = client.post(
        "/webhooks/rest/audio",
        data={"sender": "u1"},
        files={"file": ("a.wav", b"SILENCE", "audio/wav")},
    )
    assert silent.status_code == 422 and "No speech" in silent.json()["detail"]
    big = client.post(
        "/webhooks/rest/audio",
        data={"sender": "u1"},
        files={"file": ("a.wav", b"0" * (api.MAX_AUDIO_BYTES + 1), "audio/wav")},
    )
    assert big.status_code == 413
    assert client.post("/webhooks/rest/audio", data={"sender": "u1"}).status_code == 422
    long = client.post(
        "/webhooks/rest/audio",
        data={"sender": "u1"},
        files={"file": ("a.flac", b"LONG", "audio/flac")},
    )
    assert long.status_code == 413 and "too long" in long.json()["message"]
    assert "2:00 min" in long.json()["message"]


def test_handoff_endpoints(client):
    [message] = client.post(
        "/webhooks/rest/webhook", json={"sender": "u9", "message": "I want to talk to a human"}
    ).json()
    handoff_id = message["custom"]["handoff"]["id"]
    [listed] = client.get("/handoff").json()
    assert listed["id"] == handoff_id and listed["summary"] is None
    assert "Customer: I want to talk to a human" in listed["transcript"]
    taken = client.post(f"/handoff/{handoff_id}/take", json={"agent": "sam"}).json()
    assert taken["status"] == "taken" and taken["agent"] == "sam"
    assert client.get("/handoff").json() == []
    assert len(client.get("/handoff", params={"status": "all"}).json()) == 1
    assert (
        client.post(f"/handoff/{handoff_id}/reply", json={"text": "Hi, Sam here"}).status_code
        == 200
    )
    [agent, _] = client.post(
        "/webhooks/rest/webhook", json={"sender": "u9", "message": "hello?"}
    ).json()
    assert agent["text"] == "Agent: Hi, Sam here"
    assert client.post(f"/handoff/{handoff_id}/reply", json={"text": ""}).status_code == 422
    assert client.post("/handoff/99/take", json={"agent": "sam"}).status_code == 404
    assert client.get("/handoff/99").status_code == 404
    assert client.post(f"/handoff/{handoff_id}/close").json()["status"] == "closed"
    assert client.get("/handoff", params={"status": "bogus"}).status_code == 422
    fb = client.post("/webhooks/rest/feedback", json={"sender": "u9", "helpful": True})
    assert fb.status_code == 204


def test_openapi_lists_routes(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/webhooks/rest/webhook",
        "/webhooks/rest/audio",
        "/model/parse",
        "/handoff",
        "/handoff/{handoff_id}/take",
        "/handoff/{handoff_id}/reply",
    ):
        assert path in paths


def test_core_server_mounts_routes_by_name(bot):
    api.set_bot(bot)
    try:
        app = create_app({}, ServeSettings(routes=["apps.support.api:router"]))
        with TestClient(app) as client:
            reply = client.post("/webhooks/rest/webhook", json={"sender": "u", "message": "rate"})
            assert reply.status_code == 200
            assert "/model/parse" in client.get("/openapi.json").json()["paths"]
            assert client.get("/readyz").status_code == 200
            upload = client.post(
                "/webhooks/rest/audio",
                data={"sender": "u1"},
                files={"file": ("a.txt", b"x", "text/plain")},
            )
            assert upload.status_code == 415  # the route's answer, not the JSON-only guard
    finally:
        api.set_bot(None)


def test_route_names_checked():
    with pytest.raises(ConfigError, match="MODULE:ATTRIBUTE"):
        ServeSettings(routes=["apps.support.api"])
    with pytest.raises(ConfigError, match="cannot import"):
        load_router("apps.nothing_here:router")
    with pytest.raises(ConfigError, match="not an APIRouter"):
        load_router("apps.support.api:MAX_MESSAGE_CHARS")
    with pytest.raises(ValueError, match="at least one model or route"):
        create_app({}, ServeSettings())


def test_core_caps_chunked_uploads_to_mounted_routes(bot):
    api.set_bot(bot)
    try:
        app = create_app(
            {}, ServeSettings(routes=["apps.support.api:router"], max_upload_bytes=2000)
        )
        head = (
            b'--b\r\nContent-Disposition: form-data; name="sender"\r\n\r\nu\r\n'
            b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
            b"Content-Type: audio/wav\r\n\r\n"
        )

        def chunks(size):
            yield head
            for _ in range(size // 500):
                yield b"0" * 500
            yield b"\r\n--b--\r\n"

        headers = {"content-type": "multipart/form-data; boundary=b"}
        with TestClient(app) as client:
            client.app.dependency_overrides[api.get_transcriber] = lambda: _transcriber
            big = client.post("/webhooks/rest/audio", content=chunks(5000), headers=headers)
            assert big.status_code == 413 and "max_upload_bytes" in big.json()["detail"]
            small = client.post("/webhooks/rest/audio", content=chunks(500), headers=headers)
            assert small.status_code == 200
    finally:
        api.set_bot(None)
