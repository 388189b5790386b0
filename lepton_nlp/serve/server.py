"""Run the API: load the configured models, then serve them with uvicorn until SIGTERM/SIGINT."""

from __future__ import annotations

import logging
from typing import Any

from lepton_nlp.errors import ConfigError
from lepton_nlp.serve.settings import ServeSettings

__all__ = ["load_models", "run_server"]

log = logging.getLogger(__name__)


def load_models(settings: ServeSettings) -> dict[str, Any]:
    """Load each configured artifact (and the embedder, if any) once.

    Raises:
        ArtifactError: a folder that is not an artifact.
        ConfigError: no models configured.
    """
    from lepton_nlp.inference import Predictor

    if not settings.models and not settings.embed:
        if settings.routes:
            return {}
        raise ConfigError(
            "No models to serve: pass --model NAME=ARTIFACT_FOLDER (repeatable), --embed, or a "
            "serve config with a models: mapping."
        )
    models: dict[str, Any] = {}
    if settings.shared_base and settings.models:
        from lepton_nlp.inference.multi import MultiAdapterPredictor

        multi = MultiAdapterPredictor.from_artifacts(
            settings.models, batch_size=settings.batch_size, packing=settings.packing
        )
        # Views of one encoder: the predictor's own lock keeps adapter switches apart.
        models.update({name: multi[name] for name in multi.names})
    for name, path in settings.models.items():
        if name in models:
            continue
        models[name] = Predictor.from_artifact(
            path,
            device=settings.device,
            batch_size=settings.batch_size,
            backend=settings.backend,
            packing=settings.packing,
        )
    if settings.embed:
        from lepton_nlp.embeddings import SentenceEmbedder
        from lepton_nlp.serve.embedding import EmbeddingPredictor

        embedder = EmbeddingPredictor(SentenceEmbedder(settings.embed, device=settings.device))
        models.setdefault(embedder.info.name, embedder)
    return models


def run_server(settings: ServeSettings, models: dict[str, Any] | None = None) -> None:
    """Serve until SIGTERM/SIGINT; in-flight requests finish (up to ``graceful_timeout_s``)."""
    import torch
    import uvicorn

    from lepton_nlp.serve.app import create_app

    if settings.open_to_anyone:
        log.warning(
            "Serving on %s WITHOUT API keys (--insecure): anyone who can reach port %d can use "
            "this API. Put an authenticating proxy in front, or set LEPTON_NLP_API_KEYS.",
            settings.host,
            settings.port,
        )
    torch.set_num_threads(settings.torch_threads)
    models = models if models is not None else load_models(settings)
    app = create_app(models, settings)

    class _Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            # /readyz turns 503 at once, so a load balancer stops routing here while the
            # requests already accepted finish.
            app.state.serve_state["status"] = "draining"
            super().handle_exit(sig, frame)

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=int(settings.graceful_timeout_s) or None,
        access_log=settings.log_level == "debug",
    )
    _Server(config).run()
