"""A learned map from item content to recommendation vectors (the content model's ``learn``).

An item's content features are its text embedding (already centred/whitened by the content
model) plus metadata: its categories (multi-hot over the catalogue's categories) and its year
(decade one-hot and a z-score) where the catalogue has one. A linear projection ``W`` turns
them into the item's vector ``v = x W`` and a linear function ``w`` into its bias ``b = x . w``
(so that the model can learn that some kinds of item are widely liked). A user is the mean of
the vectors of the items they chose; an item's score is ``user . v + b``.

Only ``W`` and ``w`` are learned, from the training interactions: no parameter belongs to one
user or one item, so a new item is scored from its content alone and a new user from their
stated interests or first clicks. Training is a multinomial likelihood (softmax over the
catalogue, or over the batch's items plus sampled ones for large catalogues) of each user's
held-out items given the mean of the rest: every epoch, each user's items are split at random
into an input part (``input_fraction``) and targets, as in Mult-VAE's denoising (Liang et al.
2018), so the model learns to predict unseen items from seen ones rather than to copy them.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

from apps.recommender.catalogue import Item
from apps.recommender.errors import RecommenderError

__all__ = ["ItemFeatures", "Projection", "TrainSettings", "train_projection"]

YEAR_KEYS = ("year", "release_date", "date", "published", "released")
_YEAR = re.compile(r"\b(1[89]\d\d|20\d\d)\b")
DECADES = np.arange(1900, 2040, 10)
#: Categories kept as features: the most frequent (each on at least two items).
MAX_CATEGORIES = 512


def item_year(item: Item) -> float:
    """The item's year from its metadata (``year``, ``release_date``...) or title; NaN if none."""
    for key in YEAR_KEYS:
        value = item.metadata.get(key)
        if value is not None and (found := _YEAR.search(str(value))):
            return float(found.group(1))
    found = _YEAR.search(item.title)
    return float(found.group(1)) if found else float("nan")


@dataclass
class ItemFeatures:
    """Metadata as numbers: category multi-hot, decade one-hot (plus "no year"), year z-score.

    ``enabled`` False (the ``metadata`` setting off): no features at all."""

    categories: list[str]
    enabled: bool = True
    year_mean: float = float("nan")
    """NaN: the catalogue has no years (the year columns are left out)."""
    year_std: float = 1.0

    @classmethod
    def fit(cls, items: Sequence[Item], use_metadata: bool = True) -> ItemFeatures:
        if not use_metadata:
            return cls([], enabled=False)
        counts = Counter(c for item in items for c in dict.fromkeys(item.categories))
        kept = sorted(c for c, n in counts.most_common(MAX_CATEGORIES) if n >= 2)
        years = np.array([item_year(i) for i in items])
        known = years[~np.isnan(years)]
        if len(known) < 2:
            return cls(kept)
        return cls(kept, True, float(known.mean()), float(max(known.std(), 1.0)))

    @property
    def has_years(self) -> bool:
        return bool(np.isfinite(self.year_mean))

    @property
    def size(self) -> int:
        if not self.enabled:
            return 0
        return len(self.categories) + (len(DECADES) + 2 if self.has_years else 0)

    def __call__(self, items: Sequence[Item]) -> np.ndarray:
        out = np.zeros((len(items), self.size), np.float32)
        if not self.size:
            return out
        column = {c: n for n, c in enumerate(self.categories)}
        n_cat = len(self.categories)
        for row, item in enumerate(items):
            cols = [column[c] for c in dict.fromkeys(item.categories) if c in column]
            if cols:
                out[row, cols] = 1.0 / np.sqrt(len(cols))
            if not self.has_years:
                continue
            year = item_year(item)
            if np.isnan(year):
                out[row, n_cat + len(DECADES)] = 1.0  # no year known
            else:
                decade = np.searchsorted(DECADES, year, "right") - 1
                out[row, n_cat + int(np.clip(decade, 0, len(DECADES) - 1))] = 1.0
                out[row, -1] = (year - self.year_mean) / self.year_std
        return out

    def for_interest(self, text: str) -> Item:
        """A stated interest as a pseudo-item: the categories it names, a year it mentions."""
        lowered = f" {text.lower()} "
        named = [c for c in self.categories if re.search(rf"\b{re.escape(c.lower())}\b", lowered)]
        return Item(id="interest", title=text, categories=named)


@dataclass
class TrainSettings:
    dims: int = 64
    epochs: int = 200
    learning_rate: float = 0.01
    regularization: float = 1e-5
    input_fraction: float = 0.5
    batch_users: int = 1024
    sampled_items: int = 4096
    seed: int = 42


@dataclass
class Projection:
    """``features -> (vector, bias)``: what training learned, and the metadata featuriser."""

    weights: np.ndarray
    """(features x dims): item vector = features @ weights."""
    bias_weights: np.ndarray
    """(features,): item bias = features @ bias_weights."""
    features: ItemFeatures

    def inputs(self, embedded: np.ndarray, items: Sequence[Item]) -> np.ndarray:
        """The content features of ``items`` (``embedded``: their transformed text vectors)."""
        return np.hstack([np.asarray(embedded, np.float32), self.features(items)])

    def __call__(
        self, embedded: np.ndarray, items: Sequence[Item]
    ) -> tuple[np.ndarray, np.ndarray]:
        x = self.inputs(embedded, items)
        return (x @ self.weights).astype(np.float32), (x @ self.bias_weights).astype(np.float32)

    def save(self, path: Path) -> None:
        np.savez(
            path,
            weights=self.weights,
            bias_weights=self.bias_weights,
            categories=np.array(self.features.categories, dtype=str),
            metadata=np.array(
                [self.features.enabled, self.features.year_mean, self.features.year_std]
            ),
        )

    @classmethod
    def load(cls, path: Path) -> Projection:
        with np.load(path, allow_pickle=False) as found:
            enabled, year_mean, year_std = found["metadata"].tolist()
            features = ItemFeatures(
                [str(c) for c in found["categories"]], bool(enabled), year_mean, year_std
            )
            return cls(found["weights"], found["bias_weights"], features)


def train_projection(
    embedded: np.ndarray,
    items: Sequence[Item],
    matrix: sparse.csr_matrix,
    settings: TrainSettings,
    use_metadata: bool = True,
    progress: Any = None,
) -> Projection:
    """Learn ``W`` and ``w`` from who chose what (``matrix``: users x items, > 0 = chose).

    Each epoch visits every user with at least two items once, in batches of
    ``batch_users``; with more items than ``sampled_items`` the softmax runs over the batch's
    items plus that many sampled uniformly (otherwise over the whole catalogue).
    """
    import torch

    features = ItemFeatures.fit(items, use_metadata)
    x_all = np.hstack([np.asarray(embedded, np.float32), features(items)])
    x_all_t = torch.from_numpy(x_all)
    n_items, n_features = x_all.shape
    chosen = (sparse.csr_matrix(matrix) > 0).astype(np.float32).tocsr()
    users = np.flatnonzero(np.diff(chosen.indptr) >= 2)
    if not len(users):
        raise RecommenderError(
            "The learned content model needs interactions to learn from: no user has chosen "
            "two or more items. Record some events first, or train without learn=true."
        )
    generator = torch.Generator().manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    weights = torch.nn.Parameter(torch.randn(n_features, settings.dims, generator=generator) * 0.1)
    bias_weights = torch.nn.Parameter(torch.zeros(n_features))
    optimizer = torch.optim.Adam([weights, bias_weights], lr=settings.learning_rate)
    sampled = n_items > settings.sampled_items
    loss = torch.tensor(float("nan"))
    for epoch in range(settings.epochs):
        order = rng.permutation(users)
        for begin in range(0, len(order), settings.batch_users):
            batch = chosen[order[begin : begin + settings.batch_users]]
            if sampled:
                extra = rng.choice(n_items, settings.sampled_items, replace=False)
                cols = np.union1d(batch.indices, extra)
                position = np.full(n_items, -1, np.int64)
                position[cols] = np.arange(len(cols))
                batch = sparse.csr_matrix(
                    (batch.data, position[batch.indices], batch.indptr),
                    shape=(batch.shape[0], len(cols)),
                )
                x = x_all_t[torch.from_numpy(cols)]
            else:
                x = x_all_t
            positive = torch.from_numpy(batch.toarray()) > 0
            keep = torch.rand(positive.shape, generator=generator) < settings.input_fraction
            inputs = positive & keep
            targets = (positive & ~keep).float()
            n_in = inputs.sum(1, keepdim=True)
            usable = (n_in[:, 0] > 0) & (targets.sum(1) > 0)
            if not bool(usable.any()):
                continue
            vectors = x @ weights
            profile = (inputs.float() @ vectors) / n_in.clamp(min=1)
            logits = (profile @ vectors.T + x @ bias_weights).masked_fill(inputs, -1e9)
            log_p = torch.log_softmax(logits, dim=1)
            nll = -(log_p * targets).sum(1) / targets.sum(1).clamp(min=1)
            loss = nll[usable].mean() + settings.regularization * (
                weights.pow(2).sum() + bias_weights.pow(2).sum()
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if progress:
            progress(epoch + 1, float(loss.detach()))
    return Projection(
        weights.detach().numpy().astype(np.float32),
        bias_weights.detach().numpy().astype(np.float32),
        features,
    )
