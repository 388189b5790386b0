"""Is a message English? A cheap heuristic, so the bot does not answer what it cannot read.

The intent model only knows English; a message in another language gets a confident-looking
but meaningless intent. Two signals, both from spaCy's own word lists (no model to load):

- script: most letters outside the Latin alphabet (Cyrillic, Arabic, Chinese, ...);
- function words: at least two words that are stop words of another language spaCy knows
  (Spanish, French, German, Italian, Portuguese, Dutch, Polish, Swedish, Danish, Turkish,
  Romanian) but not English ones, outnumbering the English stop words, with a letter that
  English does not use (``é``, ``ñ``, ``ß``...) counting as such a word.

Measured in ``bench/support_intent.py``: the share of BANKING77 test messages flagged
(false alarms) and of a small set of non-English messages the project wrote.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["LanguageGuess", "detect_language", "guess_language"]

_OTHER_LANGUAGES = ("es", "fr", "de", "it", "pt", "nl", "pl", "sv", "da", "tr", "ro")
#: Short words that are stop words elsewhere but common in English messages too.
_ENGLISH_TOO = frozenset(
    {"ok", "id", "uk", "eu", "tv", "pc", "ai", "app", "pin", "top", "card", "bank", "hi", "la"}
    | {"min"}
)
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


@dataclass(frozen=True)
class LanguageGuess:
    """The verdict and why."""

    english: bool
    reason: str
    """Why the message is not taken as English ("" when it is)."""
    language: str | None = None
    """The other language whose words were found (``es``...), when one was."""


@lru_cache(maxsize=1)
def _stop_words() -> tuple[frozenset[str], dict[str, frozenset[str]]]:
    import importlib

    from spacy.lang.en.stop_words import STOP_WORDS as english

    english = frozenset(w.lower() for w in english)
    others = {}
    for code in _OTHER_LANGUAGES:
        words = importlib.import_module(f"spacy.lang.{code}.stop_words").STOP_WORDS
        # Words English uses too ("pin", "app", "uk") would raise false alarms.
        others[code] = frozenset(
            w.lower()
            for w in words
            if w.lower() not in english
            and w.lower() not in _ENGLISH_TOO
            and (len(w) >= 2 or not w.isascii())
        )
    return english, others


def _is_latin(ch: str) -> bool:
    return ch.isascii() or "LATIN" in unicodedata.name(ch, "")


def guess_language(text: str) -> LanguageGuess:
    """Whether ``text`` reads as English, from its script and its function words."""
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return LanguageGuess(True, "")
    non_latin = sum(not _is_latin(ch) for ch in letters) / len(letters)
    if non_latin > 0.3:
        return LanguageGuess(False, "written mostly in a non-Latin script")
    english, others = _stop_words()
    words = [w.lower() for w in _WORD.findall(text)]
    english_hits = sum(w in english for w in words)
    foreign_letters = sum(not w.isascii() for w in words)
    best, best_hits = None, 0
    for code, stops in others.items():
        hits = sum(w in stops for w in words)
        if hits > best_hits:
            best, best_hits = code, hits
    foreign = best_hits + foreign_letters
    if best_hits >= 1 and foreign >= 2 and foreign > english_hits:
        return LanguageGuess(
            False, f"reads as another language ({best}: {best_hits} of its function words)", best
        )
    return LanguageGuess(True, "")


def detect_language(text: str, max_chars: int = 4000) -> str:
    """A language code for a longer text: ``en``, another language's code (``es``...) when its
    function words were found, or ``und`` (undetermined) for a text mostly in a non-Latin
    script; only the first ``max_chars`` characters are read."""
    guess = guess_language(text[:max_chars])
    if guess.english:
        return "en"
    return guess.language or "und"
