"""What N trials of hyper-parameter search buy over the default config, on Financial PhraseBank.

python bench/hpo.py [--trials N] [--resume] [key.sub=value ...]

Runs ``lepton-nlp hpo configs/hpo_fpb.yaml`` (TPE, median pruning, 400 training sentences,
chosen on validation macro-F1; the config's own values are trial 0), then scores the default
config's model (trial 0) and the best trial's model once each on the TEST split, with a
paired bootstrap interval of the test difference. Only validation chose; test only reports.
Writes bench/results/hpo.json and copies the search plots to docs/hpo/.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time

import numpy as np
from common import ROOT, datasets_root, write_result

CONFIG = "configs/hpo_fpb.yaml"
OUTPUT = "runs/bench-hpo"
BOOTSTRAP = 2000


def _score(artifact: str, records: list[dict]) -> tuple[dict, list[str]]:
    from lepton_nlp.inference import Predictor

    predictor = Predictor.from_artifact(artifact, backend="torch")
    predictions = predictor.predict([{"text": r["text"]} for r in records])
    metrics = predictor.task.evaluate_predictions(predictions, records, predictor.spec)
    return metrics, [p["label"] for p in predictions]


def _paired_bootstrap(refs: list[str], a: list[str], b: list[str], seed: int = 0) -> list[float]:
    """95% interval of macro-F1(b) - macro-F1(a) over test sentences resampled together."""
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(seed)
    refs_, a_, b_ = np.array(refs), np.array(a), np.array(b)
    labels = sorted(set(refs))
    deltas = []
    for _ in range(BOOTSTRAP):
        i = rng.integers(0, len(refs_), len(refs_))
        deltas.append(
            f1_score(refs_[i], b_[i], labels=labels, average="macro", zero_division=0)
            - f1_score(refs_[i], a_[i], labels=labels, average="macro", zero_division=0)
        )
    low, high = np.percentile(deltas, [2.5, 97.5])
    return [round(float(low), 4), round(float(high), 4)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10, help="finished trials of the study")
    parser.add_argument("--resume", action="store_true", help="continue the study in runs/")
    args, overrides = parser.parse_known_args()

    from lepton_nlp.config import load_config
    from lepton_nlp.tasks import get_task
    from lepton_nlp.training.hpo import run_study, trial_tree
    from lepton_nlp.training.trainer import load_data

    datasets_root()
    os.chdir(ROOT)
    if not args.resume:
        shutil.rmtree(OUTPUT, ignore_errors=True)
    started = time.perf_counter()
    result = run_study(
        CONFIG,
        ["hpo.keep_artifacts=all", f"hpo.output_dir={OUTPUT}", *overrides],
        trials=args.trials,
    )
    search_seconds = time.perf_counter() - started

    import json

    import optuna

    board = json.loads(result.leaderboard_json.read_text())
    study = optuna.load_study(study_name=result.study_name, storage=board["storage"])
    baseline = next(t for t in study.trials if t.user_attrs.get("baseline"))
    best = study.best_trial
    metric = result.metric

    from lepton_nlp.config import apply_overrides, read_yaml_file

    searched = load_config(CONFIG, overrides)
    config = load_config(trial_tree(apply_overrides(read_yaml_file(CONFIG), overrides), {}))
    splits, _ = load_data(config, get_task(config.task))
    test = splits["test"]
    default_test, default_labels = _score(baseline.user_attrs["artifact"], test)
    best_test, best_labels = _score(best.user_attrs["artifact"], test)
    refs = [r["label"] for r in test]

    state = optuna.trial.TrialState
    complete = [t for t in study.trials if t.state == state.COMPLETE]
    pruned = [t for t in study.trials if t.state == state.PRUNED]
    figures = {
        "config": CONFIG,
        "overrides": " ".join(overrides),
        "task": config.task,
        "base_model": config.model.name,
        "train_sentences": len(splits["train"]),
        "validation_sentences": len(splits["validation"]),
        "test_sentences": len(test),
        "metric": metric,
        "chosen_on": f"validation_{metric}",
        "sampler": "tpe",
        "pruner": searched.hpo.pruner,
        "trials": len(complete) + len(pruned),
        "trials_complete": len(complete),
        "trials_pruned": len(pruned),
        "search_seconds": round(search_seconds, 1),
        "seconds_per_complete_trial": round(
            float(np.mean([t.user_attrs["seconds"] for t in complete])), 1
        ),
        "seconds_per_pruned_trial": round(
            float(np.mean([t.user_attrs["seconds"] for t in pruned])), 1
        )
        if pruned
        else None,
        "default_trial": baseline.number,
        "default_params": baseline.params,
        f"validation_default_{metric}": baseline.value,
        "best_trial": best.number,
        "best_params": best.params,
        f"validation_best_{metric}": best.value,
        "best_is_default": best.number == baseline.number,
        f"test_default_{metric}": round(float(default_test[metric]), 4),
        "test_default_accuracy": round(float(default_test["accuracy"]), 4),
        f"test_best_{metric}": round(float(best_test[metric]), 4),
        "test_best_accuracy": round(float(best_test["accuracy"]), 4),
        f"test_delta_{metric}": round(float(best_test[metric] - default_test[metric]), 4),
        f"test_delta_{metric}_bootstrap_95": _paired_bootstrap(refs, default_labels, best_labels),
        "validation_curve": [
            {"trial": p["trial"], "state": p["state"], metric: p[metric], "best_so_far": p["best"]}
            for p in board["history"]
        ],
        "leaderboard": [
            {k: v for k, v in row.items() if v is not None} for row in board["leaderboard"]
        ],
    }
    docs = ROOT / "docs" / "hpo"
    docs.mkdir(parents=True, exist_ok=True)
    for plot in result.plots:
        if plot.suffix == ".png":
            shutil.copy(plot, docs / plot.name)
    write_result("hpo", figures)


if __name__ == "__main__":
    main()
