"""The support bot's knowledge base (data/support): formats the bot and its users rely on.

FAQ lines parse with every field, cover every intent the intent model predicts, and cite policy
sections that exist; the policy QA set is SQuAD v1.1 with answers found at their offsets; the
out-of-scope and hand-off lists are clean one-message-per-line files.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SUPPORT = ROOT / "data" / "support"
POLICIES = SUPPORT / "policies"
INTENT_LABELS = ROOT / "data" / "models" / "banking77-intent" / "labels.json"
FAQ_FIELDS = {"id", "intent", "question", "answer", "source", "paraphrases"}


def slug(heading: str) -> str:
    """The README's rule: lower case, keep a-z 0-9 space and '-', spaces to '-'."""
    return re.sub(r"\s+", "-", re.sub(r"[^a-z0-9 -]", "", heading.strip().lower()))


def policy_sections(path: Path) -> dict[str, str]:
    """{section slug: section text} of one policy document."""
    sections: dict[str, str] = {}
    heading, lines = None, []
    for line in [*path.read_text(encoding="utf-8").splitlines(), "## "]:
        if line.startswith("## "):
            if heading is not None:
                key = slug(heading)
                assert key not in sections, f"{path.name}: two sections with the slug {key!r}"
                sections[key] = "\n".join(lines).strip()
            heading, lines = line[3:], []
        elif heading is not None:
            lines.append(line)
    return sections


@pytest.fixture(scope="module")
def policies() -> dict[str, dict[str, str]]:
    docs = {p.name: policy_sections(p) for p in sorted(POLICIES.glob("*.md"))}
    assert docs, f"no policy documents in {POLICIES}"
    return docs


@pytest.fixture(scope="module")
def faq() -> list[dict]:
    entries = []
    for n, line in enumerate((SUPPORT / "faq.jsonl").read_text(encoding="utf-8").splitlines(), 1):
        assert line.strip(), f"faq.jsonl line {n} is blank"
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as e:
            pytest.fail(f"faq.jsonl line {n} is not JSON: {e}")
        assert isinstance(entry, dict), f"faq.jsonl line {n} is not an object"
        entry["_line"] = n
        entries.append(entry)
    return entries


def intent_labels() -> list[str]:
    labels = json.loads(INTENT_LABELS.read_text(encoding="utf-8"))
    if isinstance(labels, dict):  # {"labels": [...]} or {"id2label": {...}}
        labels = labels.get("labels") or list(labels.get("id2label", {}).values())
    return [str(label) for label in labels]


def test_policy_documents_have_titled_sections(policies):
    for name, sections in policies.items():
        text = (POLICIES / name).read_text(encoding="utf-8")
        assert text.startswith("# "), f"{name} does not start with a '# Title' line"
        assert sections, f"{name} has no '## Section' headings"
        for key, body in sections.items():
            assert key, f"{name} has a heading with an empty slug"
            assert body, f"{name}#{key} is empty"


def test_faq_lines_have_the_required_fields(faq):
    for e in faq:
        where = f"faq.jsonl line {e['_line']}"
        assert set(e) - {"_line"} >= FAQ_FIELDS, f"{where} lacks {FAQ_FIELDS - set(e)}"
        for field in ("id", "intent", "question", "answer", "source"):
            assert isinstance(e[field], str) and e[field].strip(), f"{where}: empty {field}"
        paraphrases = e["paraphrases"]
        assert isinstance(paraphrases, list) and len(paraphrases) >= 3, (
            f"{where}: needs at least 3 paraphrases"
        )
        assert all(isinstance(p, str) and p.strip() for p in paraphrases), (
            f"{where}: empty paraphrase"
        )
        normal = [p.strip().lower() for p in paraphrases]
        assert len(set(normal)) == len(normal), f"{where}: repeated paraphrase"
        assert e["question"].strip().lower() not in normal, f"{where}: paraphrase equals question"


def test_faq_ids_are_unique(faq):
    ids = [e["id"] for e in faq]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    assert not dupes, f"duplicate FAQ ids: {dupes}"


def test_faq_covers_every_intent_of_the_intent_model(faq):
    labels = intent_labels()
    assert len(labels) == 77
    intents = {e["intent"] for e in faq}
    missing = sorted(set(labels) - intents)
    assert not missing, f"intents without an FAQ entry: {missing}"
    unknown = sorted(intents - set(labels))
    assert not unknown, f"FAQ intents the intent model does not predict: {unknown}"


def test_faq_sources_point_to_existing_sections(faq, policies):
    for e in faq:
        where = f"faq.jsonl line {e['_line']} ({e['id']})"
        doc, sep, section = e["source"].partition("#")
        assert sep and doc.startswith("policies/"), (
            f"{where}: source must be policies/<doc>.md#<slug>"
        )
        name = doc.removeprefix("policies/")
        assert name in policies, f"{where}: no document {doc}"
        assert section in policies[name], (
            f"{where}: {doc} has no section {section!r} (has {sorted(policies[name])})"
        )


def test_policy_qa_is_squad_with_answers_at_their_offsets(policies):
    data = json.loads((SUPPORT / "policy_qa.json").read_text(encoding="utf-8"))
    assert isinstance(data.get("version"), str) and data["version"]
    assert data["data"], "policy_qa.json has no articles"
    ids, questions = [], 0
    for article in data["data"]:
        title = article["title"]
        assert f"{title}.md" in policies, f"policy_qa article {title!r} has no policies/{title}.md"
        contexts = {p["context"] for p in article["paragraphs"]}
        assert contexts <= set(policies[f"{title}.md"].values()), (
            f"policy_qa {title}: a context is not the text of a section of {title}.md"
        )
        for paragraph in article["paragraphs"]:
            context = paragraph["context"]
            for qa in paragraph["qas"]:
                ids.append(qa["id"])
                questions += 1
                assert qa["question"].strip(), f"{qa['id']}: empty question"
                assert qa["answers"], f"{qa['id']}: no answers"
                for answer in qa["answers"]:
                    text, start = answer["text"], answer["answer_start"]
                    assert text.strip() and isinstance(start, int), f"{qa['id']}: bad answer"
                    assert context[start : start + len(text)] == text, (
                        f"{qa['id']}: {text!r} is not at answer_start {start}"
                    )
    assert questions >= 100
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    assert not dupes, f"duplicate policy_qa ids: {dupes}"


@pytest.mark.parametrize("name", ["out_of_scope.txt", "handoff_phrases.txt"])
def test_message_lists_are_non_empty_unique_lines(name):
    lines = (SUPPORT / name).read_text(encoding="utf-8").splitlines()
    assert len(lines) >= 20, f"{name} has only {len(lines)} lines"
    blank = [n for n, line in enumerate(lines, 1) if not line.strip()]
    assert not blank, f"{name}: blank lines {blank}"
    normal = [line.strip().lower() for line in lines]
    dupes = sorted({line for line in normal if normal.count(line) > 1})
    assert not dupes, f"{name}: repeated lines {dupes}"


def test_message_lists_do_not_overlap_each_other_or_the_faq(faq):
    out_of_scope = {
        line.strip().lower()
        for line in (SUPPORT / "out_of_scope.txt").read_text(encoding="utf-8").splitlines()
    }
    handoff = {
        line.strip().lower()
        for line in (SUPPORT / "handoff_phrases.txt").read_text(encoding="utf-8").splitlines()
    }
    faq_texts = {t.strip().lower() for e in faq for t in [e["question"], *e["paraphrases"]]}
    assert not out_of_scope & handoff, sorted(out_of_scope & handoff)
    assert not out_of_scope & faq_texts, sorted(out_of_scope & faq_texts)
    assert not handoff & faq_texts, sorted(handoff & faq_texts)
