"""The recommender on real data: ALS and BPR beat popularity on MovieLens-100K (marker
``datasets``), and the packaged MiniLM serves a new user from stated interests on the demo
catalogue (marker ``integration``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATASETS = Path(os.environ.get("LEPTON_DATASETS", ROOT.parent / "shared" / "datasets"))
MOVIELENS = DATASETS / "movielens_100k"


@pytest.mark.datasets
def test_als_and_bpr_beat_popularity_on_movielens():
    if not (MOVIELENS / "u.data").is_file():
        pytest.skip(f"MovieLens 100K not found under {DATASETS} (set LEPTON_DATASETS)")
    from apps.recommender.experiment import run_experiment
    from apps.recommender.movielens import load_movielens

    ml = load_movielens(MOVIELENS)
    configs = {
        "als": {"factors": 32, "regularization": 20.0, "alpha": 2.0},
        "bpr": {"factors": 64, "learning_rate": 0.01, "regularization": 0.001, "iterations": 50},
    }
    found = run_experiment(
        ml.catalogue,
        ml.interactions,
        models=["popularity", "als", "bpr"],
        tune=False,
        configs=configs,
    )
    assert found["protocol"]["test_users"] == 943
    table = found["results"]
    popular = table["popularity"]["ndcg@10"]
    assert 0.2 < popular < 0.3
    for name in ("als", "bpr"):
        assert table[name]["ndcg@10"] > 1.3 * popular, name
        assert table[name]["precision@10"] > table["popularity"]["precision@10"], name


@pytest.mark.integration
def test_minilm_serves_a_new_user_from_stated_interests(tmp_path):
    from apps.recommender.catalogue import load_catalogue
    from apps.recommender.cli import DEMO_CATALOGUE, DEMO_EVENTS
    from apps.recommender.interactions import load_interactions
    from apps.recommender.service import TrainedRecommender, train_recommender

    folder = train_recommender(
        load_catalogue(DEMO_CATALOGUE),
        load_interactions(DEMO_EVENTS),
        tmp_path / "rec",
        model="hybrid",
        config={"cf_config": {"factors": 16, "threads": 1}},
    )
    service = TrainedRecommender(folder)
    found = service.recommend("newcomer", 5, interests=["looking at planets through a telescope"])
    categories = [service.catalogue.get(r.item).categories[0] for r in found]
    assert categories.count("Space") >= 4, categories
    assert any(reason.kind == "interest" for reason in found[0].reasons)
    similar = service.similar("demo-031", 3)  # Jazz Standards Songbook
    assert all(service.catalogue.get(r.item).categories[0] == "Music" for r in similar)
