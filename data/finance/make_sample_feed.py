"""Write the finance monitor's sample feed: six weeks of news about invented companies.

    python data/finance/make_sample_feed.py      # rewrites sample_feed/, aliases.yaml, sample_planted.json

Three sources, in the formats ingest reads: two RSS 2.0 feeds (``harbour_street_wire.xml``
with plain descriptions, ``ledger_daily.xml`` with HTML ones and times in US zones) and one
JSONL file (``market_brief.jsonl``, ISO times with offsets). Every company, person and event
is invented. Most articles are routine (results, products, analyst notes, hiring, markets);
planted among them are events the monitor must catch, listed in ``sample_planted.json``:

- Sorrel Therapeutics sues Falconer Biotech; Falconer's coverage turns negative for days
  and its volume jumps (a sentiment shift and a volume spike);
- Dunmore Logistics agrees to acquire Nordvik Shipping (a volume spike, a new relation);
- Greyhaven Software partners with Ospry Telecom; Calloway Semiconductors supplies
  Marrowfield Motors; Pemberton Retail sues Ivybridge Foods; Estuary Bank invests in
  Aldermoor Energy; Helena Voss is Aldermoor Energy's chief executive (new relations).

:func:`generate` is also what ``bench/finance_throughput.py`` scales up (other seeds, new ids).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

HERE = Path(__file__).resolve().parent
FEED = HERE / "sample_feed"
SEED = 7
START = datetime(2026, 9, 7, tzinfo=UTC)  # a Monday
DAYS = 42


@dataclass(frozen=True)
class Company:
    name: str
    short: str
    ticker: str
    sector: str
    product: str
    city: str
    ceo: str
    extra_aliases: tuple[str, ...] = ()


# fmt: off
COMPANIES = [
    Company("Aldermoor Energy", "Aldermoor", "ALDR", "energy", "offshore wind capacity", "Aberdeen", "Helena Voss"),
    Company("Calloway Semiconductors", "Calloway", "CLWY", "semiconductor", "power chips", "Austin", "Tobias Grant"),
    Company("Dunmore Logistics", "Dunmore", "DUNL", "logistics", "same-day freight", "Rotterdam", "Priya Nair"),
    Company("Estuary Bank", "Estuary", "ESTB", "banking", "small-business lending", "Bristol", "Mariana Costa"),
    Company("Falconer Biotech", "Falconer", "FALB", "biotech", "gene therapies", "Cambridge", "Kwame Boateng", ("Falconer Bio",)),
    Company("Greyhaven Software", "Greyhaven", "GRHV", "software", "cloud accounting software", "Dublin", "Ruth Adler"),
    Company("Ivybridge Foods", "Ivybridge", "IVYF", "food", "plant-based snacks", "Leeds", "Sven Aalto"),
    Company("Lanternfish Media", "Lanternfish", "LNFM", "media", "streaming subscriptions", "Toronto", "Nisha Kapoor"),
    Company("Marrowfield Motors", "Marrowfield", "MRWM", "automotive", "electric delivery vans", "Stuttgart", "Jonas Becker"),
    Company("Nordvik Shipping", "Nordvik", "NRDV", "shipping", "container routes", "Bergen", "Ingrid Hald"),
    Company("Ospry Telecom", "Ospry", "OSPY", "telecom", "fibre broadband", "Lisbon", "Diego Ferreira"),
    Company("Pemberton Retail", "Pemberton", "PMBR", "retail", "discount stores", "Manchester", "Claire Whitlock"),
    Company("Sorrel Therapeutics", "Sorrel", "SRLT", "biotech", "antibody treatments", "Basel", "Anton Keller"),
]
# fmt: on
BY_SHORT = {c.short: c for c in COMPANIES}
ROLES = ["chief executive", "chief financial officer", "head of investor relations"]
SOURCES = ["Harbour Street Wire", "Ledger Daily", "Market Brief"]
QUARTER = ["third-quarter", "third quarter", "July-September"]

# --- routine news: (title templates, lede templates, detail templates) by topic ------------
# Slots: {name} {short} {ticker} {product} {city} {sector} {ceo} {pct} {pct2} {amount} {n}
ROUTINE = {
    "earnings_up": (
        [
            "{name} lifts {q} revenue {pct}%",
            "{short} beats forecasts as sales climb",
            "{name} reports higher {q} profit",
            "{short} profit rises on strong demand for {product}",
        ],
        [
            "{name} said on {day} that {q} revenue rose {pct}% to {amount}, ahead of analyst estimates.",
            "{name} ({ticker}) reported a {pct}% increase in {q} operating profit, helped by demand for its {product}.",
            "Quarterly net profit at {name} grew {pct}% from a year earlier, the company said.",
        ],
        [
            "Margins improved by {pct2} percentage points as costs eased.",
            "The company raised its full-year sales guidance.",
            "Orders for {product} grew in every region, it said.",
            "Cash flow from operations rose to {amount}.",
        ],
    ),
    "earnings_flat": (
        [
            "{name} results in line with expectations",
            "{short} holds guidance after steady quarter",
            "{name} posts {q} results",
        ],
        [
            "{name} reported {q} revenue of {amount}, broadly in line with analyst expectations.",
            "{name} said sales were roughly unchanged in the quarter at {amount}.",
            "{name} ({ticker}) kept its annual outlook unchanged after {q} results.",
        ],
        [
            "The company said it would publish its next trading update in the new year.",
            "Sales of {product} were stable compared with the previous quarter.",
            "Costs were in line with the company's plan.",
        ],
    ),
    "product": (
        [
            "{name} launches new {product}",
            "{short} unveils next generation of {product}",
            "{name} expands {product} range",
        ],
        [
            "{name} on {day} launched a new line of {product}, which it expects to add to revenue from next year.",
            "{name} unveiled an upgraded version of its {product} at an event in {city}.",
            "{name} said it would begin selling its latest {product} to customers in Europe this month.",
        ],
        [
            "Early customer demand has been strong, the company said.",
            "The launch follows two years of development work in {city}.",
            "Analysts said the product could lift sales in the {sector} market.",
        ],
    ),
    "expansion": (
        [
            "{name} to hire {n} staff in {city}",
            "{short} opens new site in {city}",
            "{name} invests in {city} expansion",
        ],
        [
            "{name} plans to hire {n} people at a new facility in {city}, the company said on {day}.",
            "{name} will open a new operations centre in {city} to meet rising demand for {product}.",
            "{name} said it would spend {amount} expanding its site in {city}.",
        ],
        [
            "The expansion is expected to be completed next year.",
            "Local officials welcomed the investment.",
            "The company said the new site would improve delivery times.",
        ],
    ),
    "analyst": (
        [
            "Analysts see steady year for {name}",
            "{short} rated buy at broker",
            "Broker raises target price on {name}",
        ],
        [
            "Analysts at a London broker raised their price target for {name} by {pct}%, citing demand for {product}.",
            "A note from analysts kept a buy rating on {name} ({ticker}), saying the {sector} cycle remains supportive.",
            "Analysts expect {name} to grow sales by about {pct}% next year.",
        ],
        [
            "Shares of {short} have gained {pct2}% since the start of the year.",
            "The broker said the valuation remained reasonable.",
            "Most analysts covering the stock rate it a buy.",
        ],
    ),
    "market": (
        [
            "{short} shares little changed",
            "{name} shares edge higher",
            "{name} trading update due next week",
        ],
        [
            "Shares of {name} were little changed on {day} in a quiet market.",
            "{name} shares edged up {pct2}% on {day} as investors awaited its trading update.",
            "{name} said it would publish a trading update next week.",
        ],
        [
            "Trading volumes were close to their monthly average.",
            "The wider {sector} sector was mixed.",
            "Investors are watching interest rate decisions this month.",
        ],
    ),
    "soft": (
        [
            "{short} warns of slower {product} orders",
            "{name} shares slip after cautious comments",
            "Costs weigh on {name} margins",
        ],
        [
            "{name} said orders for {product} had slowed in recent weeks.",
            "Shares of {name} fell {pct2}% on {day} after the company said higher costs would weigh on margins.",
            "{name} cut its sales forecast for the fourth quarter slightly.",
        ],
        [
            "The company said it expects demand to recover next year.",
            "Analysts said the warning was smaller than feared.",
            "Management said cost savings would offset part of the shortfall.",
        ],
    ),
}
ROUTINE_WEIGHTS = {
    "earnings_up": 3,
    "earnings_flat": 3,
    "product": 3,
    "expansion": 2,
    "analyst": 3,
    "market": 3,
    "soft": 1,
}
QUOTES = [
    '"We are pleased with the progress our teams have made," said {ceo}, {role} of {name}.',
    '"Demand for {product} remains healthy," {ceo}, {role} of {name}, told reporters.',
    '{ceo}, {role} of {name}, said the company was "well placed for next year".',
    '"We continue to invest in {city}," said {ceo}, {role} at {name}.',
]
CONTEXT = [
    "The {sector} industry has seen steady demand this year.",
    "Rival {other} reported results last week.",
    "The company competes with {other} in several markets.",
    "Central banks have kept interest rates on hold in recent months.",
    "Investors have favoured companies with strong cash flow this year.",
]

# --- planted events: (day offset, company short, title, sentences) --------------------------
# {F} Falconer Biotech, {S} Sorrel Therapeutics, etc. by short name; the text is literal.


def _planted() -> list[tuple[int, list[str], str, list[str]]]:
    """(day, companies it is about, title, sentences)."""
    events: list[tuple[int, list[str], str, list[str]]] = []
    # Calloway supplies Marrowfield (day 10).
    events += [
        (
            10,
            ["Calloway", "Marrowfield"],
            "Calloway to supply chips for Marrowfield vans",
            [
                "Calloway Semiconductors will supply power chips to Marrowfield Motors for its electric delivery vans under a five-year agreement.",
                "The contract is worth about $600 million, according to people familiar with the deal.",
                '"This agreement secures our chip supply through 2031," said Jonas Becker, chief executive of Marrowfield Motors.',
                "Shares of Calloway rose 3% on the news.",
            ],
        ),
        (
            11,
            ["Calloway", "Marrowfield"],
            "Marrowfield locks in chip supply from Calloway",
            [
                "Marrowfield Motors has signed a long-term deal under which Calloway Semiconductors supplies the power chips for its vans.",
                "Analysts said the agreement reduces the risk of production delays at Marrowfield.",
                "Calloway Semiconductors said the order would lift its revenue from next year.",
            ],
        ),
    ]
    # Aldermoor appoints a CFO; Helena Voss is its chief executive (day 12).
    events += [
        (
            12,
            ["Aldermoor"],
            "Aldermoor names new finance chief",
            [
                "Aldermoor Energy appointed Rafael Ortiz as chief financial officer, effective next month.",
                "Helena Voss, chief executive of Aldermoor Energy, said Ortiz would lead the funding of new wind projects.",
                "Ortiz joins from a European utility where he ran the treasury team.",
            ],
        ),
    ]
    # Greyhaven partners with Ospry (day 15).
    events += [
        (
            15,
            ["Greyhaven", "Ospry"],
            "Greyhaven and Ospry team up on business broadband bundle",
            [
                "Greyhaven Software and Ospry Telecom announced a partnership to sell cloud accounting software together with fibre broadband to small firms.",
                "The two companies will share revenue from the bundle, which launches in Portugal and Ireland.",
                '"Small businesses want one bill and one support line," said Ruth Adler, chief executive of Greyhaven Software.',
            ],
        ),
        (
            16,
            ["Greyhaven", "Ospry"],
            "Ospry signs distribution deal with Greyhaven",
            [
                "Ospry Telecom has partnered with Greyhaven Software to offer its accounting tools to broadband customers.",
                "Ospry said the partnership could reach 200,000 business customers within two years.",
            ],
        ),
    ]
    # Pemberton sues Ivybridge (day 18).
    events += [
        (
            18,
            ["Pemberton", "Ivybridge"],
            "Pemberton Retail sues supplier Ivybridge Foods",
            [
                "Pemberton Retail has sued Ivybridge Foods for breach of contract, claiming the snack maker failed to deliver agreed volumes.",
                "Pemberton is seeking damages of $40 million, according to a court filing in Manchester.",
                "Ivybridge Foods said it would defend itself against the claim.",
            ],
        ),
    ]
    # Dunmore acquires Nordvik (day 22): many articles on one day.
    nordvik = [
        (
            "Dunmore Logistics to buy Nordvik Shipping for $1.4 billion",
            [
                "Dunmore Logistics agreed to acquire Nordvik Shipping for $1.4 billion in cash, the companies said on Tuesday.",
                "The offer values Nordvik at a premium of 35% to its closing share price.",
                '"Nordvik gives us the container routes we need in northern Europe," said Priya Nair, chief executive of Dunmore Logistics.',
            ],
        ),
        (
            "Nordvik shares soar on Dunmore takeover deal",
            [
                "Shares of Nordvik Shipping jumped 31% after Dunmore Logistics agreed to buy the company.",
                "Nordvik's board unanimously recommended the offer to shareholders.",
                "The deal is expected to close in the first quarter, subject to regulatory approval.",
            ],
        ),
        (
            "Dunmore bets on northern Europe with Nordvik purchase",
            [
                "Dunmore Logistics will acquire Nordvik Shipping, adding 40 container vessels to its fleet.",
                "Analysts said the price was high but that the deal strengthens Dunmore's position in Scandinavia.",
                "Ingrid Hald, chief executive of Nordvik Shipping, will join the Dunmore board.",
            ],
        ),
        (
            "Nordvik investors welcome Dunmore bid",
            [
                "Several large Nordvik Shipping investors said they would accept the Dunmore Logistics offer.",
                "The premium is one of the highest paid for a European shipping company in a decade.",
            ],
        ),
        (
            "Nordvik Shipping: what the takeover means for customers",
            [
                "Nordvik Shipping customers will keep their current contracts after the takeover, the company said.",
                "Dunmore Logistics plans to combine the two companies' booking systems next year.",
            ],
        ),
        (
            "Dunmore to fund Nordvik deal with cash and new debt",
            [
                "Dunmore Logistics said it would pay for Nordvik Shipping with cash on hand and a new $800 million loan.",
                "Credit analysts said Dunmore's debt would remain manageable.",
            ],
        ),
        (
            "Nordvik deal lifts shipping stocks",
            [
                "Shipping shares rose across Europe after Dunmore Logistics agreed to buy Nordvik Shipping.",
                "Investors bet that other operators could become takeover targets.",
            ],
        ),
        (
            "Regulators to review Dunmore-Nordvik merger",
            [
                "Competition regulators will review the acquisition of Nordvik Shipping by Dunmore Logistics.",
                "Nordvik Shipping said it expects the review to be completed within six months.",
            ],
        ),
    ]
    events += [(22, ["Dunmore", "Nordvik"], t, s) for t, s in nordvik]
    # Estuary Bank invests in Aldermoor (day 25).
    events += [
        (
            25,
            ["Estuary", "Aldermoor"],
            "Estuary Bank takes stake in Aldermoor Energy",
            [
                "Estuary Bank invested $200 million in Aldermoor Energy in exchange for a 6% stake.",
                "The investment will help fund Aldermoor's new offshore wind farm near Aberdeen.",
                "Mariana Costa, chief executive of Estuary Bank, said the bank wanted more exposure to renewable energy.",
            ],
        ),
    ]
    # Sorrel sues Falconer (day 29) and Falconer's coverage turns negative for days.
    falconer_day1 = [
        (
            "Sorrel Therapeutics sues Falconer Biotech over patent",
            [
                "Sorrel Therapeutics has sued Falconer Biotech, alleging that Falconer's lead gene therapy infringes three of its patents.",
                "Sorrel is seeking to block sales of the treatment and claims damages of more than $900 million.",
                "Shares of Falconer Biotech plunged 28% on the news.",
            ],
        ),
        (
            "Falconer Biotech shares collapse after patent lawsuit",
            [
                "Falconer Biotech shares suffered their worst day on record after Sorrel Therapeutics filed a patent lawsuit.",
                "Falconer Biotech lost about $2 billion of market value in a single session.",
                "Analysts warned that the dispute could delay the launch of Falconer's main product.",
            ],
        ),
        (
            "Analysts cut Falconer ratings on legal risk",
            [
                "Three brokers downgraded Falconer Biotech to sell, citing the legal risk from the Sorrel lawsuit.",
                "Analysts slashed their price targets for Falconer by as much as 45%.",
                "Falconer Biotech faces a long and costly court battle, one analyst wrote.",
            ],
        ),
        (
            "Falconer Biotech loses a quarter of its value",
            [
                "Falconer Biotech shares crashed after the lawsuit, wiping out all of this year's gains.",
                "Investors fear that Falconer will have to pay large royalties or withdraw its therapy.",
            ],
        ),
        (
            "Lawsuit puts Falconer launch in doubt",
            [
                "The patent lawsuit against Falconer Biotech threatens the launch of its gene therapy in Europe.",
                "Falconer Biotech declined to comment beyond saying it would fight the claims.",
                "Hospitals said they may delay orders until the dispute is resolved.",
            ],
        ),
        (
            "Falconer Biotech hit by lawsuit and downgrades",
            [
                "Falconer Biotech was hit by a wave of downgrades after Sorrel Therapeutics sued the company.",
                "Falconer's bonds also fell sharply as investors worried about the cost of the legal fight.",
            ],
        ),
    ]
    falconer_later = [
        (
            "Falconer shares fall again as lawsuit weighs",
            [
                "Falconer Biotech shares fell a further 9% as investors continued to sell after the patent lawsuit.",
                "Falconer Biotech suspended its share buyback to preserve cash for the legal battle.",
            ],
        ),
        (
            "Falconer delays European launch",
            [
                "Falconer Biotech postponed the European launch of its gene therapy because of the patent dispute.",
                "The delay will cut Falconer's revenue next year, analysts said.",
            ],
        ),
        (
            "Falconer Biotech warns on profit",
            [
                "Falconer Biotech warned that its annual profit would be sharply lower because of legal costs.",
                "The company also froze hiring at its Cambridge research centre.",
            ],
        ),
        (
            "Pressure mounts on Falconer management",
            [
                "Investors criticised Falconer Biotech's management for failing to disclose the patent risk.",
                "Falconer Biotech shares have now lost 40% of their value in a week.",
            ],
        ),
        (
            "Falconer faces investor lawsuit",
            [
                "A group of shareholders filed a class action against Falconer Biotech, claiming the company misled investors.",
                "The lawsuit adds to Falconer's mounting legal problems.",
            ],
        ),
        (
            "Falconer Biotech credit rating cut",
            [
                "A rating agency downgraded Falconer Biotech's credit rating, citing the cost of the patent litigation.",
                "Falconer Biotech shares fell another 5%.",
            ],
        ),
        (
            "Falconer cuts jobs to save cash",
            [
                "Falconer Biotech will cut 300 jobs to save money during its legal dispute with Sorrel Therapeutics.",
                "The job cuts come a week after Falconer's shares collapsed.",
            ],
        ),
        (
            "Falconer shares remain under pressure",
            [
                "Falconer Biotech shares remained under pressure as analysts cut their forecasts again.",
                "Falconer has lost almost half of its market value since the lawsuit was filed.",
            ],
        ),
    ]
    events += [(29, ["Falconer", "Sorrel"], t, s) for t, s in falconer_day1]
    for i, (title, sentences) in enumerate(falconer_later):
        events.append((30 + i // 2, ["Falconer"], title, sentences))
    return events


PLANTED_ALERTS = [
    {"kind": "sentiment_shift", "entity": "Falconer Biotech", "days": ["2026-10-06", "2026-10-07"], "direction": "down"},
    {"kind": "volume_spike", "entity": "Falconer Biotech", "days": ["2026-10-06"]},
    {"kind": "volume_spike", "entity": "Nordvik Shipping", "days": ["2026-09-29"]},
    {"kind": "new_relation", "head": "Dunmore Logistics", "type": "acquires", "tail": "Nordvik Shipping"},
    {"kind": "new_relation", "head": "Greyhaven Software", "type": "partners_with", "tail": "Ospry Telecom"},
    {"kind": "new_relation", "head": "Calloway Semiconductors", "type": "supplies", "tail": "Marrowfield Motors"},
    {"kind": "new_relation", "head": "Sorrel Therapeutics", "type": "sues", "tail": "Falconer Biotech"},
    {"kind": "new_relation", "head": "Pemberton Retail", "type": "sues", "tail": "Ivybridge Foods"},
    {"kind": "new_relation", "head": "Estuary Bank", "type": "invests_in", "tail": "Aldermoor Energy"},
    {"kind": "new_relation", "head": "Helena Voss", "type": "executive_of", "tail": "Aldermoor Energy"},
]  # fmt: skip


def _fill(template: str, company: Company, rng: random.Random, day: datetime) -> str:
    others = [c.name for c in COMPANIES if c is not company and c.sector != "biotech"]
    return template.format(
        name=company.name,
        short=company.short,
        ticker=company.ticker,
        product=company.product,
        city=company.city,
        sector=company.sector,
        ceo=company.ceo,
        role=ROLES[0] if rng.random() < 0.8 else rng.choice(ROLES[1:]),
        pct=rng.randint(4, 24),
        pct2=rng.choice([0.5, 0.8, 1.2, 1.5, 2, 2.5]),
        amount=f"${rng.randint(120, 4800)} million",
        n=rng.choice([80, 120, 150, 200, 250, 400]),
        q=rng.choice(QUARTER),
        day=day.strftime("%A"),
        other=rng.choice(others),
    )


def _routine(company: Company, day: datetime, rng: random.Random) -> tuple[str, list[str]]:
    topics = list(ROUTINE_WEIGHTS)
    topic = rng.choices(topics, weights=[ROUTINE_WEIGHTS[t] for t in topics])[0]
    titles, ledes, details = ROUTINE[topic]
    sentences = [_fill(rng.choice(ledes), company, rng, day)]
    sentences += [_fill(s, company, rng, day) for s in rng.sample(details, rng.randint(1, 2))]
    if rng.random() < 0.6:
        sentences.append(_fill(rng.choice(QUOTES), company, rng, day))
    if rng.random() < 0.5:
        sentences.append(_fill(rng.choice(CONTEXT), company, rng, day))
    title = _fill(rng.choice(titles), company, rng, day)
    return title[0].upper() + title[1:], sentences


def generate(
    seed: int = SEED, start: datetime = START, days: int = DAYS, prefix: str = "sf"
) -> list[dict]:
    """The sample articles as dicts (id, source, title, body, published (aware), url).

    Routine articles come at random (about one every two and a half days per company);
    the planted events come on their days. ``seed`` and ``prefix`` give other, equally
    shaped feeds with their own ids (the throughput benchmark).
    """
    rng = random.Random(seed)
    articles = []

    def add(day: datetime, title: str, sentences: list[str]) -> None:
        moment = day + timedelta(hours=rng.randint(6, 20), minutes=rng.randint(0, 59))
        number = len(articles) + 1
        articles.append({
            "id": f"{prefix}-{number:05d}",
            "source": rng.choice(SOURCES),
            "title": title,
            "body": " ".join(sentences),
            "published": moment,
            "url": f"https://news.example.com/{prefix}/{moment:%Y/%m/%d}/{number:05d}",
        })  # fmt: skip

    for offset in range(days):
        day = start + timedelta(days=offset)
        weekend = day.weekday() >= 5
        for company in COMPANIES:
            if rng.random() < (0.12 if weekend else 0.45):
                add(day, *_routine(company, day, rng))
    for offset, _about, title, sentences in _planted():
        if offset < days:
            add(start + timedelta(days=offset), title, sentences)
    articles.sort(key=lambda a: (a["published"], a["id"]))
    return articles


_US_EASTERN = timezone(timedelta(hours=-4), "EDT")


def _rss(articles: list[dict], title: str, html_bodies: bool) -> str:
    items = []
    for a in articles:
        moment = a["published"].astimezone(_US_EASTERN) if html_bodies else a["published"]
        body = a["body"]
        if html_bodies:
            sentences = body.split(". ")
            half = max(1, len(sentences) // 2)
            body = (
                f"<p>{escape('. '.join(sentences[:half]))}{'.' if half < len(sentences) else ''}</p>"
                f"<p>{escape('. '.join(sentences[half:]))}</p>" if half < len(sentences)
                else f"<p>{escape(body)}</p>"
            )  # fmt: skip
        items.append(
            "  <item>\n"
            f'    <guid isPermaLink="false">{escape(a["id"])}</guid>\n'
            f"    <title>{escape(a['title'])}</title>\n"
            f"    <link>{escape(a['url'])}</link>\n"
            f"    <description>{escape(body)}</description>\n"
            f"    <pubDate>{format_datetime(moment)}</pubDate>\n"
            "  </item>\n"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0">\n<channel>\n'
        f"  <title>{escape(title)}</title>\n  <link>https://news.example.com/</link>\n"
        f"  <description>{escape(title)}: invented company news (lepton-nlp sample)</description>\n"
        + "".join(items)
        + "</channel>\n</rss>\n"
    )


def aliases_yaml() -> str:
    lines = [
        "# Alias table of the sample feed's invented companies and people (kg.resolve format):",
        "# canonical name: {type, aliases, tickers}. Written by data/finance/make_sample_feed.py.",
    ]
    for c in COMPANIES:
        aliases = ", ".join([c.short, *c.extra_aliases])
        lines.append(f"{c.name}: {{type: ORG, aliases: [{aliases}], tickers: [{c.ticker}]}}")
    for c in COMPANIES:
        first, last = c.ceo.split(" ", 1)
        lines.append(f"{c.ceo}: {{type: PERSON, aliases: [{first[0]}. {last}]}}")
    lines.append("Rafael Ortiz: {type: PERSON, aliases: [R. Ortiz]}")
    return "\n".join(lines) + "\n"


def main() -> None:
    FEED.mkdir(exist_ok=True)
    articles = generate()
    by_source = {s: [a for a in articles if a["source"] == s] for s in SOURCES}
    (FEED / "harbour_street_wire.xml").write_text(
        _rss(by_source["Harbour Street Wire"], "Harbour Street Wire", html_bodies=False)
    )
    (FEED / "ledger_daily.xml").write_text(
        _rss(by_source["Ledger Daily"], "Ledger Daily", html_bodies=True)
    )
    with open(FEED / "market_brief.jsonl", "w", encoding="utf-8") as stream:
        for a in by_source["Market Brief"]:
            row = dict(
                a, published=a["published"].astimezone(timezone(timedelta(hours=1))).isoformat()
            )
            stream.write(json.dumps(row, ensure_ascii=False) + "\n")
    (HERE / "sample_planted.json").write_text(json.dumps(PLANTED_ALERTS, indent=1) + "\n")
    (HERE / "aliases.yaml").write_text(aliases_yaml())
    print(f"{len(articles)} articles: " + ", ".join(f"{s} {len(v)}" for s, v in by_source.items()))


if __name__ == "__main__":
    main()
