"""Typed serve config: the models to load, limits, batching and authentication settings."""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lepton_nlp.config import BACKEND_CHOICES, build_dataclass, read_yaml_file
from lepton_nlp.errors import ConfigError
from lepton_nlp.security import InputLimits, is_loopback

__all__ = [
    "API_KEYS_ENV",
    "API_SCOPES",
    "ServeSettings",
    "is_loopback",
    "load_serve_settings",
    "parse_key_entry",
]

API_KEYS_ENV = "LEPTON_NLP_API_KEYS"

#: What a key may be limited to. Every route belongs to one: ``client`` (predictions, the
#: chat channel, the apps' scoring and recommending), ``agent`` (the support bot's handoff
#: desk: other customers' conversations) and ``ops`` (Prometheus metrics). A key with no
#: scope may use all of them.
API_SCOPES = ("client", "agent", "ops")


def parse_key_entry(entry: str) -> tuple[str, tuple[str, ...] | None]:
    """``"KEY"`` -> (KEY, None: every scope); ``"KEY client agent"`` -> (KEY, its scopes).

    Raises:
        ConfigError: an unknown scope (the key itself is never shown).
    """
    key, *scopes = entry.split()
    for scope in scopes:
        if scope not in API_SCOPES:
            close = difflib.get_close_matches(scope, API_SCOPES, n=1)
            # A long word after a space may be half of a key typed with a space in it: such a
            # word is not quoted.
            named = repr(scope) if len(scope) <= 12 and scope.isalpha() else "(not shown)"
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"An API key entry names an unknown scope {named}.{hint} Scopes: "
                f"{', '.join(API_SCOPES)} (write 'KEY scope scope', or the key alone for every "
                "scope; a key has no spaces in it)."
            )
    return key, (tuple(dict.fromkeys(scopes)) or None)


"""Environment variable holding API keys, comma-separated (kept off the command line, where
``ps`` would show them)."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass
class ServeSettings:
    """How ``lepton-nlp serve`` runs: what it loads, where it listens, and what it accepts."""

    models: dict[str, str] = field(default_factory=dict)
    """Model name -> artifact folder; requests name the model (``"model": "finance-sentiment"``)."""
    embed: str | None = None
    """Sentence-embedding model for ``/v1/embed`` (e.g. ``sentence-transformers/all-MiniLM-L6-v2``);
    None: no embed endpoint."""
    host: str = "127.0.0.1"
    """Address to bind. Anything but loopback requires API keys (or ``insecure``)."""
    port: int = 8000
    api_keys: list[str] = field(default_factory=list, repr=False)
    """Accepted keys (``Authorization: Bearer KEY`` or ``X-API-Key: KEY``); empty: no auth.
    Each entry is a key alone (every route) or a key and the scopes it is limited to,
    separated by spaces (``KEY client``; :data:`API_SCOPES`). They come from
    ``LEPTON_NLP_API_KEYS`` or ``api_key_file``, never from a config file, and are never
    shown (not in ``repr``, logs or error messages)."""
    api_key_file: str | None = None
    """A file with one API key per line (optionally followed by its scopes), added to
    ``api_keys``; lines starting with ``#`` are comments."""
    insecure: bool = False
    """Serve beyond loopback without API keys: anyone who can reach the port may use the API
    (``--insecure``; only behind a proxy that authenticates, or on a closed network)."""
    batching: bool = True
    """Merge concurrent requests to one model into one forward pass (micro-batching)."""
    max_batch_size: int = 32
    """Most items in one micro-batch (a larger single request runs on its own)."""
    max_wait_ms: float = 5.0
    """Longest an item waits for others to join its batch once the model is idle."""
    max_items: int = 256
    """Most inputs in one request (413 above it)."""
    max_text_chars: int = 10_000
    """Longest text, in characters (413 above it)."""
    max_body_bytes: int = 2 * 2**20
    """Largest request body (413 above it)."""
    max_queue_items: int = 8192
    """Most items waiting for one model; beyond it requests get 503 with Retry-After."""
    graceful_timeout_s: float = 30.0
    """On SIGTERM/SIGINT: how long in-flight requests may take to finish before the server stops."""
    torch_threads: int = 2
    """torch intra-op threads (per process)."""
    device: str | None = None
    """``cpu``, ``cuda``... (default: cuda when available)."""
    batch_size: int = 32
    """Predictor batch size (a micro-batch larger than this runs as several forward passes)."""
    backend: str = "auto"
    """Predictor backend: ``auto`` (int8 on a CPU when the artifact's int8 check passed, else
    ``torch``), ``torch``, ``torch-int8``, ``onnx`` or ``onnx-int8``."""
    packing: bool = True
    """Padding-free forward passes with the torch backends (BERT, RoBERTa, XLM-R encoders):
    the same outputs as padded batches, faster when the texts in a batch differ in length."""
    shared_base: bool = False
    """Load all models as adapters on one copy of their common base model
    (:class:`~lepton_nlp.inference.multi.MultiAdapterPredictor`; torch backend only)."""
    log_level: str = "info"
    routes: list[str] = field(default_factory=list)
    """Extra FastAPI routers to mount, as ``module:attribute`` dotted names imported at start
    (e.g. ``apps.support.api:router``); they share the server's limits and API keys."""
    max_upload_bytes: int = 25 * 2**20
    """Largest multipart (file upload) body a mounted route accepts (413 above it)."""
    max_audio_seconds: float = 600.0
    """Longest audio a mounted route should transcribe (``request_limits(request)`` hands
    it to the route; 413 above it)."""

    @property
    def limits(self) -> InputLimits:
        """These settings' limits on one request's input, for the routes to check."""
        return InputLimits(
            max_text_chars=self.max_text_chars,
            max_items=self.max_items,
            max_upload_bytes=self.max_upload_bytes,
            max_audio_seconds=self.max_audio_seconds,
        )

    def __post_init__(self) -> None:
        for spec in self.routes:
            module, sep, attribute = str(spec).partition(":")
            if not sep or not all(p.isidentifier() for p in [*module.split("."), attribute]):
                raise ConfigError(
                    f"routes entry {spec!r} is not MODULE:ATTRIBUTE; write it as e.g. "
                    "apps.support.api:router."
                )
        for name, path in self.models.items():
            if not _NAME.match(str(name)):
                raise ConfigError(
                    f"Model name {name!r} is not usable in requests: use letters, digits, '.', '_' "
                    "or '-' (up to 64 characters), e.g. finance-sentiment."
                )
            if not isinstance(path, str | Path):
                raise ConfigError(f"models.{name} must be an artifact folder path, got {path!r}.")
        for key in (
            "port",
            "max_batch_size",
            "max_items",
            "max_text_chars",
            "max_body_bytes",
            "max_upload_bytes",
            "max_queue_items",
            "torch_threads",
            "batch_size",
        ):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be at least 1, got {getattr(self, key)}.")
        if self.backend not in BACKEND_CHOICES:
            raise ConfigError(
                f"backend {self.backend!r} is not one of {', '.join(BACKEND_CHOICES)}."
            )
        if self.shared_base and self.backend not in ("auto", "torch"):
            raise ConfigError(
                "shared_base needs backend torch (adapters switch inside fp32 torch); "
                f"got {self.backend}."
            )
        if self.max_audio_seconds <= 0:
            raise ConfigError(f"max_audio_seconds must be positive, got {self.max_audio_seconds}.")
        if self.max_wait_ms < 0 or self.graceful_timeout_s < 0:
            raise ConfigError("max_wait_ms and graceful_timeout_s must not be negative.")
        if self.max_queue_items < self.max_items:
            raise ConfigError(
                f"max_queue_items ({self.max_queue_items}) must be at least max_items "
                f"({self.max_items}), or a full-size request could never be queued."
            )
        if self.api_key_file:
            path = Path(self.api_key_file)
            if not path.is_file():
                raise ConfigError(f"api_key_file {path} does not exist.")
            lines = path.read_text(encoding="utf-8").splitlines()
            entries = [k.strip() for k in lines if k.strip() and not k.strip().startswith("#")]
            self.api_keys = [*self.api_keys, *entries]
            self.api_key_file = None  # read once; the keys now live in api_keys
        if not all(isinstance(k, str) and k.strip() for k in self.api_keys):
            raise ConfigError("API keys must be non-empty strings (the values are not shown).")
        keys = [parse_key_entry(entry)[0] for entry in self.api_keys]
        if any(len(k) < 16 for k in keys):
            raise ConfigError("API keys must be at least 16 characters long.")
        if any(
            entry != entry.strip() or not k.isprintable()
            for entry, k in zip(self.api_keys, keys, strict=True)
        ):
            raise ConfigError(
                "API keys must be printable, without spaces around them (a header cannot carry "
                "them otherwise); the values are not shown."
            )
        if not self.api_keys and not is_loopback(self.host) and not self.insecure:
            raise ConfigError(
                f"Binding to {self.host} exposes the API beyond this machine, so it needs API keys: "
                f"set {API_KEYS_ENV}=KEY1,KEY2 (at least 16 characters each) or api_key_file, or "
                "bind to 127.0.0.1. To serve without keys anyway (behind a proxy that "
                "authenticates), pass --insecure."
            )

    @property
    def open_to_anyone(self) -> bool:
        """Bound beyond loopback with no API keys (``insecure``)."""
        return not self.api_keys and not is_loopback(self.host)


def load_serve_settings(
    source: str | Path | dict | None = None, overrides: dict[str, Any] | None = None
) -> ServeSettings:
    """Build settings from a YAML file (or mapping), flags given on the command line, and the
    ``LEPTON_NLP_API_KEYS`` environment variable.

    Raises:
        ConfigError: a misspelt key (naming the nearest valid one), a bad value, or a
            non-loopback bind without API keys.
        FileNotFoundError: the YAML file does not exist.
    """
    if source is None:
        tree: dict = {}
    elif isinstance(source, dict):
        tree = dict(source)
    else:
        path = Path(source)
        tree = read_yaml_file(path, "Serve config")
        if "api_keys" in tree:
            # A config file is read by many and often committed; a key in it is a leaked key.
            raise ConfigError(
                f"{path} holds api_keys: keep keys out of config files. Set {API_KEYS_ENV}="
                "KEY1,KEY2 in the environment, or api_key_file: PATH to a file only the server "
                "can read."
            )
        # Artifact paths in the file are relative to the file, not to the working folder.
        models = tree.get("models")
        if isinstance(models, dict):
            tree["models"] = {
                name: str((path.parent / str(folder)).resolve())
                if not Path(str(folder)).is_absolute() and (path.parent / str(folder)).exists()
                else folder
                for name, folder in models.items()
            }
    overrides = dict(overrides or {})
    extra_models = overrides.pop("models", None)
    tree.update({k: v for k, v in overrides.items() if v is not None})
    if extra_models:
        tree["models"] = {**(tree.get("models") or {}), **extra_models}
    keys = tree.pop("api_keys", None) or []
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        # Checked here, not by build_dataclass, whose message would quote the value.
        raise ConfigError("api_keys must be a list of strings (the values are not shown).")
    env_keys = [k.strip() for k in os.environ.get(API_KEYS_ENV, "").split(",") if k.strip()]
    if keys or env_keys:
        tree["api_keys"] = [*keys, *env_keys]
    return build_dataclass(ServeSettings, tree, "")
