"""The HTTP API: ``create_app(models, settings)`` builds a FastAPI app over loaded predictors.

A model is any object with ``.predict(list_of_inputs) -> list[dict]`` and ``.info.task``
(a :class:`~lepton_nlp.inference.Predictor`, a view of a multi-adapter predictor, a
:class:`~lepton_nlp.serve.embedding.EmbeddingPredictor`...). Each loaded task gets its
endpoint (``POST /v1/classify`` for classification models, ``/v1/ner`` for NER...); a
request names its model. Requests to one model are micro-batched
(:mod:`lepton_nlp.serve.batching`).
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response, Security
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from lepton_nlp import __version__
from lepton_nlp.errors import BatcherClosed, ConfigError, LimitError, QueueFull, UnsafePathError
from lepton_nlp.security import InputLimits
from lepton_nlp.serve import schemas as s
from lepton_nlp.serve.batching import MicroBatcher
from lepton_nlp.serve.metrics import CONTENT_TYPE_LATEST, ServeMetrics
from lepton_nlp.serve.settings import API_SCOPES, ServeSettings, parse_key_entry

__all__ = [
    "SCOPE_KEY",
    "TASK_ROUTES",
    "ServedModel",
    "create_app",
    "load_router",
    "request_limits",
    "route_scope",
]

log = logging.getLogger(__name__)


class _Info(Protocol):
    task: str


class ServedModel(Protocol):
    """What the server needs of a model."""

    info: _Info

    def predict(self, inputs: list[Any]) -> list[dict]: ...


@dataclass(frozen=True)
class TaskRoute:
    """One task's endpoint: its path, request/response models, and how inputs are checked."""

    path: str
    request: type[BaseModel]
    response: type[BaseModel]
    summary: str
    texts: Callable[[Any], list[tuple[str, str]]]
    """``input -> [(field name, text)]``: the texts of one input that limits apply to."""
    to_predictor: Callable[[Any], Any]


def _plain(text: str) -> list[tuple[str, str]]:
    return [("", text)]


def _identity(item: Any) -> Any:
    return item


def _dump(item: BaseModel) -> dict:
    return item.model_dump()


TASK_ROUTES: dict[str, TaskRoute] = {
    "classification": TaskRoute(
        "classify", s.ClassifyRequest, s.ClassifyResponse, "Classify texts", _plain, _identity
    ),
    "ner": TaskRoute("ner", s.NerRequest, s.NerResponse, "Find named entities", _plain, _identity),
    "relation": TaskRoute(
        "relations",
        s.RelationsRequest,
        s.RelationsResponse,
        "Classify the relation between two entity spans",
        lambda item: [(".text", item.text)],
        lambda item: {"text": item.text, "head": list(item.head), "tail": list(item.tail)},
    ),
    "qa": TaskRoute(
        "qa",
        s.QaRequest,
        s.QaResponse,
        "Answer questions from a context",
        lambda item: [(".question", item.question), (".context", item.context)],
        _dump,
    ),
    "summarization": TaskRoute(
        "summarize", s.SummarizeRequest, s.SummarizeResponse, "Summarize texts", _plain, _identity
    ),
    "translation": TaskRoute(
        "translate", s.TranslateRequest, s.TranslateResponse, "Translate texts", _plain, _identity
    ),
    "embedding": TaskRoute(
        "embed", s.EmbedRequest, s.EmbedResponse, "Sentence embeddings", _plain, _identity
    ),
}

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": s.ErrorResponse, "description": text}
    for code, text in {
        401: "Missing or wrong API key.",
        404: "Unknown model name (the answer lists the loaded ones).",
        413: "Body, text or item count over a limit (the answer names it).",
        422: "Body of the wrong shape, an empty text, or a model of another task.",
        503: "Queue full or shutting down; retry after the Retry-After seconds.",
    }.items()
}


def _json_safe(value: Any) -> Any:
    """``value`` with what JSON in UTF-8 cannot hold written as text: inf and nan, and
    unpaired surrogates (``"\\ud800"``) escaped."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


def _error(status: int, detail: str, headers: dict | None = None) -> HTTPException:
    return HTTPException(status_code=status, detail=detail, headers=headers)


def load_router(spec: str) -> APIRouter:
    """The FastAPI router named ``module:attribute`` (e.g. ``apps.support.api:router``).

    The core never imports the applications; they are named in the serve config or on the
    command line and imported here at run time.

    Raises:
        ConfigError: the name is malformed, the module or attribute does not exist, or it is
            not an ``APIRouter``.
    """
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ConfigError(
            f"Route {spec!r}: write it as MODULE:ATTRIBUTE, e.g. apps.support.api:router."
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ConfigError(
            f"Route {spec!r}: cannot import {module_name} ({error}); check the name and that "
            "the repository root is on PYTHONPATH."
        ) from None
    router = getattr(module, attribute, None)
    if not isinstance(router, APIRouter):
        found = "nothing" if router is None else type(router).__name__
        raise ConfigError(
            f"Route {spec!r}: {module_name}.{attribute} is {found}, not an APIRouter."
        )
    return router


def request_limits(request: Request) -> InputLimits:
    """The serving app's input limits (``ServeSettings.limits``), for a mounted route to check
    its own inputs with (``limits: Annotated[InputLimits, Depends(request_limits)]``); the
    defaults when the router runs in another app. A route may raise
    :class:`~lepton_nlp.errors.LimitError`: the server answers 413 with its message."""
    settings = getattr(request.app.state, "settings", None)
    return settings.limits if isinstance(settings, ServeSettings) else InputLimits()


#: Methods whose body an endpoint may read; the body of any other is refused unread.
_BODY_METHODS = ("POST", "PUT", "PATCH", "DELETE")


class _BodyLimit:
    """Before parsing: refuse non-JSON bodies (415), bodies over ``max_bytes`` (413), non-UTF-8
    (400). Multipart uploads (only when mounted routes may take them) are limited to
    ``max_upload_bytes`` and passed on unread. A GET (or other method) carrying a body is
    refused (413) without reading it."""

    def __init__(self, app: Any, max_bytes: int, max_upload_bytes: int | None = None):
        self.app = app
        self.max_bytes = max_bytes
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] not in _BODY_METHODS:
            headers = dict(scope["headers"])
            declared = headers.get(b"content-length", b"0")
            if b"transfer-encoding" in headers or (declared.isdigit() and int(declared) > 0):
                await self._reply(
                    scope, send, 413, f"A {scope['method']} request takes no body; send none."
                )
                return
            await self.app(scope, receive, send)
            return
        too_big = (
            f"The request body is larger than the limit of {self.max_bytes} bytes "
            "(max_body_bytes): send fewer or shorter texts per request."
        )
        headers = dict(scope["headers"])
        kind = headers.get(b"content-type", b"application/json").decode("latin-1")
        if self.max_upload_bytes and kind.startswith("multipart/form-data"):
            declared = headers.get(b"content-length")
            if (
                declared is not None
                and declared.isdigit()
                and int(declared) > self.max_upload_bytes
            ):
                await self._reply(
                    scope,
                    send,
                    413,
                    f"The upload is larger than the limit of {self.max_upload_bytes} bytes "
                    "(max_upload_bytes).",
                )
                return
            await self.app(scope, self._counted(receive), send)
            return
        if "json" not in kind:
            # FastAPI would not parse the body at all and answer a puzzling 422.
            await self._reply(
                scope,
                send,
                415,
                f"Send the body as JSON with Content-Type: application/json, not {kind}.",
            )
            return
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reply(scope, send, 413, too_big)
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                await self._reply(scope, send, 413, too_big)
                return
        try:
            bytes(body).decode("utf-8")
        except UnicodeDecodeError as exc:
            await self._reply(
                scope,
                send,
                400,
                f"The request body is not valid UTF-8 (bad byte at offset {exc.start}); "
                "send JSON encoded as UTF-8.",
            )
            return
        sent = False

        async def replay() -> dict:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _counted(self, receive: Callable) -> Callable:
        """``receive`` that stops an upload (chunked, or lying about its length) once it
        passes ``max_upload_bytes``: FastAPI passes an HTTPException raised while it reads
        the form on as the answer."""
        limit = self.max_upload_bytes
        received = 0

        async def counted() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(
                        413,
                        f"The upload is larger than the limit of {limit} bytes (max_upload_bytes).",
                    )
            return message

        return counted

    async def _reply(self, scope: dict, send: Callable, status: int, detail: str) -> None:
        response = JSONResponse({"detail": detail}, status_code=status)
        await response(scope, _drain_receive, send)


async def _drain_receive() -> dict:
    return {"type": "http.disconnect"}


class _MetricsMiddleware:
    """Count requests by route and status, and time them."""

    def __init__(self, app: Any, metrics: ServeMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def record_status(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, record_status)
        finally:
            self.metrics.in_flight.dec()
            route = scope.get("route")
            # Route templates, never raw paths: random 404 paths must not create label values.
            path = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(scope["method"], path, str(status)).inc()
            self.metrics.latency.labels(path).observe(time.perf_counter() - start)


# Module level: FastAPI resolves the (string) annotations below against module globals.
_BEARER = HTTPBearer(auto_error=False, description="Authorization: Bearer API_KEY")
_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, description="X-API-Key: API_KEY")


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()


#: ``openapi_extra`` key naming a route's scope (:data:`API_SCOPES`); none: ``client``.
SCOPE_KEY = "x-api-scope"


def route_scope(scope: str) -> dict[str, str]:
    """``openapi_extra`` for a route that only keys with ``scope`` (or every scope) may call;
    the spec shows it as ``x-api-scope``."""
    if scope not in API_SCOPES:
        raise ValueError(f"Unknown API scope {scope!r}; scopes: {', '.join(API_SCOPES)}.")
    return {SCOPE_KEY: scope}


def _auth_dependency(entries: list[str]) -> Callable[..., Awaitable[None]]:
    # Digests of equal length: compare_digest then takes the same time whatever the length
    # of the key sent, and the keys themselves are not kept in the closure.
    keys = [parse_key_entry(entry) for entry in entries]
    digests = [(_digest(key), scopes) for key, scopes in keys]

    async def require_api_key(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)],
        api_key: Annotated[str | None, Security(_KEY_HEADER)],
    ) -> None:
        given = api_key or (credentials.credentials if credentials else None)
        if given is not None:
            sent = _digest(given)
            # Every key compared (a list, not any() over a generator): no hint which matched.
            matched = [hmac.compare_digest(sent, digest) for digest, _ in digests]
            if any(matched):
                scopes = digests[matched.index(True)][1]
                route = request.scope.get("route")
                needed = (getattr(route, "openapi_extra", None) or {}).get(SCOPE_KEY, "client")
                if scopes is None or needed in scopes:
                    return
                raise _error(
                    403,
                    f"This API key may not call {getattr(route, 'path', 'this route')}: it "
                    f"is limited to {', '.join(scopes)}, and the route needs the {needed!r} "
                    "scope. Use a key with that scope.",
                )
        raise _error(
            401,
            "Missing or wrong API key: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'.",
            {"WWW-Authenticate": "Bearer"},
        )

    return require_api_key


def _check_inputs(route: TaskRoute, inputs: list[Any], settings: ServeSettings) -> None:
    limits = settings.limits
    limits.check_items(len(inputs))  # LimitError: answered 413 by the app's handler
    for i, item in enumerate(inputs):
        for field, text in route.texts(item):
            where = f"inputs[{i}]{field}"
            limits.check_text(text, where)
            if not text.strip():
                raise _error(422, f"{where} is empty or only whitespace; send text to process.")
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise _error(
                    422,
                    f"{where} holds an unpaired surrogate escape (\\ud800-\\udfff); "
                    "send valid Unicode text.",
                ) from None


def create_app(models: Mapping[str, ServedModel], settings: ServeSettings | None = None) -> FastAPI:
    """Build the API over loaded models.

    Args:
        models: model name -> object with ``.predict(list) -> list[dict]`` and ``.info.task``.
        settings: limits, batching, API keys (``settings.models`` is not read here: the
            caller loads the models); ``settings.routes`` names extra routers to mount.

    Raises:
        ValueError: no models and no routes, or a model whose task has no endpoint.
        ConfigError: a route in ``settings.routes`` cannot be loaded.
    """
    settings = settings or ServeSettings()
    routers = [load_router(spec) for spec in settings.routes]
    if not models and not routers:
        raise ValueError("create_app needs at least one model or route.")
    tasks = {}
    for name, model in models.items():
        task = getattr(getattr(model, "info", None), "task", None)
        if task not in TASK_ROUTES:
            raise ValueError(
                f"Model {name!r} has task {task!r}, which has no endpoint; served tasks: "
                f"{', '.join(TASK_ROUTES)}."
            )
        tasks[name] = task
    metrics = ServeMetrics()
    batchers: dict[str, MicroBatcher] = {}
    state = {"status": "starting"}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        for name, model in models.items():
            batcher = MicroBatcher(
                name,
                model.predict,
                max_batch_size=settings.max_batch_size,
                max_wait_ms=settings.max_wait_ms,
                enabled=settings.batching,
                max_queue_items=settings.max_queue_items,
                on_batch=lambda items, requests, seconds, name=name: metrics.record_batch(
                    name, items, requests, seconds
                ),
            )
            await batcher.start()
            batchers[name] = batcher
            metrics.queued.labels(name).set_function(lambda b=batcher: b.queued_items)
            metrics.model_info.labels(name, tasks[name]).set(1)
        state["status"] = "ready"
        log.info("serving %s", ", ".join(f"{n} ({t})" for n, t in tasks.items()))
        try:
            yield
        finally:
            state["status"] = "draining"
            for batcher in batchers.values():
                await batcher.close(timeout=settings.graceful_timeout_s)

    limits = {
        "max_items": settings.max_items,
        "max_text_chars": settings.max_text_chars,
        "max_body_bytes": settings.max_body_bytes,
        "max_batch_size": settings.max_batch_size,
        "max_wait_ms": settings.max_wait_ms,
        "batching": settings.batching,
    }
    app = FastAPI(
        title="lepton-nlp",
        version=__version__,
        description="Predictions from fine-tuned lepton-nlp models. Limits: "
        + ", ".join(f"{k}={v}" for k, v in limits.items())
        + '. Errors answer `{"detail": ...}` naming the limit or the fix.',
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics

    @app.exception_handler(LimitError)
    async def over_limit(request: Request, error: LimitError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=413)

    @app.exception_handler(UnsafePathError)
    async def unsafe_path(request: Request, error: UnsafePathError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        # FastAPI's own answer quotes the input, and fails (500) on one it cannot write as
        # JSON, such as 1e999 (infinity) or "\ud800": the same 422, such values as text.
        return JSONResponse({"detail": _json_safe(jsonable_encoder(error.errors()))}, 422)

    app.state.batchers = batchers
    app.state.serve_state = state
    protected = [Depends(_auth_dependency(settings.api_keys))] if settings.api_keys else []

    @app.get("/healthz", response_model=s.HealthResponse, tags=["ops"])
    async def healthz() -> dict:
        """The process is up and answering."""
        return {"status": "ok"}

    @app.get(
        "/readyz",
        response_model=s.ReadyResponse,
        responses={503: {"model": s.ReadyResponse}},
        tags=["ops"],
    )
    async def readyz() -> Response:
        """Models loaded and taking requests (503 while starting or draining)."""
        body = {"status": state["status"], "models": tasks}
        return JSONResponse(body, status_code=200 if state["status"] == "ready" else 503)

    @app.get(
        "/metrics",
        tags=["ops"],
        dependencies=protected,
        response_class=Response,
        openapi_extra=route_scope("ops"),
    )
    async def prometheus_metrics() -> Response:
        """Prometheus metrics: requests, latency, batch sizes, queue depth."""
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models", response_model=s.ModelsResponse, dependencies=protected, tags=["ops"])
    async def list_models() -> dict:
        """Loaded models, their tasks and endpoints, and the request limits."""
        return {
            "models": {
                name: {
                    "task": task,
                    "endpoint": f"/v1/{TASK_ROUTES[task].path}",
                    # What backend=auto chose (int8 or fp32); an embedder has none.
                    **(
                        {"backend": models[name].backend}
                        if isinstance(getattr(models[name], "backend", None), str)
                        else {}
                    ),
                }
                for name, task in tasks.items()
            },
            "limits": limits,
        }

    async def handle(task: str, body: Any) -> dict:
        route = TASK_ROUTES[task]
        name = _pick_model(task, body.model, tasks)
        _check_inputs(route, body.inputs, settings)
        batcher = batchers.get(name)
        if batcher is None or state["status"] != "ready":
            raise _error(
                503, "The server is not ready (starting or shutting down).", {"Retry-After": "1"}
            )
        try:
            results = await batcher.submit([route.to_predictor(item) for item in body.inputs])
        except QueueFull as exc:
            raise _error(503, f"Busy: {exc}; retry shortly.", {"Retry-After": "1"}) from None
        except BatcherClosed:
            raise _error(503, "The server is shutting down.", {"Retry-After": "1"}) from None
        except ValueError as exc:  # DataError and friends: the input, not the server
            raise _error(422, f"Model {name!r} refused the input: {exc}") from None
        except Exception:
            log.exception("model %s: prediction failed", name)
            raise _error(
                500, f"Model {name!r} failed on this request; the error is logged."
            ) from None
        answer: dict[str, Any] = {"model": name, "results": results}
        if task == "embedding":
            answer["dim"] = len(results[0]["embedding"]) if results else 0
        return answer

    for task in sorted(set(tasks.values())):
        _add_route(app, task, handle, protected)
    for router in routers:
        app.include_router(router, dependencies=protected)

    app.add_middleware(
        _BodyLimit,
        max_bytes=settings.max_body_bytes,
        max_upload_bytes=settings.max_upload_bytes if routers else None,
    )
    app.add_middleware(_MetricsMiddleware, metrics=metrics)
    return app


def _pick_model(task: str, name: str | None, tasks: Mapping[str, str]) -> str:
    same = sorted(n for n, t in tasks.items() if t == task)
    if name is None:
        if len(same) == 1:
            return same[0]
        raise _error(
            422, f"Name the model: this server has several {task} models: {', '.join(same)}."
        )
    if name not in tasks:
        raise _error(
            404, f"Unknown model {name!r}; loaded {task} models: {', '.join(same) or 'none'}."
        )
    if tasks[name] != task:
        raise _error(
            422,
            f"Model {name!r} is a {tasks[name]} model; send it to "
            f"/v1/{TASK_ROUTES[tasks[name]].path} (loaded {task} models: {', '.join(same)}).",
        )
    return name


def _add_route(app: FastAPI, task: str, handle: Callable, dependencies: list) -> None:
    route = TASK_ROUTES[task]

    async def endpoint(body: BaseModel) -> dict:
        return await handle(task, body)

    # The body's type is known only here, so the signature is set rather than written.
    endpoint.__annotations__ = {"body": route.request, "return": dict}
    endpoint.__name__ = route.path
    endpoint.__doc__ = f"{route.summary} with a loaded {task} model."
    app.add_api_route(
        f"/v1/{route.path}",
        endpoint,
        methods=["POST"],
        response_model=route.response,
        responses=_ERRORS,
        response_model_exclude_none=True,
        dependencies=dependencies,
        summary=route.summary,
        tags=["predict"],
    )
