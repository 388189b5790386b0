"""Does the bot answer customers' messages with the FAQ entry of what they asked? Through the bot.

Every message is one new conversation with the support bot (``SupportBot.reply``: the shipped
``banking77-intent`` model with its calibration, the shipped ``data/support`` FAQ and its
threshold, the FAQ step alone: no policy QA model, so a message the FAQ step declines is
counted as declined). The first reply is sorted into: an FAQ answer, right when the entry
answers the message's own BANKING77 intent (every FAQ entry names the intent it answers; all
77 are covered) and wrong otherwise; asked for details (the intent has a detail flow); asked
to confirm (ambiguous or unsure); out of scope; declined (understood, no answer); handed to
a person. The understanding is computed once and shared, so the two strategies differ only in
how the FAQ entry is chosen:

- ``similarity``: the best entry of the whole FAQ by its score, answered at or above the FAQ
  threshold (how the bot chose an entry before session 18);
- ``intent``: the best entry of the intent the bot understood, at or above the intent
  threshold (``AnswerFinder.find(question, intent=...)``); the similarity search for intents
  without entries and entries under that threshold.

Decision, on validation only (the shipped model's own validation split: the config's seeded
10% of BANKING77's TRAIN.csv, 1,000 messages it never trained on; and the FAQ's 324
paraphrases, whose intent is their entry's): the bot takes the intent strategy if it answers
more validation messages right and the share of its FAQ answers that are right (precision)
is at most one point lower. Test: BANKING77's TEST.csv (3,080 messages), reported for both.
Also ``data/support/out_of_scope.txt``: how many of its lines each strategy answers (none
should be).

python bench/support_answers.py [--threads 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter

from common import ROOT, datasets_root, write_result

sys.path.insert(0, str(ROOT))

OUTCOMES = ("right", "wrong", "details", "confirm", "out_of_scope", "declined", "handoff")
#: The most answer precision the intent strategy may lose on validation and still be taken.
MAX_PRECISION_LOSS = 0.01


class IntentBlind:
    """The FAQ as the bot searched it before session 18: the understood intent is ignored."""

    def __init__(self, finder) -> None:
        self.finder = finder

    def find(self, question: str, intent: str | None = None):
        return self.finder.find(question)


def outcome(replies: list, gold: str | None, intent_of_entry: dict[str, str]) -> str:
    """What the bot's first reply did with a message whose intent is ``gold``."""
    from apps.support.dialogue import NOT_ENGLISH, SCOPE

    first = replies[0]
    custom = first.custom or {}
    if "handoff" in custom:
        return "handoff"
    if "answer" in custom:
        entry = custom["answer"]["source"].rsplit("#", 1)[-1]
        return "right" if gold is not None and intent_of_entry.get(entry) == gold else "wrong"
    if "flow" in custom:
        return "details"
    if first.buttons:
        return "confirm"
    if first.text in (SCOPE, NOT_ENGLISH):
        return "out_of_scope"
    return "declined"


def figures_for(counts: Counter, total: int) -> dict:
    answered = counts["right"] + counts["wrong"]
    out = {name: counts[name] for name in OUTCOMES}
    out["messages"] = total
    out["right_share"] = round(counts["right"] / total, 4)
    out["wrong_share"] = round(counts["wrong"] / total, 4)
    out["answered_share"] = round(answered / total, 4)
    out["precision"] = round(counts["right"] / answered, 4) if answered else None
    return out


def run_set(
    set_name: str, bots: dict, texts: list[str], gold: list[str | None], intent_of_entry
) -> dict:
    """Each message as the first of its own conversation, with each bot."""
    result = {}
    for name, bot in bots.items():
        counts: Counter = Counter()
        for n, (text, label) in enumerate(zip(texts, gold, strict=True)):
            replies = bot.reply(f"{set_name}-{name}-{n}", text)
            counts[outcome(replies, label, intent_of_entry)] += 1
        result[name] = figures_for(counts, len(texts))
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    import torch
    from support_intent import shipped_splits

    from apps.support.answers import AnswerFinder, load_faq
    from apps.support.dialogue import INTENT_MODEL, MemoryStore, SupportBot
    from apps.support.understanding import SupportNLU

    torch.set_num_threads(args.threads)
    datasets_root()
    splits = shipped_splits()
    faq = load_faq(ROOT / "data" / "support" / "faq.jsonl")
    oos_file = ROOT / "data" / "support" / "out_of_scope.txt"
    oos = [line.strip() for line in oos_file.read_text(encoding="utf-8").splitlines()]
    oos = [line for line in oos if line]
    sets = {
        "validation": (
            [r["text"] for r in splits["validation"]] + [p for e in faq for p in e.paraphrases],
            [r["label"] for r in splits["validation"]]
            + [e.intent for e in faq for _ in e.paraphrases],
        ),
        "test": ([r["text"] for r in splits["test"]], [r["label"] for r in splits["test"]]),
        "out_of_scope": (oos, [None] * len(oos)),
    }
    nlu = SupportNLU.from_artifact(ROOT / INTENT_MODEL)
    finder = AnswerFinder.from_folder(ROOT / "data" / "support", policy_qa=None)
    started = time.perf_counter()
    texts = sorted({t for texts, _ in sets.values() for t in texts})
    understood = dict(zip(texts, nlu.understand_many(texts), strict=True))
    understanding_seconds = round(time.perf_counter() - started, 1)
    bots = {
        "similarity": SupportBot(
            understood.__getitem__, IntentBlind(finder), MemoryStore(), handoff_phrases=[]
        ),
        "intent": SupportBot(understood.__getitem__, finder, MemoryStore(), handoff_phrases=[]),
    }
    intent_of_entry = {e.id: e.intent for e in faq}
    started = time.perf_counter()
    results = {name: run_set(name, bots, t, g, intent_of_entry) for name, (t, g) in sets.items()}
    val = results["validation"]
    gain = val["intent"]["right"] - val["similarity"]["right"]
    precision_change = round(val["intent"]["precision"] - val["similarity"]["precision"], 4)
    figures = {
        "model": INTENT_MODEL,
        "faq": "data/support/faq.jsonl (108 entries, 77 intents), FAQ threshold "
        f"{finder.thresholds.faq} (thresholds.json); no policy step",
        "faq_encoder": finder.model_name,
        "sets": {
            "validation": "the shipped model's validation split (1,000 BANKING77 TRAIN.csv "
            "messages it never trained on) + the FAQ's 324 paraphrases",
            "test": "BANKING77 TEST.csv",
            "out_of_scope": "data/support/out_of_scope.txt (every answer is wrong)",
        },
        "outcomes": "first reply of a new conversation: right / wrong FAQ answer (the entry's "
        "intent is / is not the message's), details (a flow asks for them), confirm, "
        "out_of_scope, declined (no answer), handoff",
        **results,
        "validation_right_gain": gain,
        "validation_precision_change": precision_change,
        "rule": "take the intent strategy if it answers more validation messages right and its "
        f"precision is at most {MAX_PRECISION_LOSS} lower",
        "intent_strategy_taken": gain > 0 and precision_change >= -MAX_PRECISION_LOSS,
        "understanding_seconds": understanding_seconds,
        "replies_seconds": round(time.perf_counter() - started, 1),
    }
    for name in sets:
        for strategy in bots:
            r = results[name][strategy]
            print(
                f"{name:<13}{strategy:<11} right {r['right_share']:.3f}  wrong "
                f"{r['wrong_share']:.3f}  precision {r['precision']}  {dict(r)}"
            )
    write_result("support_answers", figures)


if __name__ == "__main__":
    main()
