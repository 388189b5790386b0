"""The demo recommender the page opens with: the shipped demo catalogue and events, trained
once (hybrid, MiniLM for the texts) into ``LEPTON_HOME/recommender-demo``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from apps.common.paths import ROOT, data_home

__all__ = ["DEMO_CATALOGUE", "DEMO_EVENTS", "RESULTS", "demo_folder", "evaluation_results"]

DEMO_CATALOGUE = ROOT / "data" / "recommender" / "demo_catalogue.jsonl"
DEMO_EVENTS = ROOT / "data" / "recommender" / "demo_interactions.jsonl"
RESULTS = ROOT / "bench" / "results" / "recommender_movielens.json"


def demo_folder(embedder: Any = None, folder: Path | None = None) -> Path:
    """The trained demo folder, trained now when it is not there yet (seconds)."""
    from apps.recommender.catalogue import load_catalogue
    from apps.recommender.interactions import load_interactions
    from apps.recommender.service import MANIFEST, train_recommender

    folder = folder or data_home() / "recommender-demo"
    if not (folder / MANIFEST).is_file():
        train_recommender(
            load_catalogue(DEMO_CATALOGUE),
            load_interactions(DEMO_EVENTS),
            folder,
            model="hybrid",
            config={"cf_config": {"factors": 16}},
            embedder=embedder,
            overwrite=True,
        )
    return folder


def evaluation_results(path: Path = RESULTS) -> dict[str, Any] | None:
    """The MovieLens benchmark's JSON (``bench/recommender_movielens.py``), or None."""
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))
