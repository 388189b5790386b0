"""Entities of a sentence: spaCy's small NER, the core's CoNLL NER and a ticker pattern, merged.

Three sources, typed with :data:`kg.schema.ENTITY_TYPES`:

- **tickers** by pattern: ``$NWND``, ``(NASDAQ: NWND)``, ``NYSE:CTSO`` (TICKER; the knowledge
  graph pairs a ticker with the company named before it, :mod:`kg.resolve`);
- **spaCy** ``en_core_web_sm``: ORG, PERSON, GPE, LOC (and FAC as LOC), PRODUCT, EVENT, MONEY;
- **the core's NER** (the shipped ``conll2003-ner`` artifact): PER, ORG, LOC (read as GPE
  unless spaCy calls the span LOC), MISC (kept only where spaCy gives it a type).

Where spans overlap, the longest wins its extent; its type comes from the core's NER for
people, organisations and places (fine-tuned on news: spaCy's small model calls many
unfamiliar company names PERSON), from spaCy for money, products and events, and a name
ending in a legal suffix (``Inc.``, ``Holdings``, ``plc``) is always an ORG. Spans inside a
ticker are dropped (``NASDAQ`` in ``(NASDAQ: NWND)``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from kg.resolve import LEGAL_SUFFIXES

__all__ = [
    "CORE_TYPES",
    "SPACY_TYPES",
    "EntitySpan",
    "find_tickers",
    "harmonize_types",
    "merge_entities",
    "spacy_entities",
]

#: spaCy label -> kg type (labels not listed are ignored: dates, numbers, percentages...).
SPACY_TYPES = {
    "ORG": "ORG",
    "PERSON": "PERSON",
    "GPE": "GPE",
    "LOC": "LOC",
    "FAC": "LOC",
    "PRODUCT": "PRODUCT",
    "EVENT": "EVENT",
    "MONEY": "MONEY",
}
#: CoNLL label of the core's NER -> kg type.
CORE_TYPES = {"PER": "PERSON", "ORG": "ORG", "LOC": "GPE", "MISC": "MISC"}

#: Types whose reading the core's NER decides when both sources found the span.
_NAME_TYPES = {"ORG", "PERSON", "GPE", "LOC"}

_SYMBOL = r"[A-Z][A-Z0-9]{0,5}(?:\.[A-Z]{1,2})?"
_TICKER = re.compile(
    rf"\$(?P<dollar>{_SYMBOL})\b"
    rf"|\(\s*(?P<paren>(?:NASDAQ|NYSE|LSE|AMEX|TSX|ASX|XETRA|Euronext|OTC|HKEX|SIX)\s*:\s*{_SYMBOL})\s*\)"
    rf"|\b(?P<exchange>(?:NASDAQ|NYSE|LSE|AMEX|TSX|ASX|XETRA|Euronext|OTC|HKEX|SIX)\s*:\s*{_SYMBOL})\b"
)
_POSSESSIVE = re.compile(r"['’]s?$")


@dataclass(frozen=True)
class EntitySpan:
    """One entity in a sentence: character offsets in the sentence, kg type, and who found it."""

    start: int
    end: int
    text: str
    type: str
    sources: tuple[str, ...]

    @property
    def length(self) -> int:
        return self.end - self.start


def find_tickers(text: str) -> list[EntitySpan]:
    """``$NWND``, ``(NASDAQ: NWND)`` (the span is inside the parentheses) and ``NYSE:CTSO``."""
    spans = []
    for match in _TICKER.finditer(text):
        group = next(g for g in ("dollar", "paren", "exchange") if match.group(g))
        start, end = match.span(group)
        if group == "dollar":
            start -= 1  # keep the "$": kg.resolve reads "$NWND" as a ticker
        spans.append(EntitySpan(start, end, text[start:end], "TICKER", ("pattern",)))
    return spans


def spacy_entities(span) -> list[EntitySpan]:
    """spaCy's entities of a parsed sentence (a ``Span``), offsets relative to the sentence.

    Leading whitespace of the sentence is skipped as :func:`apps.finance.sentences.parse_texts`
    skips it.
    """
    text = span.text
    base = span.start_char + (len(text) - len(text.lstrip()))
    out = []
    for ent in span.ents:
        kind = SPACY_TYPES.get(ent.label_)
        if kind is not None:
            start, end = ent.start_char - base, ent.end_char - base
            out.append(EntitySpan(start, end, ent.text, kind, ("spacy",)))
    return out


def _trim(text: str, span: EntitySpan) -> EntitySpan | None:
    """Drop a possessive ("Northwind's"), a leading "the" and outer punctuation."""
    start, end = span.start, span.end
    piece = text[start:end]
    if span.type != "TICKER" and span.type != "MONEY":
        cut = _POSSESSIVE.search(piece)
        if cut and cut.start() > 0:
            end = start + cut.start()
            piece = text[start:end]
        if piece.lower().startswith("the ") and len(piece) > 4:
            start += 4
            piece = text[start:end]
        while piece and piece[-1] in ",;:(-" and end > start:
            end -= 1
            piece = text[start:end]
    while piece and piece[0] in " \"'(" and start < end:
        start += 1
        piece = text[start:end]
    piece = piece.rstrip()
    end = start + len(piece)
    if len(piece.strip(".,'\"")) < 2:
        return None
    return EntitySpan(start, end, piece, span.type, span.sources)


def _has_legal_suffix(text: str) -> bool:
    words = re.sub(r"[^\w\s]", "", text).lower().split()
    return len(words) > 1 and words[-1] in LEGAL_SUFFIXES


def merge_entities(
    text: str,
    spacy_spans: Iterable[EntitySpan] = (),
    core_spans: Iterable[EntitySpan] = (),
    tickers: Iterable[EntitySpan] | None = None,
) -> list[EntitySpan]:
    """Merge the sources' spans of one sentence into non-overlapping entities, in text order.

    Args:
        text: the sentence.
        spacy_spans: spaCy's entities (:func:`spacy_entities`).
        core_spans: the core NER's entities, types already mapped with :data:`CORE_TYPES`.
        tickers: ticker spans (default: :func:`find_tickers` on ``text``).
    """
    tickers = find_tickers(text) if tickers is None else list(tickers)
    candidates = [s for s in (_trim(text, s) for s in (*spacy_spans, *core_spans)) if s is not None]
    candidates = [
        s for s in candidates if not any(s.start < t.end and t.start < s.end for t in tickers)
    ]
    # Group overlapping candidates (transitively), in text order.
    candidates.sort(key=lambda s: (s.start, -s.length))
    groups: list[list[EntitySpan]] = []
    for span in candidates:
        if groups and span.start < max(s.end for s in groups[-1]):
            groups[-1].append(span)
        else:
            groups.append([span])
    merged = list(tickers)
    for group in groups:
        longest = max(group, key=lambda s: (s.length, "core" in s.sources))
        sources = tuple(sorted({src for s in group for src in s.sources}))
        core = [s for s in group if "core" in s.sources]
        spacy = [s for s in group if "spacy" in s.sources]
        kind = _choose_type(core, spacy)
        if kind is None:
            continue
        if kind in ("PERSON", "MISC", "PRODUCT") and _has_legal_suffix(longest.text):
            kind = "ORG"
        merged.append(EntitySpan(longest.start, longest.end, longest.text, kind, sources))
    return sorted(merged, key=lambda s: s.start)


def _choose_type(core: list[EntitySpan], spacy: list[EntitySpan]) -> str | None:
    spacy_kind = max(spacy, key=lambda s: s.length).type if spacy else None
    core_kind = max(core, key=lambda s: s.length).type if core else None
    if core_kind is None:
        return spacy_kind
    if core_kind == "MISC":
        # CoNLL MISC is mostly nationalities and events: kept only where spaCy types it.
        return spacy_kind if spacy_kind and spacy_kind != "MONEY" else None
    if spacy_kind in ("MONEY", "PRODUCT", "EVENT") and core_kind not in ("ORG", "PERSON"):
        return spacy_kind
    if core_kind == "GPE" and spacy_kind == "LOC":
        return "LOC"
    if core_kind in _NAME_TYPES:
        return core_kind
    return spacy_kind or core_kind


def harmonize_types(sentences: list[list[EntitySpan]]) -> list[list[EntitySpan]]:
    """One type per name within an article: the type most of its mentions carry.

    spaCy's small model reads an unfamiliar company as a person in one sentence and the core's
    NER finds it as an organisation in the next; a vote over the article's mentions (a
    mention the core's NER typed counts twice, ties go to ORG) settles each name's type.
    A single word only spaCy calls a person, and no part of a full name the article gives,
    votes ORG. Money, tickers and dates are left as they are.
    """
    full_names = {
        word.lower()
        for spans in sentences
        for s in spans
        if s.type == "PERSON" and len(s.text.split()) > 1
        for word in s.text.split()
    }
    votes: dict[str, dict[str, int]] = {}
    for spans in sentences:
        for s in spans:
            if s.type in _NAME_TYPES or s.type in ("PRODUCT", "MISC"):
                weight = 2 if "core" in s.sources else 1
                kind = s.type
                if (
                    kind == "PERSON"
                    and s.sources == ("spacy",)
                    and len(s.text.split()) == 1
                    and s.text.lower() not in full_names
                ):
                    # A lone word only spaCy calls a person, and no surname of a person the
                    # article names in full: in business news, nearly always a company.
                    kind = "ORG"
                tally = votes.setdefault(s.text, {})
                tally[kind] = tally.get(kind, 0) + weight
    chosen = {
        text: max(tally, key=lambda t: (tally[t], t == "ORG")) for text, tally in votes.items()
    }
    return [
        [
            EntitySpan(s.start, s.end, s.text, chosen[s.text], s.sources)
            if s.text in chosen and s.type in _NAME_TYPES | {"PRODUCT", "MISC"}
            else s
            for s in spans
        ]
        for spans in sentences
    ]
