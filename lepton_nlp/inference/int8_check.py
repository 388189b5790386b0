"""The int8 backend check: calibrate int8 activation ranges, then score int8 against fp32.

After training (``evaluation.backend_check``, on by default) and on demand
(``lepton-nlp check-backends ARTIFACT``), an encoder model (classification, NER, relations,
QA) goes through two steps on the CPU:

1. **Calibration**: the fp32 model predicts up to 512 training records while hooks record
   the smallest and largest input of every Linear layer. The ``torch-int8`` backend
   quantizes activations in these fixed ranges, so a text's output never depends on the
   other texts in its batch (micro-batched serving, resumed batch jobs and Ray give the
   same answers as one text alone).
2. **Check**: fp32 and int8 predict the validation split (or, when the run had none, up to
   2,000 training records the calibration did not see) and are scored with the task's
   metrics. When int8 loses at most :data:`TOLERANCE_POINTS` on every headline metric
   (accuracy, F1, exact match), ``backend="auto"`` (the default everywhere) runs it on
   CPUs.

The ranges go to the artifact's ``quantization.json``; the check (both scores, the label
agreement, the items/s it saw) to ``metrics.json`` under ``backends`` and to the model card.
The test split is never used.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import platform
import random
import time
from pathlib import Path
from typing import Any

import torch

from lepton_nlp.artifacts import RANGES_FILE, read_artifact, read_ranges, record_backend_check
from lepton_nlp.inference.backends import int8_available, prepare_backend
from lepton_nlp.inference.predictor import Predictor, SkipVirtualTokens
from lepton_nlp.tasks import get_task

__all__ = [
    "CALIBRATION_RECORDS",
    "CHECK_RECORDS",
    "HEADLINE_METRICS",
    "RANGES_FILE",
    "TOLERANCE_POINTS",
    "calibrate",
    "check_int8",
    "cpu_description",
    "read_ranges",
    "run_backend_check",
    "sample_records",
    "supports_int8_check",
]

log = logging.getLogger(__name__)

TOLERANCE_POINTS = 0.5
CALIBRATION_RECORDS = 512
CHECK_RECORDS = 2000
#: Metrics that decide; whichever of them the task reports.
HEADLINE_METRICS = ("accuracy", "macro_f1", "micro_f1", "f1", "exact_match", "subset_accuracy")
#: Model families whose outputs are scores over fixed positions (not generated text).
_CHECKED_TYPES = ("SEQ_CLS", "TOKEN_CLS", "QUESTION_ANS")


def supports_int8_check(task: Any) -> bool:
    return getattr(task, "peft_task_type", None) in _CHECKED_TYPES


def sample_records(
    splits: dict[str, list[dict]], seed: int = 42
) -> tuple[list[dict], list[dict], str]:
    """Calibration records (training data) and check records, and where the latter come from.

    The check uses the validation split when there is one; else training records the
    calibration sample does not hold. Never the test split.
    """
    train = list(splits.get("train") or [])
    random.Random(seed).shuffle(train)
    calibration = train[:CALIBRATION_RECORDS]
    validation = list(splits.get("validation") or [])
    if validation:
        random.Random(seed).shuffle(validation)
        return calibration, validation[:CHECK_RECORDS], "validation"
    return calibration, train[CALIBRATION_RECORDS : CALIBRATION_RECORDS + CHECK_RECORDS], "train"


def _unwrapped(model: Any) -> Any:
    """The model the backends quantize: without the Predictor's virtual-token wrapper, so
    layer names match what ``prepare_backend`` sees when it loads the artifact."""
    return model.model if isinstance(model, SkipVirtualTokens) else model


def calibrate(predictor: Any, records: list[dict]) -> dict[str, list[float]]:
    """Smallest and largest input of each Linear layer while ``predictor`` predicts ``records``."""
    ranges: dict[str, list[float]] = {}
    handles = []

    def observe(name: str):
        def hook(module: torch.nn.Module, args: tuple) -> None:
            x = args[0]
            low, high = float(x.min()), float(x.max())
            seen = ranges.setdefault(name, [low, high])
            seen[0], seen[1] = min(seen[0], low), max(seen[1], high)

        return hook

    for name, module in _unwrapped(predictor.model).named_modules():
        if isinstance(module, torch.nn.Linear):
            handles.append(module.register_forward_pre_hook(observe(name)))
    try:
        predictor.predict(records)
    finally:
        for handle in handles:
            handle.remove()
    return ranges


def cpu_description() -> str:
    """The CPU's model, family and whether it has VNNI: int8 speed differs between CPU
    generations (the machine's architecture name where ``/proc/cpuinfo`` is missing)."""
    try:
        lines = Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines()[:30]
    except OSError:
        return platform.machine()
    fields = {
        k.strip(): v.strip() for k, v in (line.split(":", 1) for line in lines if ":" in line)
    }
    vnni = "VNNI" if "vnni" in fields.get("flags", "") else "no VNNI"
    return (
        f"{fields.get('model name', platform.machine())}, family {fields.get('cpu family', '?')} "
        f"model {fields.get('model', '?')}, {vnni}"
    )


def _machine() -> str:
    return f"{cpu_description()}, {torch.get_num_threads()} torch threads"


def _headline(metrics: dict) -> dict[str, float]:
    return {k: round(float(metrics[k]), 6) for k in HEADLINE_METRICS if k in metrics}


def _agreement(a: list[dict], b: list[dict]) -> float:
    def key(p: dict) -> Any:
        for field in ("label", "labels", "tags", "answer", "relation"):
            if field in p:
                return p[field]
        return json.dumps(p, sort_keys=True)

    return sum(key(x) == key(y) for x, y in zip(a, b, strict=True)) / max(len(a), 1)


def check_int8(
    path: str | Path,
    calibration: list[dict],
    records: list[dict],
    source: str,
    batch_size: int = 32,
) -> tuple[dict, dict]:
    """Calibrate the int8 ranges of the artifact at ``path`` and score int8 against fp32.

    Returns:
        ``(quantization, check)``: the ranges document (``quantization.json``) and the check
        (``metrics.json`` ``backends``).
    """
    fp32 = Predictor.from_artifact(path, device="cpu", backend="torch", batch_size=batch_size)
    ranges = calibrate(fp32, calibration)
    # What the torch-int8 backend builds from the artifact, from a plain (unpacked) copy.
    plain = Predictor.from_artifact(path, device="cpu", backend="torch", packing=False)
    int8_model = prepare_backend(
        _unwrapped(plain.model), plain.tokenizer, plain.task, "torch-int8", int8_ranges=ranges
    )
    del plain
    int8 = Predictor.from_model(
        int8_model,
        fp32.tokenizer,
        fp32.info,
        batch_size=batch_size,
        streams=fp32.streams.count if fp32.streams else 1,  # timed alike
    )
    int8.backend = "torch-int8"

    fp32.task.check_records(records, fp32.spec, "backend check")
    scores, outputs, speed = {}, {}, {}
    for name, predictor in (("torch", fp32), ("torch-int8", int8)):
        predictor.predict(records[:16])  # warm-up
        started = time.perf_counter()
        outputs[name] = predictor.predict(records)
        speed[name] = round(len(records) / (time.perf_counter() - started), 1)
        scores[name] = _headline(fp32.task.evaluate_predictions(outputs[name], records, fp32.spec))
    if not scores["torch"]:
        raise ValueError(
            f"The {fp32.task.name} task reports none of {', '.join(HEADLINE_METRICS)}; the int8 "
            "check has nothing to compare."
        )
    loss = max(100 * (scores["torch"][k] - scores["torch-int8"][k]) for k in scores["torch"])
    within = loss <= TOLERANCE_POINTS
    check = {
        "checked_on": source,
        "examples": len(records),
        "calibration_examples": len(calibration),
        "torch": scores["torch"],
        "torch-int8": scores["torch-int8"],
        "int8_loss_points": round(loss, 2),
        "tolerance_points": TOLERANCE_POINTS,
        "label_agreement": round(_agreement(outputs["torch"], outputs["torch-int8"]), 4),
        "items_per_second": speed,
        "cpu_default": "torch-int8" if within else "torch",
        "machine": _machine(),
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    quantization = {
        "method": "int8 Linear layers: weights per output channel, activations in fixed ranges",
        "calibration": {"split": "train", "examples": len(calibration)},
        "ranges": {name: [round(lo, 6), round(hi, 6)] for name, (lo, hi) in ranges.items()},
    }
    return quantization, check


def run_backend_check(
    path: str | Path, splits: dict[str, list[dict]], seed: int = 42, batch_size: int = 32
) -> dict | None:
    """Calibrate and check the artifact at ``path``; record both in it. None if not applicable."""
    info = read_artifact(path)
    if not supports_int8_check(get_task(info.task_version)) or not int8_available():
        return None
    calibration, records, source = sample_records(splits, seed)
    if not calibration or not records:
        log.info("No records for the int8 backend check; backend=auto stays fp32.")
        return None
    quantization, check = check_int8(path, calibration, records, source, batch_size)
    record_backend_check(path, quantization, check)
    log.info(
        "int8 backend check on %d %s records: loss %.2f points, label agreement %.4f -> %s",
        check["examples"],
        source,
        check["int8_loss_points"],
        check["label_agreement"],
        check["cpu_default"],
    )
    return check
