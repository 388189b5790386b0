"""Intent confidence that means what it says: temperature scaling and thresholds fitted on validation.

Everything here is a pure function of validation scores and labels (numpy arrays), so the
choices are testable and never see test data:

- :func:`fit_temperature`: one temperature ``T`` minimising the negative log-likelihood of the
  validation labels under ``softmax(log p / T)`` (Guo et al. 2017). Dividing every log
  probability by the same ``T > 0`` keeps their order, so the top intent never changes.
- :func:`choose_oos_threshold`: the lowest top calibrated probability still taken as in
  scope, chosen on in-scope and out-of-scope validation messages by a stated criterion.
- :func:`choose_margin`: how close the top two calibrated probabilities may be before the
  bot asks the customer to confirm.

:class:`Calibration` holds the three numbers plus how they were chosen, and reads and writes
``calibration.json`` next to the model.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "CALIBRATION_FILE",
    "CRITERIA",
    "DEFAULT_MARGIN",
    "Calibration",
    "apply_temperature",
    "auroc",
    "choose_margin",
    "choose_oos_threshold",
    "expected_calibration_error",
    "fit_calibration",
    "fit_temperature",
    "log_probabilities",
    "nll",
]

CALIBRATION_FILE = "calibration.json"

#: Criteria :func:`choose_oos_threshold` knows.
CRITERIA = ("balanced", "retention")

#: Top-two gap under which an answer is ambiguous when no margin was fitted.
DEFAULT_MARGIN = 0.1

#: Probabilities are floored here before the log (a Predictor rounds them to 6 decimals).
_FLOOR = 1e-7


def log_probabilities(scores: Any, labels: list[str] | None = None) -> np.ndarray:
    """Log probabilities as an ``(n, k)`` array from Predictor outputs or a probability array.

    Args:
        scores: an ``(n, k)`` array of probabilities, or a list of Predictor ``scores`` dicts
            (label -> probability), read in the order of ``labels``.
        labels: the label order for dicts (default: the first dict's order).
    """
    if len(scores) and isinstance(scores[0], dict):
        order = labels or list(scores[0])
        scores = [[row[label] for label in order] for row in scores]
    probs = np.asarray(scores, dtype=np.float64)
    if probs.ndim != 2:
        raise ValueError(f"scores must be (examples, labels); got shape {probs.shape}.")
    return np.log(np.clip(probs, _FLOOR, 1.0))


def apply_temperature(log_probs: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log_probs / temperature)`` row by row."""
    z = np.asarray(log_probs, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def nll(log_probs: np.ndarray, targets: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of ``targets`` (label indices) at ``temperature``."""
    z = np.asarray(log_probs, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))
    picked = z[np.arange(len(z)), np.asarray(targets)]
    return float(np.mean(log_norm - picked))


def fit_temperature(
    log_probs: np.ndarray, targets: np.ndarray, bounds: tuple[float, float] = (0.05, 20.0)
) -> float:
    """The temperature minimising validation NLL (bounded 1-D search over ``log T``).

    Args:
        log_probs: ``(n, k)`` validation log probabilities (:func:`log_probabilities`).
        targets: ``(n,)`` index of each example's true label.
        bounds: the search interval for ``T``.

    Raises:
        ValueError: no examples, or shapes that do not match.
    """
    from scipy.optimize import minimize_scalar

    log_probs = np.asarray(log_probs, dtype=np.float64)
    targets = np.asarray(targets)
    if len(log_probs) == 0 or len(log_probs) != len(targets):
        raise ValueError(
            f"fit_temperature needs as many targets as rows, got {len(log_probs)} rows and "
            f"{len(targets)} targets."
        )
    lo, hi = math.log(bounds[0]), math.log(bounds[1])
    best = minimize_scalar(
        lambda t: nll(log_probs, targets, math.exp(t)), bounds=(lo, hi), method="bounded"
    )
    temperature = math.exp(best.x)
    # The bounded search can stop a hair off; never return worse than leaving things alone.
    if nll(log_probs, targets, temperature) > nll(log_probs, targets, 1.0):
        return 1.0
    return float(temperature)


def auroc(scores_positive: np.ndarray, scores_negative: np.ndarray) -> float:
    """Probability that a positive scores above a negative (ties count half): ROC AUC."""
    from sklearn.metrics import roc_auc_score

    y = np.r_[np.ones(len(scores_positive)), np.zeros(len(scores_negative))]
    return float(roc_auc_score(y, np.r_[scores_positive, scores_negative]))


def choose_oos_threshold(
    in_scope_confidence: np.ndarray,
    in_scope_correct: np.ndarray,
    oos_confidence: np.ndarray,
    criterion: str = "balanced",
    min_retention: float = 0.95,
) -> dict[str, float | str]:
    """Choose the confidence under which a message is out of scope, on validation data only.

    A message is out of scope when its top calibrated probability is below the threshold.
    Candidates are the midpoints between neighbouring observed confidences (plus both ends).

    Args:
        in_scope_confidence: top calibrated probability of in-scope validation messages.
        in_scope_correct: whether the top intent of each was right (bool array).
        oos_confidence: top calibrated probability of out-of-scope validation messages.
        criterion: ``balanced``: maximise the mean of in-scope accuracy (a message counts
            only when kept *and* right) and out-of-scope recall; neither depends on how many
            of each the validation set holds. ``retention``: the highest threshold that
            still keeps at least ``min_retention`` of the in-scope messages, so out-of-scope
            recall is as high as that allows.
        min_retention: for ``retention``.

    Returns:
        ``threshold``, ``criterion`` and the validation figures at that threshold
        (``in_scope_accuracy``, ``in_scope_retention``, ``oos_recall``, ``objective``).

    Raises:
        ValueError: an unknown criterion, or no in-scope or no out-of-scope examples.
    """
    if criterion not in CRITERIA:
        raise ValueError(f"criterion={criterion!r}; choose one of {', '.join(CRITERIA)}.")
    ins = np.asarray(in_scope_confidence, dtype=np.float64)
    correct = np.asarray(in_scope_correct, dtype=bool)
    oos = np.asarray(oos_confidence, dtype=np.float64)
    if len(ins) == 0 or len(oos) == 0:
        raise ValueError(
            "choose_oos_threshold needs in-scope and out-of-scope validation examples; got "
            f"{len(ins)} and {len(oos)}."
        )
    values = np.unique(np.r_[ins, oos])
    candidates = np.r_[0.0, (values[:-1] + values[1:]) / 2, values[-1] + 1e-9]

    def figures(t: float) -> dict[str, float]:
        kept = ins >= t
        return {
            "in_scope_accuracy": float(np.mean(kept & correct)),
            "in_scope_retention": float(np.mean(kept)),
            "oos_recall": float(np.mean(oos < t)),
        }

    best_t, best_value = 0.0, -math.inf
    for t in candidates:
        f = figures(float(t))
        if criterion == "balanced":
            value = (f["in_scope_accuracy"] + f["oos_recall"]) / 2
        else:
            value = float(t) if f["in_scope_retention"] >= min_retention else -math.inf
        if value > best_value:  # ties keep the lower threshold: fewer customers turned away
            best_t, best_value = float(t), value
    out: dict[str, float | str] = {"threshold": best_t, "criterion": criterion}
    out.update(figures(best_t))
    out["objective"] = best_value if criterion == "balanced" else out["oos_recall"]
    if criterion == "retention":
        out["min_retention"] = min_retention
    return out


def choose_margin(
    top1: np.ndarray, top2: np.ndarray, correct: np.ndarray, max_flagged: float = 0.15
) -> dict[str, float]:
    """The top-two gap under which the bot asks to confirm, chosen on validation messages.

    Criterion: the margin that best separates wrong answers from right ones (Youden's J:
    share of errors flagged minus share of right answers flagged), among margins that flag
    at most ``max_flagged`` of the messages (each flag costs the customer one more turn).

    Args:
        top1, top2: the two highest calibrated probabilities of each (kept, in-scope)
            validation message.
        correct: whether its top intent was right.
        max_flagged: the largest share of messages the margin may flag.

    Returns:
        ``margin``, ``flagged`` (share flagged), ``errors_flagged``, ``correct_flagged`` and
        ``accuracy_unflagged`` on validation.
    """
    gap = np.asarray(top1, dtype=np.float64) - np.asarray(top2, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    if len(gap) == 0:
        raise ValueError("choose_margin needs validation examples; got none.")
    errors = ~correct
    values = np.unique(gap)
    candidates = np.r_[0.0, (values[:-1] + values[1:]) / 2]
    best: dict[str, float] = {}
    best_j = -math.inf
    for m in candidates:
        flagged = gap < m
        if flagged.mean() > max_flagged:
            break  # candidates ascend, so every later one flags more
        err = float(flagged[errors].mean()) if errors.any() else 0.0
        ok = float(flagged[correct].mean()) if correct.any() else 0.0
        if err - ok > best_j:
            kept = ~flagged
            best_j = err - ok
            best = {
                "margin": float(m),
                "flagged": float(flagged.mean()),
                "errors_flagged": err,
                "correct_flagged": ok,
                "accuracy_unflagged": float(correct[kept].mean()) if kept.any() else 0.0,
                "max_flagged": max_flagged,
            }
    return best


@dataclass
class Calibration:
    """What turns a Predictor's scores into the bot's confidence and decisions."""

    temperature: float = 1.0
    """Log probabilities are divided by this before the softmax (1: as the model says)."""
    oos_threshold: float = 0.0
    """Top calibrated probability under which a message is out of scope (0: never)."""
    margin: float = DEFAULT_MARGIN
    """Top-two calibrated gap under which an answer is ambiguous."""
    chosen: dict[str, Any] = field(default_factory=dict)
    """How each number was chosen (criterion, data, source)."""
    validation: dict[str, Any] = field(default_factory=dict)
    """Validation figures at the chosen values (NLL before/after, accuracy, recall...)."""

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}.")
        if not 0.0 <= self.oos_threshold <= 1.0 + 1e-6:
            raise ValueError(f"oos_threshold must be in [0, 1], got {self.oos_threshold}.")
        if not 0.0 <= self.margin <= 1.0:
            raise ValueError(f"margin must be in [0, 1], got {self.margin}.")

    def save(self, folder: str | Path) -> Path:
        """Write ``calibration.json`` into ``folder`` (the model's artifact folder)."""
        path = Path(folder) / CALIBRATION_FILE
        path.write_text(json.dumps(dataclasses.asdict(self), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, folder: str | Path) -> Calibration | None:
        """The ``calibration.json`` in ``folder``, or None when it has none."""
        path = Path(folder) / CALIBRATION_FILE
        if not path.is_file():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def _top2(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index of the top label, its probability and the runner-up's, row by row."""
    order = np.argsort(-probs, axis=1)
    rows = np.arange(len(probs))
    second = probs[rows, order[:, 1]] if probs.shape[1] > 1 else np.zeros(len(probs))
    return order[:, 0], probs[rows, order[:, 0]], second


def fit_calibration(
    log_probs: np.ndarray,
    targets: np.ndarray,
    oos_log_probs: np.ndarray | None = None,
    criterion: str = "retention",
    oos_threshold: float | None = None,
    min_retention: float = 0.95,
    max_flagged: float = 0.15,
    source: str = "",
) -> Calibration:
    """Temperature, out-of-scope threshold and ambiguity margin, all from validation data.

    Args:
        log_probs: ``(n, k)`` log probabilities of in-scope validation messages.
        targets: their true label indices.
        oos_log_probs: ``(m, k)`` log probabilities of out-of-scope validation messages
            (intents the model never saw); with them the threshold is chosen here by
            ``criterion`` (:func:`choose_oos_threshold`).
        criterion: ``retention`` (keep >= ``min_retention`` of in-scope messages) or
            ``balanced`` (:func:`choose_oos_threshold`).
        oos_threshold: a threshold chosen elsewhere (in calibrated probability, e.g. on a
            held-out-intent experiment with the same recipe), used when there are no
            out-of-scope validation messages; None and none: 0, nothing out of scope.
        min_retention: for ``retention``.
        max_flagged: largest share of kept in-scope messages the margin may flag.
        source: a note saying which data this was fitted on (recorded in ``chosen``).
    """
    targets = np.asarray(targets)
    temperature = fit_temperature(log_probs, targets)
    probs = apply_temperature(log_probs, temperature)
    top, top1, top2 = _top2(probs)
    correct = top == targets
    validation: dict[str, Any] = {
        "in_scope_examples": len(targets),
        "nll_before": round(nll(log_probs, targets, 1.0), 5),
        "nll_after": round(nll(log_probs, targets, temperature), 5),
        "ece_before": round(
            expected_calibration_error(apply_temperature(log_probs, 1.0), targets), 5
        ),
        "ece_after": round(expected_calibration_error(probs, targets), 5),
        "accuracy": round(float(correct.mean()), 5),
    }
    chosen: dict[str, Any] = {
        "temperature": "minimises the NLL of in-scope validation labels (bounded 1-D search)",
        "data": source,
    }
    threshold = 0.0
    if oos_log_probs is not None and len(oos_log_probs):
        _, oos_top1, _ = _top2(apply_temperature(oos_log_probs, temperature))
        picked = choose_oos_threshold(top1, correct, oos_top1, criterion, min_retention)
        threshold = float(picked["threshold"])
        chosen["oos_threshold"] = (
            f"{criterion}: "
            + (
                "maximises (in-scope accuracy counting only kept messages + OOS recall) / 2"
                if criterion == "balanced"
                else f"highest threshold keeping >= {min_retention:.0%} of in-scope messages"
            )
            + " on validation"
        )
        validation["oos_examples"] = len(oos_log_probs)
        validation["oos_auroc"] = round(auroc(-oos_top1, -top1), 5)
        validation.update(
            {f"at_threshold_{k}": round(v, 5) for k, v in picked.items() if isinstance(v, float)}
        )
    elif oos_threshold is not None:
        threshold = float(oos_threshold)
        chosen["oos_threshold"] = "given (chosen elsewhere; see source)"
        kept = top1 >= threshold
        validation["at_threshold_in_scope_retention"] = round(float(kept.mean()), 5)
        validation["at_threshold_in_scope_accuracy"] = round(float((kept & correct).mean()), 5)
    else:
        chosen["oos_threshold"] = "none: no out-of-scope validation data"
    kept = top1 >= threshold
    margin = DEFAULT_MARGIN
    if kept.sum() >= 2 and (~correct[kept]).any():
        picked_margin = choose_margin(top1[kept], top2[kept], correct[kept], max_flagged)
        if picked_margin:
            margin = picked_margin["margin"]
            chosen["margin"] = (
                "Youden's J (errors flagged - right answers flagged) on kept in-scope "
                f"validation messages, flagging at most {max_flagged:.0%}"
            )
            validation.update({f"margin_{k}": round(v, 5) for k, v in picked_margin.items()})
    else:
        chosen["margin"] = f"default {DEFAULT_MARGIN}: no validation errors to separate"
    return Calibration(
        round(temperature, 6), round(threshold, 6), round(margin, 6), chosen, validation
    )


def expected_calibration_error(probs: np.ndarray, targets: np.ndarray, bins: int = 15) -> float:
    """ECE: mean |accuracy - confidence| over equal-width confidence bins, weighted by size."""
    top, confidence, _ = _top2(np.asarray(probs))
    correct = top == np.asarray(targets)
    edges = np.linspace(0.0, 1.0, bins + 1)
    total = 0.0
    for lo, hi in itertools.pairwise(edges):
        inside = (confidence > lo) & (confidence <= hi)
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(total)
