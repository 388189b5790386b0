"""Prompt templates and verbalizers: how a text becomes a prompt, and which words name each label."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["PromptTemplate", "Verbalizer", "label_words"]


def label_words(label: str) -> str:
    """A label name as words: ``card_arrival`` -> ``card arrival``, ``getSpareCard`` ->
    ``get spare card``."""
    text = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", str(label))
    text = re.sub(r"[_\-./]+", " ", text)
    return " ".join(text.split()).lower() or str(label)


@dataclass(frozen=True)
class PromptTemplate:
    """A prompt: an instruction, then demonstrations (text and label word), then the text.

    ``{text}`` in ``input_format`` is replaced by the text; the prompt ends where the label
    word follows (after a space), e.g. ``"Query: {text}\\nIntent:"``.
    """

    instruction: str = ""
    """First paragraph of every prompt (may be empty)."""
    input_format: str = "Text: {text}\nLabel:"
    """One example: must contain ``{text}`` and end where the label word goes."""
    separator: str = "\n\n"
    """Between the instruction and the examples."""

    def __post_init__(self) -> None:
        if "{text}" not in self.input_format:
            raise ValueError(
                f"The template's input_format {self.input_format!r} has no {{text}} placeholder; "
                "write e.g. 'Text: {text}\\nLabel:'."
            )

    def render(self, text: str, demonstrations: Sequence[tuple[str, str]] = ()) -> str:
        """The prompt for ``text``, after ``(text, label word)`` demonstrations."""
        parts = [self.instruction] if self.instruction else []
        for demo_text, word in demonstrations:
            parts.append(f"{self._example(demo_text)} {word}")
        parts.append(self._example(text))
        return self.separator.join(parts)

    def _example(self, text: str) -> str:
        # Not str.format: a brace in the text must stay a brace.
        return self.input_format.replace("{text}", " ".join(str(text).split()))


@dataclass(frozen=True)
class Verbalizer:
    """The words that name each label; a label's score pools its words' probabilities."""

    labels: tuple[str, ...]
    words: Mapping[str, tuple[str, ...]]

    @classmethod
    def build(
        cls, labels: Sequence[str], words: Mapping[str, str | Sequence[str]] | None = None
    ) -> Verbalizer:
        """One entry per label: the words given for it, else its name as words (``label_words``).

        Raises:
            ValueError: a word given for a label that is not in ``labels``, or an empty word.
        """
        words = dict(words or {})
        unknown = sorted(set(words) - set(labels))
        if unknown:
            raise ValueError(
                f"The verbalizer names labels the data does not have: {unknown}; the labels are "
                f"{', '.join(labels)}."
            )
        table = {}
        for label in labels:
            given = words.get(label)
            chosen = [given] if isinstance(given, str) else list(given or [label_words(label)])
            chosen = [" ".join(str(w).split()) for w in chosen]
            if not chosen or not all(chosen):
                raise ValueError(f"The verbalizer gives label {label!r} an empty word.")
            table[label] = tuple(chosen)
        return cls(tuple(labels), table)

    def first_word(self, label: str) -> str:
        """The word a demonstration of ``label`` ends with."""
        return self.words[label][0]
