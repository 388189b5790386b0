"""Robustness evaluation: score a model on its test records after seeded attacks of fixed size.

Each attack changes every record by exactly ``budget`` edits of one kind, chosen at random
(seeded per record, attack and budget, so the same call gives the same texts on any machine):

====================  ============================================================  =========
attack                one edit                                                       unit
====================  ============================================================  =========
``typo``              a letter replaced by a neighbour on a QWERTY keyboard          character
``swap``              two adjacent, different letters of a word swapped              pair
``delete``            a letter deleted (a word keeps at least one)                   character
``synonym``           a word replaced by a neighbour from a :class:`SynonymSource`   word
``case``              a word's case changed (upper, lower, title or swapped)         word
``punctuation``       a mark inserted after a word, or one at a word's edge deleted  character
====================  ============================================================  =========

Edits never touch whitespace, so a text keeps its words (and an NER record its tokens and
tags). A text with room for fewer edits than the budget (``delete`` on a text of three
letters) gets as many as it allows; the report counts those records (``short_of_budget``)
and a warning says how many, instead of failing the run.

The attacks are random, not searched against the model (a black-box noise test, as a
user's typing or a different newswire's style would be): what they measure is how far
accuracy falls under a given amount of noise, the same texts for every model compared.

Synonyms come from :class:`EmbeddingNeighbours`, the nearest whole words in a model's own
input-embedding space (offline for any model; these neighbours are inflections, near
synonyms and, as distributional neighbours are, sometimes antonyms such as strong/weak),
or from a word list of one's own (:class:`SynonymTable`).
"""

from __future__ import annotations

import json
import logging
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from lepton_nlp.errors import ConfigError

__all__ = [
    "ATTACKS",
    "WORD",
    "AttackOutcome",
    "EmbeddingNeighbours",
    "SynonymSource",
    "SynonymTable",
    "attack_records",
    "attack_text",
    "attack_words",
    "evaluate_robustness",
    "keep_case",
    "parse_attacks",
    "parse_budgets",
]

log = logging.getLogger(__name__)

ATTACKS = ("typo", "swap", "delete", "synonym", "case", "punctuation")

#: Record kinds whose text the attacks reach: a text field, or a token list (NER).
ATTACKABLE = {"text": "text", "tokens": "tokens"}

_KEYBOARD = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_NEIGHBOURS: dict[str, str] = {}
for _r, _row in enumerate(_KEYBOARD):
    for _c, _key in enumerate(_row):
        _near = []
        for _dr in (-1, 0, 1):
            if 0 <= _r + _dr < len(_KEYBOARD):
                other = _KEYBOARD[_r + _dr]
                for _dc in (-1, 0, 1):
                    if (_dr or _dc) and 0 <= _c + _dc < len(other):
                        _near.append(other[_c + _dc])
        _NEIGHBOURS[_key] = "".join(_near)

_MARKS = ",.;:!?"
_EDGES = re.compile(r"^(\W*)(.*?)(\W*)$", re.DOTALL)
#: A whole word with the punctuation around it: (leading marks, the word, trailing marks).
WORD = re.compile(r"^(\W*)([A-Za-z][A-Za-z'-]*[A-Za-z]|[A-Za-z])(\W*)$")


class SynonymSource(Protocol):
    """Where the ``synonym`` attack finds replacements for a (lower-cased) word."""

    def neighbours(self, word: str) -> Sequence[str]:
        """Replacements of ``word``, best first; empty when there are none."""
        ...


class SynonymTable:
    """Synonyms from a mapping ``word -> [replacements]`` (e.g. a curated JSON file)."""

    def __init__(self, table: Mapping[str, Sequence[str]]):
        self.table = {k.lower(): [w for w in v if w.lower() != k.lower()] for k, v in table.items()}

    @classmethod
    def from_file(cls, path: str | Path) -> SynonymTable:
        """A JSON object ``{"word": ["synonym", ...]}``.

        Raises:
            ConfigError: the file is not such an object.
        """
        try:
            table = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"Cannot read the synonym file {path}: {exc}") from exc
        if not isinstance(table, dict) or not all(
            isinstance(v, list) and all(isinstance(w, str) for w in v) for v in table.values()
        ):
            raise ConfigError(
                f'{path} must hold a JSON object of word -> list of words, e.g. {{"rise": '
                '["increase", "gain"]}.'
            )
        return cls(table)

    def neighbours(self, word: str) -> Sequence[str]:
        return self.table.get(word.lower(), [])


class EmbeddingNeighbours:
    """Nearest whole words in a model's input-embedding space (cosine similarity).

    Only whole-word vocabulary entries of letters (3 or more, not English stop words) take
    part, as queries and as neighbours; a neighbour must reach ``min_similarity``.

    Args:
        embeddings: the input-embedding matrix (vocabulary x hidden).
        vocab: token -> row of ``embeddings`` (a tokenizer's ``get_vocab()``).
        top_k: neighbours kept per word.
        min_similarity: the least cosine similarity of a neighbour.
    """

    def __init__(self, embeddings: Any, vocab: Mapping[str, int], top_k: int = 5, min_similarity: float = 0.4):  # fmt: skip
        import torch
        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

        self.words = sorted(
            w
            for w, i in vocab.items()
            if re.fullmatch(r"[a-z]{3,}", w) and w not in ENGLISH_STOP_WORDS and i < len(embeddings)
        )
        self.index = {w: i for i, w in enumerate(self.words)}
        rows = torch.tensor([vocab[w] for w in self.words], dtype=torch.long)
        matrix = torch.as_tensor(embeddings).detach().float()[rows]
        self.matrix = torch.nn.functional.normalize(matrix, dim=1)
        self.top_k = top_k
        self.min_similarity = min_similarity
        self._cache: dict[str, list[str]] = {}

    @classmethod
    def from_model(cls, model: str, **kwargs: Any) -> EmbeddingNeighbours:
        """From a model name (resolved offline as ``model.name`` is) or folder."""
        from transformers import AutoModel, AutoTokenizer

        from lepton_nlp.hub import resolve_model

        path = resolve_model(model)
        tokenizer = AutoTokenizer.from_pretrained(path)
        weights = AutoModel.from_pretrained(path).get_input_embeddings().weight
        return cls(weights, tokenizer.get_vocab(), **kwargs)

    def neighbours(self, word: str) -> Sequence[str]:
        word = word.lower()
        if word in self._cache:
            return self._cache[word]
        found: list[str] = []
        if word in self.index:
            import torch

            scores = self.matrix @ self.matrix[self.index[word]]
            scores[self.index[word]] = -1.0
            best = torch.topk(scores, min(self.top_k, len(self.words) - 1))
            found = [
                self.words[i]
                for s, i in zip(best.values.tolist(), best.indices.tolist(), strict=True)
                if s >= self.min_similarity
            ]
        self._cache[word] = found
        return found


# --- one attack on a list of words --------------------------------------------------------


def _typo(words: list[str], budget: int, rng: random.Random, synonyms: Any) -> int:
    places = [(w, i) for w, word in enumerate(words) for i, ch in enumerate(word) if ch.lower() in _NEIGHBOURS]  # fmt: skip
    chosen = rng.sample(places, min(budget, len(places)))
    for w, i in chosen:
        ch = words[w][i]
        new = rng.choice(_NEIGHBOURS[ch.lower()])
        new = new.upper() if ch.isupper() else new
        words[w] = words[w][:i] + new + words[w][i + 1 :]
    return len(chosen)


def _swap(words: list[str], budget: int, rng: random.Random, synonyms: Any) -> int:
    places = [
        (w, i)
        for w, word in enumerate(words)
        for i in range(len(word) - 1)
        if word[i].isalpha() and word[i + 1].isalpha() and word[i] != word[i + 1]
    ]
    rng.shuffle(places)
    taken: set[tuple[int, int]] = set()
    chosen = []
    for w, i in places:
        if len(chosen) == budget:
            break
        if {(w, i - 1), (w, i), (w, i + 1)} & taken:  # pairs never overlap
            continue
        taken.add((w, i))
        chosen.append((w, i))
    for w, i in chosen:
        word = words[w]
        words[w] = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    return len(chosen)


def _delete(words: list[str], budget: int, rng: random.Random, synonyms: Any) -> int:
    places = [(w, i) for w, word in enumerate(words) for i, ch in enumerate(word) if ch.isalpha()]
    rng.shuffle(places)
    letters = [sum(ch.isalpha() for ch in word) for word in words]
    chosen: list[tuple[int, int]] = []
    for w, i in places:
        if len(chosen) == budget:
            break
        if letters[w] > 1:  # a word keeps at least one letter
            letters[w] -= 1
            chosen.append((w, i))
    for w, i in sorted(chosen, reverse=True):
        words[w] = words[w][:i] + words[w][i + 1 :]
    return len(chosen)


def _recase(word: str, rng: random.Random) -> str:
    options = {word.upper(), word.lower(), word.title(), word.swapcase()} - {word}
    return rng.choice(sorted(options))


def _case(words: list[str], budget: int, rng: random.Random, synonyms: Any) -> int:
    places = [w for w, word in enumerate(words) if any(ch.isalpha() for ch in word)]
    chosen = rng.sample(places, min(budget, len(places)))
    for w in chosen:
        words[w] = _recase(words[w], rng)
    return len(chosen)


def _punctuation(words: list[str], budget: int, rng: random.Random, synonyms: Any) -> int:
    places: list[tuple[int, int | None]] = []
    for w, word in enumerate(words):
        if len(word) > 1:  # a mark that is a whole word stays, so no word disappears
            # Marks at a word's edges only: "13.1" or "U.S." keep their inner marks.
            core = _EDGES.match(word)
            lead, trail = len(core.group(1)), len(core.group(3))
            places += [(w, i) for i in range(lead)]
            places += [(w, i) for i in range(len(word) - trail, len(word)) if i >= lead]
        if word[-1:].isalnum():
            places.append((w, None))  # insert a mark after the word
    chosen = rng.sample(places, min(budget, len(places)))
    inserts = {w: rng.choice(_MARKS) for w, i in chosen if i is None}
    for w, i in sorted((c for c in chosen if c[1] is not None), reverse=True):
        words[w] = words[w][:i] + words[w][i + 1 :]
    for w, mark in inserts.items():
        words[w] += mark
    return len(chosen)


def keep_case(template: str, word: str) -> str:
    """``word`` in the case of the word it replaces (all capitals, capitalised, or as is)."""
    if template.isupper() and len(template) > 1:
        return word.upper()
    if template[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def _synonym(words: list[str], budget: int, rng: random.Random, synonyms: Any) -> int:
    if synonyms is None:
        raise ConfigError("The synonym attack needs a synonym source (EmbeddingNeighbours).")
    places = []
    for w, word in enumerate(words):
        match = WORD.match(word)
        if match and synonyms.neighbours(match.group(2)):
            places.append((w, match))
    chosen = rng.sample(places, min(budget, len(places)))
    for w, match in chosen:
        lead, core, trail = match.groups()
        new = rng.choice(list(synonyms.neighbours(core)))
        words[w] = lead + keep_case(core, new) + trail
    return len(chosen)


_ATTACK_FUNCTIONS: dict[str, Callable[..., int]] = {
    "typo": _typo,
    "swap": _swap,
    "delete": _delete,
    "synonym": _synonym,
    "case": _case,
    "punctuation": _punctuation,
}


def _rng(seed: int, attack: str, budget: int, key: Any) -> random.Random:
    # A string seed is hashed with SHA-512 by random.Random: the same on every machine and
    # run, whatever PYTHONHASHSEED is.
    return random.Random(f"{seed}:{attack}:{budget}:{key}")


def _check(attack: str, budget: int) -> None:
    if attack not in ATTACKS:
        raise ConfigError(f"Unknown attack {attack!r}; choose from {', '.join(ATTACKS)}.")
    if not isinstance(budget, int) or budget < 1:
        raise ConfigError(
            f"An attack budget is a whole number of edits, 1 or more; got {budget!r}."
        )


def attack_words(
    words: Sequence[str],
    attack: str,
    budget: int,
    seed: int = 0,
    key: Any = 0,
    synonyms: SynonymSource | None = None,
) -> tuple[list[str], int]:
    """``words`` after ``budget`` edits of kind ``attack`` (fewer where they do not fit).

    Args:
        words: the words (NER tokens, or a text's whitespace-separated pieces).
        attack: one of :data:`ATTACKS`.
        budget: edits to make (see the module's table for what one edit is).
        seed: the evaluation's seed; with ``attack``, ``budget`` and ``key`` (the record's
            index) it fixes every random choice.
        synonyms: where ``synonym`` finds replacements.

    Returns:
        ``(new_words, edits)``: as many words as given, none empty; ``edits`` is ``budget``
        unless the words had room for fewer.

    Raises:
        ConfigError: an unknown attack, a budget under 1, or ``synonym`` without a source.
    """
    _check(attack, budget)
    out = list(words)
    edits = _ATTACK_FUNCTIONS[attack](out, budget, _rng(seed, attack, budget, key), synonyms)
    return out, edits


def attack_text(
    text: str,
    attack: str,
    budget: int,
    seed: int = 0,
    key: Any = 0,
    synonyms: SynonymSource | None = None,
) -> tuple[str, int]:
    """``text`` after ``budget`` edits of kind ``attack``; its whitespace stays as it was.

    See :func:`attack_words` for the arguments; returns ``(new_text, edits)``.
    """
    pieces = re.split(r"(\s+)", text)
    words = pieces[0::2]
    filled = [i for i, w in enumerate(words) if w]
    new, edits = attack_words([words[i] for i in filled], attack, budget, seed, key, synonyms)
    for i, word in zip(filled, new, strict=True):
        pieces[2 * i] = word
    return "".join(pieces), edits


@dataclass
class AttackOutcome:
    """The attacked records of one (attack, budget), and how many edits fitted."""

    records: list[dict]
    attack: str
    budget: int
    edits: list[int]

    @property
    def short_of_budget(self) -> int:
        """Records that had room for fewer than ``budget`` edits."""
        return sum(e < self.budget for e in self.edits)

    @property
    def changed(self) -> int:
        return sum(e > 0 for e in self.edits)


def attack_records(
    records: Sequence[dict],
    record_kind: str,
    attack: str,
    budget: int,
    seed: int = 0,
    synonyms: SynonymSource | None = None,
) -> AttackOutcome:
    """Copies of ``records`` with their text (or NER tokens) attacked; labels and tags stay.

    A record with room for fewer edits than ``budget`` is attacked as far as it allows and
    counted in ``short_of_budget``, which a warning reports.

    Raises:
        ConfigError: a task whose records the attacks do not reach (relation, QA,
            generation), an unknown attack or a budget under 1.
    """
    _check(attack, budget)
    field = ATTACKABLE.get(record_kind)
    if field is None:
        raise ConfigError(
            f"Robustness attacks change a text (classification) or a token list (NER); "
            f"records of kind {record_kind!r} are not supported."
        )
    out, edits = [], []
    for index, record in enumerate(records):
        if field == "tokens":
            new, n = attack_words(record["tokens"], attack, budget, seed, index, synonyms)
        else:
            new, n = attack_text(record["text"], attack, budget, seed, index, synonyms)
        out.append({**record, field: new})
        edits.append(n)
    outcome = AttackOutcome(out, attack, budget, edits)
    if outcome.short_of_budget:
        message = (
            f"attack {attack} with budget {budget}: {outcome.short_of_budget} of {len(records)} "
            f"records had room for fewer edits and got as many as they allow."
        )
        log.warning(message)
    return outcome


def parse_attacks(value: str | Sequence[str]) -> list[str]:
    """``"typo,synonym"`` (or a list) -> checked attack names; ``all`` names every attack.

    Raises:
        ConfigError: an unknown name (with the nearest known one).
    """
    import difflib

    names = value.split(",") if isinstance(value, str) else list(value)
    names = [n.strip() for n in names if n.strip()]
    if names == ["all"]:
        return list(ATTACKS)
    for name in names:
        if name not in ATTACKS:
            close = difflib.get_close_matches(name, ATTACKS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"Unknown attack {name!r}.{hint} Choose from {', '.join(ATTACKS)} (or all)."
            )
    if not names:
        raise ConfigError(f"Name at least one attack: {', '.join(ATTACKS)} (or all).")
    return names


def parse_budgets(value: str | Sequence[int]) -> list[int]:
    """``"1,3"`` (or a list) -> budgets, each a whole number of edits >= 1.

    Raises:
        ConfigError: anything else.
    """
    items = value.split(",") if isinstance(value, str) else list(value)
    budgets = []
    for item in items:
        try:
            budget = int(str(item).strip())
        except ValueError:
            budget = 0
        if budget < 1:
            raise ConfigError(
                f"Attack budgets are whole numbers of edits, 1 or more (e.g. 1,3); got {item!r}."
            )
        budgets.append(budget)
    return budgets


def _accuracy_key(metrics: dict) -> str | None:
    for key in ("accuracy", "f1", "micro_f1", "macro_f1"):
        if key in metrics:
            return key
    return None


def evaluate_robustness(
    predictor: Any,
    records: Sequence[dict],
    attacks: Sequence[str],
    budgets: Sequence[int],
    seed: int = 0,
    synonyms: SynonymSource | None = None,
    on_result: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Score ``predictor`` on ``records`` as they are and under each (attack, budget).

    Args:
        predictor: a :class:`~lepton_nlp.inference.Predictor` (or anything with ``task``,
            ``predict`` and ``evaluate``).
        records: labelled records of the predictor's task (classification or NER).
        attacks: names from :data:`ATTACKS`.
        budgets: edits per record.
        seed: fixes every random choice.
        synonyms: the ``synonym`` attack's source; None builds
            :class:`EmbeddingNeighbours` from the predictor's base model.
        on_result: called with ``("clean", metrics)`` and then ``("typo@1", metrics)``...
            as each is known (long evaluations can keep what they measured so far).

    Returns:
        ``{"clean": metrics, "attacks": {"typo@1": {**metrics, "short_of_budget",
        "changed", "prediction_flips", "drop"}, ...}, "seed", "metric"}``: ``drop`` is the
        clean value of ``metric`` minus the attacked one; ``prediction_flips`` counts
        records whose prediction the attack changed.
    """
    attacks = parse_attacks(attacks)
    budgets = parse_budgets(budgets)
    kind = predictor.task.record_kind
    if kind not in ATTACKABLE:
        raise ConfigError(
            f"Robustness attacks change a text (classification) or a token list (NER); "
            f"a {predictor.task.name} model's records are not supported."
        )
    if "synonym" in attacks and synonyms is None:
        synonyms = EmbeddingNeighbours.from_model(predictor.info.base_model)
    predictor.task.check_records(list(records), predictor.spec, "evaluation")
    clean_predictions = _predicted(predictor, records)
    clean = _scores(predictor, clean_predictions, records)
    metric = _accuracy_key(clean)
    report: dict[str, Any] = {"clean": clean, "attacks": {}, "seed": seed, "metric": metric}
    if on_result is not None:
        on_result("clean", clean)
    for attack in attacks:
        for budget in budgets:
            outcome = attack_records(records, kind, attack, budget, seed, synonyms)
            predictions = _predicted(predictor, outcome.records)
            scores = _scores(predictor, predictions, outcome.records)
            scores.update(
                short_of_budget=outcome.short_of_budget,
                changed=outcome.changed,
                prediction_flips=sum(
                    _answer(a) != _answer(b)
                    for a, b in zip(clean_predictions, predictions, strict=True)
                ),
            )
            if metric is not None:
                scores["drop"] = round(clean[metric] - scores[metric], 6)
            report["attacks"][f"{attack}@{budget}"] = scores
            if on_result is not None:
                on_result(f"{attack}@{budget}", scores)
    return report


def _predicted(predictor: Any, records: Sequence[dict]) -> list[Any]:
    return predictor.predict(list(records))


def _scores(predictor: Any, predictions: list[Any], records: Sequence[dict]) -> dict[str, Any]:
    scores = predictor.task.evaluate_predictions(predictions, list(records), predictor.spec)
    scores = {k: round(float(v), 6) if isinstance(v, float) else v for k, v in scores.items()}
    scores["examples"] = len(records)
    return scores


def _answer(prediction: Any) -> Any:
    """What a prediction says, without its scores (a label, a label set, a tag sequence)."""
    if isinstance(prediction, dict):
        for key in ("label", "labels", "tags"):
            if key in prediction:
                return prediction[key]
    return prediction
