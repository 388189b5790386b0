"""A trained recommender folder put to work: recommend for a user (known, new, or with new
events), similar items, record events, add items. The CLI, the HTTP API and the page use it.

The folder (written by :func:`train_recommender`) is all it needs::

    recommender.json   what is inside: model kind, counts, cleaning report, date
    catalogue.jsonl    the items, in the models' order
    data/              the training interactions (users x items) and their ids
    model/             the model's own folder (model.json + its files)
    users.json         profiles: stated interests and attributes per user
"""

from __future__ import annotations

import datetime as _dt
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from apps.recommender.catalogue import Catalogue, Item, load_catalogue
from apps.recommender.errors import RecommenderError
from apps.recommender.interactions import Interactions, clean_interactions
from apps.recommender.matrix import InteractionMatrix
from apps.recommender.models import load_model, make_model, recommend
from apps.recommender.models.base import Reason, Recommendation, UserContext
from apps.recommender.models.popularity import PopularityModel

__all__ = ["FOLDER_FORMAT", "TrainedRecommender", "train_recommender"]

FOLDER_FORMAT = "lepton-rec.recommender.v1"
MANIFEST = "recommender.json"


def train_recommender(
    catalogue: Catalogue,
    interactions: Interactions | None,
    out: str | Path,
    *,
    model: str = "hybrid",
    config: dict[str, Any] | None = None,
    weighting: str = "binary",
    unknown: str = "error",
    rating_range: tuple[float, float] = (1.0, 5.0),
    users: dict[str, dict[str, Any]] | None = None,
    embedder: Any = None,
    overwrite: bool = False,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Clean the events, fit ``model`` on them and write the folder ``out``.

    Raises:
        RecommenderError: bad events (see :func:`clean_interactions`), an unknown model or
            setting, no events, or ``out`` existing without ``overwrite``.
    """
    say = progress or (lambda _: None)
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise RecommenderError(
            f"{out} exists: choose a new folder, or pass overwrite (--overwrite)."
        )
    if interactions is None:  # a catalogue alone: only content can learn from it
        interactions = Interactions.empty()
    cleaned, report = clean_interactions(
        interactions, known_items=catalogue, rating_range=rating_range, unknown=unknown
    )
    if model != "content" and not cleaned.positive().any():
        raise RecommenderError(
            f"No usable events to train a {model} model on: give at least one view, click, "
            "rating or purchase (a content model needs none)."
        )
    say(
        f"events: {report.kept} kept of {report.received} ({report.duplicates} duplicates, {report.reordered} out of order, {report.unknown_items_dropped} on unknown items dropped)"
    )
    data = InteractionMatrix.build(cleaned, catalogue.ids, weighting=weighting)
    fitted = make_model(model, config, embedder)
    start = time.perf_counter()
    say(f"fitting {model} on {data.n_users} users x {data.n_items} items")
    fitted.fit(data, catalogue)
    seconds = time.perf_counter() - start
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        catalogue.save(tmp / "catalogue.jsonl")
        (tmp / "data").mkdir()
        data.save(tmp / "data")
        fitted.save(tmp / "model")
        (tmp / "users.json").write_text(json.dumps(users or {}, indent=1, default=str), "utf-8")
        manifest = {
            "format": FOLDER_FORMAT,
            "model": model,
            "items": len(catalogue),
            "users": data.n_users,
            "interactions": int(data.matrix.nnz),
            "weighting": weighting,
            "rating_range": list(rating_range),
            "cleaning": report.to_dict(),
            "fit_seconds": round(seconds, 2),
            "trained_until": float(cleaned.timestamps.max()) if len(cleaned) else 0.0,
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    say(f"saved to {out} ({seconds:.1f} s fitting)")
    return out


class TrainedRecommender:
    """A trained folder loaded once; events recorded since training change results at once.

    Args:
        folder: written by :func:`train_recommender` (``lepton-rec train``).
        store: a :class:`~apps.recommender.store.RecommenderStore` for events and profiles
            (None: events go nowhere but this process's memory).
        embedder: the sentence embedder for interests and new items (default: the model's).
    """

    def __init__(self, folder: str | Path, store: Any = None, embedder: Any = None) -> None:
        self.folder = Path(folder)
        manifest_path = self.folder / MANIFEST
        if not manifest_path.is_file():
            raise RecommenderError(
                f"{self.folder} is not a trained recommender ({MANIFEST} missing): "
                "`lepton-rec train ... --out FOLDER` writes one."
            )
        self.manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if self.manifest.get("format") != FOLDER_FORMAT:
            raise RecommenderError(
                f"{manifest_path} has format {self.manifest.get('format')!r}; expected {FOLDER_FORMAT!r}."
            )
        self.catalogue = load_catalogue(self.folder / "catalogue.jsonl")
        self.data = InteractionMatrix.load(self.folder / "data")
        self.model = load_model(self.folder / "model", self.data, self.catalogue, embedder)
        self.users: dict[str, dict[str, Any]] = json.loads(
            (self.folder / "users.json").read_text("utf-8")
        )
        self.store = store
        self._fallback = PopularityModel().fit(self.data, self.catalogue)
        self._memory = Interactions.empty()  # events recorded without a store

    @property
    def name(self) -> str:
        return self.model.name

    # --- users ---------------------------------------------------------------------------------

    def _new_events(self, user: str) -> Interactions:
        if self.store is not None:
            return self.store.events(user)
        return self._memory.take(self._memory.users == user)

    def interests_of(self, user: str) -> list[str]:
        if self.store is not None:
            profile = self.store.profile(user)
            if profile and profile["interests"]:
                return list(profile["interests"])
        return list(self.users.get(user, {}).get("interests", []))

    def context(
        self, user: str | None, interests: Sequence[str] | None = None, history: Sequence[str] = ()
    ) -> UserContext:
        """What the models know of ``user``: training history, events since, interests."""
        row = self.data.user_index.get(user) if user is not None else None
        ctx = UserContext.of_user(self.data, row) if row is not None else UserContext()
        ctx.interests = [
            i.strip()
            for i in (
                interests if interests is not None else (self.interests_of(user) if user else [])
            )
            if i.strip()
        ]
        events = self._new_events(user) if user is not None else Interactions.empty()
        extra = [self.catalogue.position(i) for i in history]  # KeyError: unknown item
        if len(events) or extra:
            positive = events.positive()
            order = np.argsort(-events.timestamps, kind="stable")
            recent = [
                self.catalogue.position(events.items[n])
                for n in order
                if positive[n] and events.items[n] in self.catalogue
            ]
            dismissed = {
                self.catalogue.position(events.items[n])
                for n in order
                if not positive[n] and events.items[n] in self.catalogue
            }
            merged = list(dict.fromkeys([*extra, *recent, *ctx.history.tolist()]))
            ctx.history = np.array(merged, dtype=np.int64)
            ctx.exclude = set(merged) | ctx.exclude | dismissed
            trained = set(self.data.history(row).tolist()) if row is not None else set()
            ctx.changed = bool(set(merged) - trained)
        return ctx

    def recommend(
        self,
        user: str | None,
        k: int = 10,
        *,
        interests: Sequence[str] | None = None,
        history: Sequence[str] = (),
    ) -> list[Recommendation]:
        """The top ``k`` for ``user`` with reasons.

        A user with no history and no interests (cold start) gets the most popular items,
        saying so; one with interests but no history gets items matching them (content or
        hybrid models); ``history`` adds item ids the user just touched.

        Raises:
            RecommenderError: ``k`` below 1, or an item of ``history`` not in the catalogue.
        """
        if k < 1:
            raise RecommenderError(f"k must be at least 1, not {k}.")
        try:
            ctx = self.context(user, interests, history)
        except KeyError as error:
            raise RecommenderError(str(error.args[0])) from None
        found = recommend(self.model, ctx, k, self.catalogue)
        if len(found) < k:  # a model with nothing to say (no profile): fill with popular items
            taken = {self.catalogue.position(r.item) for r in found}
            fill = UserContext(ctx.history, ctx.user, ctx.interests, ctx.exclude | taken)
            found += recommend(self._fallback, fill, k - len(found), self.catalogue)
        if not len(ctx.history) and not ctx.interests:  # cold start: say so
            for rec in found:
                rec.reasons = [
                    Reason(
                        r.kind,
                        f"You are new here: {r.text[0].lower()}{r.text[1:]}",
                        r.items,
                        r.weight,
                    )
                    if r.kind == "popular"
                    else r
                    for r in rec.reasons
                ]
        return found

    def similar(self, item: str, k: int = 10) -> list[Recommendation]:
        """Items most like ``item``: by content where the model has it, else by CF factors.

        Raises:
            RecommenderError: an unknown item, or a model with no notion of item similarity.
        """
        try:
            position = self.catalogue.position(item)
        except KeyError as error:
            raise RecommenderError(str(error.args[0])) from None
        finder = getattr(self.model, "similar_items", None)
        if finder is None:
            raise RecommenderError(
                f"A {self.model.name} model has no item similarity: train content, als, bpr or hybrid."
            )
        items, scores = finder(position, k)
        source = self.catalogue.items[position]
        how = "text" if self.model.name in ("content", "hybrid") else "the users who chose them"
        return [
            Recommendation(
                item=self.catalogue.items[i].id,
                score=round(float(s), 6),
                model=self.model.name,
                reasons=[
                    Reason(
                        "similar_items",
                        f"Like '{source.title or source.id}' ({how}; {s:.2f})",
                        [source.id],
                    )
                ],
                title=self.catalogue.items[i].title,
            )
            for i, s in zip(items.tolist(), scores.tolist(), strict=True)
        ]

    # --- writing -------------------------------------------------------------------------------

    def record(
        self,
        events: Interactions,
        event_ids: Sequence[str | None] | None = None,
        *,
        unknown: str = "error",
    ) -> dict[str, Any]:
        """Check and store events (idempotent); they count in the next ``recommend`` at once.

        Raises:
            RecommenderError: ratings out of range, unknown items (with ``unknown="error"``).
        """
        if event_ids is not None and len(event_ids) != len(events):
            raise RecommenderError(f"Got {len(event_ids)} event ids for {len(events)} events.")
        lo, hi = self.manifest.get("rating_range", [1.0, 5.0])
        cleaned, report = clean_interactions(
            events, known_items=self.catalogue, rating_range=(lo, hi), unknown=unknown
        )
        ids = None
        if event_ids is not None:  # the store de-duplicates by id: keep each id with its event
            keep = np.array([i in self.catalogue for i in events.items], dtype=bool)
            cleaned, ids = events.take(keep), [e for e, k in zip(event_ids, keep, strict=True) if k]
            report.duplicates = 0
        if self.store is not None:
            result = self.store.add_events(cleaned, ids)
        else:
            before = len(self._memory)
            known = {(e.user, e.item, e.kind, e.timestamp, e.rating) for e in self._memory.events()}
            fresh = [
                e
                for e in cleaned.events()
                if (e.user, e.item, e.kind, e.timestamp, e.rating) not in known
            ]
            self._memory = self._memory.concat(Interactions.from_events(fresh))
            result = {"added": len(self._memory) - before, "duplicates": len(cleaned) - len(fresh)}
        result["duplicates"] += report.duplicates
        result["unknown_items_dropped"] = report.unknown_items_dropped
        return result

    def add_items(self, items: Sequence[Item]) -> int:
        """New catalogue items, recommendable at once from their content (content/hybrid).

        Raises:
            RecommenderError: an id already in the catalogue, or a model without content.
        """
        adder = getattr(self.model, "add_items", None)
        if adder is None or self.model.name not in ("content", "hybrid"):
            raise RecommenderError(
                f"A {self.model.name} model cannot take new items without retraining: use a content or hybrid model."
            )
        self.catalogue = self.catalogue.extended(items)
        adder(items, self.catalogue)
        extra = len(items)
        self._fallback.add_items(extra)
        return extra
