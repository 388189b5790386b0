"""The recommender over HTTP: recommend, similar items, events and profiles (a FastAPI router).

Mount it on the core server by name (the core never imports apps)::

    LEPTON_REC_MODEL=runs/rec lepton-nlp serve --routes apps.recommender.api:router

- ``GET /recommender/users/{user}/recommendations?k=10&interest=jazz``: the top k with reasons
  (a new user is a cold start: their stated interests, else popular items);
- ``GET /recommender/items/{item}/similar?k=10``;
- ``POST /recommender/events``: events, stored idempotently (an ``event_id`` or identical
  content is stored once; the answer counts the duplicates); they count at once;
- ``PUT /recommender/users/{user}/profile``: stated interests and attributes.

The trained folder comes from ``LEPTON_REC_MODEL`` (default ``runs/recommender``) and is
loaded on first use with the suite's database for events (:func:`get_recommender`); tests
replace it with :func:`set_recommender`.
"""

from __future__ import annotations

import os
import threading
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from apps.recommender.errors import RecommenderError
from apps.recommender.interactions import Interactions
from apps.recommender.service import TrainedRecommender

__all__ = ["MAX_EVENTS", "get_recommender", "router", "set_recommender"]

#: Most events in one POST (413 above it).
MAX_EVENTS = 10_000
DEFAULT_FOLDER = "runs/recommender"

router = APIRouter(prefix="/recommender", tags=["recommender"])
_lock = threading.Lock()
_service: TrainedRecommender | None = None


def set_recommender(service: TrainedRecommender | None) -> None:
    """Serve ``service`` (None: load ``LEPTON_REC_MODEL`` on the next request)."""
    global _service
    _service = service


def get_recommender() -> TrainedRecommender:
    """The trained recommender, loaded once, with the suite's database for events."""
    global _service
    with _lock:
        if _service is None:
            from apps.recommender.store import RecommenderStore

            folder = os.environ.get("LEPTON_REC_MODEL", DEFAULT_FOLDER)
            try:
                _service = TrainedRecommender(folder, store=RecommenderStore())
            except (RecommenderError, RuntimeError) as error:
                raise HTTPException(
                    503, f"No recommender to serve: {error} (set LEPTON_REC_MODEL)."
                ) from None
        return _service


Service = Annotated[TrainedRecommender, Depends(get_recommender)]


class ReasonOut(BaseModel):
    kind: str
    text: str
    items: list[str]
    weight: float


class RecommendationOut(BaseModel):
    item: str
    title: str
    score: float
    model: str
    reasons: list[ReasonOut]


class EventIn(BaseModel):
    user: str = Field(min_length=1, max_length=200)
    item: str = Field(min_length=1, max_length=200)
    kind: str | None = Field(
        None,
        description="view, click, rating, like, purchase or dismiss (default: rating when a "
        "rating is given, else view)",
    )
    rating: float | None = None
    timestamp: float | str | None = Field(
        None, description="seconds since 1970 or ISO date; default: when received"
    )
    event_id: str | None = Field(
        None, max_length=200, description="a resend with it is stored once"
    )


class EventsIn(BaseModel):
    events: list[EventIn]
    drop_unknown: bool = Field(False, description="drop events on unknown items instead of 422")


class EventsOut(BaseModel):
    added: int
    duplicates: int
    unknown_items_dropped: int


class ProfileIn(BaseModel):
    interests: list[str] | None = None
    attributes: dict[str, Any] | None = None


_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "Unknown item."},
    422: {"description": "Bad events, k out of range, unknown item in the history."},
    503: {"description": "No trained recommender (LEPTON_REC_MODEL)."},
}


@router.get(
    "/users/{user}/recommendations",
    response_model=list[RecommendationOut],
    responses=_ERRORS,
    summary="A user's top k, with reasons",
)
async def recommendations(
    user: str,
    service: Service,
    k: Annotated[int, Query(ge=1, le=200)] = 10,
    interest: Annotated[list[str] | None, Query(description="stated interests (repeat)")] = None,
) -> list[dict]:
    try:
        found = await run_in_threadpool(service.recommend, user, k, interests=interest)
    except RecommenderError as error:
        raise HTTPException(422, str(error)) from None
    return [r.to_dict() for r in found]


@router.get(
    "/items/{item}/similar",
    response_model=list[RecommendationOut],
    responses=_ERRORS,
    summary="Items like one item",
)
async def similar(
    item: str, service: Service, k: Annotated[int, Query(ge=1, le=200)] = 10
) -> list[dict]:
    if item not in service.catalogue:
        raise HTTPException(404, f"No item {item!r} in the catalogue.")
    try:
        found = await run_in_threadpool(service.similar, item, k)
    except RecommenderError as error:
        raise HTTPException(422, str(error)) from None
    return [r.to_dict() for r in found]


@router.post("/events", response_model=EventsOut, responses=_ERRORS, summary="Record events")
async def events(body: EventsIn, service: Service) -> dict:
    if len(body.events) > MAX_EVENTS:
        raise HTTPException(
            413, f"{len(body.events)} events in one request; send at most {MAX_EVENTS}."
        )
    import time

    now = time.time()
    rows = [
        {
            **e.model_dump(exclude={"event_id"}, exclude_none=True),
            "timestamp": e.timestamp if e.timestamp is not None else now,
        }
        for e in body.events
    ]
    try:
        batch = Interactions.from_rows(rows, "events")
        result = await run_in_threadpool(
            service.record,
            batch,
            [e.event_id for e in body.events] if any(e.event_id for e in body.events) else None,
            unknown="drop" if body.drop_unknown else "error",
        )
    except RecommenderError as error:
        raise HTTPException(422, str(error)) from None
    return result


@router.put("/users/{user}/profile", status_code=204, responses=_ERRORS, summary="Set interests")
async def profile(user: str, body: ProfileIn, service: Service) -> None:
    if service.store is None:
        service.users.setdefault(user, {}).update(
            {k: v for k, v in body.model_dump().items() if v is not None}
        )
        return
    await run_in_threadpool(service.store.set_profile, user, body.interests, body.attributes)
