"""Typed relations between the companies and people of a sentence: the relation model and patterns.

Two sources, each giving a type of :data:`kg.schema.RELATION_TYPES` with a confidence:

- **the model**: the core's relation task (R-BERT on MiniLM, :mod:`lepton_nlp.tasks.relation`)
  trained on the project's relation set (``data/finance/relations/``; shipped as
  ``data/models/finance-relations``). Every pair of ORG/PERSON entities of a sentence is
  asked, in text order; a directed label (``acquires(e2,e1)``) says which entity is the
  subject. Its confidence is the model's probability.
- **dependency patterns** on spaCy's parse (:func:`pattern_relations`): a verb or noun with a
  known meaning and its subject and object ("Northwind agreed to *acquire* Contoso",
  "Contoso was *bought by* Northwind", "X, a *subsidiary of* Y", "Jane Okafor, *chief
  executive of* Northwind"). Its confidence is the fixed :data:`PATTERN_CONFIDENCE`.

:func:`combine` merges them per pair: the pattern's relation where a pattern fires (they
are rarely wrong), else the model's at or above its threshold (the order was chosen on the
relation set's validation part); a relation both find gets the higher confidence and both
sources. ``bench/finance_relations.py`` scores the model, the patterns and the two together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lepton_nlp.evaluation.relation import relation_type

__all__ = [
    "PAIR_TYPES",
    "PATTERN_CONFIDENCE",
    "FoundRelation",
    "combine",
    "model_inputs",
    "pattern_relations",
    "read_prediction",
]

#: Entity types paired for relations (the relation set's arguments).
PAIR_TYPES = frozenset({"ORG", "PERSON"})

#: The confidence a pattern match carries: patterns have no probability of their own.
PATTERN_CONFIDENCE = 0.6

_SYMMETRIC = frozenset({"partners_with", "competes_with"})


@dataclass(frozen=True)
class FoundRelation:
    """A relation between entity ``head`` and entity ``tail`` (indices into the sentence's
    entities), read head -> tail."""

    head: int
    tail: int
    type: str
    confidence: float
    source: str


# --- the model ------------------------------------------------------------------------------


def model_inputs(
    text: str, entities: Sequence[Any], max_entities: int = 8
) -> list[tuple[int, int, dict]]:
    """Relation inputs for every ORG/PERSON pair of a sentence, in text order.

    Args:
        text: the sentence.
        entities: its entities (``start``, ``end``, ``type``), in text order.
        max_entities: pair only the first this many named entities (a sentence listing
            twenty companies gives no relation worth 190 model calls).

    Returns:
        ``(i, j, input)``: the entity indices (i before j) and the task's input.
    """
    named = [i for i, e in enumerate(entities) if e.type in PAIR_TYPES][:max_entities]
    out = []
    for a, i in enumerate(named):
        for j in named[a + 1 :]:
            first, second = entities[i], entities[j]
            if first.end > second.start:
                continue
            if first.type == "PERSON" and second.type == "PERSON":
                continue  # no relation type links two people
            out.append(
                (
                    i,
                    j,
                    {
                        "text": text,
                        "head": {"start": first.start, "end": first.end, "type": first.type},
                        "tail": {"start": second.start, "end": second.end, "type": second.type},
                    },
                )
            )
    return out


def read_prediction(i: int, j: int, prediction: dict) -> FoundRelation | None:
    """The relation a prediction for the pair (i, j) in text order states; None for ``other``."""
    kind = relation_type(prediction["label"])
    if kind == "other":
        return None
    reverse = prediction["label"].endswith("(e2,e1)")
    head, tail = (j, i) if reverse else (i, j)
    return FoundRelation(head, tail, kind, float(prediction["score"]), "model")


# --- dependency patterns --------------------------------------------------------------------

#: Verb lemma (with particle) -> relation; the subject is the relation's head.
VERBS = {
    "acquire": "acquires",
    "buy": "acquires",
    "purchase": "acquires",
    "take over": "acquires",
    "snap up": "acquires",
    "absorb": "acquires",
    "invest": "invests_in",
    "back": "invests_in",
    "fund": "invests_in",
    "finance": "invests_in",
    "partner": "partners_with",
    "team up": "partners_with",
    "collaborate": "partners_with",
    "ally": "partners_with",
    "compete": "competes_with",
    "rival": "competes_with",
    "supply": "supplies",
    "provide": "supplies",
    "deliver": "supplies",
    "ship": "supplies",
    "sue": "sues",
    "own": "owns",  # read as the object being subsidiary_of the subject
    "lead": "leads",  # a person leading a company: executive_of
    "run": "leads",
    "head": "leads",
}
#: Prepositions that carry a verb's object ("invest in", "partner with", "compete against").
OBJECT_PREPS = frozenset({"in", "with", "against", "to", "into"})
#: Nouns of a relation: "X's acquisition of Y", "lawsuit against Y", "partnership with Y".
NOUNS = {
    "acquisition": "acquires",
    "takeover": "acquires",
    "purchase": "acquires",
    "investment": "invests_in",
    "stake": "invests_in",
    "partnership": "partners_with",
    "alliance": "partners_with",
    "lawsuit": "sues",
    "suit": "sues",
    "backing": "invests_in",
    "funding": "invests_in",
    "venture": "partners_with",
}
#: "X is the main supplier of steel to Y": nouns whose subject supplies the "to"/"for" object.
SUPPLIER_NOUNS = frozenset({"supplier", "vendor", "provider"})
#: "X, a subsidiary of Y": nouns whose "of" object is the parent.
PARENT_NOUNS = frozenset({"subsidiary", "unit", "division", "arm", "affiliate"})
#: "P, chief executive of Y", "Y CEO P": roles of an executive.
ROLE_NOUNS = frozenset(
    {
        "executive",
        "ceo",
        "chairman",
        "chairwoman",
        "chair",
        "president",
        "officer",
        "cfo",
        "coo",
        "cto",
        "director",
        "founder",
        "head",
        "boss",
    }
)
_NEGATIONS = frozenset({"not", "never", "n't", "no"})
_NEGATING_HEADS = frozenset(
    {"abandon", "deny", "drop", "reject", "end", "scrap", "cancel", "rule", "call"}
)
#: Arcs followed up from a relation word to a verb that may negate it ("abandoned its plan
#: to acquire").
_NEGATION_PATH = frozenset({"xcomp", "ccomp", "pobj", "pcomp", "prep", "acl", "relcl", "dobj"})


def _entity_at(token_map: dict[int, int], token: Any) -> int | None:
    """The entity a token belongs to, or names as a compound ("the Northwind deal"); not a
    possessive ("Northwind's unit" is not Northwind)."""
    if token.i in token_map:
        return token_map[token.i]
    for child in token.children:
        if child.dep_ == "compound" and child.i in token_map:
            return token_map[child.i]
    return None


#: Nouns that stand for their "of" object ("all shares of X", "the venture arm of X").
_PART_NOUNS = frozenset(
    {"share", "shares", "stake", "arm", "unit", "board", "shareholder", "parent", "owner", "all"}
)


def _noun_entity(token_map: dict[int, int], token: Any) -> int | None:
    entity = _entity_at(token_map, token)
    if entity is None and token.lemma_.lower() in _PART_NOUNS:
        for prep in token.children:
            if prep.dep_ == "prep" and prep.lower_ == "of":
                for pobj in prep.children:
                    if pobj.dep_ == "pobj":
                        entity = _entity_at(token_map, pobj)
    return entity


def _with_conjuncts(token_map: dict[int, int], token: Any) -> list[int]:
    found = []
    for t in (token, *token.conjuncts):
        entity = _noun_entity(token_map, t)
        if entity is not None and entity not in found:
            found.append(entity)
    return found


def _prep_objects(token: Any, token_map: dict[int, int], preps: tuple[str, ...]) -> list[int]:
    """Entities in the objects of a token's prepositions ``preps`` (conjuncts included)."""
    return [
        e
        for c in token.children
        if c.dep_ in ("prep", "agent") and c.lower_ in preps
        for p in c.children
        if p.dep_ == "pobj"
        for e in _with_conjuncts(token_map, p)
    ]


def _negated(verb: Any) -> bool:
    if any(c.dep_ == "neg" or c.lower_ in _NEGATIONS for c in verb.children):
        return True
    head = verb
    while head.dep_ in _NEGATION_PATH and head.head is not head:
        head = head.head
        if head.lemma_.lower() in _NEGATING_HEADS:
            return True
    return False


#: Arcs followed up from a verb or noun to the clause whose subject acts: "agreed *to
#: acquire*" (xcomp), "struck a deal *to take over*" (acl, dobj), "completed its *takeover*"
#: (dobj), conjoined and adverbial clauses.
_UP_DEPS = frozenset({"xcomp", "conj", "advcl", "acl", "relcl", "dobj", "pobj", "prep", "attr"})


def _subjects(verb: Any, token_map: dict[int, int]) -> list[int]:
    """Active subjects of a verb (or a relation noun), through the arcs of :data:`_UP_DEPS`."""
    node = verb
    for _ in range(5):
        subjects = [c for c in node.children if c.dep_ in ("nsubj",)]
        if subjects:
            return [e for s in subjects for e in _with_conjuncts(token_map, s)]
        if node.dep_ in _UP_DEPS and node.head is not node:
            node = node.head
        else:
            break
    return []


def _verb_key(verb: Any) -> str:
    lemma = verb.lemma_.lower()
    particle = next((c.lower_ for c in verb.children if c.dep_ == "prt"), "")
    return f"{lemma} {particle}" if particle and f"{lemma} {particle}" in VERBS else lemma


def pattern_relations(sentence: Any, entities: Sequence[Any]) -> list[FoundRelation]:
    """Relations that dependency patterns find between the ORG/PERSON entities of a sentence.

    Args:
        sentence: the spaCy ``Span`` of the sentence.
        entities: its entities (``start``, ``end``, ``type``), offsets in the stripped
            sentence text.

    Returns:
        One relation per (head, tail, type) found, at :data:`PATTERN_CONFIDENCE`.
    """
    text = sentence.text
    base = sentence.start_char + (len(text) - len(text.lstrip()))
    token_map: dict[int, int] = {}
    for index, entity in enumerate(entities):
        if entity.type not in PAIR_TYPES:
            continue
        for token in sentence:
            if base + entity.start <= token.idx < base + entity.end:
                token_map[token.i] = index
    if len({v for v in token_map.values()}) < 2:
        return []
    found: dict[tuple[int, int, str], FoundRelation] = {}

    def add(head: int, tail: int, kind: str) -> None:
        if head == tail:
            return
        first, second = entities[head], entities[tail]
        if kind == "executive_of" and (first.type, second.type) != ("PERSON", "ORG"):
            return
        if kind != "executive_of" and "PERSON" in (first.type, second.type):
            return
        if kind in _SYMMETRIC and head > tail:
            head, tail = tail, head
        found.setdefault(
            (head, tail, kind), FoundRelation(head, tail, kind, PATTERN_CONFIDENCE, "pattern")
        )

    for token in sentence:
        lemma = token.lemma_.lower()
        if token.pos_ in ("VERB", "AUX") or token.dep_ == "ROOT":
            key = _verb_key(token)
            kind = VERBS.get(key)
            if kind is None or _negated(token):
                continue
            passive = any(c.dep_ in ("nsubjpass", "auxpass") for c in token.children)
            if passive:
                objects = [
                    e
                    for c in token.children
                    if c.dep_ == "nsubjpass"
                    for e in _with_conjuncts(token_map, c)
                ]
                subjects = [
                    e
                    for c in token.children
                    if c.dep_ == "agent"
                    for p in c.children
                    if p.dep_ == "pobj"
                    for e in _with_conjuncts(token_map, p)
                ]
                if not objects and token.dep_ in ("relcl", "acl"):
                    # "Contoso, which is owned by Northwind" / "Contoso, acquired by Northwind"
                    objects = _with_conjuncts(token_map, token.head)
            else:
                subjects = _subjects(token, token_map)
                objects = [
                    e
                    for c in token.children
                    if c.dep_ in ("dobj", "attr")
                    for e in _with_conjuncts(token_map, c)
                ]
                objects += [
                    e
                    for c in token.children
                    if c.dep_ in ("prep", "dative") and c.lower_ in OBJECT_PREPS
                    for p in c.children
                    if p.dep_ == "pobj"
                    for e in _with_conjuncts(token_map, p)
                ]
                if not objects and token.dep_ == "relcl":
                    # "Contoso, which Northwind bought last year, ...": the noun it describes
                    objects = _with_conjuncts(token_map, token.head)
            for s in subjects:
                for o in objects:
                    if kind == "owns":
                        add(o, s, "subsidiary_of")
                    elif kind == "leads":
                        add(s, o, "executive_of")
                    else:
                        add(s, o, kind)
            if kind in _SYMMETRIC and len(subjects) > 1 and not objects:
                # "Northwind and Contoso partnered on ..." / "... compete in ..."
                for a in subjects:
                    for b in subjects:
                        if a < b:
                            add(a, b, kind)
        elif token.pos_ in ("NOUN", "PROPN"):
            of_objects = [
                e
                for c in token.children
                if c.dep_ == "prep" and c.lower_ in ("of", "in", "with", "against")
                for p in c.children
                if p.dep_ == "pobj"
                for e in _with_conjuncts(token_map, p)
            ]
            if lemma in NOUNS and of_objects:
                owners = [
                    e
                    for c in token.children
                    if c.dep_ == "poss"
                    for e in _with_conjuncts(token_map, c)
                ]
                owners += [
                    e
                    for c in token.children
                    if c.dep_ == "prep" and c.lower_ == "by"
                    for p in c.children
                    if p.dep_ == "pobj"
                    for e in _with_conjuncts(token_map, p)
                ]
                if not owners:  # "Northwind completed its takeover of Contoso"
                    owners = _subjects(token, token_map)
                for s in owners:
                    for o in of_objects:
                        add(s, o, NOUNS[lemma])
            if lemma in NOUNS:
                actors = _prep_objects(token, token_map, ("from",))
                if actors:  # "Contoso secured backing from Northwind"
                    for s in actors:
                        for o in _subjects(token, token_map):
                            add(s, o, NOUNS[lemma])
                if NOUNS[lemma] == "partners_with":  # "a joint venture between X and Y"
                    sides = _prep_objects(token, token_map, ("between",))
                    for a in sides:
                        for b in sides:
                            if a < b:
                                add(a, b, "partners_with")
            if lemma in SUPPLIER_NOUNS:
                for s in _subjects(token, token_map):
                    for o in _prep_objects(token, token_map, ("to", "for", "of")):
                        add(s, o, "supplies")
            if lemma in ROLE_NOUNS and token.dep_ in ("oprd", "attr", "pobj", "dobj"):
                # "Jane Okafor was named chief executive of Northwind", "Northwind appointed
                # Jane Okafor as chief financial officer": the verb's arguments
                verb = token.head.head if token.dep_ == "pobj" else token.head
                people = [
                    e
                    for c in verb.children
                    if c.dep_ in ("nsubj", "nsubjpass", "dobj")
                    for e in _with_conjuncts(token_map, c)
                ]
                companies = _prep_objects(token, token_map, ("of", "at")) or people
                for person in people:
                    for company in companies:
                        add(person, company, "executive_of")
            appositive_of = token.dep_ == "appos" and of_objects
            if appositive_of and lemma in PARENT_NOUNS:
                for s in _with_conjuncts(token_map, token.head):
                    for o in of_objects:
                        add(s, o, "subsidiary_of")
            if appositive_of and lemma in ROLE_NOUNS:
                for s in _with_conjuncts(token_map, token.head):
                    for o in of_objects:
                        add(s, o, "executive_of")
        # "Northwind CEO Jane Okafor", "Northwind's energy subsidiary Contoso": a role noun
        # in front of a name, the other name before it.
        if (lemma in ROLE_NOUNS or lemma in PARENT_NOUNS) and token.dep_ in ("compound", "nmod"):
            named = _entity_at(token_map, token.head)
            before = [
                _entity_at(token_map, c)
                for node in (token, token.head)
                for c in node.children
                if c.dep_ in ("compound", "poss", "nmod") and c.i < token.i
            ]
            before = [e for e in before if e is not None and e != named]
            if named is not None and before:
                kind = "executive_of" if lemma in ROLE_NOUNS else "subsidiary_of"
                add(named, before[0], kind)
        if lemma in ("rival", "competitor") and token.dep_ == "appos":
            for a in _with_conjuncts(token_map, token.head):
                for b in _prep_objects(token, token_map, ("of",)):
                    add(a, b, "competes_with")
        if lemma in NOUNS and NOUNS[lemma] == "partners_with" and token.dep_ == "dobj":
            # "Northwind and Contoso formed a joint venture"
            sides = _subjects(token, token_map)
            for a in sides:
                for b in sides:
                    if a < b:
                        add(a, b, "partners_with")
    return list(found.values())


#: Which source wins a pair both give different relations for (``combine``'s ``prefer``).
PREFER = ("pattern", "model")


def combine(
    model: Sequence[FoundRelation],
    patterns: Sequence[FoundRelation],
    threshold: float = 0.5,
    prefer: str = "pattern",
) -> list[FoundRelation]:
    """One relation per entity pair from the model's (at or above ``threshold``) and the
    patterns' relations.

    Args:
        model: the model's relations.
        patterns: the patterns' relations.
        threshold: the model's relations below this probability are dropped.
        prefer: the source that wins a pair both give different relations for: ``pattern``
            (the patterns are rarely wrong but find few; chosen on the relation set's
            validation part, ``bench/finance_relations.py``) or ``model``.

    Where the two agree on the pair and type, the relation keeps the higher confidence and
    names both sources (``model+pattern``).
    """
    if prefer not in PREFER:
        raise ValueError(f"prefer={prefer!r}; choose one of {', '.join(PREFER)}.")
    kept = [r for r in model if r.confidence >= threshold]
    first, second = (patterns, kept) if prefer == "pattern" else (kept, patterns)
    out: dict[frozenset, FoundRelation] = {}
    for relation in first:
        out.setdefault(frozenset((relation.head, relation.tail)), relation)
    for relation in second:
        pair = frozenset((relation.head, relation.tail))
        current = out.get(pair)
        if current is None:
            out[pair] = relation
        elif (current.type, current.head, current.tail) == (
            relation.type,
            relation.head,
            relation.tail,
        ) or (current.type == relation.type and current.type in _SYMMETRIC):
            out[pair] = FoundRelation(
                current.head,
                current.tail,
                current.type,
                max(current.confidence, relation.confidence),
                "model+pattern",
            )
    return sorted(out.values(), key=lambda r: (min(r.head, r.tail), max(r.head, r.tail)))
