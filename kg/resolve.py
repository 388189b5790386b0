"""Entity resolution: mention surfaces -> canonical entity ids, the same across articles.

Rules, in the order they apply to a mention:

1. The user's alias table (`AliasTable`) wins: a surface listed there, or an ORG surface that
   reads the same once legal suffixes are dropped, or a ticker listed there, is that entity.
2. Tickers (`$NWND`, `NASDAQ:NWND`, a TICKER mention `NWND`) go to the company some article
   pairs them with ("Northwind Holdings (NWND)"; the pairing most articles make wins, ties go
   to the alphabetically first name); an unpaired ticker is its own `ticker:` entity.
3. Organisations are compared after normalising case, accents, punctuation and "&", and after
   dropping legal suffixes (Inc., Holdings, Ltd, plc, Corp., AG, SA, Group, ...), so
   "Northwind Holdings Inc." and "NORTHWIND" are one entity and "Northwind Bank" another.
   A short name written without a suffix ("Contoso") joins the longer one that extends it
   ("Contoso Pharmaceuticals"): first within its article, else across all articles seen when
   exactly one entity extends it and the alias table does not define that entity (registered
   entities take only the names listed for them: that is how "Northwind Bank" stays distinct).
   A name seen anywhere with a legal suffix ("Northwind Inc.") is a full name and stays itself.
4. People are compared by full name without honorifics (Ms, Dr, ...) and suffixes (Jr, PhD);
   a surname alone ("Okafor", "Ms Okafor") or an initial ("J. Okafor") joins the one full name
   of its article that it fits.
5. Other types (GPE, PRODUCT, ...) are compared by their normalised text.

Resolution depends only on the set of articles observed, never on their order, which is what
lets `KnowledgeGraph.add` equal a rebuild.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from os import PathLike
from pathlib import Path
from typing import Any

from kg.errors import KgError
from kg.schema import Extraction, Mention, check_entity_type

__all__ = [
    "LEGAL_SUFFIXES",
    "AliasTable",
    "EntityRef",
    "EntityResolver",
    "RegisteredEntity",
    "normalize",
    "org_key",
    "paired_ticker",
    "parse_ticker",
    "person_key",
]

# fmt: off
LEGAL_SUFFIXES: frozenset[str] = frozenset([
    "inc", "incorporated", "corp", "corporation", "co", "cos", "company", "companies", "ltd",
    "limited", "llc", "llp", "lp", "plc", "ag", "sa", "se", "nv", "bv", "gmbh", "mbh", "kgaa",
    "spa", "srl", "sarl", "sas", "ab", "asa", "oy", "oyj", "kk", "pty", "pte", "bhd", "sdn",
    "lda", "sl", "pjsc", "jsc", "ojsc", "holdings", "holding", "group", "grp",
])
# fmt: on
"""Words dropped from the end of organisation names before comparing them (after normalising:
"S.A." reads "sa", "A/S" reads "a s")."""

_SPLIT_SUFFIXES = {("a", "s"), ("s", "a"), ("a", "g"), ("n", "v"), ("b", "v"), ("s", "e")}
_HONORIFICS = frozenset(
    ["mr", "mrs", "ms", "miss", "mx", "dr", "prof", "professor", "sir", "dame", "lord", "lady"]
)
_NAME_SUFFIXES = frozenset(["jr", "sr", "ii", "iii", "iv", "phd", "md"])

_SYMBOL = r"[A-Z][A-Z0-9]{0,5}(?:[.\-][A-Z0-9]{1,2})?"
_DOLLAR_TICKER = re.compile(rf"\$({_SYMBOL})", re.IGNORECASE)
_EXCHANGE_TICKER = re.compile(rf"([A-Z][A-Za-z]{{1,9}})\s*:\s*\$?({_SYMBOL})")
_BARE_TICKER = re.compile(_SYMBOL, re.IGNORECASE)
_PAREN_TICKER = rf"\(\s*(?:[A-Z][A-Za-z]{{1,9}}\s*:\s*)?\$?({_SYMBOL})\s*\)"
_PAIRED_SURFACE = re.compile(rf"(.*?\S)\s*{_PAREN_TICKER}")
_PARENTHESISED_TICKER = re.compile(_PAREN_TICKER)
_SUFFIX_WORDS = "|".join(sorted(LEGAL_SUFFIXES, key=len, reverse=True))
_LAST_SUFFIX = re.compile(rf",?\s*\b(?i:{_SUFFIX_WORDS})\.?$")
# Pure functions of strings that every resolution pass repeats for the same names.
_cached = lru_cache(maxsize=1 << 16)


@_cached
def normalize(text: str) -> str:
    """Case-, accent- and punctuation-free form of a surface: "The Northwind Co." -> "northwind co".

    Dots and apostrophes vanish ("S.A." -> "sa"), a possessive 's goes, "&" reads "and", other
    punctuation separates words, and a leading "the" is dropped.
    """
    text = unicodedata.normalize("NFKC", text).replace("&", " and ")
    text = re.sub(r"['’`]s\b", "", text)
    text = re.sub(r"['’`.]", "", text)
    text = "".join(
        c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)
    ).casefold()
    words = re.sub(r"[\W_]+", " ", text).split()
    if len(words) > 1 and words[0] == "the":
        words = words[1:]
    return " ".join(words)


@_cached
def org_key(text: str) -> tuple[str, bool]:
    """An organisation's comparison key and whether a legal suffix was dropped from it.

    "Northwind Holdings Inc." -> ("northwind", True); "Smith & Co" -> ("smith", True);
    "Northwind Bank" -> ("northwind bank", False). A name that is only a suffix ("Group")
    is kept.
    """
    words = normalize(text).split()
    stripped = False
    while len(words) > 1:
        if words[-1] in LEGAL_SUFFIXES:
            words = words[:-1]
        elif len(words) > 2 and tuple(words[-2:]) in _SPLIT_SUFFIXES:
            words = words[:-2]
        elif stripped and words[-1] == "and":  # "Smith and Co" -> "smith"
            words = words[:-1]
        else:
            break
        stripped = True
    return " ".join(words), stripped


@_cached
def person_key(text: str) -> str:
    """A person's comparison key: "Dr. Jane Okafor Jr." -> "jane okafor"."""
    words = normalize(text).split()
    while len(words) > 1 and words[0] in _HONORIFICS:
        words = words[1:]
    while len(words) > 1 and words[-1] in _NAME_SUFFIXES:
        words = words[:-1]
    return " ".join(words)


def _slug(key: str) -> str:
    return key.replace(" ", "-") or "_"


@_cached
def parse_ticker(text: str, type: str | None = None) -> str | None:
    """The ticker symbol a surface names, or None.

    "$NWND" and "NASDAQ:NWND" (any type) and "NWND" when the mention's type is TICKER are
    tickers; symbols come back upper-case.
    """
    text = text.strip()
    if match := _DOLLAR_TICKER.fullmatch(text):
        return match.group(1).upper()
    if match := _EXCHANGE_TICKER.fullmatch(text):
        return match.group(2)
    if type == "TICKER" and _BARE_TICKER.fullmatch(text):
        return text.upper()
    return None


@_cached
def _split_paired(text: str) -> tuple[str, str | None]:
    """'Northwind Holdings (NASDAQ: NWND)' -> ('Northwind Holdings', 'NWND')."""
    if match := _PAIRED_SURFACE.fullmatch(text.strip()):
        return match.group(1), match.group(2)
    return text, None


def paired_ticker(mention: Mention) -> str | None:
    """The ticker an ORG mention is paired with in its own text or sentence, or None.

    "Northwind Holdings (NWND)", "Northwind Holdings Inc. (NASDAQ: NWND)" pair the name with
    NWND, whether the parenthesis is part of the mention or follows it in the sentence.
    """
    if mention.type != "ORG" or parse_ticker(mention.text, mention.type):
        return None
    name, symbol = _split_paired(mention.text)
    if symbol:
        return symbol
    return _paired_in_sentence(name, mention.sentence)


@_cached
def _paired_in_sentence(name: str, sentence: str) -> str | None:
    for match in _PARENTHESISED_TICKER.finditer(sentence):
        before = sentence[: match.start()].rstrip()
        while True:  # "Northwind Holdings Inc. (NWND)" pairs "Northwind Holdings" too
            start = len(before) - len(name)
            if before.endswith(name) and (start == 0 or not before[start - 1].isalnum()):
                return match.group(1)
            suffix = _LAST_SUFFIX.search(before)
            if suffix is None or suffix.start() == 0:
                break
            before = before[: suffix.start()].rstrip()
    return None


# --- the user's alias table ---------------------------------------------------------------


@dataclass(frozen=True)
class RegisteredEntity:
    """An entity the user defines, with every name it may appear under.

    Attributes:
        name: canonical display name.
        type: entity type (ORG unless said).
        aliases: other surfaces that mean this entity (exact after normalising; for ORG also
            after dropping legal suffixes).
        tickers: ticker symbols of the company.
        id: node id; derived from the name ("org:northwind-bank") when empty.
    """

    name: str
    type: str = "ORG"
    aliases: tuple[str, ...] = ()
    tickers: tuple[str, ...] = ()
    id: str = ""

    def __post_init__(self) -> None:
        where = f"alias table entry {self.name!r}"
        if not isinstance(self.name, str) or not self.name.strip():
            raise KgError(f"alias table: an entry has no name ({self.name!r}); give each a name")
        object.__setattr__(self, "name", self.name.strip())
        object.__setattr__(self, "type", check_entity_type(self.type, f"{where}: type"))
        for what in ("aliases", "tickers"):
            values = getattr(self, what)
            if isinstance(values, str) or not all(isinstance(v, str) and v.strip() for v in values):
                raise KgError(
                    f"{where}: {what} must be a list of non-empty strings, got {values!r}"
                )
        object.__setattr__(self, "aliases", tuple(dict.fromkeys(a.strip() for a in self.aliases)))
        tickers = []
        for value in self.tickers:
            symbol = parse_ticker(value, "TICKER")
            if symbol is None:
                raise KgError(f"{where}: {value!r} is not a ticker symbol (e.g. 'NWND', '$NWND')")
            tickers.append(symbol)
        object.__setattr__(self, "tickers", tuple(dict.fromkeys(tickers)))
        if not self.id:
            object.__setattr__(
                self, "id", f"{self.type.lower()}:{_slug(_key(self.name, self.type))}"
            )

    def to_dict(self) -> dict[str, Any]:
        """The mapping form `AliasTable.from_mapping` reads (under the entity's name)."""
        return {
            "type": self.type,
            "aliases": list(self.aliases),
            "tickers": list(self.tickers),
            "id": self.id,
        }


def _key(text: str, type: str) -> str:
    if type == "ORG":
        return org_key(text)[0]
    if type == "PERSON":
        return person_key(text)
    return normalize(text)


_AMBIGUOUS = object()


class AliasTable:
    """The user's entity registry: names, aliases and tickers that win over every heuristic.

    Read one from a mapping or a YAML/JSON file of the same shape::

        Northwind Holdings Inc.: [Northwind, NW Holdings]    # name: aliases (an ORG)
        Northwind Bank:                                      # name: details
          type: ORG
          aliases: [NWB]
          tickers: [NWBK]
        Jane Okafor: {type: PERSON, aliases: [J. Okafor]}
        NWH: Northwind Holdings Inc.                         # alias: name

    Raises:
        KgError: an alias listed under two entities, two entities with one id, a bad type.
    """

    def __init__(self, entities: Iterable[RegisteredEntity] = ()) -> None:
        self.entities: tuple[RegisteredEntity, ...] = tuple(entities)
        self._exact: dict[str, RegisteredEntity] = {}
        self._typed: dict[tuple[str, str], Any] = {}
        self._tickers: dict[str, RegisteredEntity] = {}
        ids: dict[str, RegisteredEntity] = {}
        for entity in self.entities:
            if entity.id in ids:
                raise KgError(
                    f"alias table: {ids[entity.id].name!r} and {entity.name!r} both get id "
                    f"{entity.id!r}; give one of them an explicit id"
                )
            ids[entity.id] = entity
            for surface in (entity.name, *entity.aliases):
                exact = normalize(surface)
                other = self._exact.setdefault(exact, entity)
                if other is not entity:
                    raise KgError(
                        f"alias table: {surface!r} is listed under both {other.name!r} and "
                        f"{entity.name!r}; keep it under one"
                    )
                typed = (entity.type, _key(surface, entity.type))
                if self._typed.get(typed, entity) is not entity:
                    self._typed[typed] = _AMBIGUOUS  # only the exact forms match then
                else:
                    self._typed[typed] = entity
            for symbol in entity.tickers:
                other = self._tickers.setdefault(symbol, entity)
                if other is not entity:
                    raise KgError(
                        f"alias table: ticker {symbol!r} is listed under both {other.name!r} "
                        f"and {entity.name!r}; keep it under one"
                    )

    def __iter__(self) -> Iterator[RegisteredEntity]:
        return iter(self.entities)

    def __len__(self) -> int:
        return len(self.entities)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AliasTable) and self.entities == other.entities

    def __hash__(self) -> int:
        return hash(self.entities)

    def __repr__(self) -> str:
        return f"AliasTable({len(self.entities)} entities)"

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> AliasTable:
        """Read the mapping form shown in the class docstring."""
        if not isinstance(data, Mapping):
            raise KgError(
                f"alias table: expected a mapping of names to aliases, got {type(data).__name__}"
            )
        entries: dict[str, dict[str, Any]] = {}
        redirects: list[tuple[str, str]] = []
        for name, value in data.items():
            if not isinstance(name, str):
                raise KgError(f"alias table: names must be strings, got {name!r}")
            if isinstance(value, str):
                redirects.append((name, value))
            elif value is None or isinstance(value, list | tuple):
                entries[name] = {"aliases": list(value or [])}
            elif isinstance(value, Mapping):
                allowed = {"type", "aliases", "tickers", "id"}
                unknown = sorted(set(value) - allowed)
                if unknown:
                    raise KgError(
                        f"alias table entry {name!r}: unknown key {unknown[0]!r}; "
                        f"use {', '.join(sorted(allowed))}"
                    )
                entries[name] = {k: list(v) if isinstance(v, list) else v for k, v in value.items()}
            else:
                raise KgError(
                    f"alias table entry {name!r}: expected a list of aliases, a mapping or a "
                    f"name, got {type(value).__name__}"
                )
        for alias, name in redirects:
            entry = entries.setdefault(name, {"aliases": []})
            entry.setdefault("aliases", []).append(alias)
        return cls(
            RegisteredEntity(
                name=name,
                type=entry.get("type", "ORG"),
                aliases=tuple(entry.get("aliases") or ()),
                tickers=tuple(entry.get("tickers") or ()),
                id=entry.get("id") or "",
            )
            for name, entry in entries.items()
        )

    @classmethod
    def from_file(cls, path: str | PathLike[str]) -> AliasTable:
        """Read a YAML (.yaml/.yml) or JSON (.json) file holding the mapping form."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise KgError(f"alias table {str(path)!r}: cannot read it ({error.strerror})") from None
        try:
            if path.suffix.lower() == ".json":
                data = json.loads(text)
            else:
                import yaml  # a core dependency; imported here as only files need it

                data = yaml.safe_load(text) or {}
        except (ValueError, Exception) as error:
            raise KgError(f"alias table {str(path)!r}: not valid YAML/JSON: {error}") from None
        try:
            return cls.from_mapping(data)
        except KgError as error:
            raise KgError(f"{path}: {error}") from None

    @classmethod
    def coerce(
        cls, value: AliasTable | Mapping[str, Any] | str | PathLike[str] | None
    ) -> AliasTable:
        """An `AliasTable` from a table, a mapping, a file path, or None (empty)."""
        if value is None:
            return cls()
        if isinstance(value, AliasTable):
            return value
        if isinstance(value, Mapping):
            return cls.from_mapping(value)
        if isinstance(value, str | PathLike):
            return cls.from_file(value)
        raise KgError(
            f"aliases: expected an AliasTable, a dict or a YAML/JSON path, got {type(value).__name__}"
        )

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Mapping form; `from_mapping(to_dict())` gives an equal table."""
        return {e.name: e.to_dict() for e in self.entities}

    def match(self, text: str, type: str) -> RegisteredEntity | None:
        """The registered entity a surface of a given type names, if any."""
        found = self._exact.get(normalize(text))
        if found is None and type in ("ORG", "PERSON"):
            found = self._typed.get((type, _key(text, type)))
        return None if found is _AMBIGUOUS else found

    def match_key(self, key: str, type: str) -> RegisteredEntity | None:
        """The registered entity whose name or alias has this comparison key, if one does."""
        found = self._exact.get(key) or self._typed.get((type, key))
        return None if found is _AMBIGUOUS else found

    def match_ticker(self, symbol: str) -> RegisteredEntity | None:
        """The registered company with this ticker, if any."""
        return self._tickers.get(symbol.upper())

    def keys(self, type: str) -> Iterator[str]:
        """Comparison keys of the registered names and aliases of one type."""
        for (kind, key), entity in self._typed.items():
            if kind == type and entity is not _AMBIGUOUS:
                yield key


# --- the resolver -------------------------------------------------------------------------


@dataclass(frozen=True)
class EntityRef:
    """What a mention resolved to.

    Attributes:
        id: node id ("org:northwind", "person:jane-okafor", "ticker:NWND", or a registered id).
        type: the entity's type (a ticker linked to its company is an ORG).
        registered: the alias-table entry, when the entity is registered.
    """

    id: str
    type: str
    registered: RegisteredEntity | None = None


@dataclass(frozen=True)
class _Observation:
    """What one article tells the resolver about all the others."""

    org_keys: frozenset[tuple[str, bool]]  # (key, written with a legal suffix)
    pairs: frozenset[tuple[str, str]]  # (ticker, org key)


@dataclass
class _State:
    """Derived from all observations; rebuilt after each change."""

    complete: set[str]
    by_first_word: dict[str, set[str]]
    ticker_target: dict[str, str]
    cache: dict[str, EntityRef] = field(default_factory=dict)


class EntityResolver:
    """Maps mentions to canonical entity ids using what all observed articles say.

    Call `observe` for every article (order does not matter; observing one twice changes
    nothing), then `resolve_article` or `resolve`.

    Args:
        aliases: the user's alias table: an `AliasTable`, a mapping, or a YAML/JSON path.
        link_prefixes: join a short organisation name to the one longer name extending it
            across articles (rule 3 of the module docstring); within an article it always is.
    """

    def __init__(
        self,
        aliases: AliasTable | Mapping[str, Any] | str | PathLike[str] | None = None,
        *,
        link_prefixes: bool = True,
    ) -> None:
        self.aliases = AliasTable.coerce(aliases)
        self.link_prefixes = bool(link_prefixes)
        self._observed: dict[str, _Observation] = {}
        self._state: _State | None = None
        self._recording: set[tuple[str, str]] | None = None

    def observe(self, extraction: Extraction) -> None:
        """Learn the organisation names and ticker pairings an article shows."""
        keys: set[tuple[str, bool]] = set()
        pairs: set[tuple[str, str]] = set()
        for mention in extraction.mentions:
            if mention.type != "ORG" or parse_ticker(mention.text, mention.type):
                continue
            key, stripped = org_key(_split_paired(mention.text)[0])
            keys.add((key, stripped))
            if symbol := paired_ticker(mention):
                pairs.add((symbol, key))
        observation = _Observation(frozenset(keys), frozenset(pairs))
        if self._observed.get(extraction.id) != observation:
            self._observed[extraction.id] = observation
            self._state = None

    def forget(self, article_id: str) -> None:
        """Drop what an article taught (before re-observing a re-scored version of it)."""
        if self._observed.pop(article_id, None) is not None:
            self._state = None

    def _derived(self) -> _State:
        if self._state is None:
            complete: set[str] = set()
            by_first: dict[str, set[str]] = defaultdict(set)
            votes: dict[str, Counter[str]] = defaultdict(Counter)
            for observation in self._observed.values():
                for key, stripped in observation.org_keys:
                    by_first[key.split(" ")[0]].add(key)
                    if stripped:
                        complete.add(key)
                for symbol, key in observation.pairs:
                    votes[symbol][key] += 1
            for key in self.aliases.keys("ORG"):
                by_first[key.split(" ")[0]].add(key)
            target = {
                symbol: min(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0]
                for symbol, counts in votes.items()
            }
            self._state = _State(complete, dict(by_first), target)
        return self._state

    # -- organisations and tickers

    @staticmethod
    def _registered(entity: RegisteredEntity) -> EntityRef:
        return EntityRef(entity.id, entity.type, entity)

    def _org(self, key: str) -> EntityRef:
        """Resolve an organisation key with no article context (rule 3, across articles)."""
        state = self._derived()
        if key in state.cache:
            return state.cache[key]
        registered = self.aliases.match_key(key, "ORG")
        if registered is not None:
            ref = self._registered(registered)
        else:
            ref = EntityRef(f"org:{_slug(key)}", "ORG")
            if self.link_prefixes and key not in state.complete:
                longer = self._extensions(key, state.by_first_word.get(key.split(" ")[0], ()))
                targets = {self._org(k) for k in longer}
                if len(targets) == 1:
                    (only,) = targets
                    if only.registered is None:
                        ref = only
        state.cache[key] = ref
        return ref

    @staticmethod
    def _extensions(key: str, candidates: Iterable[str]) -> list[str]:
        words = key.split(" ")
        return sorted(
            k
            for k in candidates
            if len(k.split(" ")) > len(words) and k.split(" ")[: len(words)] == words
        )

    def _ticker(self, symbol: str) -> EntityRef:
        registered = self.aliases.match_ticker(symbol)
        if registered is not None:
            return self._registered(registered)
        key = self._derived().ticker_target.get(symbol)
        if key is not None:
            return self._org(key)
        return EntityRef(f"ticker:{symbol}", "TICKER")

    # -- mentions

    def lookup(self, kind: str, key: str) -> EntityRef:
        """Answer one cross-article question: what an organisation key or a ticker resolves to.

        These are the only answers through which other articles change an article's
        resolution; `resolve_article(..., lookups=...)` reports the ones it asked.

        Args:
            kind: "org" (key as from `org_key`) or "ticker" (an upper-case symbol).
            key: the key or symbol.
        """
        if kind == "org":
            return self._org(key)
        if kind == "ticker":
            return self._ticker(key)
        raise KgError(f"lookup kind {kind!r}: use 'org' or 'ticker'")

    def _look(self, kind: str, key: str) -> EntityRef:
        if self._recording is not None:
            self._recording.add((kind, key))
        return self.lookup(kind, key)

    def resolve_article(
        self, extraction: Extraction, *, lookups: set[tuple[str, str]] | None = None
    ) -> tuple[EntityRef, ...]:
        """Resolve every mention of an article, using the article as context.

        Args:
            extraction: the article.
            lookups: a set that receives the (kind, key) `lookup`s the result depends on: while
                their answers stay the same, so does this article's resolution.

        Returns:
            One `EntityRef` per mention, in the order of `extraction.mentions`.
        """
        org_keys: dict[str, bool] = {}  # key -> written with a legal suffix somewhere
        person_keys = set()
        for mention in extraction.mentions:
            if parse_ticker(mention.text, mention.type):
                continue
            if mention.type == "ORG":
                key, stripped = org_key(_split_paired(mention.text)[0])
                org_keys[key] = org_keys.get(key, False) or stripped
            elif mention.type == "PERSON":
                person_keys.add(person_key(mention.text))
        self._recording = lookups
        try:
            return tuple(
                self._resolve(m.text, m.type, org_keys, person_keys) for m in extraction.mentions
            )
        finally:
            self._recording = None

    def resolve(self, text: str, type: str = "ORG") -> EntityRef:
        """Resolve one surface without article context (for look-ups by name)."""
        return self._resolve(text.strip(), check_entity_type(type, "resolve: type"), {}, set())

    def _resolve(
        self, text: str, type: str, org_keys: dict[str, bool], person_keys: set[str]
    ) -> EntityRef:
        registered = self.aliases.match(text, type)
        if registered is not None:
            return self._registered(registered)
        symbol = parse_ticker(text, type)
        if symbol is not None:
            return self._look("ticker", symbol)
        if type == "ORG":
            name = _split_paired(text)[0]
            registered = self.aliases.match(name, type)
            if registered is not None:
                return self._registered(registered)
            if text.isupper() and _BARE_TICKER.fullmatch(text):
                # "NWND" tagged ORG is the company when NWND is a known ticker
                ticker = self._look("ticker", text)
                if ticker.type != "TICKER":
                    return ticker
            key, stripped = org_key(name)
            if not stripped and not org_keys.get(key, False):
                # A short name joins the one longer name of its article that extends it,
                # unless the article also writes it in full ("Northwind Inc.").
                targets = {self._look("org", k) for k in self._extensions(key, org_keys)}
                if len(targets) == 1:
                    return targets.pop()
            return self._look("org", key)
        if type == "PERSON":
            key = person_key(text)
            linked = self._person_in_article(key, person_keys)
            if linked is not None:
                registered = self.aliases.match_key(linked, "PERSON")
                if registered is not None:
                    return self._registered(registered)
                key = linked
            return EntityRef(f"person:{_slug(key)}", "PERSON")
        return EntityRef(f"{type.lower()}:{_slug(normalize(text))}", type)

    @staticmethod
    def _person_in_article(key: str, person_keys: set[str]) -> str | None:
        words = key.split(" ")
        if len(words) == 1:
            surname, initial = words[0], ""
        elif len(words) == 2 and len(words[0]) == 1:
            initial, surname = words
        else:
            return None
        fits = {
            k
            for k in person_keys
            if len(k.split(" ")) >= 2
            and len(k.split(" ")[0]) > 1  # a full name, not another "J. Okafor"
            and k.split(" ")[-1] == surname
            and k.split(" ")[0].startswith(initial)
            and k != key
        }
        return fits.pop() if len(fits) == 1 else None
