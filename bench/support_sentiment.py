"""Customer sentiment for the support bot: VADER against the shipped finance-sentiment model.

Scores both on ``apps/support/eval_data/sentiment_messages.csv`` (93 support messages the
project wrote and labelled: 36 negative, many angry or frustrated; 33 neutral; 24 positive)
and writes ``bench/results/support_sentiment.json``. The bot uses the better one (VADER).

python bench/support_sentiment.py
"""

from __future__ import annotations

import time

from common import ROOT, write_result


def main() -> None:
    from apps.support.sentiment import (
        LexiconSentiment,
        ModelSentiment,
        evaluate_sentiment,
        load_sentiment_messages,
    )

    records = load_sentiment_messages()
    figures: dict = {"messages": "apps/support/eval_data/sentiment_messages.csv"}
    scorers = [
        LexiconSentiment(),
        ModelSentiment.from_artifact(ROOT / "data" / "models" / "finance-sentiment"),
    ]
    for scorer in scorers:
        started = time.perf_counter()
        result = evaluate_sentiment(scorer, records)
        result["seconds"] = round(time.perf_counter() - started, 2)
        figures.update({f"{scorer.name}_{k}": v for k, v in result.items()})
    figures["confusion_rows_columns"] = "gold x predicted: negative, neutral, positive"
    best = max(scorers, key=lambda s: figures[f"{s.name}_accuracy"])
    figures["chosen"] = best.name
    write_result("support_sentiment", figures)
    for scorer in scorers:
        n = scorer.name
        print(
            f"{n:<20} accuracy {figures[f'{n}_accuracy']:.3f}  macro-F1 {figures[f'{n}_macro_f1']:.3f}"
            f"  negative recall {figures[f'{n}_recall_negative']:.3f}"
        )


if __name__ == "__main__":
    main()
