"""The recommender (apps/recommender) on tiny synthetic data: metrics against hand-computed
values, the split, every model's filtering and explanations, cold start, bad input, the
store's idempotence, saved folders, the CLI and the HTTP API. No model is downloaded: text
is embedded by a hashed bag of words (:class:`WordsEmbedder`)."""

from __future__ import annotations

import hashlib
import json
import math
import re

import numpy as np
import pytest

from apps.recommender.catalogue import Catalogue, Item, load_catalogue
from apps.recommender.diversity import mmr
from apps.recommender.errors import RecommenderError
from apps.recommender.interactions import Event, Interactions, clean_interactions, load_interactions
from apps.recommender.matrix import InteractionMatrix
from apps.recommender.metrics import (
    catalogue_coverage,
    diversity,
    map_at_k,
    ndcg_at_k,
    novelty,
    precision_at_k,
    recall_at_k,
)
from apps.recommender.models import make_model, recommend
from apps.recommender.models.base import UserContext
from apps.recommender.split import stratified_split

TOPICS = {
    "space": "telescope stars planets galaxy orbit rocket astronomy",
    "cooking": "pasta bread spices oven recipe kitchen dinner",
    "music": "guitar jazz piano chords melody songs rhythm",
}


class WordsEmbedder:
    """A deterministic embedder: each word adds a fixed random vector (no model)."""

    model_name = "hashed-words"

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim

    def encode(self, texts, normalize: bool = True) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for n, text in enumerate(texts):
            for word in re.findall(r"[a-z]+", text.lower()):
                seed = int(hashlib.md5(word.encode()).hexdigest()[:8], 16)
                out[n] += np.random.default_rng(seed).standard_normal(self.dim)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1)


def _catalogue() -> Catalogue:
    items = []
    for topic, words in TOPICS.items():
        vocab = words.split()
        for n in range(8):
            picked = " ".join(vocab[(n + j) % len(vocab)] for j in range(3))
            items.append(Item(f"{topic}-{n}", f"{topic.title()} {n}", f"About {picked}.", [topic]))
    return Catalogue(items)


def _events(seed: int = 0) -> Interactions:
    """20 users, each keen on one topic (users 0-6 space, 7-13 cooking, 14-19 music)."""
    rng = np.random.default_rng(seed)
    topics = list(TOPICS)
    events = []
    for u in range(20):
        topic = topics[min(u // 7, 2)]
        chosen = rng.choice(8, size=5, replace=False)
        for j, n in enumerate(chosen):
            events.append(Event(f"user{u}", f"{topic}-{n}", "click", 1000.0 * u + j))
        events.append(Event(f"user{u}", f"{topic}-0", "view", 1000.0 * u + 9))  # popular item
    return Interactions.from_events(events)


@pytest.fixture
def catalogue() -> Catalogue:
    return _catalogue()


@pytest.fixture
def data(catalogue) -> InteractionMatrix:
    cleaned, _ = clean_interactions(_events(), known_items=catalogue)
    return InteractionMatrix.build(cleaned, catalogue.ids)


def _fitted(name: str, data, catalogue, **config):
    if name in ("als", "bpr"):
        config = {"factors": 8, "iterations": 20, "threads": 1, **config}
    if name == "hybrid":
        config = {"cf_config": {"factors": 8, "iterations": 10, "threads": 1}, **config}
    model = make_model(name, config, WordsEmbedder() if name in ("content", "hybrid") else None)
    return model.fit(data, catalogue)


# --- metrics ----------------------------------------------------------------------------------


def test_metrics_match_hand_computed_values():
    recommended = {"u1": ["a", "b", "c", "d"], "u2": ["x", "y", "z"], "u3": ["q"]}
    relevant = {"u1": {"a", "c", "x"}, "u2": {"z"}, "u4": {"a"}}  # u3: nothing; u4: no list
    # u1 hits at ranks 1 and 3 of 3; u2 a hit at rank 3. Only u1 and u2 count.
    assert precision_at_k(recommended, relevant, 3) == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert recall_at_k(recommended, relevant, 3) == pytest.approx((2 / 3 + 1) / 2)
    u1 = (1 / math.log(2) + 1 / math.log(4)) / (1 / math.log(2) + 1 / math.log(3) + 1 / math.log(4))
    u2 = (1 / math.log(4)) / (1 / math.log(2))
    assert ndcg_at_k(recommended, relevant, 3) == pytest.approx((u1 + u2) / 2)
    # Recommenders' map_at_k: sum of precision at each hit over min(|relevant|, k).
    assert map_at_k(recommended, relevant, 3) == pytest.approx(((1 + 2 / 3) / 3 + (1 / 3) / 1) / 2)
    # k=2: u1's hit at rank 3 no longer counts, and precision divides by 2.
    assert precision_at_k(recommended, relevant, 2) == pytest.approx((1 / 2 + 0) / 2)
    assert map_at_k(recommended, relevant, 2) == pytest.approx((1 / 2 + 0) / 2)
    assert catalogue_coverage(recommended, 16, 3) == pytest.approx(7 / 16)
    # a has 1 of 4 training interactions, x 2 of 4: novelty = mean(2, 1).
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    index = {"a": 0, "b": 1, "c": 2}
    # u1's list a, b, c: cosines 0, 1/sqrt(2), 1/sqrt(2); u2's list x, y, z has no vectors.
    assert diversity(recommended, index, vectors, 3) == pytest.approx(1 - math.sqrt(2) / 3)
    assert novelty({"u": ["a", "x", "new"]}, {"a": 1, "x": 2}, 4) == pytest.approx(1.5)


def test_a_repeated_item_in_a_list_counts_once():
    assert precision_at_k({"u": ["a", "a"]}, {"u": {"a"}}, 2) == pytest.approx(0.5)


# --- split ------------------------------------------------------------------------------------


def test_split_is_per_user_stratified_and_seeded():
    events = _events()
    train, test = stratified_split(events, 0.75, seed=42)
    assert len(train) + len(test) == len(events)
    for user in set(events.users):
        total = int((events.users == user).sum())
        assert int((train.users == user).sum()) == math.floor(0.75 * total)  # 6 -> 4 and 2
    again, _ = stratified_split(events, 0.75, seed=42)
    other, _ = stratified_split(events, 0.75, seed=7)
    assert train.events() == again.events()
    assert train.events() != other.events()


def test_split_matches_recommenders_algorithm():
    pd = pytest.importorskip("pandas")
    events = _events(3)
    # Recommenders' python_stratified_split, written out with pandas.
    frame = pd.DataFrame({"userID": events.users, "row": np.arange(len(events))})
    np.random.seed(42)
    frame["random"] = np.random.rand(len(frame))
    frame = frame.sort_values(["userID", "random"])
    groups = frame.groupby("userID")
    frame["rank"] = (groups.cumcount() + 1) / groups["userID"].transform("count")
    expected = sorted(frame.loc[frame["rank"] <= 0.75, "row"])
    train, _ = stratified_split(events, 0.75, 42)
    keys = {(e.user, e.item, e.timestamp): n for n, e in enumerate(events.events())}
    assert sorted(keys[(e.user, e.item, e.timestamp)] for e in train.events()) == expected


# --- models -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["popularity", "content", "als", "bpr", "hybrid"])
def test_every_model_leaves_out_what_the_user_has_seen(name, data, catalogue):
    model = _fitted(name, data, catalogue)
    users = list(range(data.n_users))
    for user, items in zip(users, model.recommend_users(users, 10), strict=True):
        assert len(items) == 10
        assert not set(items.tolist()) & data.seen(user)
        ctx = UserContext.of_user(data, user)
        found = recommend(model, ctx, 5, catalogue)
        assert found and all(r.reasons and r.why for r in found)
        assert not {catalogue.position(r.item) for r in found} & data.seen(user)


def test_models_learn_the_users_topic(data, catalogue):
    for name in ("content", "als", "hybrid"):
        model = _fitted(name, data, catalogue)
        # a space, a cooking, a music fan; each has 2 or 3 items of their topic left to see
        top = model.recommend_users([0, 8, 15], 2)
        for items, topic in zip(top, ["space", "cooking", "music"], strict=True):
            assert all(catalogue.items[i].categories == [topic] for i in items), name


def test_stated_interests_are_cached_within_a_bound(data, catalogue, monkeypatch):
    # Interests come from API requests (?interest=...): each new text was kept for good.
    from apps.recommender.models import content

    monkeypatch.setattr(content, "INTEREST_CACHE_SIZE", 50)
    model = _fitted("content", data, catalogue)
    first = model.interest_vectors(["stars and rockets", "pasta"])
    for n in range(30):
        model.interest_vectors([f"topic {n} a", f"topic {n} b", "pasta", "pasta"])
    assert len(model._interest_cache) <= 50
    assert "stars and rockets" not in model._interest_cache  # the oldest went first
    again = model.interest_vectors(["stars and rockets", "pasta"])
    np.testing.assert_allclose(again, first, rtol=1e-6)


def test_content_explanation_names_items_the_user_liked(data, catalogue):
    model = _fitted("content", data, catalogue)
    ctx = UserContext.of_user(data, 0)
    rec = recommend(model, ctx, 1, catalogue)[0]
    reason = rec.reasons[0]
    history_ids = {catalogue.items[i].id for i in ctx.history}
    assert reason.kind == "similar_items" and reason.items
    assert set(reason.items) <= history_ids
    for item_id in reason.items:
        assert catalogue.get(item_id).title in reason.text


@pytest.mark.parametrize("name", ["als", "bpr"])
def test_collaborative_explanations_name_liked_items_and_similar_users(name, data, catalogue):
    model = _fitted(name, data, catalogue)
    ctx = UserContext.of_user(data, 0)
    rec = recommend(model, ctx, 1, catalogue)[0]
    kinds = {r.kind: r for r in rec.reasons}
    assert set(kinds["similar_items"].items) <= {catalogue.items[i].id for i in ctx.history}
    assert re.search(r"Liked by \d+ of the \d+ users", kinds["similar_users"].text)


def test_cold_start_from_stated_interests(data, catalogue):
    for name in ("content", "hybrid"):
        model = _fitted(name, data, catalogue)
        ctx = UserContext(interests=["guitar jazz piano"])
        found = recommend(model, ctx, 5, catalogue)
        assert all(catalogue.get(r.item).categories == ["music"] for r in found), name
        assert any(r.kind == "interest" and "guitar jazz piano" in r.text for r in found[0].reasons)


def test_cold_start_from_a_few_clicks_folds_the_user_in(data, catalogue):
    for name in ("als", "bpr", "content"):
        model = _fitted(name, data, catalogue)
        clicks = np.array([catalogue.position(f"cooking-{n}") for n in (1, 2)])
        ctx = UserContext(history=clicks, exclude=set(clicks.tolist()), changed=True)
        items, _ = model.candidates(ctx, 3)
        assert len(items) == 3
        assert sum(catalogue.items[i].categories == ["cooking"] for i in items) >= 2, name


def test_a_new_item_is_recommended_from_its_content_alone(data, catalogue):
    model = _fitted("hybrid", data, catalogue)
    new = Item("space-new", "Nebula atlas", "telescope stars galaxy astronomy orbit", ["space"])
    bigger = catalogue.extended([new])
    model.add_items([new], bigger)
    ctx = UserContext(interests=["telescope stars galaxy astronomy"])
    items, _ = model.candidates(ctx, 3)
    assert bigger.position("space-new") in items.tolist()


def test_content_vectors_lose_the_direction_every_item_shares(tmp_path):
    """Centring removes what all items have in common; whitening evens out the components;
    stated interests and new items go through the very same transform, and it is saved."""
    from apps.recommender.models.content import ContentModel, Transform

    rng = np.random.default_rng(0)
    shared = rng.standard_normal(16)
    raw = shared * 5 + rng.standard_normal((200, 16)) * np.linspace(0.2, 2.0, 16)
    centred = Transform.fit(raw, 0.0)
    assert np.allclose(centred.mean, raw.mean(axis=0), atol=1e-5)
    assert abs(float(np.mean(centred(raw) @ _unit_rows(shared)))) < 0.05
    assert np.mean(_unit_rows(raw) @ _unit_rows(shared)) > 0.8  # before: all alike
    whitened = Transform.fit(raw, 1.0)
    spread = np.std((raw - whitened.mean) @ whitened.basis * whitened.scale, axis=0)
    assert np.allclose(spread, 1.0, atol=1e-3)  # every component at unit variance
    assert Transform.fit(raw[:10], 1.0).basis is None  # fewer items than dims: centre only
    assert Transform.fit(raw, None) is None and Transform.fit(raw[:1], 0.0) is None
    centred.save(tmp_path / "centred.npz")
    assert np.allclose(Transform.load(tmp_path / "centred.npz")(raw[:3]), centred(raw[:3]))

    class Fixed:
        model_name = "fixed"

        def encode(self, texts, normalize=True):
            return np.array([raw[int(t)] for t in texts], dtype=np.float32)

    catalogue = Catalogue([Item(str(n), str(n), "") for n in range(150)])
    catalogue.texts = lambda: [str(n) for n in range(150)]
    data = InteractionMatrix.build(
        Interactions.from_events([Event("u", "0", "click", 1.0)]), catalogue.ids
    )
    model = ContentModel({"whiten": 0.5}, Fixed()).fit(data, catalogue)
    assert np.allclose(
        model.interest_vectors(["160"])[0], model.transform(_unit_rows(raw[160:161]))[0], atol=1e-6
    )
    bigger = catalogue.extended([Item("170", "170", "")])
    model.embedder.encode = lambda texts, normalize=True: raw[170:171].astype(np.float32)
    model.add_items([bigger.items[-1]], bigger)
    assert np.allclose(model.vectors[-1], model.transform(_unit_rows(raw[170:171]))[0], atol=1e-6)
    model.save(tmp_path)
    loaded = ContentModel.load(tmp_path, data, bigger, Fixed())
    assert np.allclose(loaded.transform(raw[:3]), model.transform(raw[:3]))


def _unit_rows(x):
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_mmr_trades_relevance_for_variety():
    vectors = np.array([[1, 0], [1, 0], [0, 1]], dtype=float)
    scores = np.array([1.0, 0.9, 0.5])
    assert mmr(scores, vectors, 2, lam=1.0).tolist() == [0, 1]
    assert mmr(scores, vectors, 2, lam=0.5).tolist() == [0, 2]
    with pytest.raises(ValueError, match="between 0 and 1"):
        mmr(scores, vectors, 2, lam=1.5)


def test_hybrid_tuning_uses_the_validation_events_it_is_given(data, catalogue):
    model = _fitted("hybrid", data, catalogue)
    relevant = {data.user_ids[u]: {"space-0"} for u in range(7) if 0 not in data.seen(u)}
    result = model.tune(range(data.n_users), relevant or {"user0": {"space-7"}}, 10)
    assert result["tried"] == 4 * 4 * 3 and 0.0 <= result["ndcg"] <= 1.0
    assert model.config.weights == result["weights"]


# --- bad input --------------------------------------------------------------------------------


def test_settings_and_names_with_typos_are_refused_with_a_hint():
    with pytest.raises(RecommenderError, match="did you mean 'factors'"):
        make_model("als", {"factor": 8})
    with pytest.raises(RecommenderError, match="did you mean 'hybrid'"):
        make_model("hybrid2")


def test_cleaning_drops_duplicates_sorts_and_refuses_bad_ratings(catalogue):
    events = Interactions.from_events(
        [
            Event("a", "space-1", "view", 20.0),
            Event("a", "space-2", "click", 10.0),  # out of order
            Event("a", "space-1", "view", 20.0),  # exact duplicate
        ]
    )
    cleaned, report = clean_interactions(events, known_items=catalogue)
    assert (report.duplicates, report.reordered, report.kept) == (1, 1, 2)
    assert cleaned.timestamps.tolist() == [10.0, 20.0]
    bad = Interactions.from_events([Event("a", "space-1", "rating", 1.0, 7.0)])
    with pytest.raises(RecommenderError, match=r"outside the scale 1\.\.5"):
        clean_interactions(bad, known_items=catalogue)
    unknown = Interactions.from_events([Event("a", "nope", "view", 1.0), Event("a", "space-1")])
    with pytest.raises(RecommenderError, match="not in the catalogue.*'nope'"):
        clean_interactions(unknown, known_items=catalogue)
    kept, report = clean_interactions(unknown, known_items=catalogue, unknown="drop")
    assert (len(kept), report.unknown_items_dropped) == (1, 1)


def test_bad_files_and_an_empty_catalogue_are_clear_errors(tmp_path):
    with pytest.raises(RecommenderError, match="catalogue is empty"):
        Catalogue([])
    (tmp_path / "items.csv").write_text("id,title\na,A\na,B\n")
    with pytest.raises(RecommenderError, match="'a' appears twice"):
        load_catalogue(tmp_path / "items.csv")
    (tmp_path / "events.jsonl").write_text('{"user": "u", "item": "a", "kind": "watched"}\n')
    with pytest.raises(RecommenderError, match="event kind 'watched'"):
        load_interactions(tmp_path / "events.jsonl")
    (tmp_path / "events.csv").write_text("user,item,timestamp\nu,a,yesterday\n")
    with pytest.raises(RecommenderError, match="timestamp 'yesterday'"):
        load_interactions(tmp_path / "events.csv")


def test_readers_take_csv_jsonl_and_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "items.csv").write_text("item_id,name,genres,price\n1,One,a|b,3\n")
    item = load_catalogue(tmp_path / "items.csv").get(1)
    assert (item.title, item.categories, item.metadata) == ("One", ["a", "b"], {"price": "3"})
    pq.write_table(
        pa.table(
            {
                "user_id": ["u"],
                "item_id": ["1"],
                "rating": [4.0],
                "timestamp": ["2026-12-01T00:00:00Z"],
            }
        ),
        tmp_path / "events.parquet",
    )
    event = load_interactions(tmp_path / "events.parquet").events()[0]
    assert (event.kind, event.rating, event.timestamp) == ("rating", 4.0, 1796083200.0)


def test_demo_files_load_and_every_event_is_on_a_catalogue_item():
    from apps.recommender.cli import DEMO_CATALOGUE, DEMO_EVENTS

    catalogue = load_catalogue(DEMO_CATALOGUE)
    events = load_interactions(DEMO_EVENTS)
    assert 100 <= len(catalogue) <= 200 and all(i.description and i.categories for i in catalogue)
    _, report = clean_interactions(events, known_items=catalogue)
    assert report.kept == len(events) > 500


# --- store, service, folder, CLI, API -------------------------------------------------------------


def test_store_keeps_events_once_however_often_they_are_sent(tmp_path):
    from apps.recommender.store import RecommenderStore

    store = RecommenderStore(f"sqlite:///{tmp_path / 'rec.db'}")
    batch = Interactions.from_events([Event("u", "a", "click", 5.0), Event("u", "b", "view", 6.0)])
    assert store.add_events(batch) == {"added": 2, "duplicates": 0}
    assert store.add_events(batch) == {"added": 0, "duplicates": 2}
    assert store.add_events(batch, ["e1", "e2"]) == {"added": 2, "duplicates": 0}  # ids differ
    assert store.add_events(batch, ["e1", "e2"]) == {"added": 0, "duplicates": 2}
    assert len(store.events("u")) == 4 and store.count() == 4
    store.set_profile("u", interests=["jazz"])
    assert store.profile("u") == {"interests": ["jazz"], "attributes": {}}


@pytest.fixture
def trained(tmp_path, catalogue):
    from apps.recommender.service import train_recommender

    return train_recommender(
        catalogue,
        _events(),
        tmp_path / "rec",
        model="hybrid",
        config={"cf_config": {"factors": 8, "iterations": 10, "threads": 1}},
        embedder=WordsEmbedder(),
    )


def test_a_saved_folder_recommends_as_the_model_did_and_events_count_at_once(trained, tmp_path):
    from apps.recommender.service import TrainedRecommender
    from apps.recommender.store import RecommenderStore

    store = RecommenderStore(f"sqlite:///{tmp_path / 'rec.db'}")
    service = TrainedRecommender(trained, store=store, embedder=WordsEmbedder())
    manifest = json.loads((trained / "recommender.json").read_text())
    assert manifest["model"] == "hybrid" and manifest["items"] == 24
    first = service.recommend("user0", 5)
    assert [r.item for r in first] == [r.item for r in service.recommend("user0", 5)]
    top = first[0].item
    service.record(Interactions.from_events([Event("user0", top, "dismiss", 1e9)]))
    assert top not in [r.item for r in service.recommend("user0", 5)]
    # A brand-new user: popular items, saying why; then a click changes the list at once.
    cold = service.recommend("stranger", 3)
    assert cold[0].reasons[0].kind == "popular" and "new here" in cold[0].why
    service.record(Interactions.from_events([Event("stranger", "music-3", "click", 2e9)]))
    warm = service.recommend("stranger", 3)
    assert "music-3" not in [r.item for r in warm]
    assert sum(r.item.startswith("music") for r in warm) >= 2
    similar = service.similar("space-1", 3)
    assert len(similar) == 3 and all(r.reasons[0].items == ["space-1"] for r in similar)
    with pytest.raises(RecommenderError, match="No item 'nope'"):
        service.similar("nope")
    with pytest.raises(RecommenderError, match="No item 'nope'"):
        service.recommend("user0", history=["nope"])


def test_http_api_recommends_and_stores_events_idempotently(trained, tmp_path):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from apps.recommender import api
    from apps.recommender.service import TrainedRecommender
    from apps.recommender.store import RecommenderStore

    store = RecommenderStore(f"sqlite:///{tmp_path / 'api.db'}")
    api.set_recommender(TrainedRecommender(trained, store=store, embedder=WordsEmbedder()))
    try:
        app = FastAPI()
        app.include_router(api.router)
        client = TestClient(app)
        got = client.get("/recommender/users/user8/recommendations", params={"k": 3})
        assert got.status_code == 200 and len(got.json()) == 3
        assert all(r["reasons"] for r in got.json())
        cold = client.get(
            "/recommender/users/newbie/recommendations", params={"interest": "jazz guitar"}
        )
        assert cold.json()[0]["item"].startswith("music")
        body = {"events": [{"user": "newbie", "item": "music-1", "kind": "like", "event_id": "x1"}]}
        assert client.post("/recommender/events", json=body).json()["added"] == 1
        assert client.post("/recommender/events", json=body).json() == {
            "added": 0,
            "duplicates": 1,
            "unknown_items_dropped": 0,
        }
        bad = {"events": [{"user": "u", "item": "music-1", "kind": "rating", "rating": 9}]}
        answer = client.post("/recommender/events", json=bad)
        assert answer.status_code == 422 and "outside the scale" in answer.json()["detail"]
        assert client.get("/recommender/items/nope/similar").status_code == 404
        assert len(client.get("/recommender/items/space-1/similar", params={"k": 2}).json()) == 2
        assert (
            client.get("/recommender/users/u/recommendations", params={"k": 0}).status_code == 422
        )
    finally:
        api.set_recommender(None)


def test_cli_trains_recommends_and_finds_similar_items(tmp_path, capsys):
    from apps.recommender.cli import main

    out = tmp_path / "als"
    assert (
        main(["train", "--model", "als", "--set", "factors=8", "--threads", "1", "--out", str(out)])
        == 0
    )
    assert main(["recommend", str(out), "--user", "u01", "--k", "3", "--no-db", "--json"]) == 0
    printed = capsys.readouterr().out
    found = json.loads(printed[printed.index("[") :])
    assert len(found) == 3 and all(r["reasons"] for r in found)
    assert main(["similar", str(out), "--item", "demo-001", "--k", "2", "--no-db"]) == 0
    assert "demo-" in capsys.readouterr().out
    assert main(["train", "--model", "als", "--set", "factor=8", "--out", str(tmp_path / "x")]) == 2
    assert "did you mean 'factors'" in capsys.readouterr().err
    assert main(["recommend", str(tmp_path / "missing"), "--user", "u", "--no-db"]) == 2


def test_core_server_mounts_the_recommender_beside_another_app(trained, tmp_path):
    from fastapi.testclient import TestClient

    from apps.recommender import api
    from apps.recommender.service import TrainedRecommender
    from lepton_nlp.cli import build_parser
    from lepton_nlp.serve.app import create_app
    from lepton_nlp.serve.settings import ServeSettings

    routes = ["apps.recommender.api:router", "apps.support.api:router"]
    args = build_parser().parse_args(["serve", "--routes", routes[0], "--routes", routes[1]])
    assert args.routes == routes  # --routes repeats
    api.set_recommender(TrainedRecommender(trained, embedder=WordsEmbedder()))
    try:
        with TestClient(create_app({}, ServeSettings(routes=routes))) as client:
            paths = client.get("/openapi.json").json()["paths"]
            assert "/recommender/users/{user}/recommendations" in paths
            assert "/model/parse" in paths
            got = client.get("/recommender/users/user3/recommendations", params={"k": 2})
            assert got.status_code == 200 and len(got.json()) == 2
    finally:
        api.set_recommender(None)


def test_cli_evaluate_prints_the_table_and_train_tune_chooses_on_validation(tmp_path, capsys):
    from apps.recommender.cli import main

    out = tmp_path / "table.json"
    args = ["evaluate", "--models", "popularity,als", "--no-tune", "--threads", "1"]
    assert main([*args, "--json", str(out)]) == 0
    printed = capsys.readouterr()
    assert (
        "| model | precision@10 | recall@10 | ndcg@10 | map@10 | coverage | novelty |"
        in printed.out
    )
    assert "| popularity |" in printed.out and "| als |" in printed.out
    assert "split:" in printed.err  # progress goes to stderr
    found = json.loads(out.read_text())
    assert found["protocol"]["test_users"] == 60 and found["protocol"]["seed"] == 42
    folder = tmp_path / "tuned"
    assert main(["train", "--model", "als", "--tune", "--threads", "1", "--out", str(folder)]) == 0
    assert "als: chose" in capsys.readouterr().err
    assert json.loads((folder / "model" / "model.json").read_text())["config"]["factors"] in (
        16,
        32,
        64,
    )


def test_experiment_scores_the_hybrid_with_mmr_as_a_row_of_its_own():
    from apps.recommender.cli import DEMO_CATALOGUE, DEMO_EVENTS
    from apps.recommender.experiment import run_experiment

    found = run_experiment(
        load_catalogue(DEMO_CATALOGUE),
        load_interactions(DEMO_EVENTS),
        models=["hybrid"],
        tune=False,
        embedder=WordsEmbedder(),
        configs={"hybrid": {"cf_config": {"factors": 8, "threads": 1}}},
        mmr=0.3,
    )
    plain, diverse = found["results"]["hybrid"], found["results"]["hybrid+mmr"]
    assert diverse["config"]["mmr_lambda"] == 0.3 and plain["config"]["mmr_lambda"] == 1.0
    assert diverse["diversity"] > plain["diversity"]  # less alike within each list
    assert diverse["ndcg@10"] != plain["ndcg@10"]


def test_uploads_are_sized_before_they_are_parsed(tmp_path):
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from apps.recommender.uploads import count_rows, train_upload

    assert count_rows("a.csv", b"id,title\n1,a\n2,b\n") == 2
    assert count_rows("a.jsonl", b'{"id": 1}\n{"id": 2}') == 2
    buffer = io.BytesIO()
    pq.write_table(pa.table({"id": list(range(7))}), buffer)
    assert count_rows("a.parquet", buffer.getvalue()) == 7
    with pytest.raises(RecommenderError, match="reads .csv"):
        count_rows("a.xlsx", b"")
    with pytest.raises(RecommenderError, match="not a readable Parquet"):
        count_rows("a.parquet", b"nope")
    with pytest.raises(RecommenderError, match="about 3 items; the page trains on at most 2"):
        train_upload(("a.csv", b"id\n1\n2\n3\n"), None, tmp_path / "x", max_items=2)
    events = ("e.csv", b"user,item,kind\nu,1,click\nu,9,click\n")
    with pytest.raises(RecommenderError, match="not in the catalogue"):
        train_upload(("a.csv", b"id\n1\n2\n"), events, tmp_path / "x", embedder=WordsEmbedder())
    assert not (tmp_path / "x").exists()  # a refused upload writes nothing


# --- the learned content model ------------------------------------------------------------------


def _acclaimed_world():
    """Three topics; a third of each topic's items are 'acclaimed' (a category, and a word in
    their text). Every user chooses their topic's acclaimed items, two plain ones, and two
    acclaimed items of other topics: acclaimed items are widely liked."""
    items = []
    for topic, words in TOPICS.items():
        vocab = words.split()
        for n in range(9):
            picked = " ".join(vocab[(n + j) % len(vocab)] for j in range(3))
            cats = [topic, "acclaimed"] if n % 3 == 0 else [topic]
            items.append(Item(f"{topic}-{n}", f"{topic.title()} {n}", f"About {picked}.", cats))
    catalogue = Catalogue(items)
    rng = np.random.default_rng(0)
    topics = list(TOPICS)
    events = []
    for u in range(30):
        topic = topics[u % 3]
        others = [t for t in topics if t != topic]
        chosen = [f"{topic}-{n}" for n in (0, 3, 6)]
        chosen += [f"{topic}-{n}" for n in rng.choice([1, 2, 4, 5, 7, 8], 2, replace=False)]
        chosen += [f"{t}-{3 * int(rng.integers(3))}" for t in others]
        events += [Event(f"user{u}", i, "click", 1000.0 * u + j) for j, i in enumerate(chosen)]
    data = InteractionMatrix.build(Interactions.from_events(events), catalogue.ids)
    return catalogue, data


LEARNED = {"learn": True, "dims": 16, "epochs": 150, "learning_rate": 0.05}


def test_learned_content_ranks_a_new_item_with_a_liked_feature_above_others():
    """Trained on who chose what, the content model learns that 'acclaimed' items are liked
    and ranks a brand-new acclaimed item (never seen in training) above an otherwise equal
    plain one; the cosine model, which only compares texts, ranks them the other way."""
    catalogue, data = _acclaimed_world()
    new = [
        Item("space-new-a", "Nebula", "About telescope stars galaxy.", ["space", "acclaimed"]),
        Item("space-new-b", "Nebula", "About telescope stars galaxy.", ["space"]),
    ]
    bigger = catalogue.extended(new)
    liked = np.array([catalogue.position("space-1"), catalogue.position("space-2")])
    ctx = UserContext(history=liked, exclude=set(liked.tolist()), changed=True)
    ranks = {}
    for learn in (True, False):
        config = LEARNED if learn else {}
        model = make_model("content", config, WordsEmbedder()).fit(data, catalogue)
        model.add_items(new, bigger)
        items, scores = model.candidates(ctx, len(bigger))
        order = items.tolist()
        assert np.allclose(scores, model.score(ctx, items), atol=1e-4)  # faiss = the score
        ranks[learn] = [order.index(bigger.position(i.id)) for i in new]
    assert ranks[True][0] < ranks[True][1] and ranks[True][0] < 5
    assert ranks[False][0] > ranks[False][1]  # without learning: the other way round
    # Reasons in the learned model's words; cold start from stated interests alone.
    model = make_model("content", LEARNED, WordsEmbedder()).fit(data, catalogue)
    why = recommend(model, ctx, 3, catalogue)
    assert len(why) == 3 and why[0].reasons[0].kind == "similar_items"
    assert set(why[0].reasons[0].items) <= {"space-1", "space-2"}
    cold = recommend(model, UserContext(interests=["galaxy telescope"]), 3, catalogue)
    assert sum(r.item.startswith("space") for r in cold) >= 2
    assert "Matches your interest in 'galaxy telescope'" in cold[0].why


def test_learned_content_saves_and_loads_with_identical_scores(tmp_path):
    from apps.recommender.models import load_model

    catalogue, data = _acclaimed_world()
    model = make_model("content", LEARNED, WordsEmbedder()).fit(data, catalogue)
    model.save(tmp_path / "m")
    assert (tmp_path / "m" / "projection.npz").is_file()
    loaded = load_model(tmp_path / "m", data, catalogue, WordsEmbedder())
    assert loaded.learned and loaded.config.learn and loaded.config.dims == 16
    everything = np.arange(len(catalogue))
    for ctx in (
        UserContext.of_user(data, 4),
        UserContext(interests=["jazz piano"]),
    ):
        assert np.array_equal(model.score(ctx, everything), loaded.score(ctx, everything))
        assert np.array_equal(model.candidates(ctx, 5)[0], loaded.candidates(ctx, 5)[0])
    new = [Item("music-new", "Trio", "About piano chords jazz.", ["music", "acclaimed"])]
    bigger = catalogue.extended(new)
    model.add_items(new, bigger)
    loaded.add_items(new, bigger)
    assert np.array_equal(model.vectors[-1], loaded.vectors[-1])
    assert model.similar_items(0, 3)[0].tolist() == loaded.similar_items(0, 3)[0].tolist()


def test_learned_content_settings_with_typos_or_out_of_range_are_refused():
    with pytest.raises(RecommenderError, match="did you mean 'epochs'"):
        make_model("content", {"learn": True, "epoch": 5}, WordsEmbedder())
    with pytest.raises(ValueError, match="input_fraction"):
        make_model("content", {"learn": True, "input_fraction": 1.0}, WordsEmbedder())
    catalogue, _ = _acclaimed_world()
    lonely = InteractionMatrix.build(
        Interactions.from_events([Event("u", "space-0", "click", 1.0)]), catalogue.ids
    )
    with pytest.raises(RecommenderError, match="needs interactions"):
        make_model("content", LEARNED, WordsEmbedder()).fit(lonely, catalogue)
