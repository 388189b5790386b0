"""Write the finance relation set (train/validation/test JSONL) from the templates below.

python data/finance/relations/make_relations.py

Every sentence names fictional companies and people (drawn from pools below) in wording the
project wrote. A template lists its entity slots and the relations that hold between them;
every other pair of entities in the sentence is written as ``other``. Records are pairs in
text order, as the pipeline asks the model (:func:`lepton_nlp.tasks.relation.relation_pairs`):
``head`` is the earlier entity (``e1``), ``tail`` the later (``e2``), and a directed relation
says which way it reads: ``acquires(e2,e1)`` is "the later entity acquires the earlier one".
``partners_with`` and ``competes_with`` read the same both ways and carry no direction.

The split is by template *and* by name: the test part uses wordings and names that training
never saw, and the validation part (which picks the checkpoint) another set of both, so the
test figures measure wording the model has to generalise to. Fixed seed: the files are the
same on every run.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 20
DIRECTED = {"acquires", "invests_in", "supplies", "sues", "subsidiary_of", "executive_of"}

COMPANIES = [
    "Northwind Traders",
    "Contoso",
    "Fabrikam",
    "Tailspin Toys",
    "Adventure Works",
    "Litware",
    "Proseware",
    "Wingtip Toys",
    "Woodgrove Bank",
    "Coho Vineyard",
    "Alpine Ski House",
    "Fourth Coffee",
    "Lucerne Publishing",
    "Trey Research",
    "Wide World Importers",
    "VanArsdel",
    "Relecloud",
    "Humongous Insurance",
    "Brightwater Energy",
    "Kestrel Robotics",
    "Halcyon Biotech",
    "Orison Semiconductors",
    "Meridian Foods",
    "Pelican Logistics",
    "Quarry Capital",
    "Silverline Telecom",
    "Tamarind Pharma",
    "Umber Mining",
    "Vantor Motors",
    "Zephyr Cloud",
    "Ironbridge Partners",
    "Lumen Grid",
    "Cobalt Ridge Ventures",
    "Oakhurst Capital",
    "Nimbus Data",
    "Redfern Steel",
    "Sablewood Retail",
    "Tidewater Shipping",
    "Arclight Media",
    "Bramble Foods",
    "Corvid Security",
    "Driftwood Hotels",
    "Elmstead Bank",
    "Foxglove Therapeutics",
    "Granite Peak Insurance",
    "Harbor Lane Apparel",
    "Juniper Aerospace",
    "Kelpie Networks",
    "Larkspur Chemicals",
    "Mossgiel Farms",
    "Norrland Paper",
    "Ostrava Glassworks",
    "Pinecrest Software",
    "Quillon Payments",
    "Rowan Medical",
    "Saltmarsh Energy",
    "Thornbury Group",
    "Upland Batteries",
    "Verity Analytics",
    "Westmark Airlines",
    "Yarrow Health",
    "Zenith Dynamics",
    "Ashgrove Labs",
    "Blackfen Systems",
    "Cinder Pharmaceuticals",
    "Dovecote Insurance",
    "Everly Semiconductor",
    "Fernhill Brewing",
    "Glenlake Motors",
    "Hollowell Mining",
    "Inverness Robotics",
    "Jasper Cloud",
    "Kingfisher Logistics",
    "Loxley Retail",
    "Marlowe Bank",
    "Nettlefield Foods",
    "Orchard Street Capital",
    "Penrose Telecom",
]
PEOPLE = [
    "Jane Okafor",
    "Marcus Lindqvist",
    "Priya Raman",
    "Tomas Herrera",
    "Elena Petrova",
    "David Achebe",
    "Mei Tanaka",
    "Olivia Brandt",
    "Samuel Osei",
    "Hannah Kowalski",
    "Rafael Souza",
    "Aisha Rahman",
    "Lukas Meyer",
    "Grace Whitfield",
    "Ivan Novak",
    "Nadia Haddad",
    "Kenji Mori",
    "Sofia Marino",
    "Peter Vance",
    "Chloe Dubois",
    "Arjun Mehta",
    "Ingrid Solberg",
    "Felix Adeyemi",
    "Laura Castellanos",
    "Yusuf Demir",
    "Clara Johansson",
    "Daniel Mensah",
    "Rosa Lindgren",
    "Oscar Nakamura",
    "Amara Nwosu",
    "Henrik Dahl",
    "Leila Farouk",
]
MONEY = [
    "$1.2 billion",
    "$450 million",
    "EUR 300 million",
    "$75 million",
    "$2.8 billion",
    "GBP 120 million",
    "$18 million",
    "$640 million",
]
PRODUCT = [
    "electric vans",
    "cloud storage",
    "battery cells",
    "payment terminals",
    "cancer drugs",
    "wind turbines",
    "memory chips",
    "delivery drones",
    "steel coils",
    "packaging film",
    "satellite links",
    "jet engines",
]
SECTOR = [
    "retail",
    "semiconductor",
    "insurance",
    "logistics",
    "pharmaceutical",
    "energy",
    "software",
    "telecom",
]
CITY = ["Oslo", "Frankfurt", "Singapore", "Toronto", "Austin", "Lyon", "Nairobi", "Osaka"]
ISSUE = [
    "patent infringement",
    "breach of contract",
    "unpaid royalties",
    "misuse of trade secrets",
    "a failed merger",
    "false advertising",
]
DAY = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
ROLE = [
    "chief executive",
    "chief financial officer",
    "chairman",
    "president",
    "chief operating officer",
    "chief technology officer",
]

# A template: (text, relations). Slots {S} and {O} are the subject and object of the one
# relation named; {A} and {B} the two sides of a symmetric one; {X}, {Y}, {Z} further
# companies and {P}, {Q} people whose pairs are `other` unless a relation names them. For
# templates with several relations the second item lists (subject, object, relation).
T = dict[str, list]
TEMPLATES: dict[str, list] = {
    "acquires": [
        "{S} agreed to acquire {O} for {MONEY}.",
        "{S} will buy {O} in an all-cash deal valued at {MONEY}.",
        "{S} completed its takeover of {O} on {DAY}.",
        "{O} was acquired by {S} in a deal worth {MONEY}.",
        "{O} has agreed to be bought by {S}.",
        "Shareholders of {O} approved the {MONEY} sale of the company to {S}.",
        "{S} snapped up {O} to expand its {SECTOR} business.",
        "{S} has struck a deal to take over {O}.",
        "{S}'s acquisition of {O} closed on {DAY} after regulators signed off.",
        "The board of {O} accepted a takeover offer from {S}.",
        "Under the agreement, {S} will acquire all outstanding shares of {O}.",
        "{S} said on {DAY} it had bought {O}, a maker of {PRODUCT}.",
        "{O}, which {S} bought last year, now makes most of its {PRODUCT}.",
        "Regulators cleared the purchase of {O} by {S}.",
        "{S} is buying {O} for {MONEY} in cash and stock.",
        "In {CITY}, {S} finalised the purchase of rival {O}.",
    ],
    "invests_in": [
        "{S} invested {MONEY} in {O}.",
        "{S} led a {MONEY} funding round in {O}.",
        "{O} raised {MONEY} from {S}.",
        "{S} took a minority stake in {O}.",
        "{O} secured backing from {S} in its latest funding round.",
        "{S} is putting {MONEY} into {O} to fund its expansion in {CITY}.",
        "{S} bought a 10% stake in {O}.",
        "{O} received a {MONEY} investment from {S}.",
        "The venture arm of {S} backed {O} with {MONEY}.",
        "{S} increased its holding in {O} to 15%.",
        "{O} said {S} would inject {MONEY} of fresh capital.",
        "{S} joined the {MONEY} financing of {O} as an anchor investor.",
        "A {MONEY} investment from {S} will help {O} build a plant for {PRODUCT}.",
        "{S} has become the largest shareholder in {O}.",
    ],
    "partners_with": [
        "{A} and {B} announced a partnership to develop {PRODUCT}.",
        "{A} teamed up with {B} on {PRODUCT}.",
        "{A} signed a strategic alliance with {B}.",
        "{A} is partnering with {B} to bring {PRODUCT} to {CITY}.",
        "{A} and {B} formed a joint venture in {CITY}.",
        "{A} will collaborate with {B} on research into {PRODUCT}.",
        "Under a new agreement, {A} and {B} will co-develop {PRODUCT}.",
        "{A} joined forces with {B} to sell {PRODUCT} in {CITY}.",
        "{A} renewed its distribution partnership with {B}.",
        "{A} and {B} said on {DAY} they would work together on {PRODUCT}.",
        "A joint venture between {A} and {B} will build {PRODUCT}.",
        "{A} has chosen {B} as its technology partner for {PRODUCT}.",
        "{A} and {B} agreed to pool their {SECTOR} research.",
    ],
    "competes_with": [
        "{A} competes with {B} in the {SECTOR} market.",
        "{A}, a rival of {B}, cut prices on {PRODUCT}.",
        "{A} is losing market share to its rival {B}.",
        "{A} and {B} are locked in a price war over {PRODUCT}.",
        "{A} launched cheaper {PRODUCT} to take on {B}.",
        "{B}'s main competitor, {A}, opened a new plant in {CITY}.",
        "{A} faces stiffer competition from {B} in {CITY}.",
        "Analysts see {B} as the biggest threat to {A} in {SECTOR}.",
        "{A} and {B} are battling for customers in the {SECTOR} sector.",
        "{A} is going head to head with {B} in {PRODUCT}.",
        "{A} overtook its competitor {B} in sales of {PRODUCT}.",
        "{A} and {B} compete fiercely for {SECTOR} contracts in {CITY}.",
    ],
    "supplies": [
        "{S} supplies {PRODUCT} to {O}.",
        "{S} will provide {PRODUCT} to {O} under a three-year contract.",
        "{O} sources its {PRODUCT} from {S}.",
        "{S} won a contract to supply {O} with {PRODUCT}.",
        "{O} signed a supply agreement with {S} for {PRODUCT}.",
        "{S} is the main supplier of {PRODUCT} for {O}.",
        "{O} relies on {S} for {PRODUCT}.",
        "{S} delivered the first batch of {PRODUCT} to {O} on {DAY}.",
        "{O} placed a {MONEY} order for {PRODUCT} with {S}.",
        "{O} buys most of its {PRODUCT} from {S}.",
        "{S} ships {PRODUCT} to {O}'s factory in {CITY}.",
        "{O} picked {S} as the sole vendor of its {PRODUCT}.",
        "{S} expanded its deliveries of {PRODUCT} to {O}.",
    ],
    "sues": [
        "{S} sued {O} for {ISSUE}.",
        "{S} filed a lawsuit against {O} in {CITY}.",
        "{O} is being sued by {S} over {ISSUE}.",
        "{S} took {O} to court over {ISSUE}.",
        "{S} has brought legal action against {O}, alleging {ISSUE}.",
        "A complaint filed by {S} accuses {O} of {ISSUE}.",
        "{O} faces a {MONEY} lawsuit from {S}.",
        "{S} is seeking {MONEY} in damages from {O}.",
        "{S} launched legal proceedings against {O} on {DAY}.",
        "In a suit filed on {DAY}, {S} claims {O} is guilty of {ISSUE}.",
        "{O} was hit with a lawsuit by {S} alleging {ISSUE}.",
        "{S} has taken {O} to an arbitration court, citing {ISSUE}.",
    ],
    "subsidiary_of": [
        "{S}, a subsidiary of {O}, reported higher sales of {PRODUCT}.",
        "{S} is a wholly owned unit of {O}.",
        "{O}'s {SECTOR} subsidiary {S} hired 200 engineers in {CITY}.",
        "{S}, which is owned by {O}, opened a plant in {CITY}.",
        "{S} operates as a division of {O}.",
        "{O} owns {S} outright.",
        "{S} is part of the {O} group.",
        "{S}, the {SECTOR} arm of {O}, cut its forecast.",
        "{O} said its unit {S} would build {PRODUCT}.",
        "{S} became a subsidiary of {O} in 2019.",
        "{O}, the parent company of {S}, reported results on {DAY}.",
        "{S} is controlled by its parent {O}.",
    ],
    "executive_of": [
        "{P}, chief executive of {O}, said demand for {PRODUCT} was strong.",
        "{O} appointed {P} as {ROLE}.",
        "{O} chief executive {P} told analysts margins would improve.",
        "{P} was named {ROLE} of {O}.",
        "{P}, who runs {O}, expects growth in {CITY}.",
        "{O}'s chairman, {P}, defended the deal.",
        "{P} has led {O} since 2019.",
        "{P} joined {O} as {ROLE} on {DAY}.",
        "{O} said its {ROLE}, {P}, would present the results.",
        "{P}, {ROLE} at {O}, sold shares on {DAY}.",
        "The {ROLE} of {O}, {P}, announced a buyback.",
        "{O} promoted {P} to {ROLE}.",
    ],
    "other": [
        "{X} and {Y} both reported higher quarterly revenue.",
        "{X} shares rose 3% on {DAY} while {Y} fell 2%.",
        "{X} abandoned its plan to acquire {Y}.",
        "{X} denied reports that it would invest in {Y}.",
        "{X} dropped its lawsuit against {Y}.",
        "{X} and {Y} will report results on {DAY}.",
        "Traders sold {X} and bought {Y} on {DAY}.",
        "{X} opened an office in {CITY}, next to the headquarters of {Y}.",
        "Investors are waiting for results from {X} and {Y}.",
        "{X} and {Y} were both downgraded by analysts on {DAY}.",
        "Unlike {X}, {Y} kept its dividend unchanged.",
        "{P} left {X} in 2021.",
        "{P}, an analyst at {X}, raised her target for {Y}.",
        "{X} denied that it was in talks with {Y}.",
        "{X} hired {P}, a former banker, as an adviser.",
        "{X}'s results were published a day after those of {Y}.",
        "{X} and {Y} both cut jobs in {CITY} this year.",
        "{X} ended its supply contract with {Y}.",
        "{X} said it had no plans to sell {Y} shares.",
        "{X} moved its listing to {CITY}, where {Y} is also listed.",
    ],
}
# Templates with three entities: several relations, the other pairs `other`.
MULTI: list[tuple[str, list[tuple[str, str, str]]]] = [
    ("{S}, advised by {X}, agreed to buy {O} for {MONEY}.", [("S", "O", "acquires")]),
    (
        "{P}, chief executive of {S}, said the company would sue {O}.",
        [("P", "S", "executive_of"), ("S", "O", "sues")],
    ),
    ("{S} bought {O} from {X} for {MONEY}.", [("S", "O", "acquires")]),
    (
        "{S}, a unit of {O}, will supply {PRODUCT} to {X}.",
        [("S", "O", "subsidiary_of"), ("S", "X", "supplies")],
    ),
    ("{X} and {Y} were both downgraded by {Z}.", []),
    (
        "{P} of {X} said {S} had invested {MONEY} in {O}.",
        [("P", "X", "other"), ("S", "O", "invests_in")],
    ),
    (
        "{A} and {B} teamed up to challenge {X} in {PRODUCT}.",
        [("A", "B", "partners_with"), ("A", "X", "competes_with"), ("B", "X", "competes_with")],
    ),
    ("{O} appointed {P}, formerly of {X}, as {ROLE}.", [("P", "O", "executive_of")]),
    ("After {S} sued {O}, shares of {X} rose.", [("S", "O", "sues")]),
    (
        "{S} agreed to acquire {O}, a supplier to {X}.",
        [("S", "O", "acquires"), ("O", "X", "supplies")],
    ),
    ("{X}, {Y} and {Z} reported results on {DAY}.", []),
    (
        "{P}, who runs {S}, said it would compete with {X} in {CITY}.",
        [("P", "S", "executive_of"), ("S", "X", "competes_with")],
    ),
]
FILLERS = {
    "MONEY": MONEY,
    "PRODUCT": PRODUCT,
    "SECTOR": SECTOR,
    "CITY": CITY,
    "ISSUE": ISSUE,
    "DAY": DAY,
    "ROLE": ROLE,
}
SLOT = re.compile(r"\{(\w+)\}")
PERSON_SLOTS = {"P", "Q"}


def _render(template: str, names: dict[str, str], rng: random.Random):
    """The sentence and each entity slot's span."""
    text, spans, pos = "", {}, 0
    for match in SLOT.finditer(template):
        text += template[pos : match.start()]
        key = match.group(1)
        if key in FILLERS:
            text += rng.choice(FILLERS[key])
        else:
            spans[key] = (len(text), len(text) + len(names[key]))
            text += names[key]
        pos = match.end()
    text += template[pos:]
    return text[0].upper() + text[1:], spans


def _label(first: str, second: str, relations: dict) -> str:
    if (first, second) in relations:
        kind = relations[(first, second)]
        return f"{kind}(e1,e2)" if kind in DIRECTED else kind
    if (second, first) in relations:
        kind = relations[(second, first)]
        return f"{kind}(e2,e1)" if kind in DIRECTED else kind
    return "other"


def _records(template, relations, companies, people, rng, count, tag):
    slots = list(dict.fromkeys(m.group(1) for m in SLOT.finditer(template)))
    slots = [s for s in slots if s not in FILLERS]
    relations = {(a, b): kind for a, b, kind in relations}
    out = []
    for n in range(count):
        orgs = rng.sample(companies, sum(s not in PERSON_SLOTS for s in slots))
        persons = rng.sample(people, sum(s in PERSON_SLOTS for s in slots))
        names = {s: (persons.pop() if s in PERSON_SLOTS else orgs.pop()) for s in slots}
        text, spans = _render(template, names, rng)
        ordered = sorted(spans, key=lambda s: spans[s][0])
        for i, first in enumerate(ordered):
            for second in ordered[i + 1 :]:
                out.append(
                    {
                        "id": f"{tag}-{n}-{first}{second}",
                        "text": text,
                        "head": {
                            "start": spans[first][0],
                            "end": spans[first][1],
                            "type": "PERSON" if first in PERSON_SLOTS else "ORG",
                        },
                        "tail": {
                            "start": spans[second][0],
                            "end": spans[second][1],
                            "type": "PERSON" if second in PERSON_SLOTS else "ORG",
                        },
                        "label": _label(first, second, relations),
                    }
                )
    return out


def main() -> None:
    rng = random.Random(SEED)
    companies, people = COMPANIES[:], PEOPLE[:]
    rng.shuffle(companies)
    rng.shuffle(people)

    # Names: 60% train, 15% validation, 25% test, disjoint.
    def cut(pool):
        a, b = int(len(pool) * 0.6), int(len(pool) * 0.75)
        return {"train": pool[:a], "validation": pool[a:b], "test": pool[b:]}

    names = {"companies": cut(companies), "people": cut(people)}
    splits: dict[str, list] = {"train": [], "validation": [], "test": []}
    per_template = {"train": 6, "validation": 5, "test": 8}
    jobs = []
    for kind, templates in TEMPLATES.items():
        order = templates[:]
        rng.shuffle(order)
        n_test = max(2, round(len(order) * 0.25))
        n_val = max(1, round(len(order) * 0.12))
        parts = {
            "test": order[:n_test],
            "validation": order[n_test : n_test + n_val],
            "train": order[n_test + n_val :],
        }
        for split, chosen in parts.items():
            for template in chosen:
                if kind == "other":
                    relations = []
                elif kind in DIRECTED:
                    relations = [("P" if "{P}" in template else "S", "O", kind)]
                else:
                    relations = [("A", "B", kind)]
                jobs.append((split, template, relations))
    multi = MULTI[:]
    rng.shuffle(multi)
    for i, (template, relations) in enumerate(multi):
        split = "test" if i % 4 == 0 else "validation" if i % 4 == 1 else "train"
        jobs.append((split, template, [r for r in relations if r[2] != "other"]))
    for j, (split, template, relations) in enumerate(jobs):
        splits[split] += _records(
            template,
            relations,
            names["companies"][split],
            names["people"][split],
            rng,
            per_template[split],
            f"{split[:2]}{j}",
        )
    for split, records in splits.items():
        with open(HERE / f"{split}.jsonl", "w", encoding="utf-8") as f:
            for record in records:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
        counts: dict[str, int] = {}
        for r in records:
            counts[r["label"]] = counts.get(r["label"], 0) + 1
        print(split, len(records), len({r["text"] for r in records}), dict(sorted(counts.items())))


if __name__ == "__main__":
    main()
