"""A deterministic stand-in for the finance scoring pipeline (no models), for store/CLI tests.

It finds the alias table's names, aliases and tickers in each sentence, scores sentences
with two word lists, and reads a few relation patterns; what it returns has the shape the
real pipeline's :class:`ScoredArticle` has. ``LEPTON_TEST_SCORER_DELAY`` (seconds per
batch) slows it so that a test can kill a run in the middle.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from apps.finance.records import NewsArticle, ScoredArticle, SentenceScore
from kg import AliasTable, Article, Extraction, Mention, Relation

ALIASES = Path(__file__).resolve().parents[2] / "data" / "finance" / "aliases.yaml"
POSITIVE = {"rose", "rise", "beats", "gained", "jumped", "soar", "strong", "higher", "raised",
            "improved", "pleased", "welcome", "grew", "healthy", "premium", "lifts"}  # fmt: skip
NEGATIVE = {"plunged", "collapse", "fell", "cut", "crashed", "lawsuit", "sued", "downgraded",
            "slashed", "worst", "warned", "delay", "lost", "fear", "pressure", "weigh", "slip",
            "suspended", "criticised", "misled"}  # fmt: skip
PATTERNS = [
    (re.compile(r"(?P<h>.+?) (?:agreed to acquire|will acquire|to buy) (?P<t>.+)"), "acquires"),
    (re.compile(r"(?P<h>.+?) (?:has sued|sued|sues) (?P<t>.+)"), "sues"),
    (re.compile(r"(?P<h>.+?) (?:will supply|supplies) .*? to (?P<t>.+)"), "supplies"),
    (re.compile(r"(?P<h>.+?) and (?P<t>.+?) announced a partnership"), "partners_with"),
    (re.compile(r"(?P<h>.+?) invested .* in (?P<t>.+)"), "invests_in"),
    (re.compile(r"(?P<h>.+?), chief executive of (?P<t>.+)"), "executive_of"),
]


class StandInScorer:
    def __init__(self, aliases: str | Path = ALIASES):
        self.model_versions = {"stand-in": "1"}
        table = AliasTable.coerce(aliases)
        surfaces = []
        for entity in table:
            for surface in (entity.name, *entity.aliases):
                surfaces.append((surface, entity.type))
            surfaces += [(f"({t})", "TICKER") for t in entity.tickers]
        surfaces.sort(key=lambda s: -len(s[0]))
        self.surfaces = surfaces
        self.delay = float(os.environ.get("LEPTON_TEST_SCORER_DELAY", "0"))
        self.calls = 0

    def score(self, articles: list[NewsArticle], progress=None) -> list[ScoredArticle]:
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        return [self._one(a) for a in articles]

    def _one(self, article: NewsArticle) -> ScoredArticle:
        text = article.text
        sentences, mentions, relations = [], [], []
        for match in re.finditer(r"[^.!?\n]+[.!?]?", text):
            sentence = match.group().strip()
            if not sentence:
                continue
            words = set(re.findall(r"[a-z]+", sentence.lower()))
            score = (len(words & POSITIVE) > 0) - (len(words & NEGATIVE) > 0) * 1.0
            score = max(-1.0, min(1.0, score * 0.8))
            label = "positive" if score > 0 else "negative" if score < 0 else "neutral"
            sentences.append(
                SentenceScore(len(sentences), sentence, match.start(), match.end(), label, score)
            )
            found, taken = [], sentence
            for surface, kind in self.surfaces:
                if re.search(rf"(?<!\w){re.escape(surface)}(?!\w)", taken):
                    found.append((surface.strip("()"), kind))
                    taken = taken.replace(surface, " " * len(surface))
            for surface, kind in found:
                mentions.append(
                    Mention(article.id, surface, kind, len(sentences) - 1, sentence, score)
                )
            names = {s for s, _ in found}
            for pattern, kind in PATTERNS:
                hit = pattern.match(sentence)
                if not hit:
                    continue
                head = next((n for n in names if hit.group("h").endswith(n)), None)
                tail = next((n for n in names if hit.group("t").startswith(n)), None)
                if head and tail and head != tail:
                    relations.append(
                        Relation(
                            article.id, head, tail, kind, 0.9, sentence, score, len(sentences) - 1
                        )
                    )
                    break
        overall = sum(s.score for s in sentences) / len(sentences) if sentences else 0.0
        label = "positive" if overall > 0.1 else "negative" if overall < -0.1 else "neutral"
        extraction = Extraction(
            Article(
                article.id, article.source, article.title, article.published, overall, article.url
            ),
            tuple(mentions),
            tuple(relations),
        )
        return ScoredArticle(
            article=article,
            sentences=sentences,
            sentiment=overall,
            label=label,
            topics=[],
            extraction=extraction,
            model_versions=dict(self.model_versions),
            timings={"score": 0.0},
        )


def make_scorer() -> StandInScorer:
    """The ``--scorer tests.unit.finance_standins:make_scorer`` factory."""
    return StandInScorer()
