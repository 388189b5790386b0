"""Predictor: load an artifact once, predict in length-sorted batches."""

from __future__ import annotations

import copy
import logging
import os
import threading
import weakref
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

from lepton_nlp.artifacts import ArtifactInfo, base_weights, read_artifact, read_ranges
from lepton_nlp.errors import DataError
from lepton_nlp.inference.spelling import SpellingCorrector
from lepton_nlp.tasks import get_task

__all__ = [
    "MAX_AUTO_STREAMS",
    "TEXT_CHARS_PER_TOKEN",
    "Predictor",
    "SkipVirtualTokens",
    "Streams",
    "default_streams",
    "predict_items",
]

log = logging.getLogger(__name__)

#: Fields of a prepared input that must hold text (classification/NER/relation ``text``,
#: generation ``source``, QA ``question`` and ``context``).
_TEXT_FIELDS = ("text", "source", "question", "context")

#: A text longer than this many characters per ``max_length`` token is cut before tokenizing
#: (:meth:`Predictor.bound_input`): no tokenizer here reads more from so few tokens.
TEXT_CHARS_PER_TOKEN = 32

#: ``streams=None`` on a CPU: one stream per torch thread, at most this many.
MAX_AUTO_STREAMS = 4


def default_streams(device: str, backend: str) -> int:
    """Streams for ``streams=None``: on a CPU with a torch backend, one per torch thread (at most
    :data:`MAX_AUTO_STREAMS`); one on a GPU and for ONNX Runtime (which has its own threads)."""
    if not str(device).startswith("cpu") or not backend.startswith("torch"):
        return 1
    return max(1, min(torch.get_num_threads(), MAX_AUTO_STREAMS))


class Streams:
    """Batches predicted side by side on a CPU: ``count`` worker threads, each with an equal
    share of the torch threads.

    One batch at a time on every core spends a share of each layer waiting on the slowest
    core and on Python between operators; two batches on one thread each kept both cores
    busy and scored about 18% more sentences per second on 2 cores (the README has the
    measurement). Outputs are those of one stream: every batch is computed alone, as before.

    Each worker keeps its own copy of the tokenizer: a fast tokenizer changes its settings
    on every call and fails ("Already borrowed") when two threads call it at once.
    """

    def __init__(self, count: int):
        if count < 1:
            raise ValueError(f"streams must be 1 or more, got {count}.")
        self.count = count
        self.threads = max(1, torch.get_num_threads() // count)
        self._pool: ThreadPoolExecutor | None = None
        self._pid = os.getpid()
        self._local = threading.local()
        self._start_lock = threading.Lock()

    def _started(self) -> ThreadPoolExecutor:
        with self._start_lock:
            if self._pool is None or self._pid != os.getpid():  # none yet, or a forked child
                # torch.set_num_threads also sets the count a thread started later begins
                # with; each worker sets its own, then the caller's is put back.
                restore = torch.get_num_threads()
                everyone = threading.Barrier(self.count)

                def start() -> None:
                    torch.set_num_threads(self.threads)
                    # A thread takes its count on its first torch call: make it now, while
                    # the process-wide count is this one (read after the caller's is back,
                    # it would be the caller's, and the cores oversubscribed).
                    torch.get_num_threads()
                    everyone.wait()  # so that every worker thread is started by now

                pool = ThreadPoolExecutor(self.count, thread_name_prefix="lepton-stream")
                for started in [pool.submit(start) for _ in range(self.count)]:
                    started.result()
                torch.set_num_threads(restore)
                weakref.finalize(self, pool.shutdown, wait=False)
                self._pool, self._pid = pool, os.getpid()
            return self._pool

    def map(self, fn: Callable[[Any, list[int]], list[dict]], tokenizer: Any, jobs: list) -> list:
        """``fn(tokenizer, job)`` for every job, in order, ``count`` at a time."""

        def run(job: list[int]) -> list[dict]:
            own = getattr(self._local, "tokenizer", None)
            if own is None or self._local.source is not tokenizer:
                own = self._local.tokenizer = copy.deepcopy(tokenizer)
                self._local.source = tokenizer
            return fn(own, job)

        return list(self._started().map(run, jobs))


class SkipVirtualTokens(torch.nn.Module):
    """Drop the logits of prompt-learning virtual tokens so positions line up with the input."""

    def __init__(self, model: torch.nn.Module, virtual_tokens: int):
        super().__init__()
        self.model = model
        self.virtual_tokens = virtual_tokens

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def forward(self, **inputs):
        output = self.model(**inputs)
        if output.logits.dim() == 3:
            output.logits = output.logits[:, self.virtual_tokens :]
        return output


def _length(task: Any, item: dict) -> int:
    measure = getattr(task, "input_length", None)
    return measure(item) if measure else len(item.get("text", ""))


def _token_lengths(task: Any, tokenizer: Any, spec: Any, items: list[dict]) -> list[int]:
    """Tokens per item: counted by the tokenizer for text inputs, else estimated (4 chars a token)."""
    texts = [item.get("text") for item in items]
    if items and all(isinstance(t, str) for t in texts) and callable(tokenizer):
        ids = tokenizer(texts, truncation=True, max_length=spec.max_length)["input_ids"]
        return [len(x) for x in ids]
    return [_length(task, item) // 4 + 2 for item in items]


def batch_plan(
    lengths: list[int], batch_size: int, max_batch_tokens: int | None
) -> list[list[int]]:
    """Group item indices into batches of similar length.

    Items are sorted by length (so padding, and wasted compute, stays small); a batch closes
    at ``batch_size`` items or when its padded size (items x longest) would pass
    ``max_batch_tokens``. An item longer than the budget goes in a batch of its own.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        longest = max(lengths[i], 1)
        too_many = len(current) >= batch_size
        too_big = max_batch_tokens is not None and (len(current) + 1) * longest > max_batch_tokens
        if current and (too_many or too_big):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def predict_items(
    task: Any,
    model: Any,
    tokenizer: Any,
    spec: Any,
    items: list[dict],
    batch_size: int,
    max_batch_tokens: int | None = None,
    streams: Streams | None = None,
) -> list[dict]:
    """Run ``task.predict_batch`` over prepared items in length-sorted batches, in input order;
    with ``streams``, several batches at once."""
    # Token counts, not characters: sentences of equal token length end up side by side,
    # which packing's attention runs as one call (and padded batches pad less).
    lengths = _token_lengths(task, tokenizer, spec, items)
    plan = batch_plan(lengths, batch_size, max_batch_tokens)

    def run(tok: Any, ids: list[int]) -> list[dict]:
        return task.predict_batch(model, tok, [items[i] for i in ids], spec)

    if streams is not None and streams.count > 1 and len(plan) > 1:
        outputs = streams.map(run, tokenizer, plan)
    else:
        outputs = [run(tokenizer, ids) for ids in plan]
    results: list[dict | None] = [None] * len(items)
    for ids, batch in zip(plan, outputs, strict=True):
        for i, output in zip(ids, batch, strict=True):
            results[i] = output
    return results  # type: ignore[return-value]


class Predictor:
    """A trained model ready to predict: ``Predictor.from_artifact(path).predict(texts)``."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        info: ArtifactInfo,
        batch_size: int = 32,
        max_batch_tokens: int | None = None,
        backend: str = "torch",
        streams: int = 1,
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.info = info
        self.task = get_task(info.task_version)
        self.spec = info.spec
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.backend = backend
        self.streams = Streams(streams) if streams > 1 else None
        #: Spelling correction of every text before the model reads it
        #: (:mod:`lepton_nlp.inference.spelling`), or None.
        self.spelling: SpellingCorrector | None = None
        prepare = getattr(self.task, "prepare_tokenizer", None)
        if prepare is not None:
            self.tokenizer = prepare(tokenizer, self.spec)

    @classmethod
    def from_artifact(
        cls,
        path: str | Path,
        device: str | None = None,
        batch_size: int = 32,
        base_model: str | None = None,
        backend: str = "auto",
        max_batch_tokens: int | None = None,
        threads: int | None = None,
        packing: bool = True,
        streams: int | None = None,
        spelling: bool = True,
    ) -> Predictor:
        """Load an artifact folder.

        Args:
            path: the artifact folder.
            device: ``cpu``, ``cuda``, ... (default: cuda when available).
            batch_size: largest batch.
            base_model: override the base model (a local folder holding the same model).
            backend: ``auto`` (int8 on a CPU where the artifact's check allows it, else
                ``torch``), ``torch`` (adapter merged), ``torch-int8``, ``onnx`` or
                ``onnx-int8`` (see :mod:`lepton_nlp.inference.backends`; the ONNX files are
                cached). ``predictor.backend`` names the one chosen.
            max_batch_tokens: also close a batch when items x longest would pass this.
            threads: CPU threads for torch and ONNX Runtime (None: their default).
            packing: with a torch backend, run padding-free batches where the encoder allows
                (BERT, RoBERTa, XLM-R: :mod:`lepton_nlp.inference.packing`); same outputs.
            streams: batches predicted at once (:class:`Streams`), each on an equal share of
                the threads; None: one per torch thread on a CPU with a torch backend, at
                most :data:`MAX_AUTO_STREAMS` (:func:`default_streams`), else one. Same outputs.
            spelling: correct each text's spelling before predicting when the artifact holds
                a spelling vocabulary (``spelling.json``, a run with ``spelling.enabled``);
                False reads texts as they are.
        """
        from lepton_nlp.hf_imports import import_hf

        import_hf()  # before any import from transformers: it is not thread-safe on first use
        from transformers import AutoTokenizer

        from lepton_nlp.inference.backends import (
            check_backend,
            onnx_cache,
            prepare_backend,
            resolve_backend,
        )

        check_backend(backend)
        if threads:
            torch.set_num_threads(threads)
        info = read_artifact(path)
        task = get_task(info.task_version)
        tokenizer = AutoTokenizer.from_pretrained(str(info.path / "tokenizer"))
        if info.peft_method == "full":
            model = task.load_model(str(info.weights_dir), info.spec)
        else:
            from peft import PeftModel

            base = task.load_model(base_weights(info, base_model), info.spec)
            model = PeftModel.from_pretrained(base, str(info.weights_dir))
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        model = model.to(device)
        backend = resolve_backend(backend, info, device)
        log.info("%s: backend %s", info.name, backend)
        # Every backend merges a LoRA-family adapter into the weights first.
        model = prepare_backend(
            model,
            tokenizer,
            task,
            backend,
            onnx_cache(info, base_model),
            threads,
            packing,
            read_ranges(info.path) if backend == "torch-int8" else None,
        )
        predictor = cls.from_model(
            model,
            tokenizer,
            info,
            batch_size=batch_size,
            streams=default_streams(device, backend) if streams is None else streams,
        )
        predictor.max_batch_tokens = max_batch_tokens
        predictor.backend = backend
        if spelling:
            predictor.spelling = SpellingCorrector.for_artifact(info)
        return predictor

    @classmethod
    def from_model(
        cls, model: Any, tokenizer: Any, info: ArtifactInfo, batch_size: int = 32, streams: int = 1
    ) -> Predictor:
        """Wrap a model already in memory (e.g. right after training) for prediction;
        ``streams`` batches at once (:class:`Streams`)."""
        config = getattr(model, "active_peft_config", None)
        if (
            config is not None
            and config.is_prompt_learning
            and get_task(info.task_version).record_kind == "tokens"
        ):
            model = SkipVirtualTokens(model, config.num_virtual_tokens)
        model.eval()
        return cls(model, tokenizer, info, batch_size=batch_size, streams=streams)

    @property
    def labels(self) -> list[str]:
        return list(self.spec.labels)

    def predict(self, inputs: Iterable[Any]) -> list[dict]:
        """Predict a list of inputs (strings, or dicts with ``text``; NER also ``tokens``).

        Returns:
            One dict per input, in input order: ``{"label", "score", "scores"}`` for
            classification (``{"labels", "scores"}`` multi-label), ``{"text", "entities",
            "tags"}`` for NER, entities as ``{"label", "start", "end", "text", "score"}``;
            ``{"label", "relation", "score", "scores", "head", "tail", ...}`` for relations,
            ``{"answer", "start", "end", "score", "no_answer"}`` for QA and
            ``{"generated_text"}`` for summarization and translation.
        """
        items = [self.task.prepare_input(item) for item in inputs]
        if self.spelling is not None:
            items = [self.corrected(item) for item in items]
        return predict_items(
            self.task,
            self.model,
            self.tokenizer,
            self.spec,
            items,
            self.batch_size,
            self.max_batch_tokens,
            self.streams,
        )

    def corrected(self, item: dict) -> dict:
        """A prepared input with its text's spelling corrected (:attr:`spelling`); the
        input itself when there is no corrector or no text."""
        text = item.get("text")
        if self.spelling is None or not isinstance(text, str):
            return item
        return {**item, "text": self.spelling.correct(text)}

    def check_input(self, item: Any) -> dict:
        """The input as the task takes it, or a :class:`DataError` saying what is wrong with it.

        Refuses what the task refuses (a ``null`` text, a dict without the text field) and
        texts that are empty or only whitespace, as the HTTP API does; :meth:`predict` itself
        still takes an empty text (evaluation data may hold one).
        """
        prepared = self.task.prepare_input(item)
        for field in _TEXT_FIELDS:
            value = prepared.get(field)
            if isinstance(value, str) and not value.strip():
                name = "text" if field == "source" else field
                raise DataError(f"The {name} is empty or only whitespace; give text to process.")
        return prepared

    def bound_input(self, item: Any) -> tuple[Any, dict | None]:
        """An input as the model will read it, and what of it the model does not read.

        The model reads at most ``max_length`` tokens of a text; the rest is dropped. For
        tasks that say how far they read (``chars_read``: classification, NER) this returns
        ``(input, None)`` when the whole text is read, else ``(input, {"chars_read": N,
        "chars": len(text)})``; a very long text (over :data:`TEXT_CHARS_PER_TOKEN` x
        ``max_length`` characters) comes back cut to a prefix that still holds everything the
        model reads, so tokenizing megabytes it would drop costs neither time nor memory.
        """
        measure = getattr(self.task, "chars_read", None)
        prepared = self.task.prepare_input(item)
        text = prepared.get("text")
        if measure is None or not isinstance(text, str) or "tokens" in (item or {}):
            return item, None
        cap = max(4096, self.spec.max_length * TEXT_CHARS_PER_TOKEN)
        if len(text) > cap:
            cut = self.task.prepare_input({"text": text[:cap]})
            read = measure(self.tokenizer, cut, self.spec)
            # Safe when the model stops reading well before the cut (the cut word is unread).
            if read is not None and read < cap - 256:
                fields = {**item, "text": cut["text"]} if isinstance(item, dict) else cut["text"]
                return fields, {"chars_read": read, "chars": len(text)}
        read = measure(self.tokenizer, prepared, self.spec)
        return item, None if read is None else {"chars_read": read, "chars": len(text)}

    def predict_one(self, item: Any) -> dict:
        return self.predict([item])[0]

    def evaluate(self, records: list[dict]) -> dict[str, float]:
        """Score labelled records (``text``/``label`` or ``tokens``/``tags``) with this predictor."""
        self.task.check_records(records, self.spec, "evaluation")
        predictions = self.predict(records)
        metrics = self.task.evaluate_predictions(predictions, records, self.spec)
        metrics["examples"] = len(records)
        return metrics
