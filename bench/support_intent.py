"""The support bot's intent understanding on BANKING77: accuracy through the bot, out of scope.

1. Held-out intents: a fixed, seeded set of intents (``--held-out``, default 10, seed 42) is
   removed from training; a model is trained on the others with the recipe of the shipped
   ``data/models/banking77-intent`` (``configs/classification_banking77.yaml``, overrides
   below). On validation data only (in-scope: the config's own seeded 10% of TRAIN.csv;
   out-of-scope: the held-out intents' TRAIN.csv examples, never trained on) the bot fits its
   temperature, out-of-scope threshold and ambiguity margin; on TEST.csv it reports in-scope
   accuracy, out-of-scope recall and precision and the AUROC of the out-of-scope score.
   Threshold criterion (``--criterion``): ``retention`` (default), the highest threshold that
   keeps >= 95% of in-scope validation messages; ``balanced`` (the mean of in-scope accuracy
   and OOS recall) is fitted and reported too, but on validation it turned away 23% of the
   in-scope messages, too many for a bot whose fallback is a human.
2. The shipped model through the bot (``SupportNLU.understand_many``): its test accuracy
   (0.914 when trained), with the temperature and margin fitted on its own validation split
   and the threshold carried over from 1 (in calibrated probability, a unit both share).
   Writes ``data/models/banking77-intent/calibration.json``.
3. ``data/support/out_of_scope.txt`` (one message a line), when the tree has it: the share
   the shipped model's bot flags as out of scope.

python bench/support_intent.py [--threads 1] [--epochs 5] [--max-train-samples N] [--reuse]
    [--train-only] [--criterion retention|balanced]
python bench/support_intent.py --outside-only   # part 3 alone, minutes
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import time
from datetime import UTC
from pathlib import Path

from common import ROOT, datasets_root, write_result

SHIPPED = ROOT / "data" / "models" / "banking77-intent"
CONFIG = "configs/classification_banking77.yaml"
RUN = ROOT / "runs" / "support_intent"
HELD_OUT_SEED = 42
OOS_FILE = ROOT / "data" / "support" / "out_of_scope.txt"


def held_out_intents(labels: list[str], count: int, seed: int = HELD_OUT_SEED) -> list[str]:
    """``count`` intents chosen by ``random.Random(seed)`` from the sorted label list."""
    return sorted(random.Random(seed).sample(sorted(labels), count))


def shipped_splits() -> dict[str, list[dict]]:
    """The shipped model's train / validation / test records (its config's seeded split)."""
    from lepton_nlp.config import load_config
    from lepton_nlp.data import load_splits

    config = load_config(ROOT / CONFIG)
    return load_splits(config.data, "text")


def _write_csv(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "category"])
        writer.writerows([r["text"], r["label"]] for r in records)


def train_in_scope(splits: dict, held_out: list[str], args: argparse.Namespace) -> Path:
    """Train the shipped recipe on the in-scope intents; returns the artifact folder."""
    from lepton_nlp.artifacts import read_artifact
    from lepton_nlp.config import load_config
    from lepton_nlp.training import train

    artifact = RUN / "model"
    if args.reuse and (artifact / "lepton_artifact.json").is_file():
        print(f"reusing {artifact}")
        return artifact
    data = RUN / "data"
    for name in ("train", "validation", "test"):
        _write_csv(data / f"{name}.csv", [r for r in splits[name] if r["label"] not in held_out])
    overrides = [
        f"data.train={data / 'train.csv'}",
        f"data.validation={data / 'validation.csv'}",
        f"data.test={data / 'test.csv'}",
        "data.validation_size=0",
        f"training.output_dir={artifact}",
        "training.overwrite=true",
        f"training.epochs={args.epochs}",
        "name=banking77-intent-in-scope",
        # int8 is not what the bench measures; its check would cost minutes.
        "evaluation.backend_check=false",
    ]
    if args.threads:
        overrides.append(f"training.threads={args.threads}")
    if args.max_train_samples:
        overrides.append(f"data.max_train_samples={args.max_train_samples}")
    config = load_config(ROOT / CONFIG, overrides)
    started = time.perf_counter()
    result = train(config)
    print(f"trained in {time.perf_counter() - started:.0f} s: {result.metrics.get('test')}")
    return read_artifact(result.artifact).path


def _raw_log_probs(nlu, texts: list[str]):
    """The model's own log probabilities (temperature 1), as the Predictor scores them."""
    from apps.support.calibration import log_probabilities

    return log_probabilities([p["scores"] for p in nlu.predictor.predict(texts)], nlu.labels)


def _targets(nlu, records: list[dict]):
    import numpy as np

    index = {label: i for i, label in enumerate(nlu.labels)}
    return np.array([index[r["label"]] for r in records])


def _timed_understand(nlu, texts: list[str]) -> tuple[list, float]:
    started = time.perf_counter()
    out = nlu.understand_many(texts)
    return out, time.perf_counter() - started


def _r(value: float) -> float:
    return round(float(value), 4)


def scope_figures(results: list, gold: list[str], in_scope: list[bool]) -> dict:
    """In-scope accuracy, retention, OOS recall/precision/F1 and AUROC of the OOS score."""
    import numpy as np

    from apps.support.calibration import auroc

    flagged = np.array([u.out_of_scope for u in results])
    ins = np.array(in_scope)
    top_right = np.array([u.ranking[0].intent == g for u, g in zip(results, gold, strict=True)])
    confidence = np.array([u.confidence for u in results])
    ambiguous = np.array([u.ambiguous for u in results])
    kept_ins = ins & ~flagged
    tp = int((flagged & ~ins).sum())
    precision = tp / max(1, int(flagged.sum()))
    recall = tp / max(1, int((~ins).sum()))
    out = {
        "in_scope_examples": int(ins.sum()),
        "closed_set_accuracy": _r(top_right[ins].mean()),
        "in_scope_accuracy": _r((kept_ins & top_right)[ins].mean()),
        "in_scope_retention": _r(kept_ins[ins].mean()),
        "ambiguous_rate": _r(ambiguous[kept_ins].mean()) if kept_ins.any() else 0.0,
        "accuracy_not_ambiguous": _r(top_right[kept_ins & ~ambiguous].mean())
        if (kept_ins & ~ambiguous).any()
        else 0.0,
        "accuracy_ambiguous": _r(top_right[kept_ins & ambiguous].mean())
        if (kept_ins & ambiguous).any()
        else 0.0,
    }
    if (~ins).any():
        out.update(
            {
                "oos_examples": int((~ins).sum()),
                "oos_recall": _r(recall),
                "oos_precision": _r(precision),
                "oos_f1": _r(2 * precision * recall / max(1e-9, precision + recall)),
                # OOS score: 1 - calibrated top probability; AUROC does not depend on a threshold.
                "oos_auroc": _r(auroc(-confidence[~ins], -confidence[ins])),
            }
        )
    return out


def with_calibration(results: list, gold: list[str], in_scope: list[bool], cal) -> dict:
    """:func:`scope_figures` as if the bot had used ``cal``'s threshold and margin (the
    temperature is the same; language flags kept)."""
    import dataclasses

    moved = []
    for u in results:
        oos = (not u.english) or u.confidence < cal.oos_threshold
        second = u.ranking[1].confidence if len(u.ranking) > 1 else 0.0
        ambiguous = not oos and u.confidence - second < cal.margin
        moved.append(dataclasses.replace(u, out_of_scope=oos, ambiguous=ambiguous))
    return scope_figures(moved, gold, in_scope)


def _run_figures(artifact: Path) -> dict:
    """How the held-out-intent model was trained, from its artifact (it may come from an
    earlier ``--train-only`` run)."""
    import json

    from lepton_nlp.config import read_yaml_file

    metrics = json.loads((artifact / "metrics.json").read_text(encoding="utf-8"))
    config = read_yaml_file(artifact / "config.yaml")
    training, train = config["training"], metrics["train"]
    with Path(config["data"]["train"]).open(encoding="utf-8", newline="") as f:
        train_examples = sum(1 for _ in csv.DictReader(f))
    if config["data"].get("max_train_samples"):
        train_examples = min(train_examples, config["data"]["max_train_samples"])
    return {
        "in_scope_run_train_examples": train_examples,
        "in_scope_run_max_train_samples": config["data"].get("max_train_samples"),
        "in_scope_run_epochs": training["epochs"],
        "in_scope_run_threads": training.get("threads"),
        "in_scope_run_train_seconds": train["train_seconds"],
        "in_scope_run_samples_per_second": train["train_samples_per_second"],
        "in_scope_run_validation_accuracy": metrics["validation"]["accuracy"],
    }


def evaluate_all(splits: dict, held_out: list[str], artifact: Path, args) -> dict:
    """Calibrate on validation, then score on TEST.csv: held-out-intent model, shipped model."""
    import numpy as np

    from apps.support.calibration import (
        apply_temperature,
        expected_calibration_error,
        fit_calibration,
    )
    from apps.support.understanding import SupportNLU

    figures: dict = {
        "held_out_intents": held_out,
        "held_out_seed": HELD_OUT_SEED,
        "held_out_choice": f"random.Random({HELD_OUT_SEED}).sample(sorted(77 intents), "
        f"{len(held_out)})",
        "oos_criterion": args.criterion,
    }
    figures.update(_run_figures(artifact))
    hidden = set(held_out)
    test = splits["test"]
    test_texts = [r["text"] for r in test]
    test_gold = [r["label"] for r in test]

    # 1. The held-out-intent model: everything chosen on validation, scored on test.
    nlu = SupportNLU.from_artifact(artifact, backend="torch", calibration=None)
    val_in = [r for r in splits["validation"] if r["label"] not in hidden]
    val_oos = [r for r in splits["train"] + splits["validation"] if r["label"] in hidden]
    val_lp = _raw_log_probs(nlu, [r["text"] for r in val_in])
    oos_lp = _raw_log_probs(nlu, [r["text"] for r in val_oos])
    source = (
        f"in scope: the {len(val_in)} validation messages of the other intents (the config's "
        f"seeded 10% of TRAIN.csv); out of scope: the {len(val_oos)} TRAIN.csv messages of the "
        "held-out intents (never trained on)"
    )
    calibrations = {
        criterion: fit_calibration(
            val_lp, _targets(nlu, val_in), oos_lp, criterion=criterion, source=source
        )
        for criterion in ("balanced", "retention")
    }
    cal = calibrations[args.criterion]
    cal.chosen["run"] = "bench/support_intent.py"
    cal.save(artifact)
    nlu.calibration = cal
    results, seconds = _timed_understand(nlu, test_texts)
    in_scope = [g not in hidden for g in test_gold]
    figures.update(
        {
            "oos_temperature": cal.temperature,
            "oos_threshold": cal.oos_threshold,
            "oos_margin": cal.margin,
            "oos_validation_in_scope": len(val_in),
            "oos_validation_out_of_scope": len(val_oos),
            **{f"oos_validation_{k}": v for k, v in cal.validation.items()},
            **{f"oos_test_{k}": v for k, v in scope_figures(results, test_gold, in_scope).items()},
        }
    )
    other = "retention" if args.criterion == "balanced" else "balanced"
    alt = calibrations[other]
    figures[f"oos_{other}_threshold"] = alt.oos_threshold
    figures[f"oos_{other}_margin"] = alt.margin
    for k, v in alt.validation.items():
        if k.startswith("at_threshold_"):
            figures[f"oos_{other}_validation_{k.removeprefix('at_threshold_')}"] = v
    for k, v in with_calibration(results, test_gold, in_scope, alt).items():
        figures[f"oos_{other}_test_{k}"] = v
    print(f"held-out model: {seconds:.1f} s for {len(test_texts)} test messages through the bot")

    # 2. The shipped model through the bot, threshold carried over (calibrated probability).
    shipped = SupportNLU.from_artifact(SHIPPED, calibration=None)
    val = splits["validation"]
    lp = _raw_log_probs(shipped, [r["text"] for r in val])
    shipped_cal = fit_calibration(
        lp,
        _targets(shipped, val),
        oos_threshold=cal.oos_threshold,
        source=(
            f"the shipped model's own validation split ({len(val)} messages: the config's seeded "
            "10% of TRAIN.csv); OOS threshold from the held-out-intent run of "
            f"bench/support_intent.py ({args.criterion}, {len(held_out)} intents held out), "
            "in calibrated probability"
        ),
    )
    shipped_cal.chosen["run"] = "bench/support_intent.py"
    shipped_cal.save(SHIPPED)
    shipped.calibration = shipped_cal
    results, seconds = _timed_understand(shipped, test_texts)
    raw_test = _raw_log_probs(shipped, test_texts)
    targets = _targets(shipped, test)
    everything = [True] * len(test)
    figures.update(
        {
            "shipped_backend": shipped.predictor.backend,
            "shipped_test_accuracy": _r(
                np.mean([u.ranking[0].intent == g for u, g in zip(results, test_gold, strict=True)])
            ),
            "shipped_test_examples": len(test),
            "shipped_temperature": shipped_cal.temperature,
            "shipped_margin": shipped_cal.margin,
            "shipped_oos_threshold": shipped_cal.oos_threshold,
            **{f"shipped_validation_{k}": v for k, v in shipped_cal.validation.items()},
            "shipped_test_ece_before": _r(
                expected_calibration_error(apply_temperature(raw_test, 1.0), targets)
            ),
            "shipped_test_ece_after": _r(
                expected_calibration_error(
                    apply_temperature(raw_test, shipped_cal.temperature), targets
                )
            ),
            **{
                f"shipped_test_{k}": v
                for k, v in scope_figures(results, test_gold, everything).items()
                if k != "closed_set_accuracy"
            },
            "shipped_messages_per_second": round(len(test) / seconds, 1),
            "shipped_language_false_alarms": int(sum(not u.english for u in results)),
        }
    )

    figures.update(outside_figures(shipped))
    return figures


def outside_figures(shipped) -> dict:
    """3. Messages written to be out of scope, and non-English ones, through the shipped bot."""
    import numpy as np

    from apps.common.language import guess_language

    figures: dict = {}
    non_english = (
        (ROOT / "apps" / "support" / "eval_data" / "non_english.txt").read_text("utf-8").split("\n")
    )
    non_english = [t for t in non_english if t.strip()]
    flagged = shipped.understand_many(non_english)
    figures["non_english_examples"] = len(non_english)
    figures["non_english_detected"] = _r(
        np.mean([not guess_language(t).english for t in non_english])
    )
    figures["non_english_out_of_scope"] = _r(np.mean([u.out_of_scope for u in flagged]))
    if OOS_FILE.is_file():
        lines = [t for t in OOS_FILE.read_text("utf-8").splitlines() if t.strip()]
        lines = [t for t in lines if not t.lstrip().startswith("#")]
        flagged = shipped.understand_many(lines)
        figures["project_oos_file"] = str(OOS_FILE.relative_to(ROOT))
        figures["project_oos_examples"] = len(lines)
        figures["project_oos_recall"] = _r(np.mean([u.out_of_scope for u in flagged]))
        figures["project_oos_by_reason"] = {
            reason: int(sum(u.out_of_scope and _reason(u) == reason for u in flagged))
            for reason in ("language", "threshold")
        }
    else:
        figures["project_oos_file"] = f"{OOS_FILE.relative_to(ROOT)} absent: not evaluated"
    return figures


def _reason(understanding) -> str:
    return "language" if not understanding.english else "threshold"


def outside_only() -> None:
    """Recompute part 3 with the shipped model and its saved calibration (written by the last
    full run), and update those figures in ``bench/results/support_intent.json``."""
    import json
    from datetime import datetime

    from apps.support.understanding import SupportNLU

    path = ROOT / "bench" / "results" / "support_intent.json"
    figures = json.loads(path.read_text("utf-8"))
    shipped = SupportNLU.from_artifact(SHIPPED)
    found = outside_figures(shipped)
    found["outside_command"] = "python bench/support_intent.py --outside-only"
    found["outside_date"] = datetime.now(UTC).isoformat(timespec="seconds")
    found["outside_calibration"] = "data/models/banking77-intent/calibration.json as shipped"
    figures.update(found)
    path.write_text(json.dumps(figures, indent=2) + "\n", "utf-8")
    for key, value in found.items():
        print(f"{key}: {value}")


def print_table(f: dict) -> None:
    rows = [
        ("shipped model, BANKING77 test accuracy through the bot", f["shipped_test_accuracy"]),
        ("shipped: temperature (validation NLL)", f["shipped_temperature"]),
        (
            "shipped: test ECE before -> after",
            f"{f['shipped_test_ece_before']} -> {f['shipped_test_ece_after']}",
        ),
        (
            "shipped: in-scope test messages flagged out of scope",
            _r(1 - f["shipped_test_in_scope_retention"]),
        ),
        ("shipped: ambiguous (kept messages)", f["shipped_test_ambiguous_rate"]),
        (
            f"held-out model ({len(f['held_out_intents'])} intents hidden): closed-set accuracy",
            f["oos_test_closed_set_accuracy"],
        ),
        (
            f"  threshold {f['oos_threshold']:.3f} ({f['oos_criterion']}): in-scope accuracy",
            f["oos_test_in_scope_accuracy"],
        ),
        ("  in-scope retention", f["oos_test_in_scope_retention"]),
        ("  OOS recall", f["oos_test_oos_recall"]),
        ("  OOS precision", f["oos_test_oos_precision"]),
        ("  AUROC of the OOS score", f["oos_test_oos_auroc"]),
        ("non-English messages detected", f["non_english_detected"]),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--held-out", type=int, default=10, help="intents held out (seed 42)")
    parser.add_argument(
        "--epochs", type=float, default=5.0, help="epochs of the in-scope run (recipe: 5)"
    )
    parser.add_argument("--max-train-samples", type=int, help="train on N in-scope examples")
    parser.add_argument(
        "--criterion",
        choices=["balanced", "retention"],
        default="retention",
        help="how the out-of-scope threshold is chosen on validation (apps/support/calibration.py)",
    )
    parser.add_argument("--threads", type=int, help="torch threads for training")
    parser.add_argument("--reuse", action="store_true", help="reuse runs/support_intent/model")
    parser.add_argument("--train-only", action="store_true", help="stop after training")
    parser.add_argument(
        "--outside-only",
        action="store_true",
        help="only part 3 (out_of_scope.txt, non-English) with the shipped calibration",
    )
    args = parser.parse_args(argv)
    if args.outside_only:
        outside_only()
        return

    datasets_root()
    splits = shipped_splits()
    labels = sorted({r["label"] for r in splits["train"]})
    held_out = held_out_intents(labels, args.held_out)
    print("held-out intents:", ", ".join(held_out))
    artifact = train_in_scope(splits, held_out, args)
    if args.train_only:
        return
    figures = evaluate_all(splits, held_out, artifact, args)
    write_result("support_intent", figures)
    print_table(figures)


if __name__ == "__main__":
    sys.exit(main())
