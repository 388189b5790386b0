"""What the Try page sends to a predictor: a typed input after the core's check, and a
relation's two arguments found in its text."""

from __future__ import annotations

import re
from typing import Any

from apps.studio.errors import StudioError

__all__ = ["predict_input", "relation_input"]


def predict_input(predictor: Any, item: Any) -> dict:
    """The prediction for one input typed on the Try page, after the core's input check.

    Raises:
        StudioError: the input is refused (a text that is empty or only whitespace, a
            missing field); the message is the core's.
    """
    from lepton_nlp.data import DataError

    try:
        predictor.check_input(item)
    except DataError as error:
        raise StudioError(str(error)) from None
    return predictor.predict_one(item)


def _occurrences(text: str, words: str) -> list[int]:
    starts, start = [], text.find(words) if words else -1
    while start >= 0:
        starts.append(start)
        start = text.find(words, start + 1)
    return starts


def _argument_spans(text: str, head: str, tail: str) -> tuple[dict, dict]:
    """The first places of ``head`` and ``tail`` in ``text`` that do not overlap."""
    head, tail = head.strip(), tail.strip()
    heads, tails = _occurrences(text, head), _occurrences(text, tail)
    for name, words, found, mark in (
        ("head", head, heads, "<e1>...</e1>"),
        ("tail", tail, tails, "<e2>...</e2>"),
    ):
        if not found:
            raise StudioError(
                f"The {name} {words!r} is not in the text. Type it exactly as it appears there "
                f"(same capitals), or mark it in the text with {mark}."
            )
    for h in heads:
        for t in tails:
            if h + len(head) <= t or t + len(tail) <= h:
                return {"start": h, "end": h + len(head)}, {"start": t, "end": t + len(tail)}
    raise StudioError(
        f"The head {head!r} and the tail {tail!r} overlap in the text; the two arguments must "
        "be different words. Mark them with <e1>...</e1> and <e2>...</e2> to be exact."
    )


def relation_input(
    text: str, head: str = "", tail: str = "", head_type: str = "", tail_type: str = ""
) -> dict:
    """A relation Predictor input from the Try page: ``{"text", "head", "tail"}`` spans.

    The arguments are either marked in the text (``<e1>head</e1>``, ``<e2>tail</e2>``) or
    typed as words of the text (the first place they occur; the tail clear of the head).
    Types, when given, go with the spans (models trained with typed arguments use them).

    Raises:
        StudioError: the text is empty, its marks are broken, or an argument is not in it.
    """
    from lepton_nlp.data import DataError
    from lepton_nlp.data.semeval import parse_marked

    if not text.strip():
        raise StudioError("Type a sentence that names the two arguments.")
    if re.search(r"</?e[12]>", text):
        try:
            item = parse_marked(text, "The text")
        except DataError as error:
            raise StudioError(
                f"{error} Mark the first argument (head) as <e1>...</e1> and the second (tail) "
                "as <e2>...</e2>."
            ) from None
    else:
        if not head.strip() or not tail.strip():
            raise StudioError(
                "Give the two arguments: mark them in the text as <e1>...</e1> (head) and "
                "<e2>...</e2> (tail), or type them in the Head and Tail boxes."
            )
        first, second = _argument_spans(text, head, tail)
        item = {"text": text, "head": first, "tail": second}
    for name, kind in (("head", head_type), ("tail", tail_type)):
        if kind.strip():
            item[name]["type"] = kind.strip()
    return item
