"""How should the bot score an FAQ entry: its question, its answer, both? Decided on validation.

Until session 18 the bot embedded each entry's question and answer and scored an entry by the
better of the two cosines. The alternatives below are compared on the two validation sets of
``bench/support_faq_fusion.py`` (the FAQ's 324 paraphrases; BANKING77 train messages against
the same 108 entries, right when the first entry answers the message's intent), never on
bank_faqs (the test):

- ``max_question_answer``: max(cos(question), cos(answer)), the bot before;
- ``question`` / ``answer``: one of the two alone;
- ``question_and_answer_text``: one embedding of "question answer";
- ``mean_question_answer``: the mean of the two cosines (what the rule chose: the bot now);
- ``max_of_three``: the best of question, answer and the joint text.

Rule, written before the run (session 18): among the variants that lose at most one point of
top-1 on either set against the bot's (then ``max_question_answer``), take the best mean
top-1; change the bot only if that beats the bot's mean by more than one point. The figures
do not depend on the bot's code (the cosines are computed here), so a rerun reproduces them.

python bench/support_faq_scoring.py
"""

from __future__ import annotations

import sys

import numpy as np
from common import ROOT, write_result
from support_faq_fusion import banking77_queries, top_k

sys.path.insert(0, str(ROOT))

#: What the bot did when the rule was applied.
CURRENT = "max_question_answer"
MIN_GAIN = 0.01
MAX_LOSS = 0.01


def variants(q: np.ndarray, a: np.ndarray, joint: np.ndarray) -> dict[str, np.ndarray]:
    """Entry scores (queries x entries) of every variant from the three cosine matrices."""
    return {
        CURRENT: np.maximum(q, a),
        "question": q,
        "answer": a,
        "question_and_answer_text": joint,
        "mean_question_answer": (q + a) / 2,
        "max_of_three": np.maximum(np.maximum(q, a), joint),
    }


def choose(rows: dict[str, dict[str, float]]) -> str:
    """The variant the rule picks (``rows``: variant -> set -> top-1)."""
    current = rows[CURRENT]
    allowed = {
        name: float(np.mean(list(r.values())))
        for name, r in rows.items()
        if all(r[s] >= current[s] - MAX_LOSS - 1e-9 for s in current)
    }
    best = max(allowed, key=lambda name: (allowed[name], name == CURRENT))
    gain = allowed[best] - float(np.mean(list(current.values())))
    return best if gain > MIN_GAIN else CURRENT


def main() -> None:
    import torch

    from apps.support.answers import load_faq
    from lepton_nlp.embeddings import SentenceEmbedder

    torch.set_num_threads(1)
    entries = load_faq(ROOT / "data" / "support" / "faq.jsonl")
    embedder = SentenceEmbedder()

    def encode(texts: list[str]) -> np.ndarray:
        return np.asarray(embedder.encode(texts, normalize=True))

    questions = encode([e.question for e in entries])
    answers = encode([e.answer for e in entries])
    joint = encode([f"{e.question} {e.answer}" for e in entries])
    pairs = [(p, n) for n, e in enumerate(entries) for p in e.paraphrases]
    texts, intents = banking77_queries(entries)
    entry_intents = np.array([e.intent for e in entries])
    sets = {
        "paraphrases": (
            [p for p, _ in pairs],
            np.array([np.arange(len(entries)) == n for _, n in pairs]),
        ),
        "banking77_train": (texts, np.array([entry_intents == i for i in intents])),
    }
    top1: dict[str, dict[str, float]] = {}
    top5: dict[str, dict[str, float]] = {}
    for name, (queries, right) in sets.items():
        v = encode(queries)
        for variant, scores in variants(v @ questions.T, v @ answers.T, v @ joint.T).items():
            top1.setdefault(variant, {})[name] = top_k(scores, right, 1)
            top5.setdefault(variant, {})[name] = top_k(scores, right, 5)
    chosen = choose(top1)
    figures = {
        "validation": "data/support/faq.jsonl paraphrases; BANKING77 train messages against "
        "the same entries (bench/support_faq_fusion.py)",
        "test_read": False,
        "queries": {name: len(q) for name, (q, _) in sets.items()},
        "embedding_model": embedder.model_name,
        "top1": top1,
        "top5": top5,
        "mean_top1": {k: round(float(np.mean(list(v.values()))), 4) for k, v in top1.items()},
        "current": CURRENT,
        "chosen": chosen,
        "change_the_bot": chosen != CURRENT,
        "rule": f"variants losing at most {MAX_LOSS} top-1 on either set; the best mean top-1; "
        f"change only if it beats the current mean by more than {MIN_GAIN}",
    }
    for variant in top1:
        print(f"{variant:<28}{top1[variant]}  mean {figures['mean_top1'][variant]}")
    write_result("support_faq_scoring", figures)


if __name__ == "__main__":
    main()
