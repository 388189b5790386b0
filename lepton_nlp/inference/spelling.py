"""Spelling correction before a classifier reads a text: a defence against typos.

A subword encoder reads a mistyped word as pieces it never saw together ("prfoit" is not
"profit" to MiniLM), so a few typos move a prediction more than their meaning does
(``lepton_nlp.evaluation.robustness`` measures by how much). :class:`SpellingCorrector`
puts each word the model's training data never holds back to the most frequent training
word within ``max_distance`` edits (SymSpell, Damerau distance: a swap of two letters is one
edit), before tokenizing; words the training data or the model's own vocabulary hold are
left alone, and so are numbers and words shorter than ``min_length``.

A run turns it on with ``spelling.enabled: true`` (classification only, see
:class:`lepton_nlp.config.SpellingConfig`): training builds the vocabulary from the training
split's words, scores validation and test on corrected texts, and writes ``spelling.json``
into the artifact; :class:`lepton_nlp.inference.Predictor` then corrects every text it is
given (``Predictor.from_artifact(..., spelling=False)`` turns it off). docs/adversarial.md
has what it buys against each attack.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from lepton_nlp.errors import ArtifactError, ConfigError

__all__ = ["SPELLING_FILE", "WORD_PATTERN", "SpellingCorrector"]

SPELLING_FILE = "spelling.json"
#: What counts as a word: a run of letters (any script); digits, marks and spaces stay as
#: they are.
WORD_PATTERN = re.compile(r"[^\W\d_]+")


class SpellingCorrector:
    """Put unknown words back to the nearest frequent known word.

    Args:
        counts: known word (lower case) -> how often the training data has it; a word with
            count 0 is known (never corrected) but never offered as a correction.
        max_distance: most edits (insert, delete, replace, swap two neighbours) between a
            word and its correction: 1 or 2.
        min_length: words shorter than this are left as they are (two-letter words are
            one edit from many others).

    The defaults a run uses are :class:`lepton_nlp.config.SpellingConfig`'s.
    """

    def __init__(self, counts: Mapping[str, int], *, max_distance: int, min_length: int):
        from symspellpy import SymSpell

        if max_distance not in (1, 2):
            raise ConfigError(f"spelling.max_distance={max_distance} must be 1 or 2.")
        if min_length < 1:
            raise ConfigError(f"spelling.min_length={min_length} must be at least 1.")
        self.counts = {str(w).lower(): int(c) for w, c in counts.items()}
        if not any(c > 0 for c in self.counts.values()):
            raise ConfigError(
                "The spelling vocabulary has no word with a count: build it from training "
                "texts that hold words (SpellingCorrector.from_texts)."
            )
        self.max_distance = max_distance
        self.min_length = min_length
        self._symspell = SymSpell(max_dictionary_edit_distance=max_distance, prefix_length=7)
        for word, count in self.counts.items():
            if count > 0:
                self._symspell.create_dictionary_entry(word, count)

    @classmethod
    def from_texts(
        cls,
        texts: Iterable[str],
        *,
        max_distance: int,
        min_length: int,
        known_words: Iterable[str] = (),
        min_count: int = 1,
    ) -> SpellingCorrector:
        """A corrector whose vocabulary is the words of ``texts`` seen at least ``min_count``
        times; ``known_words`` (a model's whole-word vocabulary) are never corrected but are
        offered as corrections only when the texts hold them too."""
        counts = Counter(w.lower() for text in texts for w in WORD_PATTERN.findall(text or ""))
        vocabulary: dict[str, int] = {w: 0 for w in known_words}
        vocabulary.update({w: c for w, c in counts.items() if c >= min_count})
        return cls(vocabulary, max_distance=max_distance, min_length=min_length)

    @staticmethod
    def model_words(tokenizer: Any) -> list[str]:
        """A tokenizer's whole words: vocabulary entries of letters only, two or more long
        (WordPiece continuation pieces ``##...`` and byte-level pieces are left out)."""
        vocab = tokenizer.get_vocab() if hasattr(tokenizer, "get_vocab") else {}
        return sorted(
            {t.lower() for t in vocab if len(t) > 1 and WORD_PATTERN.fullmatch(t) is not None}
        )

    def correct_word(self, word: str) -> str:
        """The word as the corrector would write it (itself when known, short or unmatched)."""
        from symspellpy import Verbosity

        lower = word.lower()
        if len(word) < self.min_length or lower in self.counts:
            return word
        found = self._symspell.lookup(lower, Verbosity.TOP, max_edit_distance=self.max_distance)
        if not found:
            return word
        fixed = found[0].term
        if word.isupper() and len(word) > 1:
            return fixed.upper()
        if word[0].isupper():
            return fixed[0].upper() + fixed[1:]
        return fixed

    def corrections(self, text: str) -> list[dict]:
        """What :meth:`correct` changes: ``{"start", "end", "word", "correction"}`` per word."""
        out = []
        for match in WORD_PATTERN.finditer(text):
            fixed = self.correct_word(match.group())
            if fixed != match.group():
                out.append(
                    {
                        "start": match.start(),
                        "end": match.end(),
                        "word": match.group(),
                        "correction": fixed,
                    }
                )
        return out

    def correct(self, text: str) -> str:
        """The text with each unknown word replaced by its correction; all else as it was."""
        return WORD_PATTERN.sub(lambda m: self.correct_word(m.group()), text)

    def settings(self) -> dict:
        return {
            "max_distance": self.max_distance,
            "min_length": self.min_length,
            "words": sum(1 for c in self.counts.values() if c > 0),
            "known_only_words": sum(1 for c in self.counts.values() if c == 0),
        }

    def save(self, folder: str | Path) -> Path:
        """Write ``spelling.json`` (settings and word counts) into ``folder``."""
        path = Path(folder) / SPELLING_FILE
        document = {**self.settings(), "counts": dict(sorted(self.counts.items()))}
        path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
        return path

    @classmethod
    def for_artifact(cls, info: Any) -> SpellingCorrector | None:
        """The corrector an artifact ships (``info``: its :class:`ArtifactInfo`), or None.

        Raises:
            ArtifactError: a ``spelling.json`` in an artifact of another task than
                classification (its answers are spans of the text as given).
        """
        corrector = cls.load(info.path)
        if corrector is not None and info.task != "classification":
            raise ArtifactError(
                f"{info.path / SPELLING_FILE} is in a {info.task} artifact, but spelling "
                "correction applies to classification only (the other tasks answer with "
                "spans of the text as given); delete the file."
            )
        return corrector

    @classmethod
    def load(cls, folder: str | Path) -> SpellingCorrector | None:
        """The corrector an artifact folder holds, or None when it has no ``spelling.json``.

        Raises:
            ArtifactError: the file is there but is not a spelling vocabulary.
        """
        path = Path(folder) / SPELLING_FILE
        if not path.is_file():
            return None
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                document["counts"],
                max_distance=int(document["max_distance"]),
                min_length=int(document["min_length"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError, ConfigError) as exc:
            raise ArtifactError(
                f"{path} is not a spelling vocabulary ({type(exc).__name__}: {exc}); delete it "
                "to predict without spelling correction, or retrain with spelling.enabled=true."
            ) from exc
