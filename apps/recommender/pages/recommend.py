"""Recommender page: pick a user or start a new one with interests; recommendations with
reasons; like or dismiss and see the list change; similar items; the evaluation table."""

from __future__ import annotations

import importlib
import os
import time

import altair as alt
import pandas as pd
import streamlit as st

from apps.common.database import StoreError, database_url
from apps.recommender.errors import RecommenderError
from apps.recommender.interactions import Event, Interactions
from apps.recommender.service import TrainedRecommender

__all__ = ["FACTORY_ENV", "render"]

#: ``module:function`` building the recommender from a store (tests inject a stand-in).
FACTORY_ENV = "LEPTON_REC_FACTORY"
NEW_USER = "New user..."
UPLOADED = "rec_uploaded_folder"


@st.cache_resource(show_spinner="Loading the recommender...", max_entries=4)
def _uploaded(url: str, folder: str, _embedder) -> TrainedRecommender:
    from apps.recommender.store import RecommenderStore

    return TrainedRecommender(folder, store=RecommenderStore(url), embedder=_embedder)


@st.cache_resource(show_spinner="Loading the recommender (once per process)...")
def _service(url: str, factory: str, folder: str) -> TrainedRecommender:
    from apps.recommender.store import RecommenderStore

    store = RecommenderStore(url)
    if factory:
        module, _, name = factory.partition(":")
        return getattr(importlib.import_module(module), name)(store)
    if not folder:
        from apps.recommender.demo import demo_folder

        folder = str(demo_folder())
    return TrainedRecommender(folder, store=store)


def _embedder(service: TrainedRecommender):
    content = getattr(service.model, "content", service.model)
    return getattr(content, "embedder", None)


def get_service() -> TrainedRecommender:
    """The recommender of this process (or the one trained on this session's upload); a
    missing model or database stops the page with why."""
    try:
        base = _service(
            database_url(), os.environ.get(FACTORY_ENV, ""), os.environ.get("LEPTON_REC_MODEL", "")
        )
        folder = st.session_state.get(UPLOADED)
        return _uploaded(database_url(), folder, _embedder(base)) if folder else base
    except (StoreError, RecommenderError, RuntimeError, OSError) as error:
        st.error(str(error))
        st.stop()


def _record(service: TrainedRecommender, user: str, item: str, kind: str) -> None:
    try:
        service.record(Interactions.from_events([Event(user, item, kind, time.time())]))
    except (RecommenderError, StoreError) as error:
        st.error(str(error))


def _card(service: TrainedRecommender, user: str, n: int, rec) -> None:
    item = service.catalogue.get(rec.item)
    with st.container(border=True):
        left, right = st.columns([5, 2])
        left.markdown(f"**{n}. {rec.title or rec.item}** · {', '.join(item.categories)}")
        if item.description:
            left.caption(item.description)
        for reason in rec.reasons:
            share = f" ({reason.weight:.0%})" if reason.weight < 1 else ""
            left.markdown(f"- {reason.text}{share}")
        right.caption(f"score {rec.score:.3f} · {rec.model}")
        if right.button("Like", key=f"rec_like_{rec.item}", icon=":material/thumb_up:"):
            _record(service, user, rec.item, "like")
            st.rerun()
        if right.button("Dismiss", key=f"rec_dismiss_{rec.item}", icon=":material/close:"):
            _record(service, user, rec.item, "dismiss")
            st.rerun()


def _for_you(service: TrainedRecommender) -> None:
    users = service.data.user_ids
    choice = st.selectbox("User", [NEW_USER, *users], key="rec_user")
    interests = None
    if choice == NEW_USER:
        user = st.text_input("New user's id", value="visitor", key="rec_new_id").strip()
        topics = st.multiselect("Interested in", service.catalogue.categories(), key="rec_topics")
        free = st.text_input("...or say it in your words", key="rec_free", placeholder="e.g. stars")
        interests = [*topics, *([free] if free.strip() else [])]
        if not user:
            st.info("Give the new user an id.")
            return
        if service.store is not None and interests:
            service.store.set_profile(user, interests=interests)
    else:
        user = choice
    k = st.slider("How many", 3, 20, 8, key="rec_k")
    try:
        found = service.recommend(user, k, interests=interests or None)
    except RecommenderError as error:
        st.error(str(error))
        return
    history = service.context(user, interests).history
    st.caption(
        f"{len(history)} items in {user}'s history"
        + (f"; interests: {', '.join(interests)}" if interests else "")
    )
    for n, rec in enumerate(found, 1):
        _card(service, user, n, rec)


def _similar(service: TrainedRecommender) -> None:
    titles = {f"{i.title or i.id} [{i.id}]": i.id for i in service.catalogue}
    picked = st.selectbox("Item", list(titles), key="rec_item")
    try:
        found = service.similar(titles[picked], 8)
    except RecommenderError as error:
        st.error(str(error))
        return
    table = pd.DataFrame(
        [{"item": r.item, "title": r.title, "similarity": round(r.score, 3)} for r in found]
    )
    st.dataframe(table, hide_index=True, use_container_width=True)


def _evaluation() -> None:
    from apps.recommender.demo import evaluation_results

    results = evaluation_results()
    if results is None:
        st.info(
            "No evaluation yet: `python bench/recommender_movielens.py` (or `lepton-rec evaluate "
            "--movielens PATH`) scores every model on MovieLens-100K."
        )
        return
    table = pd.DataFrame(results["table"]).T.reset_index(names="model")
    protocol = results["protocol"]
    st.caption(
        f"MovieLens-100K, per-user stratified {protocol['ratio']:.0%} split (seed "
        f"{protocol['seed']}), k={protocol['k']}, {protocol['test_users']} test users; "
        f"settings chosen on validation data. Command: `{results['command']}`, {results['date']}."
    )
    st.dataframe(table, hide_index=True, use_container_width=True)
    long = table.melt("model", ["precision@10", "ndcg@10", "map@10"], "metric", "value")
    st.altair_chart(
        alt.Chart(long)
        .mark_bar()
        .encode(x="model:N", y="value:Q", color="model:N", column="metric:N", tooltip=["value"]),
    )


def _your_data(service: TrainedRecommender) -> None:
    from apps.common.paths import data_home
    from apps.recommender.uploads import MAX_PAGE_ITEMS, train_upload

    st.caption(
        f"Upload a catalogue (CSV, JSONL, JSON or Parquet; `id`, `title`, `description`, "
        f"`categories`) and, for collaborative filtering, events (`user`, `item`, `kind`, "
        f"`rating`, `timestamp`). Up to {MAX_PAGE_ITEMS:,} items here; larger catalogues "
        "with `lepton-rec train`."
    )
    items = st.file_uploader("Catalogue", key="rec_upload_catalogue")
    events = st.file_uploader("Events (optional)", key="rec_upload_events")
    if items is not None and st.button("Train on these", key="rec_train"):
        out = data_home() / "recommender-uploads" / f"{int(time.time() * 1000)}"
        try:
            with st.spinner("Embedding the items and training..."):
                folder = train_upload(
                    (items.name, items.getvalue()),
                    (events.name, events.getvalue()) if events is not None else None,
                    out,
                    embedder=_embedder(service),
                )
        except (RecommenderError, OSError) as error:
            st.error(str(error))
            return
        st.session_state[UPLOADED] = str(folder)
        st.rerun()
    if st.session_state.get(UPLOADED) and st.button("Back to the shipped model", key="rec_reset"):
        del st.session_state[UPLOADED]
        st.rerun()


def render() -> None:
    st.title("Recommender")
    service = get_service()
    st.caption(
        f"{len(service.catalogue)} items, {service.data.n_users} users, model **{service.name}**"
    )
    mine, similar, evaluation, yours = st.tabs(
        ["For you", "Similar items", "Evaluation", "Your data"]
    )
    with mine:
        _for_you(service)
    with similar:
        _similar(service)
    with evaluation:
        _evaluation()
    with yours:
        _your_data(service)
