"""Evaluation reports: a model's metrics on labelled records, its worst errors with their
texts, and the entities, answers or arguments marked in a text."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from apps.studio.errors import StudioError
from apps.studio.summary import marked_text

__all__ = [
    "EvalReport",
    "evaluate_artifact",
    "format_metric",
    "headline_metrics",
    "highlight_entities",
    "relation_spans",
]


_PERCENT_SCALE = ("bleu", "chrf")  # sacrebleu's scores are in [0, 100]


def headline_metrics(task: str, metrics: dict[str, float]) -> list[str]:
    """Names of the metrics to show first for ``task``, those present in ``metrics``: the
    task's ``headline_metrics``, else the metrics it can select a checkpoint by."""
    from lepton_nlp.tasks import get_task

    adapter = get_task(task)
    names = getattr(adapter, "headline_metrics", None) or [
        name for name in adapter.metric_names(False) if name != "loss"
    ]
    return [k for k in names if k in metrics]


def format_metric(name: str, value: float) -> str:
    """A metric as shown: BLEU and chrF (0-100) with one decimal, fractions with three."""
    return f"{value:.1f}" if name in _PERCENT_SCALE else f"{value:.3f}"


@dataclass
class EvalReport:
    """Metrics of an artifact on labelled records, with what a person needs to read them."""

    metrics: dict[str, float]
    labels: list[str]
    confusion: list[list[int]] | None
    per_label: dict[str, float]
    errors: list[dict]
    """The worst predictions, worst first; their keys are the columns the page shows."""
    task: str = ""
    backend: str = ""
    """The inference backend that made the predictions (``torch-int8``, ``torch``...)."""


def _label_errors(records: list[dict], predictions: list[dict]) -> list[dict]:
    errors = []
    for r, p in zip(records, predictions, strict=True):
        if str(p["label"]) != str(r["label"]):
            text = marked_text(r) if "head" in r and "tail" in r else r.get("text", "")
            errors.append(
                {
                    "text": text,
                    "true": str(r["label"]),
                    "predicted": str(p["label"]),
                    "confidence": round(float(p["score"]), 3),
                }
            )
    return sorted(errors, key=lambda e: -e["confidence"])


def _qa_errors(records: list[dict], predictions: list[dict]) -> list[dict]:
    from lepton_nlp.evaluation.squad import exact_match_score, f1_score

    errors = []
    for r, p in zip(records, predictions, strict=True):
        golds = r["answers"]["text"]
        answer = p["answer"]
        if golds:
            exact = max(exact_match_score(answer, g) for g in golds)
            f1 = max(f1_score(answer, g) for g in golds)
        else:  # a question without an answer: only an empty prediction is right
            exact = f1 = float(answer == "")
        if exact < 1.0:
            errors.append(
                {
                    "question": r["question"],
                    "expected": " | ".join(golds) or "(no answer)",
                    "predicted": answer or "(no answer)",
                    "F1": round(f1, 3),
                    "confidence": round(float(p["score"]), 3),
                    "context": r["context"],
                }
            )
    # Wrong and sure of it first: those teach the most about the model.
    return sorted(errors, key=lambda e: (e["F1"], -e["confidence"]))


def _generation_errors(task: str, records: list[dict], predictions: list[dict]) -> list[dict]:
    """Every example with its own score (summaries: ROUGE-L, translations: chrF), lowest first."""
    outputs = [p["generated_text"] for p in predictions]
    from lepton_nlp.evaluation.generation import as_references

    references = [as_references(r["target"]) for r in records]
    if task == "translation":
        import sacrebleu

        name = "chrF"
        scores = [
            sacrebleu.sentence_chrf(o, refs).score
            for o, refs in zip(outputs, references, strict=True)
        ]
    else:
        from rouge_score import rouge_scorer

        name = "ROUGE-L"
        scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
        scores = [
            scorer.score_multi(refs, o or "")["rougeL"].fmeasure
            for o, refs in zip(outputs, references, strict=True)
        ]
    rows = [
        {
            "source": r["source"],
            "reference": " | ".join(refs),
            "output": output,
            name: round(float(score), 3),
        }
        for r, refs, output, score in zip(records, references, outputs, scores, strict=True)
    ]
    return sorted(rows, key=lambda e: e[name])


def evaluate_artifact(predictor: Any, records: list[dict], worst: int = 10) -> EvalReport:
    """Predict ``records`` with ``predictor`` and score them: metrics, confusion, worst errors.

    The metrics are made as :meth:`Predictor.evaluate` (what ``lepton-nlp eval`` prints)
    makes them: the task's record check, one ``predict`` over all records, the task's
    ``evaluate_predictions``; the same predictions then give the confusion and the errors.

    The worst errors follow the task: confident wrong labels (classification, relations,
    with the relation's arguments marked in the text), sentences with most wrong tags
    (NER), wrong answers with the question and the gold answer (QA), and the outputs that
    score lowest against their references (summarization, translation).
    """
    if not records:
        raise StudioError(
            "There are no labelled records to evaluate on; choose another split or file."
        )
    predictor.task.check_records(records, predictor.spec, "evaluation")
    predictions = predictor.predict(records)
    metrics = predictor.task.evaluate_predictions(predictions, records, predictor.spec)
    labels = list(predictor.spec.labels)
    per_label = {k[3:]: v for k, v in metrics.items() if k.startswith("f1_")}
    confusion = None
    errors: list[dict] = []
    if predictions and "label" in predictions[0] and "label" in records[0]:
        from sklearn.metrics import confusion_matrix

        refs = [str(r["label"]) for r in records]
        preds = [str(p["label"]) for p in predictions]
        confusion = confusion_matrix(refs, preds, labels=labels).tolist()
        errors = _label_errors(records, predictions)
    elif predictions and "tags" in predictions[0]:
        per_label = {
            k.split("_", 1)[1]: v
            for k, v in metrics.items()
            if k.startswith("f1_") or (k.endswith("_f1") and k != "f1")
        } or per_label
        for r, p in zip(records, predictions, strict=True):
            wrong = sum(a != b for a, b in zip(r["tags"], p["tags"], strict=False))
            if wrong:
                text = p.get("text") or " ".join(r["tags"])
                gold = predictor.task.entities_from_tags(r["tokens"], r["tags"])
                errors.append(
                    {
                        "text": text,
                        "wrong tags": wrong,
                        "gold": ", ".join(f"{e['text']} ({e['label']})" for e in gold),
                        "predicted": ", ".join(
                            f"{e['text']} ({e['label']})" for e in p["entities"]
                        ),
                        "entities": p["entities"],
                    }
                )
        errors.sort(key=lambda e: -e["wrong tags"])
    elif predictions and "answer" in predictions[0]:
        errors = _qa_errors(records, predictions)
    elif predictions and "generated_text" in predictions[0]:
        errors = _generation_errors(predictor.task.name, records, predictions)
    return EvalReport(
        metrics={k: v for k, v in metrics.items() if isinstance(v, int | float)},
        labels=labels,
        confusion=confusion,
        per_label=per_label,
        errors=errors[:worst],
        task=predictor.task.name,
        backend=str(getattr(predictor, "backend", "")),
    )


_COLOURS = ["#fde68a", "#bfdbfe", "#bbf7d0", "#fecaca", "#ddd6fe", "#fed7aa", "#a5f3fc"]


_FIXED = {
    "PER": _COLOURS[0],
    "ORG": _COLOURS[1],
    "LOC": _COLOURS[2],
    "MISC": _COLOURS[4],
    "answer": _COLOURS[2],
    "head": _COLOURS[3],
    "tail": _COLOURS[1],
}


def _entity_colour(label: str) -> str:
    # The same type has the same colour in every sentence (and every session).
    return _FIXED.get(label) or _COLOURS[sum(map(ord, label)) % len(_COLOURS)]


def highlight_entities(text: str, entities: list[dict]) -> str:
    """HTML of ``text`` with each entity span marked and labelled (text is escaped)."""
    colour = {t: _entity_colour(t) for t in {e["label"] for e in entities}}
    out, last = [], 0
    for e in sorted(entities, key=lambda e: e["start"]):
        if e["start"] < last:
            continue
        out.append(html.escape(text[last : e["start"]]))
        out.append(
            f'<mark style="background:{colour[e["label"]]};padding:0 4px;border-radius:4px">'
            f"{html.escape(text[e['start'] : e['end']])} <b style='font-size:0.75em'>{html.escape(e['label'])}</b></mark>"
        )
        last = e["end"]
    out.append(html.escape(text[last:]))
    return "".join(out)


def relation_spans(prediction: dict) -> list[dict]:
    """The head and tail of a relation input or prediction as spans for :func:`highlight_entities`."""
    return [
        {"label": name, "start": prediction[name]["start"], "end": prediction[name]["end"]}
        for name in ("head", "tail")
    ]
