"""Topics of an article (earnings, M&A, legal, product, management, macro) by keyword rules.

Each topic is a list of word patterns (regular expressions, whole words, case-insensitive);
an article has a topic when its text matches at least ``min_hits`` of the topic's patterns
(counting every match). Rules are transparent and cost microseconds an article; the
relations the pipeline finds add to them (an ``acquires`` relation is M&A, ``sues`` legal,
``executive_of`` management), see :func:`article_topics`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["RELATION_TOPICS", "TOPICS", "TOPIC_PATTERNS", "article_topics"]

TOPIC_PATTERNS: dict[str, tuple[str, ...]] = {
    "earnings": (
        r"earnings",
        r"quarterly",
        r"(?:first|second|third|fourth)[- ]quarter",
        r"q[1-4]",
        r"revenues?",
        r"profits?",
        r"net (?:income|loss)",
        r"operating (?:income|loss|margin)",
        r"margins?",
        r"guidance",
        r"forecasts?",
        r"outlook",
        r"results",
        r"ebitda",
        r"earnings per share|eps",
        r"dividends?",
        r"sales (?:rose|fell|grew|increased|decreased|declined)",
        r"beat (?:analysts'? )?(?:estimates|expectations|forecasts)",
        r"missed (?:analysts'? )?(?:estimates|expectations|forecasts)",
    ),
    "m&a": (
        r"acquir(?:e|es|ed|ing|ition|itions)",
        r"takeovers?",
        r"take over",
        r"mergers?",
        r"merg(?:e|es|ed|ing)",
        r"buyouts?",
        r"bid for",
        r"deal (?:worth|valued)",
        r"stake in",
        r"divest(?:s|ed|ment|iture)?",
        r"spin[- ]?off",
        r"tender offer",
        r"agreed to (?:buy|sell|acquire)",
    ),
    "legal": (
        r"lawsuits?",
        r"su(?:e|es|ed|ing)",
        r"court",
        r"litigation",
        r"settlement",
        r"regulators?",
        r"antitrust",
        r"fines?d?",
        r"penalt(?:y|ies)",
        r"investigation",
        r"probe",
        r"patent infringement",
        r"class action",
        r"complaint",
        r"judge",
        r"ruling",
    ),
    "product": (
        r"launch(?:es|ed|ing)?",
        r"unveil(?:s|ed|ing)?",
        r"new (?:product|model|service|app|platform|drug|chip|line)",
        r"products?",
        r"recalls?",
        r"approval for",
        r"rolls? out|rolled out",
        r"release[sd]?",
        r"prototype",
        r"customers?",
    ),
    "management": (
        r"chief executive",
        r"ceo",
        r"cfo",
        r"chief (?:financial|operating|technology) officer",
        r"chair(?:man|woman)?",
        r"board",
        r"appoint(?:s|ed|ment)?",
        r"resign(?:s|ed|ation)?",
        r"steps? down|stepped down",
        r"succe(?:ed|eds|eded|ssor)",
        r"named (?:as )?(?:chief|president|head)",
        r"executives?",
        r"management",
    ),
    "macro": (
        r"interest rates?",
        r"inflation",
        r"central bank",
        r"federal reserve|the fed",
        r"ecb",
        r"gdp",
        r"recession",
        r"unemployment",
        r"tariffs?",
        r"currency",
        r"bond yields?",
        r"economy|economic",
        r"oil prices?",
        r"trade war",
    ),
}
TOPICS: tuple[str, ...] = tuple(TOPIC_PATTERNS)

#: Relation types that name a topic by themselves.
RELATION_TOPICS = {
    "acquires": "m&a",
    "invests_in": "m&a",
    "subsidiary_of": "m&a",
    "sues": "legal",
    "executive_of": "management",
}

_COMPILED = {
    topic: re.compile(r"\b(?:" + "|".join(patterns) + r")\b", re.IGNORECASE)
    for topic, patterns in TOPIC_PATTERNS.items()
}


def article_topics(text: str, relations: Iterable[str] = (), min_hits: int = 2) -> list[str]:
    """The topics of an article, in :data:`TOPICS` order.

    Args:
        text: the article's title and body.
        relations: relation types found in it (``acquires`` adds ``m&a``...; not ``other``).
        min_hits: matches of a topic's patterns needed for the topic.
    """
    found = {
        topic for topic, pattern in _COMPILED.items() if len(pattern.findall(text)) >= min_hits
    }
    found |= {RELATION_TOPICS[r] for r in relations if r in RELATION_TOPICS}
    return [t for t in TOPICS if t in found]
