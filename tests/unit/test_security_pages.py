"""No text from outside is rendered as HTML in any page: a static check of every place a page
lets HTML through, and pages rendered (AppTest) with script and image payloads."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
PAYLOAD = (
    "<script>alert(1)</script><img src=x onerror=alert(2)> "
    "![pixel](http://attacker.example/p.png) [click](javascript:alert(3))"
)
#: Functions whose result is HTML safe to render: they escape what they are given.
# Builders that escape every text they put in their HTML, each tested for it: the finance
# page's in tests/unit/test_finance_views.py.
SAFE_HTML_BUILDERS = {
    "escape",
    "escape_markdown",
    "highlight_entities",
    "safe_link",
    "article_html",
    "evidence_html",
}


# --- static: every place HTML is let through ----------------------------------------------------


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def _safe(node: ast.AST) -> bool:
    """An expression whose every outside part went through an escaping function."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.Call):
        return _name(node.func) in SAFE_HTML_BUILDERS
    if isinstance(node, ast.JoinedStr):
        return all(
            _safe(v.value) if isinstance(v, ast.FormattedValue) else True for v in node.values
        )
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _safe(node.left) and _safe(node.right)
    return False


def unsafe_html_calls(source: str, filename: str = "<page>") -> list[str]:
    """``file:line`` of each call that renders HTML from something not known to be escaped."""
    found = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if not isinstance(node, ast.Call):
            continue
        html_flag = next((k for k in node.keywords if k.arg == "unsafe_allow_html"), None)
        renders_html = _name(node.func) == "html" and _name(getattr(node.func, "value", None)) in (
            "st",
            "components",
            "v1",
        )
        if html_flag is None and not renders_html:
            continue
        if html_flag is not None and isinstance(html_flag.value, ast.Constant):
            if html_flag.value.value is False:
                continue
        elif html_flag is not None:  # a flag computed at run time cannot be checked here
            found.append(f"{filename}:{node.lineno} (unsafe_allow_html not a constant)")
            continue
        body = (
            node.args[0]
            if node.args
            else next((k.value for k in node.keywords if k.arg in ("body", "html")), None)
        )
        if body is None or not _safe(body):
            found.append(f"{filename}:{node.lineno}")
    return found


def test_every_page_lets_only_escaped_text_through_as_html():
    pages = sorted((ROOT / "apps").rglob("*.py"))
    assert len(pages) > 20
    found = []
    for path in pages:
        found += unsafe_html_calls(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    assert found == [], "HTML built from unescaped text (escape it with html.escape): " + str(found)


def test_the_static_check_catches_unescaped_html():
    bad = (
        "import streamlit as st\n"
        "st.markdown(f'<b>{name}</b>', unsafe_allow_html=True)\n"
        "st.html(user_text)\n"
        "st.markdown(text, unsafe_allow_html=allow)\n"
        "st.caption('<i>' + title + '</i>', unsafe_allow_html=True)\n"
    )
    good = (
        "import html\nimport streamlit as st\n"
        "st.markdown(f'<b>{html.escape(name)}</b>', unsafe_allow_html=True)\n"
        "st.markdown(highlight_entities(text, spans), unsafe_allow_html=True)\n"
        "st.markdown(text)\n"
        "st.markdown(text, unsafe_allow_html=False)\n"
    )
    assert [line.split(":")[1].split()[0] for line in unsafe_html_calls(bad)] == [
        "2",
        "3",
        "4",
        "5",
    ]
    assert unsafe_html_calls(good) == []


def test_highlighting_escapes_the_text_and_the_labels():
    from apps.studio.reports import highlight_entities

    text = f"Paid {PAYLOAD} today"
    start = text.index("<script>")
    shown = highlight_entities(
        text,
        [
            {"label": "<img src=y onerror=alert(4)>", "start": start, "end": start + 25},
            {"label": "ORG", "start": 0, "end": 4},
        ],
    )
    assert "<script" not in shown and "<img" not in shown
    assert "&lt;script&gt;" in shown and "&lt;img src=y onerror=alert(4)&gt;" in shown
    assert shown.count("<mark") == 2  # the markup the page means is still there


# --- rendered pages ----------------------------------------------------------------------------


def _check_rendered(app: AppTest) -> list[str]:
    """Every text element's body; fails on one that renders HTML holding the payload raw."""
    bodies = []
    for kind in ("markdown", "caption", "info", "warning", "error", "success"):
        for element in getattr(app, kind):
            body = str(element.value)
            bodies.append(body)
            if getattr(element, "allow_html", False):
                assert "<script" not in body and "<img" not in body, body
    return bodies


def _support_page(root: str) -> None:
    import sys

    sys.path.insert(0, root)
    from apps import navigation

    navigation.run(default="support")


def test_support_page_shows_a_customers_payload_as_text(studio_home, monkeypatch):
    from apps.common.database import database_url
    from apps.support.store import SupportStore
    from tests.unit.support_standins import make_bot

    # A customer who reached the API with a payload as their id and message.
    sender = "<img src=x onerror=alert(5)>![p](http://attacker.example/q.png)"
    make_bot(SupportStore(database_url())).reply(sender, "Can I speak to a human please?")
    monkeypatch.setenv("LEPTON_SUPPORT_BOT_FACTORY", "tests.unit.support_standins:make_bot")
    app = AppTest.from_function(_support_page, args=(str(ROOT),), default_timeout=60)
    app.run()
    assert not app.exception, [e.message for e in app.exception]
    app.chat_input(key="support_input").set_value(PAYLOAD).run()
    assert not app.exception
    bodies = _check_rendered(app)
    # The customer's turn: escaped, Markdown included (no image fetched, no link).
    turn = next(b for b in bodies if "script" in b and "Answer to" not in b)
    assert "&lt;script&gt;" in turn and "![" not in turn and "](javascript" not in turn
    # The agents' view of the handoff: the sender id, from the API, is text too.
    header = next(b for b in bodies if "onerror" in b and b.startswith("**#"))
    assert "<img" not in header and "&lt;img" in header and "![" not in header


def _try_output(root: str, task: str, item, output: dict) -> None:
    import sys

    sys.path.insert(0, root)
    from apps.studio.pages.try_model import _show

    _show(task, item, output)


@pytest.mark.parametrize(
    ("task", "item", "output"),
    [
        (
            "ner",
            PAYLOAD,
            {
                "text": PAYLOAD,
                "entities": [{"label": "<b>PER</b>", "start": 0, "end": 8, "text": "<script>"}],
                "tags": [],
            },
        ),
        (
            "qa",
            {"question": "q", "context": PAYLOAD},
            {"answer": "<script>", "start": 0, "end": 8, "score": 0.9, "no_answer": False},
        ),
        ("summarization", PAYLOAD, {"generated_text": PAYLOAD}),
    ],
)
def test_studio_try_page_escapes_inputs_and_outputs(task, item, output):
    app = AppTest.from_function(
        _try_output, args=(str(ROOT), task, item, output), default_timeout=60
    )
    app.run()
    assert not app.exception, [e.message for e in app.exception]
    html_bodies = [str(m.value) for m in app.markdown if m.allow_html]
    assert html_bodies, "the page rendered no HTML: the check would prove nothing"
    _check_rendered(app)
    assert any("&lt;script&gt;" in body for body in html_bodies)
