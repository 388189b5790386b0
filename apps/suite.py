"""The lepton-nlp suite: ``streamlit run apps/suite.py`` (or ``make demo``) opens it.

One Streamlit app: a Home page and a page per application, with the Model Studio for the
models behind them. Pages are views; their logic lives in modules that do not import
streamlit.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run` puts apps/ on the path, not the project root that holds the `apps` package.
ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import streamlit as st  # noqa: E402

from apps import navigation  # noqa: E402

st.set_page_config(page_title="lepton-nlp suite", page_icon=":material/neurology:", layout="wide")
navigation.run()
