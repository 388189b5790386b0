"""Typed relations on the held-out part of the project's relation set, and entity resolution.

python bench/finance_relations.py [--model data/models/finance-relations]

**Relations** (``data/finance/relations/test.jsonl``: wordings and names that training and
validation never saw, see ``make_relations.py``): every record is one entity pair of a
sentence in text order with its gold label (``acquires(e2,e1)``, ``partners_with``,
``other``...). Three extractors label each pair:

- ``model``: the shipped relation model (argmax; below the pipeline's
  ``relation_threshold`` a relation counts as ``other``, as the pipeline drops it);
- ``patterns``: the dependency patterns of :mod:`apps.finance.relations` on spaCy's parse;
- ``both_pattern_first`` / ``both_model_first``: :func:`apps.finance.relations.combine`
  with the pattern's (or the model's) relation winning a pair both read differently. The
  pipeline's default (``relation_prefer``) is the one with the higher validation micro-F1
  (``chosen_on_validation``).

Per relation type (``other`` left out): precision = right type and direction / predictions of
the type, recall = right / gold of the type; micro figures pool the counts. The same on the
validation part is recorded too (it chose the checkpoint).

**Entity resolution** (``data/finance/alias_pairs.jsonl``): pairs of surfaces that name the
same entity or not (legal suffixes, case, accents, tickers, short names, people's surnames;
different companies sharing a word...). Each pair is resolved with :mod:`kg.resolve`: in one
article (``within``), in two articles (``across``), or in two articles with the second name
in the alias table (``registered``); right when "same id" equals the gold answer.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from datetime import UTC, datetime

from common import ROOT, write_result

NAME = "finance_relations"
DATA = ROOT / "data" / "finance" / "relations"
ALIASES = ROOT / "data" / "finance" / "alias_pairs.jsonl"


def _type(label: str) -> str:
    return label.split("(")[0]


def score(predictions: list[str], references: list[str], prefix: str) -> dict:
    """Per-type and micro precision/recall/F1 (direction must match), ``other`` left out."""
    correct, proposed, gold = Counter(), Counter(), Counter()
    for p, r in zip(predictions, references, strict=True):
        gold[_type(r)] += 1
        proposed[_type(p)] += 1
        if p == r:
            correct[_type(r)] += 1
    out, totals = {}, Counter()
    for kind in sorted(k for k in gold if k != "other"):
        p = correct[kind] / proposed[kind] if proposed[kind] else 0.0
        r = correct[kind] / gold[kind]
        f = 2 * p * r / (p + r) if p + r else 0.0
        out.update(
            {f"{prefix}_{kind}_precision": round(p, 4), f"{prefix}_{kind}_recall": round(r, 4)}
        )
        out[f"{prefix}_{kind}_f1"] = round(f, 4)
        totals["correct"] += correct[kind]
        totals["proposed"] += proposed[kind]
        totals["gold"] += gold[kind]
    p = totals["correct"] / totals["proposed"] if totals["proposed"] else 0.0
    r = totals["correct"] / totals["gold"] if totals["gold"] else 0.0
    out[f"{prefix}_micro_precision"] = round(p, 4)
    out[f"{prefix}_micro_recall"] = round(r, 4)
    out[f"{prefix}_micro_f1"] = round(2 * p * r / (p + r) if p + r else 0.0, 4)
    out[f"{prefix}_accuracy"] = round(
        sum(a == b for a, b in zip(predictions, references, strict=True)) / len(references), 4
    )
    return out


def _label(relation, symmetric: frozenset) -> str:
    if relation is None:
        return "other"
    if relation.type in symmetric:
        return relation.type
    return f"{relation.type}(e1,e2)" if relation.head == 0 else f"{relation.type}(e2,e1)"


def relation_figures(records: list[dict], predictor, nlp, threshold: float, prefix: str) -> dict:
    from apps.finance.entities import EntitySpan
    from apps.finance.relations import PREFER, combine, pattern_relations, read_prediction
    from kg.schema import SYMMETRIC_RELATIONS

    gold = [r["label"] for r in records]
    predictions = predictor.predict(
        [{"text": r["text"], "head": r["head"], "tail": r["tail"]} for r in records]
    )
    model_raw = [p["label"] for p in predictions]
    model_found = [read_prediction(0, 1, p) for p in predictions]
    model_kept = [m if m and m.confidence >= threshold else None for m in model_found]
    docs = list(nlp.pipe([r["text"] for r in records]))
    patterns, both = [], {prefer: [] for prefer in PREFER}
    for record, doc, found in zip(records, docs, model_found, strict=True):
        entities = [
            EntitySpan(s["start"], s["end"], record["text"][s["start"] : s["end"]], s["type"], ())
            for s in (record["head"], record["tail"])
        ]
        matched = pattern_relations(doc[:], entities)
        patterns.append(matched[0] if matched else None)
        for prefer in PREFER:
            merged = combine([found] if found else [], matched, threshold, prefer)
            both[prefer].append(merged[0] if merged else None)
    figures = {f"{prefix}_pairs": len(records)}
    figures.update(score(model_raw, gold, f"{prefix}_model_argmax"))
    figures.update(
        score([_label(m, SYMMETRIC_RELATIONS) for m in model_kept], gold, f"{prefix}_model")
    )
    figures.update(
        score([_label(m, SYMMETRIC_RELATIONS) for m in patterns], gold, f"{prefix}_patterns")
    )
    for prefer, found in both.items():
        labels = [_label(m, SYMMETRIC_RELATIONS) for m in found]
        figures.update(score(labels, gold, f"{prefix}_both_{prefer}_first"))

    return figures


def resolution_figures() -> dict:
    from kg.resolve import AliasTable, EntityResolver
    from kg.schema import Article, Extraction, Mention

    published = datetime(2024, 1, 1, tzinfo=UTC)

    def extraction(article_id: str, surfaces: list[dict]) -> Extraction:
        sentence = " and ".join(s["text"] for s in surfaces) + " were in the news."
        return Extraction(
            Article(article_id, "bench", "", published, 0.0),
            tuple(Mention(article_id, s["text"], s["type"], 0, sentence, 0.0) for s in surfaces),
        )

    rows = [json.loads(line) for line in ALIASES.read_text(encoding="utf-8").splitlines() if line]
    right, by_kind, by_same = 0, Counter(), Counter()
    totals_kind, totals_same = Counter(), Counter()
    wrong = []
    for row in rows:
        a, b = row["a"], row["b"]
        aliases = (
            AliasTable.from_mapping({b["text"]: []}) if row["context"] == "registered" else None
        )
        resolver = EntityResolver(aliases)
        if row["context"] == "within":
            one = extraction("x1", [a, b])
            resolver.observe(one)
            ref_a, ref_b = resolver.resolve_article(one)
        else:
            first, second = extraction("x1", [a]), extraction("x2", [b])
            resolver.observe(first)
            resolver.observe(second)
            (ref_a,), (ref_b,) = resolver.resolve_article(first), resolver.resolve_article(second)
        ok = (ref_a.id == ref_b.id) == row["same"]
        right += ok
        by_kind[row["kind"]] += ok
        totals_kind[row["kind"]] += 1
        by_same[row["same"]] += ok
        totals_same[row["same"]] += 1
        if not ok:
            wrong.append(f"{a['text']} / {b['text']} ({row['kind']})")
    return {
        "resolution_pairs": len(rows),
        "resolution_accuracy": round(right / len(rows), 4),
        "resolution_same_pairs": totals_same[True],
        "resolution_same_accuracy": round(by_same[True] / totals_same[True], 4),
        "resolution_different_pairs": totals_same[False],
        "resolution_different_accuracy": round(by_same[False] / totals_same[False], 4),
        "resolution_wrong": "; ".join(wrong) or "none",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=str(ROOT / "data" / "models" / "finance-relations"))
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from apps.finance.pipeline import FinancePipelineConfig
    from apps.finance.sentences import load_spacy
    from lepton_nlp.data.semeval import read_relation_jsonl
    from lepton_nlp.inference import Predictor

    threshold = FinancePipelineConfig().relation_threshold
    predictor = Predictor.from_artifact(args.model)
    nlp = load_spacy()
    figures = {
        "dataset": "data/finance/relations (template- and name-disjoint test part)",
        "model": f"{predictor.info.name}@{predictor.info.created} ({predictor.backend})",
        "relation_threshold": threshold,
    }
    for split in ("test", "validation"):
        records = read_relation_jsonl(DATA / f"{split}.jsonl")
        figures.update(relation_figures(records, predictor, nlp, threshold, split))
    figures["chosen_on_validation"] = max(
        ("pattern", "model"), key=lambda p: figures[f"validation_both_{p}_first_micro_f1"]
    )
    figures["pipeline_relation_prefer"] = FinancePipelineConfig().relation_prefer
    figures.update(resolution_figures())
    # Speeds depend on what else runs: the 1-minute load average says how busy the machine was.
    figures["load_average_1min"] = round(os.getloadavg()[0], 1)
    write_result(NAME, figures)


if __name__ == "__main__":
    main()
