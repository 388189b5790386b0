"""Training-data augmentation: lexical edits, back-translation and LLM paraphrase, checked and counted.

``augment.methods`` in a run config switches each method on (docs/augmentation.md):

==================  ===========================================================  ===================
method              one augmented copy                                            record kinds
==================  ===========================================================  ===================
``synonym``         ``n`` words replaced by synonyms                              text, tokens, qa, relation
``insert``          a synonym of a word inserted at a random place, ``n`` times   text, tokens, qa, relation
``swap``            two words exchanged, ``n`` times                              text, tokens, qa, relation
``delete``          each word dropped with probability ``p`` (at least one)       text, tokens, qa, relation
``typos``           ``n`` letters mistyped (a keyboard neighbour), swapped with   text, tokens
                    the next letter, or dropped: one kind per copy
``back_translation``  the text translated to a pivot language and back            text
``paraphrase``      the text rewritten by the instruct LLM                        text
==================  ===========================================================  ===================

``n = max(1, round(p * words))`` with ``p = augment.probability`` (EDA, Wei & Zou 2019).
The lexical edits never touch an NER entity's words, a QA answer or a relation argument:
those stay verbatim (inserts never split them), the tags follow their words, and character
offsets are recomputed, so every span still points at the same text. Synonyms come from
:class:`~lepton_nlp.evaluation.robustness.EmbeddingNeighbours` (the nearest whole words in the
encoder's own input embeddings, offline) or a JSON word list.

After generation, an augmented record is dropped when it is empty, equals an existing
record (``dedup``), or, with ``label_check``, when a trained model predicts something else
for it than for its original. Everything made, skipped and dropped is counted in an
:class:`AugmentReport`, which the run records in its metrics (``metrics.json`` of the
artifact); records that a method could not change (a one-word text cannot be swapped) are
counted and warned about, and a run whose augmentation produced nothing at all fails.

``typos`` makes a model robust to misspelt input: its edits are those of the robustness
evaluation's ``typo``, ``swap`` and ``delete`` attacks
(:mod:`lepton_nlp.evaluation.robustness`), drawn from the augmentation's own seed, so a
model trained on them is also scored on the same kinds of edit, at other places and letters.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from lepton_nlp.config import AUGMENT_RECORD_KINDS, AugmentConfig
from lepton_nlp.errors import ConfigError, DataError
from lepton_nlp.evaluation.robustness import WORD, attack_text, attack_words, keep_case

__all__ = [
    "LEXICAL_METHODS",
    "AugmentReport",
    "Piece",
    "TextGenerator",
    "augment_records",
    "edit_pieces",
    "load_generator",
    "load_synonyms",
]

log = logging.getLogger(__name__)

LEXICAL_METHODS = ("synonym", "insert", "swap", "delete")
#: The character edits of the ``typos`` method: robustness attacks of the same names.
TYPO_EDITS = ("typo", "swap", "delete")

_SPACE = re.compile(r"\s+")


# --- lexical edits on pieces ---------------------------------------------------------------


@dataclass
class Piece:
    """One word of a text (or a frozen stretch: an entity, an answer, an argument)."""

    text: str
    origin: int | None = None
    """Index of the original piece it came from; None for an inserted word."""
    group: int | None = None
    """Frozen pieces: which protected span they belong to (None: editable)."""

    @property
    def frozen(self) -> bool:
        return self.group is not None


def _synonyms_of(
    piece: Piece, synonyms: Any, single_word: bool
) -> tuple[re.Match, list[str]] | None:
    match = WORD.match(piece.text)
    if not match:
        return None
    found = [w for w in synonyms.neighbours(match.group(2)) if w.lower() != match.group(2).lower()]
    if single_word:
        found = [w for w in found if not _SPACE.search(w)]
    return (match, found) if found else None


def _edits(pieces: list[Piece], probability: float) -> int:
    return max(1, round(probability * len(pieces)))


def _synonym(pieces, probability, rng, synonyms, single_word):
    places = []
    for i, piece in enumerate(pieces):
        if not piece.frozen and (found := _synonyms_of(piece, synonyms, single_word)):
            places.append((i, *found))
    if not places:
        return None, "no_synonym"
    for i, match, found in rng.sample(places, min(_edits(pieces, probability), len(places))):
        lead, core, trail = match.groups()
        new = lead + keep_case(core, rng.choice(found)) + trail
        pieces[i] = Piece(new, pieces[i].origin)
    return pieces, None


def _insert_positions(pieces: list[Piece]) -> list[int]:
    """Where a word may go: anywhere but inside a protected span."""
    return [
        p
        for p in range(len(pieces) + 1)
        if not (
            0 < p < len(pieces) and pieces[p - 1].frozen and pieces[p - 1].group == pieces[p].group
        )
    ]


def _insert(pieces, probability, rng, synonyms, single_word):
    sources = []
    for piece in pieces:
        if not piece.frozen and (found := _synonyms_of(piece, synonyms, single_word)):
            sources.append(found[1])
    if not sources:
        return None, "no_synonym"
    for _ in range(_edits(pieces, probability)):
        word = rng.choice(rng.choice(sources))
        pieces.insert(rng.choice(_insert_positions(pieces)), Piece(word))
    return pieces, None


def _swap(pieces, probability, rng, synonyms, single_word):
    free = [i for i, piece in enumerate(pieces) if not piece.frozen]
    if len(free) < 2:
        return None, "too_short"
    if len({pieces[i].text.lower() for i in free}) < 2:
        return None, "too_short"  # every editable word is the same word: a swap changes nothing
    for _ in range(_edits(pieces, probability)):
        a, b = rng.sample(free, 2)
        pieces[a], pieces[b] = pieces[b], pieces[a]
    return pieces, None


def _delete(pieces, probability, rng, synonyms, single_word):
    free = [i for i, piece in enumerate(pieces) if not piece.frozen]
    if not free or len(pieces) < 2:
        return None, "too_short"  # nothing may go, or the text would be empty
    gone = {i for i in free if rng.random() < probability}
    if not gone:
        gone = {rng.choice(free)}
    if len(gone) == len(pieces):
        gone.discard(rng.choice(sorted(gone)))
    return [p for i, p in enumerate(pieces) if i not in gone], None


_LEXICAL = {"synonym": _synonym, "insert": _insert, "swap": _swap, "delete": _delete}


def edit_pieces(
    pieces: Sequence[Piece],
    method: str,
    probability: float,
    rng: random.Random,
    synonyms: Any = None,
    single_word: bool = False,
) -> tuple[list[Piece] | None, str | None]:
    """One lexical edit of ``pieces``; frozen pieces keep their text and order.

    Args:
        pieces: the words (frozen ones carry a ``group``).
        method: synonym | insert | swap | delete.
        probability: the share of words edited (at least one edit).
        rng: the random source (seeded by the caller).
        synonyms: a :class:`~lepton_nlp.evaluation.robustness.SynonymSource` (synonym, insert).
        single_word: keep only one-word synonyms (token lists, where a word is one token).

    Returns:
        ``(new_pieces, None)``, or ``(None, reason)`` when the method cannot change these
        words: ``too_short`` (swap needs two editable words; delete cannot empty a text),
        ``no_synonym`` (no editable word has a synonym).
    """
    if method not in _LEXICAL:
        raise ConfigError(f"{method!r} is not a lexical method; choose {', '.join(_LEXICAL)}.")
    if method in ("synonym", "insert") and synonyms is None:
        raise ConfigError(f"The {method} method needs a synonym source (augment.synonyms).")
    return _LEXICAL[method](list(pieces), probability, rng, synonyms, single_word)


# --- records <-> pieces ------------------------------------------------------------------


def _frozen_regions(text: str, spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """The spans widened to whole words, overlapping ones merged."""
    regions = []
    for start, end in sorted(spans):
        while start > 0 and not text[start - 1].isspace():
            start -= 1
        while end < len(text) and not text[end].isspace():
            end += 1
        if regions and start <= regions[-1][1]:
            regions[-1] = (regions[-1][0], max(end, regions[-1][1]))
        else:
            regions.append((start, end))
    return regions


def _text_pieces(text: str, spans: Sequence[tuple[int, int]] = ()) -> tuple[list[Piece], list[int]]:
    """A text as pieces, each protected region one frozen piece; and each piece's start."""
    regions = _frozen_regions(text, [s for s in spans if s[1] > s[0]])
    pieces, starts, pos = [], [], 0
    for group, (start, end) in enumerate([*regions, (len(text), len(text))]):
        for match in re.finditer(r"\S+", text[pos:start]):
            starts.append(pos + match.start())
            pieces.append(Piece(match.group(), len(pieces)))
        if end > start:
            starts.append(start)
            pieces.append(Piece(text[start:end], len(pieces), group))
        pos = end
    return pieces, starts


def _join(pieces: list[Piece]) -> tuple[str, dict[int, int]]:
    """The pieces joined by single spaces, and where each original piece now starts."""
    out, where, pos = [], {}, 0
    for piece in pieces:
        if piece.origin is not None:
            where[piece.origin] = pos
        out.append(piece.text)
        pos += len(piece.text) + 1
    return " ".join(out), where


def _moved(start: int, starts: list[int], pieces: list[Piece], where: dict[int, int]) -> int:
    """The new offset of an original character offset inside a frozen piece."""
    for origin, piece_start in enumerate(starts):
        end = piece_start + len(pieces[origin].text)
        if pieces[origin].frozen and piece_start <= start < end:
            return where[origin] + start - piece_start
    raise AssertionError(f"offset {start} is not inside a protected piece")


def _augment_text_record(record, method, probability, rng, synonyms):
    pieces, _ = _text_pieces(record["text"])
    new, reason = edit_pieces(pieces, method, probability, rng, synonyms)
    if new is None:
        return None, reason
    return {**record, "text": _join(new)[0]}, None


def _augment_tokens_record(record, method, probability, rng, synonyms):
    tags = record["tags"]
    pieces, group = [], -1
    for i, (token, tag) in enumerate(zip(record["tokens"], tags, strict=True)):
        if tag == "O":
            pieces.append(Piece(token, i))
            continue
        if tag.startswith("B-") or i == 0 or tags[i - 1] == "O" or tags[i - 1][2:] != tag[2:]:
            group += 1
        pieces.append(Piece(token, i, group))
    new, reason = edit_pieces(pieces, method, probability, rng, synonyms, single_word=True)
    if new is None:
        return None, reason
    return {
        **record,
        "tokens": [p.text for p in new],
        "tags": [tags[p.origin] if p.origin is not None else "O" for p in new],
    }, None


def _typos_record(record, kind, probability, rng):
    """A copy with ``max(1, round(p * words))`` letters mistyped, swapped or dropped (one
    kind, picked by ``rng``), by the robustness attacks' own edits; ``too_short`` when no
    word has room for one."""
    edit = rng.choice(TYPO_EDITS)
    seed = rng.getrandbits(32)
    if kind == "tokens":
        budget = max(1, round(probability * len(record["tokens"])))
        new, edits = attack_words(record["tokens"], edit, budget, seed=seed, key="augment")
        return ({**record, "tokens": new}, None) if edits else (None, "too_short")
    budget = max(1, round(probability * len(record["text"].split())))
    text, edits = attack_text(record["text"], edit, budget, seed=seed, key="augment")
    return ({**record, "text": text}, None) if edits else (None, "too_short")


def _augment_spans(text, spans, method, probability, rng, synonyms):
    """Edit ``text`` outside ``spans``; returns the new text and the spans' new starts."""
    pieces, starts = _text_pieces(text, spans)
    new, reason = edit_pieces(pieces, method, probability, rng, synonyms)
    if new is None:
        return None, None, reason
    joined, where = _join(new)
    return joined, [_moved(s, starts, pieces, where) if e > s else 0 for s, e in spans], None


def _augment_qa_record(record, method, probability, rng, synonyms):
    answers = record.get("answers") or {"text": [], "answer_start": []}
    spans = [
        (start, start + len(text))
        for text, start in zip(answers["text"], answers["answer_start"], strict=True)
    ]
    context, starts, reason = _augment_spans(
        record["context"], spans, method, probability, rng, synonyms
    )
    if context is None:
        return None, reason
    new_answers = {**answers, "answer_start": starts}
    return {**record, "context": context, "answers": new_answers}, None


def _augment_relation_record(record, method, probability, rng, synonyms):
    head, tail = record["head"], record["tail"]
    spans = [(head["start"], head["end"]), (tail["start"], tail["end"])]
    text, starts, reason = _augment_spans(record["text"], spans, method, probability, rng, synonyms)
    if text is None:
        return None, reason
    moved = [
        {**arg, "start": s, "end": s + arg["end"] - arg["start"]}
        for arg, s in zip((head, tail), starts, strict=True)
    ]
    return {**record, "text": text, "head": moved[0], "tail": moved[1]}, None


_RECORD_EDITORS = {
    "text": _augment_text_record,
    "tokens": _augment_tokens_record,
    "qa": _augment_qa_record,
    "relation": _augment_relation_record,
}


def _content(record: dict, kind: str) -> str:
    """What dedup compares: the record's words, lower-cased, spaces collapsed."""
    if kind == "tokens":
        text = " ".join(record["tokens"])
    elif kind == "qa":
        text = record["question"] + " \x1f " + record["context"]
    else:
        text = record.get("text", "")
    return _SPACE.sub(" ", text).strip().lower()


# --- generated text: back-translation and paraphrase -------------------------------------


class TextGenerator(Protocol):
    """Texts in, one generated text per input out (a translator, a paraphraser)."""

    def generate(self, texts: list[str]) -> list[str]: ...


class _ArtifactGenerator:
    """A translation (or summarization) artifact's Predictor."""

    def __init__(self, path: str, batch_size: int):
        from lepton_nlp.inference import Predictor

        self.predictor = Predictor.from_artifact(path, batch_size=batch_size, backend="torch")
        if self.predictor.task.record_kind != "pair":
            raise ConfigError(
                f"{path} is a {self.predictor.task.name} model; augmentation needs a "
                "translation (or other text-to-text) model here."
            )

    def generate(self, texts: list[str]) -> list[str]:
        return [p["generated_text"] for p in self.predictor.predict([{"source": t} for t in texts])]


class _ModelGenerator:
    """A model by name or folder, run through the core's generation task with a prompt."""

    def __init__(self, model: str, prompt: str | None, config: AugmentConfig, seed: int):
        from transformers import AutoTokenizer

        from lepton_nlp.config import build_task_options
        from lepton_nlp.hub import resolve_model
        from lepton_nlp.tasks import TaskSpec, get_task
        from lepton_nlp.tasks.generation import resolve_family

        self.task = get_task("translation")
        generate_options = {}
        if config.llm_temperature > 0:
            generate_options = {"do_sample": True, "temperature": config.llm_temperature}
        options = {"max_new_tokens": config.max_new_tokens, "generate_options": generate_options}
        path = resolve_model(model)
        if prompt is not None and resolve_family(path) == "causal":
            options["prompt"] = prompt  # a seq2seq translation model reads the bare text
        typed = build_task_options(self.task, options)
        self.spec = TaskSpec(
            labels=[], max_length=256, extra={"options": dataclasses.asdict(typed)}
        )
        self.tokenizer = self.task.prepare_tokenizer(AutoTokenizer.from_pretrained(path), self.spec)
        self.model = self.task.load_model(path, self.spec).eval()
        self.batch_size = config.batch_size
        self.seed = seed

    def generate(self, texts: list[str]) -> list[str]:
        import torch

        from lepton_nlp.inference.predictor import predict_items

        torch.manual_seed(self.seed)  # sampling (llm_temperature > 0) repeats with the seed
        items = [self.task.prepare_input(t) for t in texts]
        predictions = predict_items(
            self.task, self.model, self.tokenizer, self.spec, items, self.batch_size
        )
        return [p["generated_text"] for p in predictions]


def _is_artifact(path: str) -> bool:
    from pathlib import Path

    from lepton_nlp.artifacts import ARTIFACT_FILE

    return (Path(path) / ARTIFACT_FILE).is_file()


def load_generator(model: str, config: AugmentConfig, prompt: str | None = None) -> TextGenerator:
    """A text generator from an artifact folder or a model name (hub name or folder).

    A model that is not an artifact runs through the core's generation task: a causal LM
    (the instruct LLM) with ``prompt``, a seq2seq translation model on the bare text.
    """
    if _is_artifact(model):
        return _ArtifactGenerator(model, config.batch_size)
    return _ModelGenerator(model, prompt, config, config.seed)


def _clean_generated(text: str) -> str:
    """One line of generated text without quotes or a leading label ("Paraphrase: ...")."""
    text = text.strip().split("\n")[0].strip()
    text = re.sub(r"^(paraphrase|rewritten sentence|rewrite|translation|answer)\s*:\s*", "", text, flags=re.I)  # fmt: skip
    return text.strip().strip('"\u201c\u201d').strip()


# --- the run's augmentation ---------------------------------------------------------------


@dataclass
class AugmentReport:
    """What augmentation made of a training split: counts per method and reason."""

    methods: list[str]
    original: int = 0
    """Training records before augmentation."""
    produced: Counter = field(default_factory=Counter)
    """Augmented records made, per method (before the checks)."""
    skipped: dict[str, Counter] = field(default_factory=dict)
    """Per method: records it could not change, per reason (too_short, no_synonym, empty,
    unchanged)."""
    dropped: Counter = field(default_factory=Counter)
    """Augmented records removed: duplicate, label_flip."""
    kept: Counter = field(default_factory=Counter)
    """Augmented records added to training, per method."""
    sources: list[tuple[int, str]] = field(default_factory=list)
    """For each added record, in order: the index of its original and the method."""
    seconds: float = 0.0

    @property
    def added(self) -> int:
        return sum(self.kept.values())

    def as_dict(self) -> dict[str, Any]:
        """Plain data, as the run's metrics record it."""
        return {
            "methods": list(self.methods),
            "original": self.original,
            "added": self.added,
            "train_after": self.original + self.added,
            "produced": dict(self.produced),
            "kept": dict(self.kept),
            "skipped": {m: dict(c) for m, c in self.skipped.items() if c},
            "dropped": dict(self.dropped),
            "seconds": round(self.seconds, 1),
        }


def load_synonyms(config: AugmentConfig, model_name: str) -> Any:
    """The synonym source ``augment.synonyms`` names (embedding neighbours or a JSON file)."""
    from lepton_nlp.evaluation.robustness import EmbeddingNeighbours, SynonymTable

    if config.synonyms == "embedding":
        return EmbeddingNeighbours.from_model(config.synonym_model or model_name)
    return SynonymTable.from_file(config.synonyms)


def _verdict(task: Any, prediction: dict) -> Any:
    """What a prediction says, for the label check: a label, a label set, entities, an answer."""
    if "entities" in prediction:
        return sorted((e["label"], e["text"]) for e in prediction["entities"])
    for key in ("label", "labels", "answer"):
        if key in prediction:
            value = prediction[key]
            return tuple(sorted(value)) if isinstance(value, list) else value
    raise ConfigError(f"augment.label_check cannot read a {task.name} prediction: {prediction}")


def _label_check(
    predictor: Any, originals: list[dict], made: list[tuple[int, str, dict]]
) -> list[bool]:
    """For each augmented record: does the model predict for it what it predicts for its original?"""
    needed = sorted({index for index, _, _ in made})
    before = dict(zip(needed, predictor.predict([originals[i] for i in needed]), strict=True))
    after = predictor.predict([record for _, _, record in made])
    task = predictor.task
    return [
        _verdict(task, before[index]) == _verdict(task, prediction)
        for (index, _, _), prediction in zip(made, after, strict=True)
    ]


def augment_records(
    records: list[dict],
    record_kind: str,
    config: AugmentConfig,
    model_name: str = "",
    task_name: str = "",
    synonyms: Any = None,
    generators: dict[str, TextGenerator] | None = None,
    checker: Any = None,
) -> tuple[list[dict], AugmentReport]:
    """The training records followed by their checked augmented copies.

    Args:
        records: the training split (never validation or test).
        record_kind: the task's ``record_kind`` (text, tokens, qa, relation).
        config: the run's ``augment`` section.
        model_name: the run's base model (its embeddings give synonyms by default).
        task_name: the run's task, for messages and the label check.
        synonyms: a synonym source (None: built from ``config.synonyms``).
        generators: ``{"back_translation": [forward, backward] or "paraphrase": generator}``
            already loaded (None: loaded from the config).
        checker: a Predictor that judges edits (None: ``config.label_check_model``).

    Returns:
        ``(records + kept augmented records, report)``.

    Raises:
        ConfigError: a method that does not fit the record kind, or a checker of another task.
        DataError: methods were asked for but not one augmented record survived.
    """
    started = time.perf_counter()
    report = AugmentReport(list(config.methods), original=len(records))
    report.skipped = {m: Counter() for m in config.methods}
    if not config.methods:
        return list(records), report
    for method in config.methods:
        if record_kind not in AUGMENT_RECORD_KINDS[method]:
            raise ConfigError(
                f"augment.methods: {method} does not apply to records of kind {record_kind!r}."
            )
    if config.label_check:
        checker = _load_checker(config, task_name, checker)
    lexical = [m for m in config.methods if m in LEXICAL_METHODS]
    if synonyms is None and any(m in ("synonym", "insert") for m in lexical):
        synonyms = load_synonyms(config, model_name)
    generators = dict(generators or {})

    # Which method makes each copy: taken in turn from a seeded start per record.
    plan: dict[str, list[tuple[int, random.Random]]] = {m: [] for m in config.methods}
    for index in range(len(records)):
        rng = random.Random(f"{config.seed}:{index}")
        offset = rng.randrange(len(config.methods))
        for copy in range(config.per_example):
            method = config.methods[(offset + copy) % len(config.methods)]
            plan[method].append((index, random.Random(f"{config.seed}:{index}:{copy}")))

    made: list[tuple[int, str, dict]] = []  # (original index, method, record)
    editor = _RECORD_EDITORS.get(record_kind)
    for method in config.methods:
        if method in (*LEXICAL_METHODS, "typos"):
            for index, rng in plan[method]:
                if method == "typos":
                    new, reason = _typos_record(
                        records[index], record_kind, config.probability, rng
                    )
                else:
                    new, reason = editor(records[index], method, config.probability, rng, synonyms)
                if new is None:
                    report.skipped[method][reason] += 1
                else:
                    made.append((index, method, new))
                    report.produced[method] += 1
        elif plan[method]:
            texts = [records[index]["text"] for index, _ in plan[method]]
            outputs = _generate(method, texts, config, generators)
            for (index, _), (text, reason) in zip(plan[method], outputs, strict=True):
                if reason:
                    report.skipped[method][reason] += 1
                else:
                    made.append((index, method, {**records[index], "text": text}))
                    report.produced[method] += 1

    keep = [True] * len(made)
    if config.dedup:
        seen = {_content(r, record_kind) for r in records}
        for i, (_, _, record) in enumerate(made):
            key = _content(record, record_kind)
            if key in seen:
                keep[i] = False
                report.dropped["duplicate"] += 1
            seen.add(key)
    if config.label_check and any(keep):
        survivors = [m for m, k in zip(made, keep, strict=True) if k]
        same = iter(_label_check(checker, records, survivors))
        for i in range(len(made)):
            if keep[i] and not next(same):
                keep[i] = False
                report.dropped["label_flip"] += 1

    added = [record for (_, _, record), k in zip(made, keep, strict=True) if k]
    for (index, method, _), k in zip(made, keep, strict=True):
        if k:
            report.kept[method] += 1
            report.sources.append((index, method))
    report.seconds = time.perf_counter() - started
    _warn(report)
    if records and not added:
        raise DataError(
            f"augment.methods={config.methods} produced no training record: "
            f"{report.as_dict()['skipped'] or 'none skipped'}, dropped "
            f"{dict(report.dropped) or 'none'}. Texts of one word cannot be swapped or "
            "shortened, words without synonyms cannot be replaced, a generator that returns "
            "nothing or the text again makes no copy: choose other methods, "
            "another synonym source, or turn augmentation off (augment.methods=[])."
        )
    return [*records, *added], report


def _load_checker(config: AugmentConfig, task_name: str, checker: Any) -> Any:
    """The label check's judge (``label_check_model``), refused when of another task."""
    if checker is None:
        from lepton_nlp.inference import Predictor

        checker = Predictor.from_artifact(
            config.label_check_model, batch_size=config.batch_size, backend="torch"
        )
    if task_name and checker.task.name != task_name:
        raise ConfigError(
            f"augment.label_check_model={config.label_check_model} is a {checker.task.name} "
            f"model; this run's task is {task_name}: give an artifact of the same task."
        )
    return checker


def _warn(report: AugmentReport) -> None:
    for method, reasons in report.skipped.items():
        if reasons:
            log.warning(
                "augment %s: %d of %d records left unchanged (%s).",
                method,
                sum(reasons.values()),
                sum(reasons.values()) + report.produced[method],
                ", ".join(f"{k}: {v}" for k, v in sorted(reasons.items())),
            )
    if report.dropped:
        log.warning(
            "augment: dropped %s of %d augmented records.",
            ", ".join(f"{v} {k}" for k, v in sorted(report.dropped.items())),
            sum(report.produced.values()),
        )


def _words(text: str) -> list[str]:
    """A text's words, lower-cased, without punctuation or spacing."""
    return re.findall(r"\w+", text.lower())


def _generate(
    method: str, texts: list[str], config: AugmentConfig, generators: dict[str, Any]
) -> list[tuple[str, str | None]]:
    """Generated texts, cleaned, each with None or why it is no copy: ``empty``, or
    ``unchanged`` (the input's words again, as a small LLM often answers, re-spaced)."""
    if method == "paraphrase":
        generator = generators.get("paraphrase")
        if generator is None:
            generator = load_generator(config.llm_model, config, config.llm_prompt)
        outputs = generator.generate(texts)
    else:
        pair = generators.get("back_translation")
        if pair is None:
            forward, backward = config.translation_models
            there = _translation_prompt(config.source_language, config.pivot_language)
            back = _translation_prompt(config.pivot_language, config.source_language)
            pair = (load_generator(forward, config, there), load_generator(backward, config, back))
        pivots = [_clean_generated(t) for t in pair[0].generate(texts)]
        outputs = pair[1].generate([p or "." for p in pivots])
        outputs = [o if p else "" for o, p in zip(outputs, pivots, strict=True)]
    cleaned = [_clean_generated(o) for o in outputs]
    return [
        (c, None if _words(c) and _words(c) != _words(t) else "unchanged" if c else "empty")
        for c, t in zip(cleaned, texts, strict=True)
    ]


def _translation_prompt(source: str, target: str) -> str:
    # Used by instruct LLMs only; a seq2seq model without a prompt reads the bare text.
    return f"Translate the following {source} text into {target}.\n\n{{source}}"
