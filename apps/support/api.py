"""The support bot over HTTP: a FastAPI router with Rasa's REST channel, parse and agent endpoints.

Mount it on the core server by name (the core never imports apps)::

    lepton-nlp serve --routes apps.support.api:router
    lepton-support serve

``POST /webhooks/rest/webhook`` and ``POST /model/parse`` answer as Rasa does, so Rasa
clients (web widgets, test scripts) work unchanged; ``POST /webhooks/rest/audio`` takes a
voice message; ``/handoff`` lets agents see and answer conversations passed to a person.
A message over :data:`MAX_MESSAGE_CHARS` characters is refused with 413 (not cut: a cut
message could change its meaning, and the customer can resend it shorter); so is a voice
message over :data:`MAX_AUDIO_SECONDS` (found from its stated duration, or by decoding no
further than the limit). Every error of these routes, a malformed request included, answers
in Rasa's error shape with a plain sentence (:class:`SupportError`) instead of FastAPI's
list of validation errors.

The bot is built on first use (:func:`get_bot`, the shipped models, the suite's database);
tests and embedding apps replace it with ``app.dependency_overrides[get_bot]`` or
:func:`set_bot`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from apps.support.dialogue import Handoff, SupportBot, build_support_bot
from lepton_nlp.serve.app import route_scope

__all__ = [
    "MAX_AUDIO_BYTES",
    "MAX_AUDIO_SECONDS",
    "MAX_MESSAGE_CHARS",
    "SupportError",
    "get_bot",
    "get_similar_cases",
    "get_transcriber",
    "parse_result",
    "router",
    "set_bot",
]

#: Longest customer message, in characters (413 above it).
MAX_MESSAGE_CHARS = 2000
#: Largest voice message, in bytes (413 above it).
MAX_AUDIO_BYTES = 10 * 2**20
#: Longest voice message, in seconds (413 above it): a voice message to a support bot is a
#: question, not a recording to transcribe at length.
MAX_AUDIO_SECONDS = 120.0

#: What each route's request looks like, for the plain sentence of a malformed request.
_EXPECTED = {
    "/webhooks/rest/webhook": 'JSON {"sender": "<conversation id>", "message": "<text>"}',
    "/model/parse": 'JSON {"text": "<text>"}',
    "/webhooks/rest/audio": "a multipart form with the fields sender and file (the audio)",
    "/webhooks/rest/feedback": 'JSON {"sender": "<conversation id>", "helpful": true}',
}
_REASONS = {
    400: "BadRequest",
    404: "NotFound",
    413: "ContentTooLarge",
    415: "UnsupportedMediaType",
    422: "BadRequest",
    503: "ServiceUnavailable",
}


class SupportError(BaseModel):
    """An error of the support routes, in Rasa's error shape (``status``, ``reason``,
    ``message``, ``details``, ``help``, ``code``) plus the core server's ``detail``."""

    status: str = Field("failure", description="Always failure.")
    reason: str = Field(description="BadRequest, NotFound, ContentTooLarge, ...")
    message: str = Field(description="What was wrong and how to send it right, in plain words.")
    details: dict[str, Any] = Field(default_factory=dict)
    help: str | None = None
    code: int = Field(description="The HTTP status.")
    detail: str = Field(description="The same sentence as message (the core server's key).")


def _error_body(code: int, message: str, details: dict[str, Any] | None = None) -> dict:
    return SupportError(
        reason=_REASONS.get(code, "Error"),
        message=message,
        details=details or {},
        code=code,
        detail=message,
    ).model_dump()


def _field_name(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "form")]
    return ".".join(parts) or "The body"


def _validation_message(errors: Sequence[dict[str, Any]], path: str) -> str:
    """One plain sentence for FastAPI's validation errors of a request to ``path``."""
    missing = [_field_name(e["loc"]) for e in errors if e.get("type") == "missing"]
    if any(e.get("type") == "json_invalid" for e in errors):
        said = ["The body is not valid JSON"]
    elif missing == ["The body"]:
        said = ["The request has no body"]
    else:
        said = []
        if missing:
            said.append(f"Missing field{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
        said += [
            f"{_field_name(e['loc'])}: {e.get('msg', 'invalid')}"
            + (f" (got {json.dumps(e['input'])[:40]})" if _shown(e) else "")
            for e in errors
            if e.get("type") != "missing"
        ]
    expected = _EXPECTED.get(path)
    return "; ".join(said) + (f". Send {expected}." if expected else ".")


def _shown(error: dict[str, Any]) -> bool:
    value = error.get("input")
    return isinstance(value, int | float | bool | str) and error.get("type") != "missing"


class _RasaErrors(APIRoute):
    """A route whose errors (HTTP errors and malformed requests) answer in Rasa's shape."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as error:
                errors = [{k: e.get(k) for k in ("type", "loc", "msg")} for e in error.errors()]
                message = _validation_message(error.errors(), self.path)
                return JSONResponse(_error_body(422, message, {"errors": errors}), 422)
            except HTTPException as error:
                message = error.detail if isinstance(error.detail, str) else str(error.detail)
                return JSONResponse(
                    _error_body(error.status_code, message), error.status_code, error.headers
                )

        return route


router = APIRouter(
    tags=["support"],
    route_class=_RasaErrors,
    # Every route answers a malformed request in the Rasa shape, so document that shape
    # (FastAPI would otherwise list its own HTTPValidationError for 422).
    responses={422: {"model": SupportError, "description": "A malformed request."}},
)

#: The handoff desk shows every customer's conversation: with API keys, only keys with the
#: ``agent`` scope (or no scope) may call it; a chat system's ``client`` key may not.
AGENT = route_scope("agent")

_lock = threading.Lock()
_bot: SupportBot | None = None


def set_bot(bot: SupportBot | None) -> None:
    """Use ``bot`` for every request (None: build the real one on the next request)."""
    global _bot
    _bot = bot


def get_bot() -> SupportBot:
    """The bot, built once: shipped intent model, FAQ answers, the suite's database."""
    global _bot
    with _lock:
        if _bot is None:
            from apps.support.store import SupportStore

            try:
                _bot = build_support_bot(store=SupportStore(), batching=True)
            except RuntimeError as error:
                raise HTTPException(503, str(error)) from None
        return _bot


def get_similar_cases(bot: Annotated[SupportBot, Depends(get_bot)]) -> Any:
    """Resolved cases for the handoff list (:func:`apps.support.similar.cases_for`), embedded
    with the FAQ's embedder; None when the bot's answers have none."""
    from apps.support.similar import cases_for

    return cases_for(bot)


def get_transcriber() -> Callable[[bytes], str]:
    """``audio bytes -> text`` with the core's Whisper backend."""
    from lepton_nlp.speech import transcribe

    def run(audio: bytes) -> str:
        return transcribe(audio, max_seconds=MAX_AUDIO_SECONDS).text

    return run


# --- shapes ------------------------------------------------------------------------------------


class RestMessage(BaseModel):
    sender: str = Field(min_length=1, max_length=200, description="The conversation's id.")
    message: str = Field(description="What the customer wrote (a button's payload too).")
    message_id: str | None = Field(
        None, max_length=200, description="Client id: a resend with it is answered once."
    )


class Button(BaseModel):
    title: str
    payload: str


class RestReply(BaseModel):
    recipient_id: str
    text: str
    buttons: list[Button] | None = None
    custom: dict[str, Any] | None = None


class ParseRequest(BaseModel):
    text: str
    message_id: str | None = Field(None, max_length=200)


class ParseIntent(BaseModel):
    name: str | None
    confidence: float


class ParseEntity(BaseModel):
    entity: str
    value: Any
    start: int
    end: int
    text: str
    extractor: str
    currency: str | None = None


class ParseResponse(BaseModel):
    text: str
    intent: ParseIntent
    intent_ranking: list[ParseIntent]
    entities: list[ParseEntity]
    sentiment: dict[str, Any] | None
    out_of_scope: bool
    ambiguous: bool
    message_id: str | None = None


class SimilarCaseOut(BaseModel):
    handoff_id: int
    sender: str
    score: float = Field(description="Cosine similarity of the customers' turns.")
    reason: str
    customer: str
    resolution: str = Field(description="What the agent answered.")


class HandoffOut(BaseModel):
    id: int
    sender: str
    reason: str
    summary: str | None
    note: str
    transcript: str
    status: str
    agent: str | None
    similar: list[SimilarCaseOut] = Field(
        default_factory=list,
        description="The 3 closed, agent-answered handoffs most like this one.",
    )


class TakeRequest(BaseModel):
    agent: str = Field(min_length=1, max_length=200)


class AgentReply(BaseModel):
    text: str
    agent: str = Field("agent", min_length=1, max_length=200)


class Feedback(BaseModel):
    sender: str = Field(min_length=1, max_length=200)
    helpful: bool
    comment: str = Field("", max_length=2000)


_ERRORS: dict[int | str, dict[str, Any]] = {
    413: {
        "model": SupportError,
        "description": f"Message over {MAX_MESSAGE_CHARS} characters, audio over "
        f"{MAX_AUDIO_BYTES} bytes or over {MAX_AUDIO_SECONDS:g} seconds.",
    },
    415: {"model": SupportError, "description": "An upload whose content type is not audio."},
    422: {
        "model": SupportError,
        "description": "Missing or malformed field, empty message, or audio that cannot be "
        "read (corrupt, or not audio under an audio name) or holds no speech.",
    },
    503: {"model": SupportError, "description": "The bot cannot be built (a model is missing)."},
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": SupportError, "description": "No such handoff."}
}


def _check_text(text: str, field: str = "message") -> str:
    if not text.strip():
        raise HTTPException(422, f"{field} is empty or only whitespace; send some text.")
    if len(text) > MAX_MESSAGE_CHARS:
        raise HTTPException(
            413,
            f"{field} is {len(text)} characters long; the limit is {MAX_MESSAGE_CHARS}: "
            "send a shorter message.",
        )
    return text


def parse_result(understanding: Any, message_id: str | None = None) -> dict[str, Any]:
    """An :class:`~apps.support.understanding.Understanding` in Rasa's ``/model/parse`` shape."""
    data = understanding.to_dict()
    return {
        "text": understanding.text,
        "intent": {"name": data["intent"], "confidence": data["confidence"]},
        "intent_ranking": [
            {"name": r["intent"], "confidence": r["confidence"]} for r in data["ranking"]
        ],
        "entities": [
            {
                "entity": e.label,
                "value": e.value if e.value is not None else e.text,
                "start": e.start,
                "end": e.end,
                "text": e.text,
                "extractor": e.source,
                "currency": getattr(e, "currency", None),
            }
            for e in understanding.entities
        ],
        "sentiment": data["sentiment"],
        "out_of_scope": data["out_of_scope"],
        "ambiguous": data["ambiguous"],
        "message_id": message_id,
    }


def _handoff_out(handoff: Handoff) -> dict[str, Any]:
    return {k: v for k, v in handoff.to_dict().items() if k != "created"}


Bot = Annotated[SupportBot, Depends(get_bot)]


async def _turn(bot: SupportBot, sender: str, text: str, message_id: str | None) -> list[dict]:
    try:
        messages = await run_in_threadpool(bot.reply, sender, text, message_id)
    except ValueError as error:
        raise HTTPException(422, str(error)) from None
    return [m.to_rasa(sender) for m in messages]


# --- routes ------------------------------------------------------------------------------------


@router.post(
    "/webhooks/rest/webhook",
    response_model=list[RestReply],
    response_model_exclude_none=True,
    responses=_ERRORS,
    summary="Send a customer message (Rasa REST channel)",
)
async def webhook(body: RestMessage, bot: Bot) -> list[dict]:
    """The bot's answers to one message: text, buttons to confirm an intent, and ``custom``
    with the understanding, the answer's source and score, or the handoff."""
    _check_text(body.message)
    return await _turn(bot, body.sender, body.message, body.message_id)


@router.post(
    "/model/parse",
    response_model=ParseResponse,
    responses=_ERRORS,
    summary="Understand a message (Rasa parse shape)",
)
async def parse(body: ParseRequest, bot: Bot) -> dict:
    """Intent, ranking, entities, sentiment and scope of a text, without a conversation."""
    _check_text(body.text, "text")
    try:
        understanding = await run_in_threadpool(bot.understand, body.text)
    except ValueError as error:
        raise HTTPException(422, str(error)) from None
    return parse_result(understanding, body.message_id)


@router.post(
    "/webhooks/rest/audio",
    response_model=list[RestReply],
    response_model_exclude_none=True,
    responses=_ERRORS,
    summary="Send a voice message",
)
async def audio(
    bot: Bot,
    transcriber: Annotated[Callable[[bytes], str], Depends(get_transcriber)],
    sender: Annotated[str, Form(min_length=1, max_length=200)],
    file: Annotated[UploadFile, File(description="wav, mp3, ogg, webm, m4a, flac ...")],
    message_id: Annotated[str | None, Form(max_length=200)] = None,
) -> list[dict]:
    """Transcribe the audio (Whisper), then answer it as a text message; the first reply's
    ``custom.transcript`` holds what was heard."""
    kind = (file.content_type or "application/octet-stream").split(";")[0].strip()
    if not (kind.startswith("audio/") or kind in ("application/octet-stream", "video/webm")):
        raise HTTPException(415, f"The file is {kind}, not audio; send wav, mp3, ogg or webm.")
    data = await file.read(MAX_AUDIO_BYTES + 1)
    if len(data) > MAX_AUDIO_BYTES:
        raise HTTPException(413, f"The audio is over {MAX_AUDIO_BYTES} bytes; send a shorter clip.")
    if not data:
        raise HTTPException(422, "The audio file is empty.")
    from lepton_nlp.speech import AudioTooLong, SpeechError

    try:
        text = await run_in_threadpool(transcriber, data)
    except AudioTooLong as error:
        raise HTTPException(413, f"The voice message is too long: {error}") from None
    except SpeechError as error:
        raise HTTPException(422, f"The audio could not be transcribed: {error}") from None
    if not text.strip():
        raise HTTPException(422, "No speech was heard in the audio; record again or type.")
    replies = await _turn(bot, sender, _check_text(text), message_id)
    if replies:
        replies[0]["custom"] = {**(replies[0].get("custom") or {}), "transcript": text}
    return replies


@router.post(
    "/webhooks/rest/feedback",
    status_code=204,
    responses=_ERRORS,
    summary="Was the last answer helpful?",
)
async def feedback(body: Feedback, bot: Bot) -> None:
    await run_in_threadpool(bot.feedback, body.sender, body.helpful, body.comment)


@router.get(
    "/handoff",
    response_model=list[HandoffOut],
    summary="Handoffs for agents",
    openapi_extra=AGENT,
)
async def list_handoffs(
    bot: Bot,
    cases: Annotated[Any, Depends(get_similar_cases)],
    status: Annotated[str | None, Query(pattern="^(open|taken|closed|all)$")] = "open",
) -> list[dict]:
    """Conversations passed to a person (open by default), with summary, transcript and the
    3 most similar resolved (closed, agent-answered) cases."""
    found = await run_in_threadpool(bot.store.handoffs, None if status == "all" else status)
    out = [_handoff_out(h) for h in found]
    if cases is not None and found:
        await run_in_threadpool(cases.refresh, bot.store)
        similar = await run_in_threadpool(cases.similar_many, found, 3)
        for item, near in zip(out, similar, strict=True):
            item["similar"] = [c.to_dict() for c in near]
    return out


def _get(bot: SupportBot, handoff_id: int) -> Handoff:
    # Ids are SQL integers: one beyond 64 bits names no handoff (and would not fit a query).
    handoff = bot.store.get_handoff(handoff_id) if 0 < handoff_id < 2**63 else None
    if handoff is None:
        raise HTTPException(404, f"No handoff {handoff_id}; GET /handoff lists the open ones.")
    return handoff


@router.get(
    "/handoff/{handoff_id}", response_model=HandoffOut, responses=_NOT_FOUND, openapi_extra=AGENT
)
async def get_handoff(
    handoff_id: int, bot: Bot, cases: Annotated[Any, Depends(get_similar_cases)]
) -> dict:
    handoff = _get(bot, handoff_id)
    out = _handoff_out(handoff)
    if cases is not None:
        await run_in_threadpool(cases.refresh, bot.store)
        near = await run_in_threadpool(cases.similar, handoff, 3)
        out["similar"] = [c.to_dict() for c in near]
    return out


@router.post(
    "/handoff/{handoff_id}/take",
    response_model=HandoffOut,
    responses=_NOT_FOUND,
    openapi_extra=AGENT,
)
async def take_handoff(handoff_id: int, body: TakeRequest, bot: Bot) -> dict:
    """An agent takes the conversation."""
    _get(bot, handoff_id)
    return _handoff_out(bot.take_handoff(handoff_id, body.agent))


@router.post(
    "/handoff/{handoff_id}/reply",
    response_model=HandoffOut,
    responses=_NOT_FOUND,
    openapi_extra=AGENT,
)
async def reply_handoff(handoff_id: int, body: AgentReply, bot: Bot) -> dict:
    """An agent's message to the customer, delivered with the bot's next reply to them."""
    _get(bot, handoff_id)
    _check_text(body.text, "text")
    return _handoff_out(bot.agent_reply(handoff_id, body.text, body.agent))


@router.post(
    "/handoff/{handoff_id}/close",
    response_model=HandoffOut,
    responses=_NOT_FOUND,
    openapi_extra=AGENT,
)
async def close_handoff(handoff_id: int, bot: Bot) -> dict:
    """Give the conversation back to the bot."""
    _get(bot, handoff_id)
    return _handoff_out(bot.close_handoff(handoff_id))
