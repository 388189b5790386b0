"""The suite's HTTP API under a soak: the endpoint mix (one weights table) and its server.

The API is the core server with the applications' routes mounted, as ``lepton-nlp serve
--routes ...`` runs it: ``/v1/classify`` (a classification model), the support bot's Rasa
REST webhook and ``/model/parse``, the finance monitor's ``/finance/score`` and the
recommender's recommendations and similar items, plus the health check; two kinds of
request are refused on purpose (an empty text, an over-long message) so that the error
paths run under load too. :func:`suite_endpoints` builds the mix for
:func:`lepton_nlp.serve.soak.run_soak`; :func:`shipped_server` starts the API on the shipped
models (what ``python bench/reliability.py --soak`` measures); the CI test starts it on
stand-ins with :func:`serve_command`.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from apps.common.paths import ROOT
from lepton_nlp.serve.soak import Endpoint, ServerProcess

__all__ = [
    "MIX",
    "SHIPPED_ROUTES",
    "free_port",
    "serve_command",
    "shipped_server",
    "suite_endpoints",
]

#: Each kind of request's share of the traffic (relative weights).
MIX: dict[str, float] = {
    "classify": 25,  # POST /v1/classify, 1-3 headlines
    "support_webhook": 20,  # POST /webhooks/rest/webhook, a new conversation every 3 messages
    "support_parse": 15,  # POST /model/parse
    "finance_score": 5,  # POST /finance/score, 2 new articles (scored and stored)
    "recommend": 12,  # GET /recommender/users/{user}/recommendations (1 in 4 a new user)
    "similar": 10,  # GET /recommender/items/{item}/similar
    "health": 8,  # GET /healthz, /readyz, /v1/models in turn
    "classify_empty": 3,  # refused on purpose: 422
    "support_too_long": 2,  # refused on purpose: 413
}

#: The applications' routers, as a deployment mounts them.
SHIPPED_ROUTES = [
    "apps.support.api:router",
    "apps.finance.api:router",
    "apps.recommender.api:router",
]

FAQ = ROOT / "data" / "support" / "faq.jsonl"
ARTICLES = ROOT / "data" / "finance" / "sample_feed" / "market_brief.jsonl"
HEADLINES = ROOT / "data" / "samples" / "finance_sentiment.csv"
SENTIMENT_MODEL = ROOT / "data" / "models" / "finance-sentiment"


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _headlines() -> list[str]:
    import csv

    with HEADLINES.open(encoding="utf-8", newline="") as handle:
        return [row["text"] for row in csv.DictReader(handle)]


def suite_endpoints(
    classify_model: str, items: Sequence[str], users: Sequence[str]
) -> list[Endpoint]:
    """The mix of :data:`MIX` over the project's own samples: FAQ questions for the bot,
    the sample feed's articles (each posted as a new copy, so each is scored and stored),
    finance headlines.

    Args:
        classify_model: the ``model`` named in ``/v1/classify`` requests.
        items: catalogue item ids for ``similar`` (and known ones come first).
        users: known user ids for ``recommend``.
    """
    if not items or not users:
        raise ValueError("suite_endpoints needs the recommender's item and user ids.")
    questions = [row["question"] for row in _jsonl(FAQ)]
    articles = _jsonl(ARTICLES)
    headlines = _headlines()
    health = ["/healthz", "/readyz", "/v1/models"]

    def classify(n: int):
        texts = [headlines[(n * 3 + k) % len(headlines)] for k in range(1 + n % 3)]
        return "POST", "/v1/classify", None, {"model": classify_model, "inputs": texts}

    def webhook(n: int):
        body = {"sender": f"soak-{n // 3}", "message": questions[n % len(questions)]}
        return "POST", "/webhooks/rest/webhook", None, body

    def parse(n: int):
        return "POST", "/model/parse", None, {"text": questions[(n * 7) % len(questions)]}

    def score(n: int):
        posted = []
        for k in range(2):
            article = articles[(2 * n + k) % len(articles)]
            posted.append(
                {
                    "id": f"soak-{n}-{k}",
                    "title": article["title"],
                    # The store knows an article by its text: a copy with the same text
                    # would be skipped, not scored. One more sentence makes it new.
                    "body": f"{article['body']} This is copy {n}.{k} of the report.",
                    "published": article["published"],
                    "url": f"https://news.example.com/soak/{n}/{k}",
                    "source": "soak",
                }
            )
        return "POST", "/finance/score", None, {"articles": posted}

    def recommend(n: int):
        user = f"soak-new-{n}" if n % 4 == 3 else users[n % len(users)]
        return "GET", f"/recommender/users/{user}/recommendations", {"k": 5}, None

    def similar(n: int):
        return "GET", f"/recommender/items/{items[n % len(items)]}/similar", {"k": 5}, None

    def check(n: int):
        return "GET", health[n % len(health)], None, None

    def empty(n: int):
        return "POST", "/v1/classify", None, {"model": classify_model, "inputs": ["   "]}

    def too_long(n: int):
        body = {"sender": f"soak-long-{n}", "message": "card " * 500}
        return "POST", "/webhooks/rest/webhook", None, body

    builders = {
        "classify": (classify, frozenset()),
        "support_webhook": (webhook, frozenset()),
        "support_parse": (parse, frozenset()),
        "finance_score": (score, frozenset()),
        "recommend": (recommend, frozenset()),
        "similar": (similar, frozenset()),
        "health": (check, frozenset()),
        "classify_empty": (empty, frozenset({422})),
        "support_too_long": (too_long, frozenset({413})),
    }
    endpoints = []
    for name, weight in MIX.items():
        build, expected = builders[name]
        ok = frozenset() if expected else frozenset(range(200, 300))
        endpoints.append(Endpoint(name, weight, build, ok=ok, expected=expected))
    return endpoints


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_command(
    port: int, models: Mapping[str, str | Path], routes: Sequence[str], torch_threads: int = 1
) -> list[str]:
    """``lepton-nlp serve`` on 127.0.0.1:``port`` with ``models`` and ``routes`` mounted."""
    command = [sys.executable, "-m", "lepton_nlp.cli", "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--torch-threads", str(torch_threads)]
    for name, path in models.items():
        command += ["-m", f"{name}={path}"]
    for route in routes:
        command += ["--routes", route]
    return command


def shipped_server(folder: Path, torch_threads: int = 1) -> tuple[ServerProcess, list[Endpoint]]:
    """The API on the shipped models (finance-sentiment for ``/v1/classify``; the support
    bot, finance pipeline and demo recommender the routes build), its data in ``folder``;
    and the mix for it. Not started: use the server as a context manager."""
    from apps.recommender.catalogue import load_catalogue
    from apps.recommender.demo import DEMO_CATALOGUE, DEMO_EVENTS, demo_folder
    from apps.recommender.interactions import load_interactions

    folder = Path(folder)
    recommender = demo_folder(folder=folder / "recommender-demo")
    items = [item.id for item in load_catalogue(DEMO_CATALOGUE)]
    users = sorted({event.user for event in load_interactions(DEMO_EVENTS).events()})
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
        ),
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "LEPTON_HOME": str(folder / "home"),
        "LEPTON_DB_URL": f"sqlite:///{folder / 'suite.db'}",
        "LEPTON_REC_MODEL": str(recommender),
    }
    env.pop("LEPTON_NLP_API_KEYS", None)
    server = ServerProcess(
        serve_command(port, {"finance-sentiment": SENTIMENT_MODEL}, SHIPPED_ROUTES, torch_threads),
        f"http://127.0.0.1:{port}",
        folder / "server.log",
        env=env,
        cwd=ROOT,
    )
    return server, suite_endpoints("finance-sentiment", items, users)
