"""Answers to customers' questions: FAQ retrieval first, then extractive QA over the policies.

``AnswerFinder.from_folder("data/support").find("my card hasn't arrived")`` returns an
:class:`Answer` (text, source, score, kind) or None:

1. **FAQ**: the question is embedded (MiniLM through :class:`lepton_nlp.embeddings.SentenceEmbedder`,
   or the FAQ encoder tuned on the FAQ by ``lepton-support tune-faq``,
   :mod:`apps.support.faq_tuning`) and searched in a flat
   :class:`lepton_nlp.retrieval.VectorIndex`: an entry scores the mean of the question's cosine
   similarities to its question and to its answer, with a fifth of BM25 (:data:`LEXICAL_WEIGHT`,
   :class:`LexicalScorer`). When the caller passes the intent the bot
   understood (``find(question, intent=...)``, as the dialogue does) and FAQ entries carry
   that intent, the best of them answers when its score reaches the (lower) intent threshold;
   otherwise the best entry overall answers when its score reaches the FAQ threshold.
2. **Policies**: otherwise the policy sections (``policies/*.md``, split at ``## `` headings)
   most similar to the question are read by the extractive QA model
   (``Predictor.from_artifact(policy_qa)``); the best span answers when its score reaches the
   QA threshold. Without that model the step is skipped (``policy_available`` is False).
3. Otherwise None: the bot declines or hands over.

The thresholds are chosen on validation data by :func:`fit_thresholds` (FAQ paraphrases must
match their own entry, ``out_of_scope.txt`` must not match; for the intent threshold, the
paraphrases the intent model understands as their entry's intent must be answered and the
out-of-scope lines it lets through must not) and kept, with how they were chosen, in
``thresholds.json`` beside the FAQ (``python -m apps.support.answers fit``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import logging
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from lepton_nlp.retrieval import IndexConfig, VectorIndex

__all__ = [
    "CRITERION",
    "ENCODER_ENV",
    "LEXICAL_WEIGHT",
    "THRESHOLDS_FILE",
    "Answer",
    "AnswerFinder",
    "FaqEntry",
    "LexicalScorer",
    "PolicySection",
    "Thresholds",
    "choose_threshold",
    "faq_embedder",
    "faq_encoder_name",
    "fit_thresholds",
    "load_faq",
    "load_policies",
    "scoring_name",
    "slugify",
    "tokenize",
]

log = logging.getLogger(__name__)

THRESHOLDS_FILE = "thresholds.json"
#: Environment variable naming the FAQ encoder of a bot built without an explicit one (the
#: HTTP API's, the page's): a folder from ``lepton-support tune-faq`` or a model name.
ENCODER_ENV = "LEPTON_FAQ_ENCODER"
FAQ_FIELDS = ("id", "question", "answer")
#: Share of an FAQ entry's score that is lexical: BM25 of the message against the entry's
#: question and answer, divided by the most the message could score (so in [0, 1]); the rest
#: is the mean of its question's and answer's cosines. Chosen on validation by
#: ``bench/support_faq_fusion.py`` (top-1 on the paraphrases / BANKING77 train messages 0.488 /
#: 0.601 at 0.2, against 0.466 / 0.595 without).
LEXICAL_WEIGHT = 0.2
BM25_K1, BM25_B = 1.5, 0.75
_TOKEN = re.compile(r"[a-z0-9]+")

#: How thresholds are chosen, in words (stored in ``thresholds.json``).
CRITERION = (
    "accuracy of answer-or-decline: a validation query is handled correctly when it is answered "
    "and the answer is right (FAQ: its own entry is the top match; QA: the span overlaps the "
    "reference, token F1 >= 0.5), or when it is declined and no right answer was on offer "
    "(out-of-scope queries, and in-scope ones whose top match is wrong); the threshold is the "
    "midpoint between the two neighbouring scores that give the highest accuracy (the lowest "
    "such threshold on ties)"
)


class Embedder(Protocol):
    """What :class:`AnswerFinder` needs of an embedder (``SentenceEmbedder`` is one)."""

    def encode(self, texts: Sequence[str], normalize: bool = True) -> np.ndarray: ...


class Reader(Protocol):
    """What the policy step needs of an extractive QA model (a QA ``Predictor`` is one)."""

    def predict(self, inputs: Iterable[Any]) -> list[dict]: ...


@dataclass
class Answer:
    """One answer the bot can give, with where it comes from and how sure it is."""

    text: str
    source: str
    """``faq.jsonl#faq-012`` or ``policies/cards.md#replacement-cards``."""
    score: float
    """FAQ: the entry's score (:data:`LEXICAL_WEIGHT`: mostly the mean of the message's cosine
    similarities to the entry's question and answer, partly BM25); policy: the QA model's
    score of the span."""
    kind: str
    """``faq`` or ``policy``."""
    question: str | None = None
    """The FAQ question matched (None for a policy answer)."""
    span: str | None = None
    """Policy answers: the span the QA model extracted (``text`` is its sentence)."""
    matched_by: str | None = None
    """FAQ answers: ``intent`` (the best entry of the intent the bot understood) or
    ``similarity`` (the best entry overall, at or above the FAQ threshold)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FaqEntry:
    id: str
    question: str
    answer: str
    source: str | None = None
    intent: str | None = None
    paraphrases: tuple[str, ...] = ()


@dataclass(frozen=True)
class PolicySection:
    document: str
    """File name, e.g. ``cards.md``."""
    slug: str
    heading: str
    text: str

    @property
    def source(self) -> str:
        return f"policies/{self.document}#{self.slug}"


@dataclass
class Thresholds:
    """The FAQ, intent and QA score thresholds and how they were chosen (``thresholds.json``)."""

    faq: float
    qa: float | None = None
    """None until chosen for a policy QA model: the policy step then answers nothing."""
    details: dict[str, Any] = field(default_factory=dict)
    intent: float = 0.0
    """The score an entry of the understood intent needs to answer (``find(question,
    intent=...)``); 0.0 until fitted with an intent model (any entry of the intent with a
    non-negative score answers)."""

    def save(self, path: str | Path) -> None:
        record = {
            "faq_threshold": self.faq,
            "intent_threshold": self.intent,
            "qa_threshold": self.qa,
            **self.details,
        }
        Path(path).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Thresholds:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
        faq, qa = record.pop("faq_threshold"), record.pop("qa_threshold", None)
        intent = float(record.pop("intent_threshold", 0.0))
        return cls(
            faq=float(faq), qa=None if qa is None else float(qa), details=record, intent=intent
        )


# --- the knowledge base -------------------------------------------------------------------


def slugify(heading: str) -> str:
    """A heading's slug: lower case, only ``a-z 0-9 space -``, spaces runs -> ``-``."""
    kept = re.sub(r"[^a-z0-9 -]", "", heading.strip().lower())
    return re.sub(r" +", "-", kept)


def load_faq(path: str | Path) -> list[FaqEntry]:
    """The FAQ entries of a JSONL file (``id``, ``question``, ``answer`` required).

    Raises:
        ValueError: a line is not a JSON object, lacks a required field or repeats an id;
            the message names the file and line.
    """
    path = Path(path)
    entries, seen = [], set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}, line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{where}: not valid JSON ({err.msg}).") from err
        if not isinstance(record, dict):
            raise ValueError(f"{where}: expected a JSON object, got {type(record).__name__}.")
        missing = [k for k in FAQ_FIELDS if not isinstance(record.get(k), str) or not record[k]]
        if missing:
            raise ValueError(
                f"{where}: missing or empty field(s) {', '.join(missing)}; every FAQ line needs "
                f"{', '.join(FAQ_FIELDS)} as non-empty strings."
            )
        if record["id"] in seen:
            raise ValueError(f"{where}: id {record['id']!r} already used on an earlier line.")
        seen.add(record["id"])
        paraphrases = record.get("paraphrases") or []
        if not isinstance(paraphrases, list) or not all(isinstance(p, str) for p in paraphrases):
            raise ValueError(f"{where}: paraphrases must be a list of strings.")
        entries.append(
            FaqEntry(
                id=record["id"],
                question=record["question"],
                answer=record["answer"],
                source=record.get("source"),
                intent=record.get("intent"),
                paraphrases=tuple(paraphrases),
            )
        )
    if not entries:
        raise ValueError(f"{path}: no FAQ entries.")
    return entries


def load_policies(folder: str | Path) -> list[PolicySection]:
    """The ``## `` sections of every ``*.md`` file in ``folder``, in file and document order."""
    sections = []
    for doc in sorted(Path(folder).glob("*.md")):
        heading, lines = None, []
        for line in [*doc.read_text(encoding="utf-8").splitlines(), "## "]:
            if line.startswith("## "):
                text = "\n".join(lines).strip()
                if heading is not None and text:
                    sections.append(PolicySection(doc.name, slugify(heading), heading, text))
                heading, lines = line[3:].strip(), []
            elif heading is not None:
                lines.append(line)
    return sections


def _lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- choosing thresholds --------------------------------------------------------------------


def tokenize(text: str) -> list[str]:
    """Lower-cased runs of letters and digits (the BM25 tokenisation)."""
    return _TOKEN.findall(text.lower())


class LexicalScorer:
    """BM25 (``rank_bm25.BM25Okapi``, k1 1.5, b 0.75) of a message against each document,
    divided by the most the message could score, ``(k1 + 1) * sum of its terms' idf``: in
    [0, 1] whatever the message."""

    def __init__(self, documents: Sequence[str]):
        from rank_bm25 import BM25Okapi

        self.size = len(documents)
        self.bm25 = BM25Okapi([tokenize(d) for d in documents], k1=BM25_K1, b=BM25_B)

    def scores(self, text: str) -> np.ndarray:
        terms = tokenize(text)
        ceiling = (BM25_K1 + 1) * sum(self.bm25.idf.get(term, 0.0) for term in set(terms))
        if ceiling <= 0:
            return np.zeros(self.size)
        return np.asarray(self.bm25.get_scores(terms)) / ceiling


def scoring_name(lexical_weight: float) -> str:
    """How an FAQ entry is scored, in words (thresholds are fitted for one scoring)."""
    name = "mean of the question and answer cosines"
    if lexical_weight > 0:
        name = f"{1 - lexical_weight:g} x {name} + {lexical_weight:g} x BM25 / its ceiling"
    return name


def choose_threshold(scores: Sequence[float], correct_if_answered: Sequence[bool]) -> dict:
    """The score threshold with the best answer-or-decline accuracy (see :data:`CRITERION`).

    Args:
        scores: each validation query's best score.
        correct_if_answered: whether answering that query (with its best match) is right;
            False for out-of-scope queries and for in-scope ones whose best match is wrong.

    Returns:
        ``{"threshold", "accuracy", "answered_right", "declined_right", "answered_wrong", "n"}``.
    """
    s = np.asarray(scores, dtype=np.float64)
    ok = np.asarray(correct_if_answered, dtype=bool)
    if not len(s):
        raise ValueError("choose_threshold needs at least one validation score.")
    values = np.unique(s)
    candidates = np.concatenate(
        [[values[0] - 1e-6], (values[:-1] + values[1:]) / 2, [values[-1] + 1e-6]]
    )
    best = None
    for t in candidates:
        answered = s >= t
        right = int((answered & ok).sum()) + int((~answered & ~ok).sum())
        if best is None or right > best[1]:
            best = (float(t), right)
    threshold, right = best
    answered = s >= threshold
    return {
        "threshold": round(threshold, 6),
        "accuracy": round(right / len(s), 4),
        "answered_right": int((answered & ok).sum()),
        "declined_right": int((~answered & ~ok).sum()),
        "answered_wrong": int((answered & ~ok).sum()),
        "n": len(s),
    }


def _token_f1(prediction: str, reference: str) -> float:
    a, b = prediction.lower().split(), reference.lower().split()
    common = sum(min(a.count(w), b.count(w)) for w in set(a))
    if not common:
        return 0.0
    precision, recall = common / len(a), common / len(b)
    return 2 * precision * recall / (precision + recall)


def fit_thresholds(
    finder: AnswerFinder,
    out_of_scope: Sequence[str],
    policy_questions: Sequence[tuple[str, str]] | None = None,
    understand: Callable[[list[str]], list[Any]] | None = None,
    intent_model: str | None = None,
) -> Thresholds:
    """Choose the FAQ (and, with a policy model and questions, the QA; with an intent model,
    the intent) threshold.

    Args:
        finder: an :class:`AnswerFinder` whose FAQ entries carry ``paraphrases``: each must
            match its own entry.
        out_of_scope: queries that must match nothing.
        policy_questions: ``(question, reference answer)`` pairs over the policies, held out
            from the QA model's training; None or no policy model: the QA threshold stays
            pending (None).
        understand: the bot's understanding of a batch of messages (``SupportNLU.
            understand_many``); each result has ``intent``, ``out_of_scope`` and
            ``ambiguous``. With it the intent threshold is chosen on the messages the bot
            would answer by intent (in scope, not ambiguous, an intent with entries): a
            paraphrase understood as its own entry's intent should be answered, any other
            (a wrong intent, an out-of-scope line let through) declined. None: the intent
            threshold stays 0.0 (not fitted).
        intent_model: the intent model's name, recorded with the intent threshold.

    Raises:
        ValueError: no FAQ entry has paraphrases, or no out-of-scope queries.
    """
    queries = [(p, e.id) for e in finder.faq for p in e.paraphrases]
    if not queries:
        raise ValueError("No FAQ entry has paraphrases: they are the in-scope validation queries.")
    if not out_of_scope:
        raise ValueError("No out-of-scope queries: they are the validation queries to decline.")
    texts = [q for q, _ in queries] + list(out_of_scope)
    best = finder.faq_matches(texts)
    scores = [score for _, score in best]
    ok = [best[i][0] == own for i, (_, own) in enumerate(queries)] + [False] * len(out_of_scope)
    faq = choose_threshold(scores, ok)
    top1 = sum(ok) / len(queries)
    details: dict[str, Any] = {
        "criterion": CRITERION,
        "model": finder.model_name,
        "scoring": finder.scoring,
        "sections_model": finder.sections_model_name,
        "faq": {
            "indexed": "each entry's question and answer text",
            "in_scope_queries": len(queries),
            "in_scope_source": "faq.jsonl paraphrases (each must match its own entry)",
            "out_of_scope_queries": len(out_of_scope),
            "out_of_scope_source": "out_of_scope.txt",
            "top1_accuracy_in_scope": round(top1, 4),
            "out_of_scope_answered": sum(sc >= faq["threshold"] for sc in scores[len(queries) :]),
            **{k: v for k, v in faq.items() if k != "threshold"},
        },
        "qa": {
            "status": "pending: no policy QA model (or no held-out policy questions) when the "
            "thresholds were fitted; policy answers are withheld until `python -m "
            "apps.support.answers fit --qa-validation-documents DOC...` chooses it on "
            "policy_qa.json documents held out from the QA model's training"
        },
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    qa_threshold = None
    if finder.policy_available and policy_questions:
        candidates = finder.policy_candidates([q for q, _ in policy_questions] + list(out_of_scope))
        qa_scores = [a.score if a else 0.0 for a in candidates]
        qa_ok = [
            a is not None and _token_f1(a.span or a.text, ref) >= 0.5
            for a, (_, ref) in zip(candidates, policy_questions, strict=False)
        ] + [False] * len(out_of_scope)
        qa = choose_threshold(qa_scores, qa_ok)
        qa_threshold = qa["threshold"]
        details["qa"] = {
            "in_scope_queries": len(policy_questions),
            "out_of_scope_queries": len(out_of_scope),
            "model": finder.policy_model,
            **{k: v for k, v in qa.items() if k != "threshold"},
        }
    intent_threshold = 0.0
    if understand is not None:
        gold = [finder.by_id[own].intent for _, own in queries] + [None] * len(out_of_scope)
        vectors = finder._faq_vectors(texts)
        routed, scores_i, ok_i = [], [], []
        for n, understood in enumerate(understand(texts)):
            intent = getattr(understood, "intent", None)
            if understood.out_of_scope or understood.ambiguous or intent not in finder.by_intent:
                continue
            routed.append(n)
            lexical = finder._lexical(texts[n])
            scores_i.append(finder._best_of_intent(vectors[n], intent, lexical)[1])
            ok_i.append(gold[n] is not None and intent == gold[n])
        details["intent"] = {
            "model": intent_model,
            "routed_queries": len(routed),
            "routed_out_of_scope": sum(n >= len(queries) for n in routed),
            "routed_right_intent": sum(ok_i),
            "status": "fitted",
        }
        if routed:
            chosen = choose_threshold(scores_i, ok_i)
            intent_threshold = chosen["threshold"]
            details["intent"].update({k: v for k, v in chosen.items() if k != "threshold"})
    return Thresholds(
        faq=faq["threshold"], qa=qa_threshold, details=details, intent=intent_threshold
    )


def _name(embedder: Any) -> str:
    return str(getattr(embedder, "model_name", type(embedder).__name__))


def faq_encoder_name(encoder: str | Path | None = None) -> str:
    """The FAQ encoder to use: ``encoder``, else ``LEPTON_FAQ_ENCODER``, else the packaged
    MiniLM's name."""
    from lepton_nlp.embeddings import DEFAULT_EMBED_MODEL

    return str(encoder or os.environ.get(ENCODER_ENV) or DEFAULT_EMBED_MODEL)


def faq_embedder(encoder: str | Path | None = None) -> Embedder:
    """A ``SentenceEmbedder`` over :func:`faq_encoder_name` (a tuned encoder folder too).

    Raises:
        lepton_nlp.errors.ModelNotFoundError: no such folder, packaged model or hub model.
    """
    from lepton_nlp.embeddings import SentenceEmbedder

    return SentenceEmbedder(faq_encoder_name(encoder))


# --- the finder ------------------------------------------------------------------------------


class AnswerFinder:
    """FAQ retrieval, then extractive QA over policy sections, under fitted thresholds.

    Args:
        faq: the FAQ entries.
        embedder: anything with ``encode(texts, normalize=True) -> array``.
        thresholds: FAQ and QA thresholds (:func:`fit_thresholds`); None: fit the FAQ one now
            from the entries' paraphrases and ``out_of_scope``.
        sections: policy sections the QA model reads; ignored without ``reader``.
        reader: an extractive QA model with ``predict([{"question", "context"}])``; None: no
            policy step.
        out_of_scope: validation queries to decline, needed only when ``thresholds`` is None.
        top_sections: sections the QA model reads per question.
        faq_source: how a FAQ answer's source starts (the file name).
        faq_embedder: embeds the FAQ index and the questions searched in it (a tuned FAQ
            encoder, :mod:`apps.support.faq_tuning`); None: ``embedder``. ``embedder`` still
            finds the policy sections.
        lexical_weight: the share of an entry's score that is BM25 (:data:`LEXICAL_WEIGHT`);
            0: the mean cosine alone.
    """

    def __init__(
        self,
        faq: Sequence[FaqEntry],
        embedder: Embedder,
        thresholds: Thresholds | None = None,
        *,
        sections: Sequence[PolicySection] = (),
        reader: Reader | None = None,
        out_of_scope: Sequence[str] = (),
        top_sections: int = 3,
        faq_source: str = "faq.jsonl",
        policy_model: str | None = None,
        faq_embedder: Embedder | None = None,
        lexical_weight: float = LEXICAL_WEIGHT,
    ):
        self.faq = list(faq)
        self.embedder = embedder
        self.faq_embedder = faq_embedder or embedder
        #: The FAQ encoder's name (what the FAQ threshold was fitted with).
        self.model_name = _name(self.faq_embedder)
        #: The policy sections' encoder's name.
        self.sections_model_name = _name(embedder)
        self.faq_source = faq_source
        self.by_id = {e.id: e for e in self.faq}
        # An entry scores the mean of its question's and its answer's cosine with the message
        # (chosen on validation over the better of the two, either alone and their joint text:
        # bench/support_faq_scoring.py). With unit-length messages that is the inner product
        # with the mean of the two unit vectors, so the index holds those means as they are.
        texts = [e.question for e in self.faq] + [e.answer for e in self.faq]
        vectors = np.asarray(self.faq_embedder.encode(texts, normalize=True), dtype=np.float32)
        #: Each entry's question and answer vectors (rows in ``faq`` order).
        self._entry_vectors = vectors.reshape(2, len(self.faq), -1)
        self.faq_index = VectorIndex.build(
            [e.id for e in self.faq],
            self._entry_vectors.mean(axis=0),
            IndexConfig(kind="flat", normalize=False),
            model=self.model_name,
        )
        if not 0.0 <= lexical_weight < 1.0:
            raise ValueError(f"lexical_weight is {lexical_weight}: give a share in [0, 1).")
        self.lexical_weight = lexical_weight
        #: BM25 over each entry's question and answer; None when the weight is 0.
        self.lexical = (
            LexicalScorer([f"{e.question} {e.answer}" for e in self.faq])
            if lexical_weight > 0
            else None
        )
        #: How an entry is scored, in words (``thresholds.json`` records it).
        self.scoring = scoring_name(lexical_weight)
        self._row = {e.id: row for row, e in enumerate(self.faq)}
        #: Row numbers of the entries answering each intent (entries with an ``intent``).
        self.by_intent: dict[str, list[int]] = {}
        for row, entry in enumerate(self.faq):
            if entry.intent:
                self.by_intent.setdefault(entry.intent, []).append(row)
        self.reader = reader
        self.policy_model = policy_model
        self.sections = list(sections) if reader is not None else []
        self.top_sections = top_sections
        self.section_index = None
        if self.sections:
            texts = [f"{s.heading}. {s.text}" for s in self.sections]
            self.section_index = VectorIndex.build(
                list(range(len(self.sections))),
                np.asarray(embedder.encode(texts, normalize=True)),
                IndexConfig(kind="flat"),
                model=self.sections_model_name,
            )
        if thresholds is None:
            thresholds = fit_thresholds(self, out_of_scope)
        self.thresholds = thresholds

    @property
    def policy_available(self) -> bool:
        """Whether the policy QA step can run (a reader and sections are loaded)."""
        return self.section_index is not None

    @classmethod
    def from_folder(
        cls,
        folder: str | Path = "data/support",
        *,
        policy_qa: str | Path | None = "data/models/support-policy-qa",
        embedder: Embedder | None = None,
        encoder: str | Path | None = None,
    ) -> AnswerFinder:
        """A finder over ``folder/faq.jsonl`` and ``folder/policies/*.md``.

        The thresholds come from ``folder/thresholds.json`` when it was fitted on this very
        ``faq.jsonl`` and embedding model; otherwise the FAQ threshold is fitted now from the
        paraphrases and ``out_of_scope.txt`` (with a logged warning).

        Args:
            folder: the knowledge base folder.
            policy_qa: the extractive QA artifact; a missing folder or None skips the policy
                step (``policy_available`` False), logged.
            embedder: finds the policy sections (and, without another FAQ encoder, the FAQ
                entries); None loads ``SentenceEmbedder()`` (the packaged MiniLM).
            encoder: the FAQ encoder, a sentence-transformers name or folder (a tuned one from
                ``lepton-support tune-faq``): it alone embeds the FAQ index and the questions
                searched in it. None: ``LEPTON_FAQ_ENCODER`` when set and no ``embedder`` is
                given, else ``embedder`` serves the FAQ too.

        Raises:
            FileNotFoundError: no ``faq.jsonl`` in ``folder``.
            ValueError: a bad FAQ line (file and line named); no thresholds to use and no
                validation queries to fit them; ``policy_qa`` is not a QA model.
        """
        folder = Path(folder)
        faq_path = folder / "faq.jsonl"
        if not faq_path.is_file():
            raise FileNotFoundError(f"No FAQ at {faq_path}: the folder needs a faq.jsonl.")
        faq = load_faq(faq_path)
        chosen = None if encoder is None and embedder is not None else faq_encoder_name(encoder)
        if embedder is None:
            from lepton_nlp.embeddings import DEFAULT_EMBED_MODEL, SentenceEmbedder

            embedder = SentenceEmbedder(DEFAULT_EMBED_MODEL)
        tuned = None
        if chosen is not None and chosen != _name(embedder):
            tuned = faq_embedder(chosen)
        reader, sections, policy_model = None, [], None
        if policy_qa is None:
            log.warning("No policy QA model given: answers come from the FAQ only.")
        elif not Path(policy_qa).is_dir():
            log.warning("Policy QA model %s not found: answers come from the FAQ only.", policy_qa)
        else:
            from lepton_nlp.inference import Predictor

            reader, policy_model = Predictor.from_artifact(policy_qa), str(policy_qa)
            task = getattr(reader.task, "name", None)
            if task != "qa":
                raise ValueError(
                    f"{policy_qa} is a {task} model; the policy step needs an extractive QA "
                    "artifact (task qa), or policy_qa=None to answer from the FAQ only."
                )
            sections = load_policies(folder / "policies")
        model_name, sections_model = _name(tuned or embedder), _name(embedder)
        thresholds = kept_qa = None
        saved = folder / THRESHOLDS_FILE
        if saved.is_file():
            loaded = Thresholds.load(saved)
            same_faq = loaded.details.get("faq_sha256") == _sha256(faq_path)
            same_scoring = loaded.details.get("scoring") == scoring_name(LEXICAL_WEIGHT)
            if same_faq and same_scoring and loaded.details.get("model") == model_name:
                thresholds = loaded
            else:
                log.warning(
                    "%s was fitted on another faq.jsonl, FAQ encoder or scoring: refitting the FAQ "
                    "threshold on this folder's paraphrases and out_of_scope.txt (the intent "
                    "threshold stays 0.0 until `python -m apps.support.answers fit` chooses it).",
                    saved,
                )
                # The QA threshold depends on the section search and the QA model only.
                fitted_sections = loaded.details.get("sections_model", loaded.details.get("model"))
                if same_faq and fitted_sections == sections_model and loaded.qa is not None:
                    kept_qa = loaded
        out_of_scope: list[str] = []
        if thresholds is None:
            oos = folder / "out_of_scope.txt"
            if not oos.is_file():
                raise ValueError(
                    f"No usable {saved} and no {oos} to fit the FAQ threshold on: add "
                    "out_of_scope.txt (queries to decline) and paraphrases to faq.jsonl, then "
                    "run `python -m apps.support.answers fit`."
                )
            out_of_scope = _lines(oos)
        finder = cls(
            faq,
            embedder,
            thresholds,
            sections=sections,
            reader=reader,
            out_of_scope=out_of_scope,
            policy_model=policy_model,
            faq_embedder=tuned,
        )
        if kept_qa is not None and kept_qa.details.get("qa", {}).get("model") == policy_model:
            finder.thresholds.qa = kept_qa.qa
            finder.thresholds.details["qa"] = kept_qa.details["qa"]
        if finder.policy_available and finder.thresholds.qa is None:
            log.warning(
                "The QA threshold for %s is not fitted yet (run `python -m apps.support.answers "
                "fit`): policy answers are withheld until it is.",
                policy_qa,
            )
        return finder

    # --- the two steps ------------------------------------------------------------------

    def faq_ranking(self, questions: Sequence[str], k: int = 5) -> list[list[tuple[str, float]]]:
        """Each question's ``k`` best FAQ entries (id, score), best first."""
        if not questions:
            return []
        return self._ranking(questions, self._faq_vectors(questions), k)

    def _faq_vectors(self, questions: Sequence[str]) -> np.ndarray:
        return np.asarray(self.faq_embedder.encode(list(questions), normalize=True))

    def _lexical(self, question: str) -> np.ndarray | None:
        """The question's lexical score against every entry (rows in ``faq`` order)."""
        return None if self.lexical is None else self.lexical.scores(question)

    def _ranking(
        self, questions: Sequence[str], vectors: np.ndarray, k: int
    ) -> list[list[tuple[str, float]]]:
        n = len(self.faq_index)
        # BM25 scores every entry anyway, so with it every entry's cosine is fetched too.
        ids, scores = self.faq_index.search(vectors, k=min(k, n) if self.lexical is None else n)
        out = []
        for question, row_ids, row_scores in zip(questions, ids, scores, strict=True):
            ranked = [(str(key), float(s)) for key, s in zip(row_ids, row_scores, strict=True)]
            lexical = self._lexical(question)
            if lexical is not None:
                w = self.lexical_weight
                ranked = [
                    (key, (1 - w) * s + w * float(lexical[self._row[key]])) for key, s in ranked
                ]
                ranked.sort(key=lambda pair: -pair[1])
            out.append(ranked[:k])
        return out

    def faq_matches(self, questions: Sequence[str]) -> list[tuple[str, float]]:
        """Each question's best FAQ entry id and score, thresholds aside."""
        return [row[0] for row in self.faq_ranking(questions, k=1)]

    def policy_candidates(self, questions: Sequence[str]) -> list[Answer | None]:
        """Each question's best policy span over its top sections, thresholds aside."""
        if not self.policy_available or not questions:
            return [None] * len(questions)
        vectors = np.asarray(self.embedder.encode(list(questions), normalize=True))
        k = min(self.top_sections, len(self.sections))
        hits, _ = self.section_index.search(vectors, k=k)
        pairs = [(q, int(j)) for q, row in zip(questions, hits, strict=True) for j in row]
        predictions = self.reader.predict(
            [{"question": q, "context": self.sections[j].text} for q, j in pairs]
        )
        best: dict[int, Answer] = {}
        position = 0
        for i, row in enumerate(hits):
            for _ in row:
                (_, j), p = pairs[position], predictions[position]
                position += 1
                span = (p.get("answer") or "").strip()
                if not span or p.get("no_answer"):
                    continue
                score = float(p["score"])
                if i not in best or score > best[i].score:
                    section = self.sections[j]
                    best[i] = Answer(
                        text=_sentence(section.text, p.get("start"), p.get("end"), span),
                        source=section.source,
                        score=round(score, 6),
                        kind="policy",
                        span=span,
                    )
        return [best.get(i) for i in range(len(questions))]

    def find(self, question: str, intent: str | None = None) -> Answer | None:
        """The answer to one question, or None when nothing passes its threshold.

        ``intent``: the intent the bot understood the question as (see :meth:`find_many`).
        """
        return self.find_many([question], None if intent is None else [intent])[0]

    def find_many(
        self, questions: Sequence[str], intents: Sequence[str | None] | None = None
    ) -> list[Answer | None]:
        """Answers to several questions (same as one at a time, in fewer model calls).

        Args:
            questions: the customers' messages.
            intents: for each question, the intent the bot understood it as, or None. A
                question whose intent has FAQ entries (``FaqEntry.intent``) is answered by the
                most similar of them when its score reaches the intent threshold
                (``matched_by`` ``intent``): pass only intents the intent model vouched for
                (the dialogue passes confident, unambiguous, in-scope ones). The others, and
                those under that threshold, go through the similarity search and its
                threshold, then the policies. None: no intents known.

        Raises:
            ValueError: a question is not a string or is empty (which one); ``intents`` is
                not one per question.
        """
        questions = list(questions)
        for i, q in enumerate(questions):
            if not isinstance(q, str) or not q.strip():
                raise ValueError(
                    f"Question {i + 1} of {len(questions)} is {q!r}: give non-empty text."
                )
        intents = [None] * len(questions) if intents is None else list(intents)
        if len(intents) != len(questions):
            raise ValueError(
                f"{len(intents)} intents for {len(questions)} questions: give one intent (or "
                "None) per question."
            )
        out: list[Answer | None] = [None] * len(questions)
        if not questions:
            return out
        vectors = self._faq_vectors(questions)
        searched: list[int] = []
        for i, intent in enumerate(intents):
            match = self._best_of_intent(vectors[i], intent, self._lexical(questions[i]))
            if match is not None and match[1] >= self.thresholds.intent:
                out[i] = self._faq_answer(*match, "intent")
            else:
                searched.append(i)
        rest = []
        if searched:
            ranking = self._ranking([questions[i] for i in searched], vectors[searched], k=1)
            for i, [(entry_id, score)] in zip(searched, ranking, strict=True):
                if score >= self.thresholds.faq:
                    out[i] = self._faq_answer(self.by_id[entry_id], score, "similarity")
                else:
                    rest.append(i)
        if rest and self.policy_available and self.thresholds.qa is not None:
            for i, answer in zip(
                rest, self.policy_candidates([questions[i] for i in rest]), strict=True
            ):
                if answer is not None and answer.score >= self.thresholds.qa:
                    out[i] = answer
        return out

    def _best_of_intent(
        self, vector: np.ndarray, intent: str | None, lexical: np.ndarray | None
    ) -> tuple[FaqEntry, float] | None:
        """The entry of ``intent`` that scores best for a question (its ``vector`` and
        ``lexical`` scores), and that score; None when no entry answers that intent."""
        rows = self.by_intent.get(intent) if intent else None
        if not rows:
            return None
        similarity = (self._entry_vectors[:, rows] @ vector).mean(axis=0)
        if lexical is not None:
            similarity = (1 - self.lexical_weight) * similarity + self.lexical_weight * lexical[
                rows
            ]
        best = int(np.argmax(similarity))
        return self.faq[rows[best]], float(similarity[best])

    def _faq_answer(self, entry: FaqEntry, score: float, matched_by: str) -> Answer:
        return Answer(
            text=entry.answer,
            source=f"{self.faq_source}#{entry.id}",
            score=round(score, 6),
            kind="faq",
            question=entry.question,
            matched_by=matched_by,
        )


def _sentence(text: str, start: int | None, end: int | None, span: str) -> str:
    """The sentence (or list item) of ``text`` holding the span at ``start:end``."""
    if start is None or end is None or text[start:end] != span:
        start = text.find(span)
        if start < 0:
            return span
        end = start + len(span)
    left = max(
        text.rfind(". ", 0, start) + 2 if text.rfind(". ", 0, start) >= 0 else 0,
        text.rfind("\n", 0, start) + 1,
    )
    stops = [p for p in (text.find(". ", end), text.find("\n", end)) if p >= 0]
    right = min(stops) + 1 if stops else len(text)
    return text[left:right].strip().lstrip("- ").strip()


# --- command line ---------------------------------------------------------------------------


def _policy_validation(folder: Path, documents: Sequence[str]) -> list[tuple[str, str]]:
    data = json.loads((folder / "policy_qa.json").read_text(encoding="utf-8"))["data"]
    return [
        (qa["question"], qa["answers"][0]["text"])
        for article in data
        if article["title"] in documents
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
    ]


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m apps.support.answers fit`` writes ``thresholds.json``; ``ask`` answers."""
    from apps.support.dialogue import INTENT_MODEL

    parser = argparse.ArgumentParser(prog="python -m apps.support.answers", description=__doc__)
    parser.add_argument("command", choices=["fit", "ask"])
    parser.add_argument("questions", nargs="*", help="ask: the questions")
    parser.add_argument("--folder", default="data/support")
    parser.add_argument("--policy-qa", default="data/models/support-policy-qa")
    parser.add_argument(
        "--encoder",
        help=f"FAQ encoder (a `lepton-support tune-faq` folder or a model name; default "
        f"{ENCODER_ENV} or the packaged MiniLM)",
    )
    parser.add_argument(
        "--intent-model",
        default=INTENT_MODEL,
        help="fit: the intent artifact whose understanding chooses the intent threshold "
        f"(default {INTENT_MODEL}; 'none': leave it at 0.0)",
    )
    parser.add_argument(
        "--qa-validation-documents",
        nargs="*",
        default=[],
        help="fit: policy_qa.json documents (titles) held out from the QA model's training, "
        "whose questions choose the QA threshold",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    folder = Path(args.folder)
    if args.command == "ask":
        finder = AnswerFinder.from_folder(folder, policy_qa=args.policy_qa, encoder=args.encoder)
        for question, answer in zip(args.questions, finder.find_many(args.questions), strict=True):
            print(json.dumps({"question": question, "answer": answer and answer.to_dict()}))
        return
    understand, intent_model = None, None
    if args.intent_model.lower() != "none":
        from apps.support.understanding import SupportNLU

        if not Path(args.intent_model).is_dir():
            raise SystemExit(
                f"No intent model at {args.intent_model}: give --intent-model PATH (an intent "
                "artifact with calibration.json), or --intent-model none to leave the intent "
                "threshold unfitted."
            )
        nlu = SupportNLU.from_artifact(args.intent_model, spacy_model=None, sentiment=None)
        understand = nlu.understand_many
        intent_model = str(args.intent_model)
    (folder / THRESHOLDS_FILE).unlink(missing_ok=True)
    finder = AnswerFinder.from_folder(folder, policy_qa=args.policy_qa, encoder=args.encoder)
    policy = (
        _policy_validation(folder, args.qa_validation_documents)
        if args.qa_validation_documents
        else None
    )
    thresholds = fit_thresholds(
        finder, _lines(folder / "out_of_scope.txt"), policy, understand, intent_model
    )
    thresholds.details["faq_sha256"] = _sha256(folder / "faq.jsonl")
    if policy:
        thresholds.details["qa"]["validation_documents"] = list(args.qa_validation_documents)
    thresholds.details["command"] = " ".join(
        ["python -m apps.support.answers fit"]
        + (["--encoder", args.encoder] if args.encoder else [])
        + (["--intent-model", args.intent_model] if args.intent_model != INTENT_MODEL else [])
        + (["--qa-validation-documents", *args.qa_validation_documents] if policy else [])
    )
    thresholds.save(folder / THRESHOLDS_FILE)
    print(
        json.dumps(
            {
                "faq_threshold": thresholds.faq,
                "intent_threshold": thresholds.intent,
                "qa_threshold": thresholds.qa,
                **thresholds.details,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
