"""The support bot's answers: FAQ retrieval, policy QA fallback, thresholds, the FAQ format.

An embedder stand-in (hashed bag of words) and a QA stand-in keep these tests free of models;
``tests/integration/test_support_answers_minilm.py`` runs the packaged MiniLM on the shipped FAQ.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from apps.support.answers import (
    Answer,
    AnswerFinder,
    FaqEntry,
    PolicySection,
    Thresholds,
    choose_threshold,
    fit_thresholds,
    load_faq,
    load_policies,
    slugify,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import support_faq  # bench/ is a folder of scripts, not a package


class HashedBagOfWords:
    """``encode(texts, normalize=True)``: words hashed into 512 buckets, unit length."""

    model_name = "hashed-bag-of-words"

    def encode(self, texts, normalize=True):
        out = np.zeros((len(texts), 512), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"[a-z0-9]+", text.lower()):
                out[i, int(hashlib.md5(word.encode()).hexdigest(), 16) % 512] += 1.0
        if normalize:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)
        return out


class KeywordReader:
    """A QA stand-in: answers ``span`` with ``score`` when the context contains it."""

    def __init__(self, span: str, score: float):
        self.span, self.score, self.calls = span, score, []

    def predict(self, inputs):
        inputs = list(inputs)
        self.calls.append(inputs)
        out = []
        for item in inputs:
            start = item["context"].find(self.span)
            if start < 0:
                out.append({"answer": "", "start": 0, "end": 0, "score": 0.0, "no_answer": True})
            else:
                end = start + len(self.span)
                out.append(
                    {"answer": self.span, "start": start, "end": end, "score": self.score}
                    | {"no_answer": False}
                )
        return out


FAQ = [
    FaqEntry("faq-001", "How do I activate my new card", "Scan the QR code in the app.",
             paraphrases=("activate new card how",)),
    FaqEntry("faq-002", "What is the fee for an ATM withdrawal", "Two free withdrawals a month.",
             paraphrases=("atm withdrawal fee",)),
    FaqEntry("faq-003", "How long does a bank transfer take", "Most arrive within two hours.",
             paraphrases=("bank transfer how long",)),
]  # fmt: skip
SECTIONS = [
    PolicySection(
        "cards.md",
        "replacement-cards",
        "Replacement cards",
        "A replacement card costs nothing. It arrives in 5 working days by post.",
    ),
    PolicySection("top-ups.md", "cash", "Cash", "Cash top-ups are not accepted anywhere."),
]


def finder(reader=None, faq=0.45, qa=0.5, lexical_weight=0.0):
    """The finder of most tests here: cosine scores alone (the lexical part is tested apart)."""
    return AnswerFinder(
        FAQ,
        HashedBagOfWords(),
        Thresholds(faq=faq, qa=qa),
        sections=SECTIONS,
        reader=reader,
        lexical_weight=lexical_weight,
    )


def mean_cosine(text: str, entry: FaqEntry) -> float:
    """An entry's score: the mean of the text's cosines to its question and its answer."""
    t, q, a = HashedBagOfWords().encode([text, entry.question, entry.answer])
    return float((np.dot(t, q) + np.dot(t, a)) / 2)


def test_faq_hit_returns_its_source_and_score():
    answer = finder().find("How do I activate my new card?")
    # the question word for word, an answer sharing no word with it: (1 + 0) / 2
    assert mean_cosine("How do I activate my new card?", FAQ[0]) == pytest.approx(0.5, abs=1e-6)
    assert answer == Answer(
        text="Scan the QR code in the app.",
        source="faq.jsonl#faq-001",
        score=pytest.approx(0.5, abs=1e-5),
        kind="faq",
        question="How do I activate my new card",
        matched_by="similarity",
    )
    assert answer.to_dict()["source"] == "faq.jsonl#faq-001"
    assert json.dumps(answer.to_dict())


def test_an_entry_scores_the_mean_of_its_question_and_answer_not_the_better():
    exact = FaqEntry("a", "card fee abroad", "Nothing here.")
    both = FaqEntry("b", "what is the card fee when abroad", "The card fee abroad is zero.")
    bot = AnswerFinder([exact, both], HashedBagOfWords(), Thresholds(faq=0.45), lexical_weight=0.0)
    # by the better cosine "a" would win (its question is the query word for word: 1.0)
    [[first, second]] = bot.faq_ranking(["card fee abroad"], k=2)
    assert [first[0], second[0]] == ["b", "a"]
    assert first[1] == pytest.approx(mean_cosine("card fee abroad", both), abs=1e-5)
    assert second[1] == pytest.approx(0.5, abs=1e-5)


def test_an_entry_scores_a_fifth_bm25_over_its_ceiling_by_default():
    from rank_bm25 import BM25Okapi

    from apps.support.answers import LEXICAL_WEIGHT, tokenize

    bot = AnswerFinder(FAQ, HashedBagOfWords(), Thresholds(faq=0.0))
    assert bot.lexical_weight == LEXICAL_WEIGHT == 0.2 and "BM25" in bot.scoring
    query = "atm withdrawal fee abroad"
    bm25 = BM25Okapi([tokenize(f"{e.question} {e.answer}") for e in FAQ], k1=1.5, b=0.75)
    terms = tokenize(query)
    ceiling = 2.5 * sum(bm25.idf[t] for t in set(terms) if t in bm25.idf)
    lexical = bm25.get_scores(terms) / ceiling
    assert 0 < lexical.max() <= 1
    ranked = dict(bot.faq_ranking([query], k=3)[0])
    for n, entry in enumerate(FAQ):
        expected = 0.8 * mean_cosine(query, entry) + 0.2 * lexical[n]
        assert ranked[entry.id] == pytest.approx(expected, abs=1e-5), entry.id
    # the thresholds fitted on these scores say how they were scored
    assert fit_thresholds(bot, ["weather in paris"]).details["scoring"] == bot.scoring


def test_the_lexical_score_is_zero_without_a_shared_word_and_the_weight_is_checked():
    from apps.support.answers import LexicalScorer

    scorer = LexicalScorer(
        ["card fee abroad", "bank transfer time", "lost my phone", "change my pin"]
    )
    assert scorer.scores("the weather in paris").tolist() == [0.0] * 4
    assert scorer.scores("").tolist() == [0.0] * 4
    fee = scorer.scores("card fee")
    assert 0 < fee[0] <= 1 and fee[1:].tolist() == [0.0] * 3
    with pytest.raises(ValueError, match="lexical_weight is 1.0"):
        AnswerFinder(FAQ, HashedBagOfWords(), Thresholds(faq=0.5), lexical_weight=1.0)


def test_below_faq_threshold_falls_to_policy_qa():
    reader = KeywordReader("5 working days", 0.9)
    answers = finder(reader).find_many(
        ["when does my replacement card arrive", "What is the fee for an ATM withdrawal?"]
    )
    policy, faq = answers
    assert policy.kind == "policy"
    assert policy.source == "policies/cards.md#replacement-cards"
    assert policy.span == "5 working days"
    assert policy.text == "It arrives in 5 working days by post."
    assert policy.score == pytest.approx(0.9)
    assert policy.question is None
    assert faq.kind == "faq" and faq.source == "faq.jsonl#faq-002"
    # only the question that missed the FAQ reached the reader, over its top sections
    assert [item["question"] for item in reader.calls[0]] == [
        "when does my replacement card arrive"
    ] * 2


def test_nothing_passes_gives_none():
    assert finder(KeywordReader("5 working days", 0.3)).find("replacement card arrive") is None
    assert finder(KeywordReader("not in any section", 0.99)).find("replacement card") is None
    assert finder(None).find("what is the weather") is None


def test_policy_step_waits_for_a_qa_threshold():
    reader = KeywordReader("5 working days", 0.99)
    pending = finder(reader, qa=None)
    assert pending.policy_available
    assert pending.find("replacement card arrive") is None
    assert not reader.calls


INTENT_FAQ = [
    FaqEntry("faq-010", "When will my card arrive", "Cards arrive in 5 days.", intent="card_arrival"),
    FaqEntry("faq-011", "My card has still not arrived after two weeks",
             "Order a new one in the app.", intent="card_arrival"),
    FaqEntry("faq-012", "How long does a bank transfer take", "Within two hours.",
             intent="transfer_timing"),
]  # fmt: skip


def test_the_understood_intents_entries_answer_whatever_their_score():
    bot = AnswerFinder(INTENT_FAQ, HashedBagOfWords(), Thresholds(faq=0.45), lexical_weight=0.0)
    question = "still waiting two weeks, how long does it take"
    # Searched alone, the words match the transfer entry best, and not well enough.
    assert bot.faq_ranking([question], k=1)[0][0][0] == "faq-012"
    assert bot.find(question) is None
    answer = bot.find(question, intent="card_arrival")
    assert answer.source == "faq.jsonl#faq-011" and answer.matched_by == "intent"
    assert answer.text == "Order a new one in the app."
    # its score is the chosen entry's own, as the page shows it, under the FAQ threshold
    assert answer.score == pytest.approx(mean_cosine(question, INTENT_FAQ[1]), abs=1e-5)
    assert 0 < answer.score < 0.45


def test_an_intent_without_entries_is_searched_as_before():
    bot = AnswerFinder(INTENT_FAQ, HashedBagOfWords(), Thresholds(faq=0.45), lexical_weight=0.0)
    asked = ["How long does a bank transfer take?", "what is the weather"]
    by_search = bot.find_many(asked)
    with_intents = bot.find_many(asked, ["exchange_rate", None])
    assert with_intents == by_search
    assert with_intents[0].matched_by == "similarity" and with_intents[1] is None


def test_one_intent_per_question_or_a_clear_error():
    bot = AnswerFinder(INTENT_FAQ, HashedBagOfWords(), Thresholds(faq=0.45), lexical_weight=0.0)
    with pytest.raises(ValueError, match="1 intents for 2 questions"):
        bot.find_many(["card", "transfer"], ["card_arrival"])
    assert bot.find_many([], []) == []


def test_an_intent_entry_under_the_intent_threshold_goes_on_to_the_search():
    question = "still waiting two weeks, how long does it take"
    strict = AnswerFinder(
        INTENT_FAQ, HashedBagOfWords(), Thresholds(faq=0.45, intent=0.9), lexical_weight=0.0
    )
    assert strict.find(question, intent="card_arrival") is None  # and the search finds nothing
    asked = "How long does a bank transfer take"
    # under the intent threshold, the search's own (better) match still answers
    answer = strict.find(asked, intent="card_arrival")
    assert answer.source == "faq.jsonl#faq-012" and answer.matched_by == "similarity"
    lenient = AnswerFinder(
        INTENT_FAQ, HashedBagOfWords(), Thresholds(faq=0.45, intent=0.1), lexical_weight=0.0
    )
    assert lenient.find(question, intent="card_arrival").matched_by == "intent"


def understood_as(mapping: dict[str, tuple[str | None, bool]]):
    """An ``understand_many`` stand-in: text -> (intent, out of scope)."""

    def understand(texts):
        return [
            SimpleNamespace(
                intent=mapping[t][0], out_of_scope=mapping[t][1], ambiguous=False, text=t
            )
            for t in texts
        ]

    return understand


def test_fit_chooses_the_intent_threshold_on_what_the_bot_would_route():
    faq = [
        FaqEntry("c1", "When will my card arrive", "Cards arrive in 5 days.",
                 intent="card_arrival", paraphrases=("when does my card arrive",)),
        FaqEntry("t1", "How long does a bank transfer take", "Within two hours.",
                 intent="transfer_timing", paraphrases=("bank transfer take how long",)),
    ]  # fmt: skip
    outside = ["book a table for two", "what is the weather"]
    understand = understood_as(
        {
            "when does my card arrive": ("card_arrival", False),
            # understood as the wrong intent: answering it by intent would be wrong
            "bank transfer take how long": ("card_arrival", False),
            # let through by the intent model: should be declined
            "book a table for two": ("card_arrival", False),
            # flagged out of scope: the bot never answers it by intent, so it is not counted
            "what is the weather": (None, True),
        }
    )
    bot = AnswerFinder(faq, HashedBagOfWords(), Thresholds(faq=0.5), lexical_weight=0.0)
    thresholds = fit_thresholds(bot, outside, understand=understand, intent_model="m")
    details = thresholds.details["intent"]
    assert details["model"] == "m" and details["routed_queries"] == 3
    assert details["routed_out_of_scope"] == 1 and details["routed_right_intent"] == 1
    vectors = HashedBagOfWords().encode(["when does my card arrive", "book a table for two"])
    right = bot._best_of_intent(vectors[0], "card_arrival", None)[1]
    wrong = bot._best_of_intent(vectors[1], "card_arrival", None)[1]
    assert wrong < thresholds.intent < right
    # without an intent model the intent threshold is not fitted
    assert fit_thresholds(bot, outside).intent == 0.0


def test_thresholds_keep_the_intent_threshold(tmp_path):
    path = tmp_path / "thresholds.json"
    Thresholds(faq=0.6, qa=0.9, intent=0.31, details={"model": "x"}).save(path)
    assert json.loads(path.read_text())["intent_threshold"] == 0.31
    loaded = Thresholds.load(path)
    assert (loaded.faq, loaded.intent, loaded.qa, loaded.details) == (
        0.6,
        0.31,
        0.9,
        {"model": "x"},
    )
    # a file from before the intent threshold loads as not fitted
    path.write_text(json.dumps({"faq_threshold": 0.6, "qa_threshold": None}))
    assert Thresholds.load(path).intent == 0.0


def test_empty_question_is_a_clear_error():
    with pytest.raises(ValueError, match="Question 2 of 2"):
        finder().find_many(["card", "  "])


def test_choose_threshold_picks_the_known_best():
    # answering is right for the three high scores; the 0.75 one is a wrong top match
    scores = [0.95, 0.9, 0.85, 0.75, 0.6, 0.5, 0.82]
    right = [True, True, True, False, False, False, True]
    chosen = choose_threshold(scores, right)
    assert chosen["threshold"] == pytest.approx((0.75 + 0.82) / 2)
    assert chosen["accuracy"] == 1.0
    assert (chosen["answered_right"], chosen["declined_right"], chosen["answered_wrong"]) == (
        4,
        3,
        0,
    )
    # one wrong answer above every right one: declining it costs more right answers
    chosen = choose_threshold([0.99, 0.9, 0.8, 0.3], [False, True, True, False])
    assert chosen["threshold"] == pytest.approx(0.55)
    assert chosen["accuracy"] == 0.75


def test_fit_thresholds_separates_paraphrases_from_out_of_scope():
    thresholds = fit_thresholds(
        finder(), ["what is the weather in paris", "tell me a joke about cats"]
    )
    details = thresholds.details["faq"]
    assert details["in_scope_queries"] == 3 and details["out_of_scope_queries"] == 2
    assert details["accuracy"] == 1.0
    assert 0.0 < thresholds.faq < 0.5
    assert thresholds.qa is None and "pending" in thresholds.details["qa"]["status"]
    assert thresholds.details["model"] == "hashed-bag-of-words"


def write_folder(tmp_path: Path, faq_lines: list[str]) -> Path:
    (tmp_path / "faq.jsonl").write_text("\n".join(faq_lines) + "\n", encoding="utf-8")
    (tmp_path / "out_of_scope.txt").write_text("weather in paris\ntell me a joke\n")
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "cards.md").write_text(
        "# Cards\n\nIntro.\n\n## Card retained by an ATM\n\nCall us.\n\n## PIN & codes\n\nSix digits.\n"
    )
    return tmp_path


def faq_line(i: int, entry: FaqEntry, **changes) -> str:
    record = {"id": entry.id, "question": entry.question, "answer": entry.answer}
    record |= {"paraphrases": list(entry.paraphrases), **changes}
    return json.dumps({k: v for k, v in record.items() if v is not None})


def test_from_folder_without_policy_model_uses_faq_only(tmp_path, caplog):
    folder = write_folder(tmp_path, [faq_line(i, e) for i, e in enumerate(FAQ)])
    with caplog.at_level(logging.WARNING, logger="apps.support.answers"):
        found = AnswerFinder.from_folder(
            folder, policy_qa=tmp_path / "missing-model", embedder=HashedBagOfWords()
        )
    assert not found.policy_available
    assert "not found" in caplog.text
    assert found.find("bank transfer how long").source == "faq.jsonl#faq-003"
    assert found.find("weather in paris") is None


def test_bad_faq_line_names_file_and_line(tmp_path):
    lines = [faq_line(0, FAQ[0]), faq_line(1, FAQ[1], answer=None)]
    folder = write_folder(tmp_path, lines)
    with pytest.raises(ValueError, match=r"faq\.jsonl, line 2: missing or empty field\(s\) answer"):
        AnswerFinder.from_folder(folder, policy_qa=None, embedder=HashedBagOfWords())
    (folder / "faq.jsonl").write_text(faq_line(0, FAQ[0]) + "\n{not json\n")
    with pytest.raises(ValueError, match="line 2: not valid JSON"):
        load_faq(folder / "faq.jsonl")
    (folder / "faq.jsonl").write_text(faq_line(0, FAQ[0]) + "\n" + faq_line(0, FAQ[0]) + "\n")
    with pytest.raises(ValueError, match="line 2: id 'faq-001' already used"):
        load_faq(folder / "faq.jsonl")


def test_policy_sections_and_slugs(tmp_path):
    write_folder(tmp_path, [faq_line(0, FAQ[0])])
    sections = load_policies(tmp_path / "policies")
    assert [s.source for s in sections] == [
        "policies/cards.md#card-retained-by-an-atm",
        "policies/cards.md#pin-codes",
    ]
    assert sections[0].text == "Call us."
    assert slugify("Card retained by an ATM") == "card-retained-by-an-atm"


def test_shipped_faq_and_policies_load():
    root = Path(__file__).resolve().parents[2] / "data" / "support"
    entries = load_faq(root / "faq.jsonl")
    sections = {s.source for s in load_policies(root / "policies")}
    assert len(entries) >= 100
    assert all(e.source in sections for e in entries)
    saved = Thresholds.load(root / "thresholds.json")
    assert 0 < saved.faq < 1 and saved.details["faq"]["in_scope_queries"] > 0


def test_bench_counts_ties_fairly():
    """A tie at the top is worth its share, not whatever the file order says."""
    two_way = [(3, 2.0), (7, 2.0), (1, 1.0)]
    assert support_faq.hit_rate(two_way, 7, k=1) == 0.5
    assert support_faq.hit_rate(two_way, 7, k=2) == 1.0
    assert support_faq.hit_rate(two_way, 1, k=2) == 0.0
    assert support_faq.hit_rate(two_way, 1, k=3) == 1.0
    assert support_faq.hit_rate(two_way, 9, k=3) == 0.0  # not retrieved at all
    assert support_faq.hit_rate([(5, 0.9), (2, 0.8)], 5, k=1) == 1.0
    # file order hands the tie to the lower index: 3 wins over 7 whatever came first
    assert support_faq.first_in_file([[(7, 2.0), (3, 2.0)]], [3], k=1) == 1.0
    assert support_faq.accuracy([two_way, two_way], [7, 1], k=1) == 0.25


def test_bench_bm25_ranks_the_matching_document_first():
    rankings = support_faq.bm25_rankings(
        ["card lost", "transfer fee fee", "card activate new"], ["activate my card", "fee"]
    )
    assert rankings[0][0][0] == 2 and rankings[1][0][0] == 1
    assert support_faq.tokenize("What's the ATM-fee?") == ["what", "s", "the", "atm", "fee"]


def test_bench_split_indexes_one_question_per_answer():
    rows = [
        {"Question": "q1", "Answer": "a"},
        {"Question": "q2", "Answer": "b"},
        {"Question": "q3", "Answer": "a"},
        {"Question": "q1", "Answer": "a"},
        {"Question": "q4", "Answer": "a "},
    ]
    indexed, queries = support_faq.split(rows)
    assert indexed == [("q1", "a"), ("q2", "b")]
    assert queries == [("q3", 0), ("q4", 0)]


def test_a_real_qa_artifact_reads_the_policy_sections(tmp_path, studio_artifact):
    """A tiny QA artifact through ``from_folder``: loaded, asked, and its threshold fitted."""
    artifact, _, _ = studio_artifact("qa")
    folder = write_folder(tmp_path, [faq_line(i, e) for i, e in enumerate(FAQ)])
    found = AnswerFinder.from_folder(folder, policy_qa=artifact, embedder=HashedBagOfWords())
    assert found.policy_available and found.thresholds.qa is None
    assert found.find("what happens when an atm keeps my card") is None  # threshold pending
    candidate = found.policy_candidates(["what happens when an atm keeps my card"])[0]
    assert candidate.kind == "policy" and candidate.source.startswith("policies/cards.md#")
    assert 0.0 <= candidate.score <= 1.0
    thresholds = fit_thresholds(
        found, ["weather in paris"], [("what happens when an atm keeps my card", "Call us.")]
    )
    assert thresholds.qa is not None
    assert thresholds.details["qa"]["model"] == str(artifact)
    assert thresholds.details["qa"]["n"] == 2


def test_a_policy_model_of_another_task_is_refused(tmp_path, tiny_artifact):
    folder = write_folder(tmp_path, [faq_line(i, e) for i, e in enumerate(FAQ)])
    with pytest.raises(ValueError, match="is a classification model; the policy step needs"):
        AnswerFinder.from_folder(folder, policy_qa=tiny_artifact, embedder=HashedBagOfWords())
