"""The Recommender page under AppTest, on the demo data with a hashed-words embedder (no
model is loaded)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = str(Path(__file__).resolve().parents[2])


def make_recommender(store):
    """The page's recommender for tests: the demo data, trained once per LEPTON_HOME."""
    from apps.common.paths import data_home
    from apps.recommender.demo import demo_folder
    from apps.recommender.service import TrainedRecommender
    from tests.unit.test_recommender import WordsEmbedder

    embedder = WordsEmbedder()
    folder = demo_folder(embedder, data_home() / "rec-test")
    return TrainedRecommender(folder, store=store, embedder=embedder)


def _script(root: str) -> None:
    import sys

    sys.path.insert(0, root)
    from apps import navigation

    navigation.run(default="recommender")


@pytest.fixture()
def app(studio_home, monkeypatch) -> AppTest:
    monkeypatch.setenv("LEPTON_REC_FACTORY", "tests.apps.test_recommender_page:make_recommender")
    page = AppTest.from_function(_script, args=(ROOT,), default_timeout=120)
    page.run()
    assert not page.exception, [e.message for e in page.exception]
    return page


def _shown(app: AppTest) -> str:
    return "\n".join(str(e.value) for kind in ("markdown", "caption") for e in getattr(app, kind))


def _titles(app: AppTest) -> list[str]:
    return [
        m.value.split("** ·")[0].split(". ", 1)[1] for m in app.markdown if m.value.startswith("**")
    ]


def test_a_new_user_gets_popular_items_then_items_of_their_interests(app):
    assert app.title[0].value == "Recommender"
    assert "You are new here" in _shown(app)
    app.multiselect(key="rec_topics").set_value(["Space"]).run()
    assert not app.exception
    cards = [m.value for m in app.markdown if m.value.startswith("**")]
    assert sum("Space" in c for c in cards) >= 6, cards
    assert "Matches your interest in 'Space'" in _shown(app)


def test_dismissing_an_item_changes_the_list_at_once(app):
    app.selectbox(key="rec_user").set_value("u01").run()
    before = _titles(app)
    assert len(before) == 8
    assert "liked" in _shown(app)  # the reasons name what u01 liked
    first = next(b for b in app.button if b.key and b.key.startswith("rec_dismiss_"))
    first.click().run()
    assert not app.exception
    after = _titles(app)
    assert before[0] not in after and len(after) == 8


def test_similar_items_and_the_evaluation_tab(app):
    app.selectbox(key="rec_item").set_value("Jazz Standards Songbook [demo-031]").run()
    assert not app.exception
    frames = app.dataframe
    assert frames and len(frames[0].value) == 8
    assert app.info or any("MovieLens-100K" in c.value for c in app.caption)


def test_uploading_a_catalogue_trains_on_it_and_a_huge_one_is_refused(app):
    rows = (
        ["id,title,description,categories"]
        + [f"p{n},Pan {n},A cast iron pan for searing and baking,Kitchen" for n in range(5)]
        + [f"b{n},Bike {n},A gravel bike for long rides on rough roads,Cycling" for n in range(5)]
    )
    huge = "\n".join(f'{{"id": "x{n}", "title": "X"}}' for n in range(6000)).encode()
    app.file_uploader(key="rec_upload_catalogue").set_value(("big.jsonl", huge, "application/json"))
    app.run()
    app.button(key="rec_train").click().run()
    assert not app.exception
    assert any("about 6,000 items" in e.value and "lepton-rec train" in e.value for e in app.error)
    catalogue = ("shop.csv", "\n".join(rows).encode(), "text/csv")
    app.file_uploader(key="rec_upload_catalogue").set_value(catalogue).run()
    app.button(key="rec_train").click().run()
    assert not app.exception, [e.message for e in app.exception]
    assert "10 items, 0 users, model **content**" in _shown(app)
    app.multiselect(key="rec_topics").set_value(["Cycling"]).run()
    cards = [m.value for m in app.markdown if m.value.startswith("**")]
    assert all("Cycling" in c for c in cards[:5]), cards
    app.button(key="rec_reset").click().run()
    assert "120 items" in _shown(app)
