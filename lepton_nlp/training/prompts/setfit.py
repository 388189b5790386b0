"""SetFit-style few-shot classifier: a contrastively fine-tuned sentence encoder and a
logistic-regression head on its embeddings (Tunstall et al. 2022), on sentence-transformers."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lepton_nlp.errors import ConfigError

__all__ = ["HEAD_CS", "SetFitClassifier", "contrastive_pairs"]

#: Values of the head's inverse regularisation tried by cross-validation.
HEAD_CS = (0.1, 1.0, 10.0, 100.0)


def contrastive_pairs(
    texts: Sequence[str],
    labels: Sequence[str],
    iterations: int,
    seed: int,
    max_pairs: int | None = None,
) -> list[tuple[str, str, float]]:
    """SetFit's pairs: per round and example, one with a same-label partner (target 1.0)
    and one with a different-label partner (target 0.0).

    A label with one example has no same-label partner (only its negative pair is made).
    ``max_pairs`` keeps a seeded sample, balanced between positives and negatives.
    """
    rng = random.Random(seed)
    by_label: dict[str, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        by_label[label].append(i)
    positives, negatives = [], []
    indices = list(range(len(texts)))
    for _ in range(iterations):
        for i in indices:
            same = [j for j in by_label[labels[i]] if j != i]
            if same:
                positives.append((texts[i], texts[rng.choice(same)], 1.0))
            other = rng.choice(indices)
            tries = 0
            while labels[other] == labels[i] and tries < 50:
                other, tries = rng.choice(indices), tries + 1
            if labels[other] != labels[i]:
                negatives.append((texts[i], texts[other], 0.0))
    if max_pairs is not None and len(positives) + len(negatives) > max_pairs:
        half = max_pairs // 2
        positives = rng.sample(positives, min(half, len(positives)))
        negatives = rng.sample(negatives, min(max_pairs - len(positives), len(negatives)))
    pairs = positives + negatives
    rng.shuffle(pairs)
    return pairs


class SetFitClassifier:
    """A sentence encoder plus a logistic-regression head over its normalised embeddings.

    Args:
        encoder: a ``sentence_transformers.SentenceTransformer``.
        labels: the label names, in the head's order.
        head: a fitted ``sklearn.linear_model.LogisticRegression`` (None until :meth:`fit`).
    """

    def __init__(self, encoder: Any, labels: Sequence[str], head: Any = None):
        self.encoder = encoder
        self.labels = list(labels)
        self.head = head

    @classmethod
    def train(
        cls,
        model: str,
        texts: Sequence[str],
        labels: Sequence[str],
        settings: Any,
        seed: int = 0,
        work_dir: str | Path | None = None,
    ) -> SetFitClassifier:
        """Fine-tune ``model`` on contrastive pairs of the examples, then fit the head.

        Args:
            model: sentence-transformers model name or folder (resolved offline).
            texts, labels: the few labelled examples.
            settings: :class:`lepton_nlp.config.SetFitSettings`.
            seed: seed of the pairs, the data order and the head.
            work_dir: the Trainer's scratch folder (a temporary one when None).
        """
        import tempfile

        from datasets import Dataset
        from sentence_transformers import SentenceTransformer, losses
        from transformers import set_seed

        from lepton_nlp.embeddings import fit_encoder
        from lepton_nlp.hub import resolve_model

        set_seed(seed)
        encoder = SentenceTransformer(str(resolve_model(model)), device="cpu")
        pairs = contrastive_pairs(texts, labels, settings.iterations, seed, settings.max_pairs)
        if pairs:
            data = Dataset.from_dict(
                {
                    "sentence1": [a for a, _, _ in pairs],
                    "sentence2": [b for _, b, _ in pairs],
                    "score": [s for _, _, s in pairs],
                }
            )
            with tempfile.TemporaryDirectory() as scratch:
                fit_encoder(
                    encoder,
                    data,
                    losses.CosineSimilarityLoss(encoder),
                    epochs=settings.epochs,
                    batch_size=settings.batch_size,
                    learning_rate=settings.learning_rate,
                    seed=seed,
                    work_dir=work_dir or scratch,
                    logging_steps=50,
                )
        classifier = cls(encoder, sorted(set(labels)))
        classifier.fit_head(texts, labels, seed)
        return classifier

    def embed(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        return self.encoder.encode(
            list(texts),
            batch_size=batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )

    def fit_head(self, texts: Sequence[str], labels: Sequence[str], seed: int = 0) -> None:
        """Fit the logistic-regression head on the encoder's embeddings of the examples.

        Its inverse regularisation ``C`` is chosen by stratified cross-validation on the
        examples themselves (up to 5 folds; every class needs 2 examples, else ``C=1``):
        unit-length embeddings and many classes want far weaker regularisation than
        scikit-learn's default, and a few-shot user has no other data to choose it on.
        """
        from collections import Counter

        from sklearn.linear_model import LogisticRegression, LogisticRegressionCV

        targets = [self.labels.index(label) for label in labels]
        vectors = self.embed(texts)
        folds = min(5, min(Counter(targets).values()))
        if folds >= 2:
            search = LogisticRegressionCV(
                Cs=HEAD_CS, cv=folds, max_iter=2000, random_state=seed, scoring="accuracy"
            ).fit(vectors, targets)
            c = float(np.atleast_1d(search.C_)[0])
        else:
            c = 1.0
        self.head = LogisticRegression(C=c, max_iter=2000, random_state=seed)
        self.head.fit(vectors, targets)

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities, ``(texts, labels)`` (labels in :attr:`labels` order)."""
        if self.head is None:
            raise RuntimeError("The head is not fitted: call fit_head (or train) first.")
        probs = self.head.predict_proba(self.embed(texts))
        out = np.zeros((len(texts), len(self.labels)))
        out[:, self.head.classes_] = probs
        return out

    def predict(self, texts: Sequence[str]) -> list[str]:
        return [self.labels[i] for i in self.scores(texts).argmax(axis=1)]

    def head_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """The head as one linear layer over every label: ``(weight (labels, dim), bias)``,
        whose softmax is :meth:`scores` (a binary head's single row becomes the second
        label's logit against 0 for the first, the same sigmoid)."""
        if self.head is None:
            raise RuntimeError("The head is not fitted: call fit_head (or train) first.")
        coef, intercept = np.asarray(self.head.coef_), np.asarray(self.head.intercept_)
        classes = [int(c) for c in self.head.classes_]
        weight = np.zeros((len(self.labels), coef.shape[1]), dtype=np.float32)
        bias = np.full(len(self.labels), -1e4, dtype=np.float32)  # a label it never saw
        if len(classes) == 2 and coef.shape[0] == 1:
            bias[classes[0]] = 0.0
            weight[classes[1]], bias[classes[1]] = coef[0], intercept[0]
        else:
            for row, label in enumerate(classes):
                weight[label], bias[label] = coef[row], intercept[row]
        return weight, bias

    def write_artifact(
        self,
        path: str | Path,
        config: dict,
        data_sizes: dict[str, int],
        metrics: dict | None = None,
        overwrite: bool = False,
    ) -> Path:
        """Write the classifier as a core classification artifact, which the Predictor,
        ``lepton-nlp predict | eval | serve``, batch scoring and the apps load like any other.

        The tuned encoder's weights go under a sequence-classification model whose head is
        the logistic regression's weights, reading the unit-length mean of the tokens
        (``task_options.pooling: mean-normalized``): the same vector the head was fitted on,
        so the artifact gives the same probabilities as :meth:`scores`.

        Args:
            path: the artifact folder.
            config: the run config as a dict (``peft.method`` becomes ``full``, the pooling
                and ``model.max_length`` become the encoder's).
            data_sizes: records per split, for the model card.
            metrics: what the run measured (``metrics.json``).
            overwrite: replace an artifact already there.
        """
        import copy
        import tempfile

        import torch

        from lepton_nlp.artifacts import write_artifact
        from lepton_nlp.tasks import get_task
        from lepton_nlp.tasks.base import TaskSpec

        modules = list(self.encoder)
        pooling = getattr(modules[1], "pooling_mode", None) if len(modules) > 1 else None
        if pooling != "mean":
            raise ConfigError(
                f"A SetFit encoder pooling with {pooling!r} cannot become an artifact: the "
                "classification task reads the mean of the tokens. Start from a "
                "mean-pooling sentence encoder (all-MiniLM-L6-v2 is one)."
            )
        task = get_task("classification")
        max_length = int(self.encoder.max_seq_length)
        spec = TaskSpec(
            labels=list(self.labels),
            max_length=max_length,
            extra={"options": {"pooling": "mean-normalized"}},
        )
        tree = copy.deepcopy(config)
        tree["task"] = "classification"
        tree.setdefault("peft", {})["method"] = "full"
        tree.setdefault("model", {})["max_length"] = max_length
        tree["task_options"] = {**(tree.get("task_options") or {}), "pooling": "mean-normalized"}
        weight, bias = self.head_weights()
        with tempfile.TemporaryDirectory(prefix="lepton-setfit-") as scratch:
            modules[0].save(scratch)
            model = task.load_model(scratch, spec)
            tokenizer = self.encoder.tokenizer
            if not isinstance(getattr(model, "classifier", None), torch.nn.Linear):
                raise ConfigError(
                    f"{type(model).__name__} has no single linear head to hold the SetFit "
                    "head; start from a BERT-family sentence encoder (all-MiniLM-L6-v2 is one)."
                )
            with torch.no_grad():
                model.classifier.weight.copy_(torch.from_numpy(weight))
                model.classifier.bias.copy_(torch.from_numpy(bias))
            return write_artifact(
                path,
                model=model,
                tokenizer=tokenizer,
                task=task,
                config=tree,
                spec=spec,
                metrics=metrics or {},
                data_sizes=data_sizes,
                overwrite=overwrite,
            )
