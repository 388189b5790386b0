"""The bot's answer step (FAQ, then policy QA under the fitted thresholds) on policy questions.

Reads the shipped ``data/support`` (FAQ, policies, ``policy_qa.json``, ``out_of_scope.txt``,
``thresholds.json`` as fitted by ``python -m apps.support.answers fit``) and the shipped
``data/models/support-policy-qa``. Every question of ``policy_qa.json`` goes through
``AnswerFinder.find_many`` as the bot asks it, grouped by the QA model's document split
(``bench/results/support_policy_qa.json``): training, validation (where the QA threshold was
chosen) and test (never trained on, never chosen on). A policy answer is right when its span
overlaps the reference with token F1 >= 0.5 (the criterion the threshold was fitted with);
a FAQ answer to a policy question is counted apart, with how many FAQ answers contain the
reference answer verbatim (case aside): the FAQ may answer the topic without the fact asked.
The 121 ``out_of_scope.txt`` lines show how often the answer step answers what it should not
(they were used to fit the thresholds: validation figures).

Each set is asked twice: ``with_intents``, as the bot asks since session 18, with the intent
the shipped intent model understood (``find_many(questions, intents)``: that intent's FAQ
entry first); a question the model calls out of scope or ambiguous is asked without one (the
bot itself would confirm or decline it before asking); and ``without_intents``, the search
alone (the bot before).

python bench/support_policy_answers.py
"""

from __future__ import annotations

import json
import sys
import time

from common import ROOT, write_result

sys.path.insert(0, str(ROOT))


def tally(answers: list, questions: list[tuple[str, str]], token_f1) -> dict:
    """What the answer step did with policy questions ``(question, reference)``."""
    policy = [
        (a, ref) for a, (_, ref) in zip(answers, questions, strict=True) if a and a.kind == "policy"
    ]
    right = sum(token_f1(a.span or a.text, ref) >= 0.5 for a, ref in policy)
    return {
        "faq_answered": sum(a is not None and a.kind == "faq" for a in answers),
        "faq_by_intent": sum(a is not None and a.matched_by == "intent" for a in answers),
        "faq_holding_the_reference": sum(
            a is not None and a.kind == "faq" and ref.lower() in a.text.lower()
            for a, (_, ref) in zip(answers, questions, strict=True)
        ),
        "policy_answered": len(policy),
        "policy_right": right,
        "policy_wrong": len(policy) - right,
        "declined": sum(a is None for a in answers),
        "policy_precision": round(right / len(policy), 4) if policy else None,
    }


def main() -> None:
    from apps.support.answers import AnswerFinder, _lines, _policy_validation, _token_f1
    from apps.support.dialogue import INTENT_MODEL
    from apps.support.understanding import SupportNLU

    folder = ROOT / "data" / "support"
    splits = json.loads((ROOT / "bench/results/support_policy_qa.json").read_text())
    finder = AnswerFinder.from_folder(folder, policy_qa=ROOT / "data/models/support-policy-qa")
    if finder.thresholds.qa is None:
        raise SystemExit(
            "thresholds.json has no QA threshold: run python -m apps.support.answers fit"
        )
    nlu = SupportNLU.from_artifact(ROOT / INTENT_MODEL, spacy_model=None, sentiment=None)

    def intents(texts: list[str]) -> list[str | None]:
        return [
            None if u.out_of_scope or u.ambiguous else u.intent for u in nlu.understand_many(texts)
        ]

    figures: dict = {
        "faq_threshold": finder.thresholds.faq,
        "qa_threshold": finder.thresholds.qa,
        "qa_threshold_chosen_on": finder.thresholds.details["qa"].get("validation_documents"),
        "right_if": "policy answer: token F1 of the span against the reference >= 0.5",
    }
    started = time.perf_counter()
    for split in ("train", "validation", "test"):
        documents = splits[f"policy_{split}_documents"]
        questions = _policy_validation(folder, documents)
        texts = [q for q, _ in questions]
        understood = intents(texts)
        figures[split] = {
            "documents": documents,
            "questions": len(questions),
            "with_an_intent": sum(i is not None for i in understood),
            "with_intents": tally(finder.find_many(texts, understood), questions, _token_f1),
            "without_intents": tally(finder.find_many(texts), questions, _token_f1),
        }
        print(split, figures[split], flush=True)
    out_of_scope = _lines(folder / "out_of_scope.txt")
    figures["out_of_scope"] = {"queries": len(out_of_scope)}
    for name, asked in (
        ("with_intents", intents(out_of_scope)),
        ("without_intents", None),
    ):
        answers = finder.find_many(out_of_scope, asked)
        figures["out_of_scope"][name] = {
            "faq_answered": sum(a is not None and a.kind == "faq" for a in answers),
            "policy_answered": sum(a is not None and a.kind == "policy" for a in answers),
        }
    figures["out_of_scope"]["note"] = "used to fit the thresholds (validation figures)"
    print("out_of_scope", figures["out_of_scope"])
    figures["seconds"] = round(time.perf_counter() - started, 1)
    write_result("support_policy_answers", figures)


if __name__ == "__main__":
    main()
