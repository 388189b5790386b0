"""The support, finance and recommender routers on stand-ins, for ``lepton-nlp serve
--routes`` in the soak test (``tests/unit/test_soak.py``).

Support and recommender come from :mod:`tests.unit.api_fuzz_routes` (``LEPTON_FUZZ_DB``,
``LEPTON_FUZZ_REC_FOLDER``); the finance monitor scores with the deterministic stand-in
scorer into ``LEPTON_SOAK_FINANCE_DB``. No downloaded or packaged model is loaded.
"""

from __future__ import annotations

import os

from apps.finance import api as finance_api
from apps.finance.monitor import FinanceMonitor
from tests.unit.api_fuzz_routes import recommender, support
from tests.unit.finance_standins import ALIASES, StandInScorer

finance_api.set_monitor(
    FinanceMonitor(os.environ["LEPTON_SOAK_FINANCE_DB"], StandInScorer, aliases=ALIASES)
)

finance = finance_api.router

__all__ = ["finance", "recommender", "support"]
