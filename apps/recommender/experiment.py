"""Every model on one split, hyper-parameters chosen on validation data carved from training.

The protocol (Microsoft Recommenders' MovieLens table): :func:`stratified_split` of all
events 75/25 per user (seed 42); every event an implicit interaction (``binary``); top 10
with training items removed; metrics over the test users. With ``tune``, the training part
is split again the same way (75/25, same seed) and each model's settings (and the hybrid's
blend) are chosen on that validation part by nDCG@10; the chosen settings are then refitted
on the whole training part and scored once on test. Test data chooses nothing.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from apps.recommender.catalogue import Catalogue
from apps.recommender.evaluation import evaluate_model, relevant_by_user
from apps.recommender.interactions import Interactions, clean_interactions
from apps.recommender.matrix import InteractionMatrix
from apps.recommender.models import make_model
from apps.recommender.models.hybrid import HybridModel
from apps.recommender.split import stratified_split

__all__ = ["DEFAULT_GRIDS", "MODEL_ORDER", "run_experiment"]

MODEL_ORDER = ("popularity", "content", "als", "bpr", "hybrid")

Grid = dict[str, Sequence[Any]]

#: Settings tried on validation per model: every combination of a grid, or of each grid of a
#: list in turn (the content model: its cosine settings, then its learned projection's).
DEFAULT_GRIDS: dict[str, Grid | list[Grid]] = {
    "popularity": {"half_life_days": [0.0, 60.0]},
    "content": [
        {
            "history_limit": [100, 1000],
            "recency_decay": [1.0, 0.95],
            "whiten": [None, 0.0, 0.5],
        },
        {
            "learn": [True],
            "whiten": [0.0],
            "history_limit": [1000],
            "regularization": [1e-5, 1e-4],
            "epochs": [100, 200, 400],
        },
    ],
    "als": {"factors": [16, 32, 64], "regularization": [5.0, 20.0, 50.0], "alpha": [1.0, 2.0, 5.0]},
    "bpr": {
        "factors": [64, 200],
        "learning_rate": [0.005, 0.01],
        "regularization": [0.001, 0.01],
        "iterations": [25, 50],
    },
}


def _fit(
    name: str,
    config: dict[str, Any],
    data: InteractionMatrix,
    catalogue: Catalogue,
    vectors: np.ndarray | None,
    embedder: Any,
) -> Any:
    model = make_model(name, config, embedder)
    if name == "content":
        return (
            model.use_vectors(data, catalogue, vectors)
            if vectors is not None
            else model.fit(data, catalogue)
        )
    if name == "hybrid":
        return model.fit(data, catalogue, item_vectors=vectors)
    return model.fit(data, catalogue)


def run_experiment(
    catalogue: Catalogue,
    interactions: Interactions,
    *,
    models: Sequence[str] = MODEL_ORDER,
    k: int = 10,
    ratio: float = 0.75,
    seed: int = 42,
    tune: bool = True,
    grids: dict[str, Grid | list[Grid]] | None = None,
    configs: dict[str, dict[str, Any]] | None = None,
    embedder: Any = None,
    weighting: str = "binary",
    threads: int = 0,
    mmr: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Split, (tune,) fit and score every model; returns the protocol and one row per model.

    Args:
        models: which models, in table order.
        tune: choose settings on validation (else ``configs`` or the defaults).
        grids: settings to try per model (default :data:`DEFAULT_GRIDS`).
        configs: fixed settings per model (merged under the tuned ones).
        embedder: the sentence embedder for item texts (default: MiniLM, loaded once).
        threads: implicit's threads for ALS/BPR (0: all cores).
        mmr: also score the fitted hybrid with MMR diversification at this lambda (a row
            ``hybrid+mmr``; a stated trade-off, not tuned).
    """
    say = progress or (lambda _: None)
    grids = DEFAULT_GRIDS if grids is None else grids
    configs = {name: dict(values) for name, values in (configs or {}).items()}
    for name in ("als", "bpr"):
        configs.setdefault(name, {}).setdefault("threads", threads)
    unknown = [m for m in models if m not in MODEL_ORDER]
    if unknown:
        make_model(unknown[0])  # raises with the valid names
    # File order kept: the split's random numbers follow the rows as Recommenders' do.
    cleaned, report = clean_interactions(
        interactions, known_items=catalogue, rating_range=(-np.inf, np.inf), sort=False
    )
    train, test = stratified_split(cleaned, ratio, seed)
    say(f"split: {len(train)} train / {len(test)} test events (per-user {ratio:.0%}, seed {seed})")
    data = InteractionMatrix.build(train, catalogue.ids, weighting=weighting)
    relevant = relevant_by_user(test)
    vectors = None
    if any(m in ("content", "hybrid") for m in models):
        if embedder is None:
            from lepton_nlp.embeddings import SentenceEmbedder

            embedder = SentenceEmbedder()
        start = time.perf_counter()
        vectors = np.asarray(embedder.encode(catalogue.texts()), np.float32)
        say(f"embedded {len(catalogue)} item texts in {time.perf_counter() - start:.1f} s")
    valid_data = valid_relevant = None
    if tune:
        sub_train, valid = stratified_split(train, ratio, seed)
        valid_data = InteractionMatrix.build(
            sub_train, catalogue.ids, weighting=weighting, users=data.user_ids
        )
        valid_relevant = relevant_by_user(valid)
        say(f"validation: {len(sub_train)} / {len(valid)} events carved from train")
    results: dict[str, Any] = {}
    chosen: dict[str, dict[str, Any]] = {}
    valid_scores: dict[str, float] = {}
    for name in models:
        config = dict(configs.get(name, {}))
        info: dict[str, Any] = {}
        if tune and name != "hybrid" and grids.get(name):
            assert valid_data is not None and valid_relevant is not None
            found = grids[name]
            each = [found] if isinstance(found, dict) else list(found)
            best: tuple[float, dict[str, Any], Grid] = (-1.0, config, {})
            start = time.perf_counter()
            trials = []
            for grid in each:
                for values in itertools.product(*grid.values()):
                    trial = {**config, **dict(zip(grid, values, strict=True))}
                    model = _fit(name, trial, valid_data, catalogue, vectors, embedder)
                    score = evaluate_model(model, valid_data, valid_relevant, k)[f"ndcg@{k}"]
                    trials.append({**{key: trial[key] for key in grid}, "ndcg@10": round(score, 4)})
                    if score > best[0]:
                        best = (score, trial, grid)
            config = best[1]
            valid_scores[name] = best[0]
            info = {
                "validation_ndcg@10": round(best[0], 4),
                "tried": len(trials),
                "tuning_seconds": round(time.perf_counter() - start, 1),
                "validation_trials": trials,
            }
            say(
                f"{name}: chose { ({key: config[key] for key in best[2]}) } (validation nDCG@{k} {best[0]:.4f})"
            )
        if name == "hybrid":
            config, info = _hybrid_config(
                config,
                chosen,
                valid_scores,
                tune,
                valid_data,
                valid_relevant,
                catalogue,
                vectors,
                embedder,
                k,
                say,
            )
        chosen[name] = config
        start = time.perf_counter()
        model = _fit(name, config, data, catalogue, vectors, embedder)
        fit_seconds = time.perf_counter() - start
        metrics = evaluate_model(model, data, relevant, k, item_vectors=vectors)
        results[name] = {
            **metrics,
            "fit_seconds": round(fit_seconds, 2),
            "config": _shown(model.config),
            **info,
        }
        say(
            f"{name}: nDCG@{k} {metrics[f'ndcg@{k}']:.4f}, precision@{k} {metrics[f'precision@{k}']:.4f}"
        )
        if name == "hybrid" and mmr is not None and mmr < 1.0:
            model.config.mmr_lambda = mmr
            metrics = evaluate_model(model, data, relevant, k, item_vectors=vectors)
            results["hybrid+mmr"] = {**metrics, "config": _shown(model.config)}
            say(
                f"hybrid+mmr ({mmr}): nDCG@{k} {metrics[f'ndcg@{k}']:.4f}, diversity {metrics.get('diversity', 0.0):.3f}"
            )
    return {
        "protocol": {
            "split": "per-user stratified random (Recommenders' python_stratified_split)",
            "ratio": ratio,
            "seed": seed,
            "k": k,
            "weighting": weighting,
            "seen_items_removed": True,
            "tuned_on": "validation split of train (same splitter and seed)"
            if tune
            else "not tuned",
            "train_events": len(train),
            "test_events": len(test),
            "test_users": len(relevant),
            "items": len(catalogue),
            "duplicates_dropped": report.duplicates,
        },
        "results": results,
    }


def _hybrid_config(
    config,
    chosen,
    valid_scores,
    tune,
    valid_data,
    valid_relevant,
    catalogue,
    vectors,
    embedder,
    k,
    say,
):
    """The hybrid's settings: the better CF model on validation, the tuned components, and
    the blend weights tuned on validation."""
    cf_options = [m for m in ("als", "bpr") if m in valid_scores]
    cf = config.get("cf") or (max(cf_options, key=valid_scores.get) if cf_options else "als")
    config = {
        **config,
        "cf": cf,
        "cf_config": {**chosen.get(cf, {}), **config.get("cf_config", {})},
        "content_config": {**chosen.get("content", {}), **config.get("content_config", {})},
    }
    if not tune:
        return config, {}
    start = time.perf_counter()
    model = HybridModel(config, embedder).fit(valid_data, catalogue, item_vectors=vectors)
    users = [valid_data.user_index[u] for u in valid_relevant if u in valid_data.user_index]
    tuned = model.tune(users, valid_relevant, k)
    config["weights"] = tuned["weights"]
    say(f"hybrid: cf={cf}, weights {tuned['weights']} (validation nDCG@{k} {tuned['ndcg']:.4f})")
    return config, {
        "validation_ndcg@10": round(tuned["ndcg"], 4),
        "tried": tuned["tried"],
        "tuning_seconds": round(time.perf_counter() - start, 1),
    }


def _shown(config: Any) -> dict[str, Any]:
    import dataclasses

    values = dataclasses.asdict(config)
    return {k: v for k, v in values.items() if k not in ("threads", "index")}
