"""HTTP API over predictors: typed endpoints per task, micro-batching, limits, auth, metrics."""

from __future__ import annotations

from lepton_nlp.serve.app import TASK_ROUTES, create_app
from lepton_nlp.serve.batching import BlockingBatcher, MicroBatcher
from lepton_nlp.serve.server import load_models, run_server
from lepton_nlp.serve.settings import ServeSettings, load_serve_settings

__all__ = [
    "TASK_ROUTES",
    "BlockingBatcher",
    "MicroBatcher",
    "ServeSettings",
    "create_app",
    "load_models",
    "load_serve_settings",
    "run_server",
]
