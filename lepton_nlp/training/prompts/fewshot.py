"""The few-shot run: sample k examples per class, apply one method, score it, write a report.

    lepton-nlp fewshot configs/fewshot_banking77.yaml --method setfit --shots 10 --seed 1

Every method sees the same seeded sample of ``shots`` examples per class from the training
split and is scored on the same validation / test records, so methods compare on equal
terms. ``lora`` and ``soft-prompt`` train through the core trainer
(:func:`lepton_nlp.training.train`) and leave a normal artifact, and so does ``setfit`` (its
tuned encoder under its head, :meth:`SetFitClassifier.write_artifact`); the others leave a
report.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import shutil
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from lepton_nlp.artifacts import is_artifact, record_metrics
from lepton_nlp.config import RunConfig, config_to_dict, load_config
from lepton_nlp.data import split_records
from lepton_nlp.errors import ArtifactError, ConfigError
from lepton_nlp.evaluation.metrics import classification_metrics
from lepton_nlp.training.prompts.scoring import LabelScorer, calibrate
from lepton_nlp.training.prompts.setfit import SetFitClassifier
from lepton_nlp.training.prompts.similarity import (
    describe_labels,
    example_similarity,
    label_similarity,
    nearest,
    top_labels,
)
from lepton_nlp.training.prompts.templates import PromptTemplate, Verbalizer

__all__ = ["FewShotResult", "FewShotRunner", "eval_sample", "sample_shots"]

log = logging.getLogger(__name__)

REPORT = "fewshot.json"


def sample_shots(records: list[dict], shots: int, seed: int) -> list[dict]:
    """``shots`` records of every label (all of a label that has fewer), a seeded sample.

    The sample of ``k`` shots is the first ``k`` of one seeded order per label, so a larger
    sample with the same seed contains the smaller one.
    """
    by_label: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        by_label[str(record["label"])].append(record)
    rng = random.Random(seed)
    out = []
    for label in sorted(by_label):
        pool = list(by_label[label])
        rng.shuffle(pool)
        out.extend(pool[:shots])
    return out


def eval_sample(records: list[dict], n: int | None, seed: int) -> list[dict]:
    """At most ``n`` records, a stratified seeded sample (all of them when ``n`` is None)."""
    if not n or n >= len(records):
        return list(records)
    return split_records(records, n / len(records), seed)[1]


@dataclass
class FewShotResult:
    """What one few-shot run measured."""

    report: dict[str, Any]
    """The report written to ``<output>/fewshot.json`` (method, shots, seed, metrics, times)."""
    predictions: dict[str, list[str]] = field(default_factory=dict)
    """Predicted label per scored record, by split."""
    output: Path | None = None
    """The output folder (an artifact for setfit, lora and soft-prompt)."""


class FewShotRunner:
    """Runs few-shot methods over one run config's data, loading models once.

    Args:
        config: a classification run config; its ``prompting`` section (defaults when
            absent) gives the method's settings.

    Raises:
        ConfigError: the config is not a single-label classification config.
    """

    def __init__(self, config: RunConfig):
        from lepton_nlp.tasks import get_task
        from lepton_nlp.training.trainer import load_data

        if config.task != "classification" or config.data.multi_label:
            raise ConfigError(
                "lepton-nlp fewshot classifies single-label texts: use a task=classification "
                "config without data.multi_label."
            )
        self.config = config
        self.prompting = config.prompting or _default_prompting()
        self.splits, spec = load_data(config, get_task(config.task))
        self.labels = list(spec.labels)
        n = self.prompting.max_eval_samples
        self.eval_splits = {
            name: eval_sample(self.splits[name], n, config.data.split_seed)
            for name in ("validation", "test")
            if self.splits[name]
        }
        self._embedder = None
        self._scorer = None
        self._vectors: dict[str, np.ndarray] = {}

    # --- shared models -----------------------------------------------------------------

    @property
    def embedder(self):
        if self._embedder is None:
            from lepton_nlp.embeddings import SentenceEmbedder

            self._embedder = SentenceEmbedder(self.config.model.name)
        return self._embedder

    @property
    def scorer(self) -> LabelScorer:
        if self._scorer is None:
            settings = self.prompting.llm
            self._scorer = LabelScorer(settings.model, batch_rows=settings.batch_rows)
        return self._scorer

    def _embed_split(self, name: str) -> np.ndarray:
        if name not in self._vectors:
            self._vectors[name] = self.embedder.encode([r["text"] for r in self.eval_splits[name]])
        return self._vectors[name]

    # --- the run ------------------------------------------------------------------------

    def run(
        self,
        method: str | None = None,
        shots: int | None = None,
        seed: int | None = None,
        output_dir: str | Path | None = None,
        overwrite: bool | None = None,
    ) -> FewShotResult:
        """Run one method on one sample of examples; write the report when ``output_dir``
        (or the config's ``training.output_dir``, when None) is not ``""``.

        Args:
            method: one of :data:`lepton_nlp.config.FEWSHOT_METHODS` (default
                ``prompting.method``).
            shots: examples per class (default ``prompting.shots``).
            seed: seed of the sample and of training (default ``prompting.seed``).
            output_dir: the folder of the report (and artifact); ``""`` writes nothing
                (lora and soft-prompt then train in a temporary folder).
            overwrite: replace an earlier report or artifact there (default
                ``training.overwrite``).

        Raises:
            ConfigError: an unknown method.
            ArtifactError: the output folder holds a report or artifact and overwrite is off.
        """
        p = dataclasses.replace(
            self.prompting,
            method=method or self.prompting.method,
            shots=shots or self.prompting.shots,
            seed=self.prompting.seed if seed is None else seed,
        )  # __post_init__ checks the method name
        overwrite = self.config.training.overwrite if overwrite is None else overwrite
        out = Path(self.config.training.output_dir if output_dir is None else output_dir)
        write = str(output_dir) != ""
        if write and out.exists() and any(out.iterdir()) and not overwrite:
            raise ArtifactError(
                f"{out} is not empty; pass --overwrite (training.overwrite=true) to replace it, "
                "or choose another --output."
            )
        examples = sample_shots(self.splits["train"], p.shots, p.seed)
        start = time.perf_counter()
        predict, extra = self._method(p, examples, out if write else None)
        trained = time.perf_counter() - start
        metrics, predictions, seconds = {}, {}, {}
        for name, records in self.eval_splits.items():
            if name == "test" and not self.config.evaluation.score_test:
                continue
            t0 = time.perf_counter()
            predictions[name] = predict(name)
            seconds[name] = round(time.perf_counter() - t0, 2)
            metrics[name] = classification_metrics(
                predictions[name], [r["label"] for r in records], self.labels
            )
        report = {
            "method": p.method,
            "shots": p.shots,
            "seed": p.seed,
            "examples": len(examples),
            "labels": len(self.labels),
            "eval_records": {name: len(r) for name, r in self.eval_splits.items()},
            **metrics,
            "seconds": {
                "fit": round(trained, 2),
                **{f"predict_{k}": v for k, v in seconds.items()},
            },
            **extra,
        }
        if write:
            out.mkdir(parents=True, exist_ok=True)
            if is_artifact(out):  # its own figures, on the evaluation samples scored here
                record_metrics(out, {**metrics, "fewshot_eval_records": report["eval_records"]})
            settings = {"prompting": dataclasses.asdict(p)}
            text = json.dumps({**report, "config": settings}, indent=2)
            (out / REPORT).write_text(text + "\n", encoding="utf-8")
        return FewShotResult(report, predictions, out if write else None)

    def _method(self, p, examples: list[dict], out: Path | None):
        """The method's predictor ``split name -> labels`` and extra report fields."""
        if p.method == "label-similarity":
            return self._label_similarity(p), {}
        if p.method in ("zero-shot", "in-context"):
            return self._llm(p, examples)
        if p.method == "setfit":
            return self._setfit(p, examples, out)
        return self._adapter(p, examples, out)

    def _label_vectors(self, p) -> np.ndarray:
        return self.embedder.encode(describe_labels(self.labels, p.label_descriptions))

    def _label_similarity(self, p):
        label_vectors = self._label_vectors(p)

        def predict(name: str) -> list[str]:
            scores = label_similarity(self._embed_split(name), label_vectors)
            return [self.labels[i] for i in scores.argmax(axis=1)]

        return predict

    def _llm(self, p, examples: list[dict]):
        s = p.llm
        template = PromptTemplate(s.instruction, s.template)
        verbalizer = Verbalizer.build(self.labels, s.verbalizer)
        demos = p.method == "in-context" and s.demonstrations > 0
        if demos:
            example_vectors = self.embedder.encode([r["text"] for r in examples])
            example_labels = [r["label"] for r in examples]
            pairs = [(r["text"], verbalizer.first_word(r["label"])) for r in examples]
            # The content-free inputs go after one seeded set of demonstrations: the model's
            # label bias in a prompt of this shape (texts get their own nearest ones).
            rng = random.Random(p.seed)
            cf_demos = rng.sample(pairs, min(s.demonstrations, len(pairs)))
        else:
            cf_demos = []
        scorer = self.scorer
        content_free = None
        if s.calibrate:
            content_free = scorer.score(
                [template.render(x, cf_demos) for x in s.content_free],
                verbalizer,
                s.length_normalize,
            )
        label_vectors = self._label_vectors(p) if s.shortlist and not demos else None

        def predict(name: str) -> list[str]:
            records = self.eval_splits[name]
            vectors = self._embed_split(name) if (demos or label_vectors is not None) else None
            shortlists = None
            if demos:
                near = nearest(vectors, example_vectors, s.demonstrations)
                prompts = [
                    template.render(r["text"], [pairs[j] for j in idx])
                    for r, idx in zip(records, near, strict=True)
                ]
                if s.shortlist:
                    shortlists = top_labels(
                        example_similarity(vectors, example_vectors, example_labels, self.labels),
                        s.shortlist,
                    )
            else:
                prompts = [template.render(r["text"]) for r in records]
                if label_vectors is not None:
                    shortlists = top_labels(label_similarity(vectors, label_vectors), s.shortlist)
            scores = scorer.score(prompts, verbalizer, s.length_normalize, shortlists)
            if content_free is not None:
                scores = calibrate(scores, content_free)
            return [self.labels[i] for i in scores.argmax(axis=1)]

        return predict, {"llm": s.model}

    def _setfit(self, p, examples: list[dict], out: Path | None):
        classifier = SetFitClassifier.train(
            self.config.model.name,
            [r["text"] for r in examples],
            [r["label"] for r in examples],
            p.setfit,
            seed=p.seed,
        )
        # The head knows the sampled labels; every label has examples in the sample.
        if out is not None:
            classifier.write_artifact(
                out, self._artifact_config(p, out), {"train": len(examples)}, overwrite=True
            )

        def predict(name: str) -> list[str]:
            return classifier.predict([r["text"] for r in self.eval_splits[name]])

        return predict, {}

    def _artifact_config(self, p, out: Path) -> dict:
        """The config an artifact of this run keeps: the run config with the prompting
        settings that drew the sample, writing to ``out``."""
        tree = config_to_dict(self.config)
        tree.pop("hpo", None)
        tree["prompting"] = dataclasses.asdict(p)
        tree["training"]["output_dir"] = str(out)
        return tree

    def _adapter(self, p, examples: list[dict], out: Path | None):
        """lora / soft-prompt: the core trainer on the sampled examples (a normal artifact)."""
        import tempfile

        from lepton_nlp.training import train

        scratch = Path(tempfile.mkdtemp(prefix="lepton-fewshot-"))
        try:
            # Training data only: the few-shot runs keep the last step (no checkpoint choice
            # on a validation set that a few-shot user would not have), and the evaluation
            # splits are scored below like every other method's.
            train_file = scratch / "train.jsonl"
            _write_jsonl(train_file, examples)
            peft_method = "lora" if p.method == "lora" else p.soft_prompt_method
            tree = config_to_dict(self.config)
            tree.pop("prompting", None)
            tree.pop("hpo", None)
            tree["data"].update(
                format="jsonl",
                train=str(train_file),
                validation=None,
                test=None,
                validation_size=0.0,
                test_size=0.0,
                text_column="text",
                label_column="label",
                encoding="utf-8",
                max_train_samples=None,
                train_on_validation=False,
            )
            tree["peft"]["method"] = peft_method
            tree["training"].update(
                output_dir=str(out if out is not None else scratch / "artifact"),
                overwrite=True,
                seed=p.seed,
                eval_strategy="no",
                early_stopping_patience=None,
            )
            if p.method == "soft-prompt" and tree["training"].get("learning_rate"):
                # The config's learning rate is the fine-tuning one; soft prompts take peft's
                # default for the method unless prompting says otherwise.
                tree["training"]["learning_rate"] = None
            tree["evaluation"]["backend_check"] = False
            result = train(load_config(tree))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        if out is not None:
            # The artifact describes the few-shot run, not its temporary sample file: the
            # config's data (so `lepton-nlp eval` re-creates the same test split) and the
            # prompting settings that drew the sample (`lepton-nlp fewshot` reruns it).
            written = Path(result.artifact) / "config.yaml"
            tree = yaml.safe_load(written.read_text(encoding="utf-8"))
            described = self._artifact_config(p, out)
            tree.update(data=described["data"], prompting=described["prompting"])
            written.write_text(yaml.safe_dump(tree, sort_keys=False), encoding="utf-8")
        predictor = result.predictor

        def predict(name: str) -> list[str]:
            texts = [r["text"] for r in self.eval_splits[name]]
            return [item["label"] for item in predictor.predict(texts)]

        extra = {
            "peft_method": peft_method,
            "trainable_parameters": result.metrics["train"].get("trainable_parameters"),
            "epochs": self.config.training.epochs,
        }
        if out is not None:
            extra["artifact"] = str(result.artifact)
        return predict, extra


def _write_jsonl(path: Path, records: list[dict]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps({"text": r["text"], "label": r["label"]}) + "\n")


def _default_prompting():
    from lepton_nlp.config import PromptingConfig

    return PromptingConfig()
