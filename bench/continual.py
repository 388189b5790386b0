"""Continual learning benchmark: three tasks learnt in order, four methods, forgetting matrices.

    nice -n 10 python bench/continual.py [--quick]

The sequence is configs/continual_banking.yaml (Financial PhraseBank sentiment, four
BANKING77 card intents, Bank FAQs topics; small training subsets, stated there). Methods:
plain sequential fine-tuning, rehearsal (replay), EWC, one adapter per task. The replay
proportion and the EWC strength are chosen on the *validation* average final accuracy
over small grids; the test matrices of the chosen settings are reported. Writes
bench/results/continual.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, datasets_root, write_result

REPLAY_GRID = (0.25,)
EWC_GRID = (1000.0, 10.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "continual_banking.yaml"))
    parser.add_argument(
        "--quick", action="store_true", help="one epoch, tiny subsets (a smoke run)"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--routing",
        action="store_true",
        help="only the adapter-per-task run, with the task classifier that routes requests "
        "without a task name (-> bench/results/continual_routing.json)",
    )
    args = parser.parse_args()
    datasets_root()
    import torch

    torch.set_num_threads(args.threads)
    from lepton_nlp.training.continual import (
        load_continual_config,
        load_task_data,
        run_sequence,
    )

    overrides = []
    if args.quick:
        overrides = ["run.training.epochs=1", "continual.max_eval_samples=40"]
    config = load_continual_config(args.config, overrides)
    settings = config.continual
    tasks = [load_task_data(t, settings.max_eval_samples) for t in config.tasks]
    if args.quick:
        tasks = [dataclasses.replace(t, train=t.train[:48]) for t in tasks]
    work = Path(tempfile.mkdtemp(prefix="lepton-continual-"))
    runs: dict[str, dict] = {}
    started = time.perf_counter()

    def run(key: str, method: str, **changes) -> dict:
        s = dataclasses.replace(settings, method=method)
        if "proportion" in changes:
            s.replay = dataclasses.replace(s.replay, proportion=changes["proportion"])
        if "strength" in changes:
            s.ewc = dataclasses.replace(s.ewc, strength=changes["strength"])
        result = run_sequence(config.run, tasks, s, work / key)
        runs[key] = result
        print(
            f"{key}: test avg acc {result['test']['average_accuracy']}, "
            f"forgetting {result['test']['average_forgetting']}; validation avg acc "
            f"{result['validation']['average_accuracy']}",
            flush=True,
        )
        return result

    if args.routing:
        s = dataclasses.replace(settings, method="adapters", route_classifier=True)
        try:
            result = run_sequence(config.run, tasks, s, work / "adapters-routed")
        finally:
            shutil.rmtree(work, ignore_errors=True)
        routing = result["routing"]["test"]
        n = sum(len(t.test) for t in tasks)
        write_result(
            "continual_routing",
            {
                "benchmark": "continual_routing",
                "tasks": [{"name": t.name, "test": len(t.test)} for t in tasks],
                "test_matrix_by_task_name": result["test"]["matrix"],
                "test_average_accuracy_by_task_name": result["test"]["average_accuracy"],
                "test_routing": routing,
                "test_routing_accuracy": round(
                    sum(routing[t.name]["routing_accuracy"] * len(t.test) for t in tasks) / n, 6
                ),
                "test_average_accuracy_routed": round(
                    sum(routing[t.name]["accuracy_routed"] for t in tasks) / len(tasks), 6
                ),
                "seconds": result["seconds"],
            },
        )
        return

    plan = [("sequential", "sequential", {})]
    plan += [(f"replay-p{p}", "replay", {"proportion": p}) for p in REPLAY_GRID]
    plan += [("adapters", "adapters", {})]
    plan += [(f"ewc-l{lam:g}", "ewc", {"strength": lam}) for lam in EWC_GRID]
    try:
        for done, (key, method, changes) in enumerate(plan, 1):
            run(key, method, **changes)
            # Written after every run: a run cut short still leaves what it measured.
            report(runs, tasks, config, args, started, complete=done == len(plan))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(runs, tasks, config, args, started, complete: bool) -> None:
    def best(prefix: str) -> str:
        keys = [k for k in runs if k.startswith(prefix)]
        return max(keys, key=lambda k: runs[k]["validation"]["average_accuracy"])

    chosen = {
        method: best(prefix)
        for method, prefix in (
            ("sequential", "sequential"),
            ("replay", "replay-"),
            ("ewc", "ewc-"),
            ("adapters", "adapters"),
        )
        if any(k.startswith(prefix) for k in runs)
    }
    methods = {}
    for method, key in chosen.items():
        r = runs[key]
        methods[method] = {
            "run": key,
            "settings": r.get("settings"),
            "test_matrix": r["test"]["matrix"],
            "test_average_accuracy": r["test"]["average_accuracy"],
            "test_average_forgetting": r["test"]["average_forgetting"],
            "test_backward_transfer": r["test"]["backward_transfer"],
            "validation_average_accuracy": r["validation"]["average_accuracy"],
            "validation_average_forgetting": r["validation"]["average_forgetting"],
            "seconds": r["seconds"],
        }
    grid = {
        key: {
            "validation_average_accuracy": r["validation"]["average_accuracy"],
            "validation_average_forgetting": r["validation"]["average_forgetting"],
            "test_average_accuracy": r["test"]["average_accuracy"],
            "test_average_forgetting": r["test"]["average_forgetting"],
            "validation_matrix": r["validation"]["matrix"],
        }
        for key, r in runs.items()
    }
    figures = {
        "benchmark": "continual",
        "quick": args.quick,
        "complete": complete,
        "tasks": [
            {
                "name": t.name,
                "labels": t.labels,
                "train": len(t.train),
                "validation": len(t.validation),
                "test": len(t.test),
            }
            for t in tasks
        ],
        "model": config.run.model.name,
        "peft": dataclasses.asdict(config.run.peft),
        "epochs_per_task": config.run.training.epochs,
        "matrix_reads": "matrix[i][j] = accuracy on task j after training step i (null: not yet learnt)",
        "selection": "replay proportion and EWC strength chosen by validation average final "
        f"accuracy over {list(REPLAY_GRID)} and {list(EWC_GRID)}; test never used to choose",
        "methods": methods,
        "grid": grid,
        "total_seconds": round(time.perf_counter() - started, 1),
        "cpu_seconds": round(time.process_time(), 1),
    }
    write_result("continual_quick" if args.quick else "continual", figures)


if __name__ == "__main__":
    main()
