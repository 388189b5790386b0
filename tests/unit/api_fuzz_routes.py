"""The support and recommender routers, on stand-ins, for ``lepton-nlp serve --routes`` in the
API fuzz test (``tests/unit/test_fuzz_api.py``).

Importing it points the routers at a support bot on the deterministic stand-ins and a tiny
trained recommender (``LEPTON_FUZZ_REC_FOLDER``), both storing into ``LEPTON_FUZZ_DB``,
so the server needs no downloaded model.
"""

from __future__ import annotations

import os

from apps.recommender import api as recommender_api
from apps.recommender.service import TrainedRecommender
from apps.recommender.store import RecommenderStore
from apps.support import api as support_api
from apps.support.store import SupportStore
from tests.unit.support_standins import make_bot
from tests.unit.test_recommender import WordsEmbedder

_url = os.environ["LEPTON_FUZZ_DB"]
support_api.set_bot(make_bot(SupportStore(_url)))
recommender_api.set_recommender(
    TrainedRecommender(
        os.environ["LEPTON_FUZZ_REC_FOLDER"],
        store=RecommenderStore(_url),
        embedder=WordsEmbedder(),
    )
)

support = support_api.router
recommender = recommender_api.router
