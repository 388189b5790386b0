"""Recommendations from a catalogue and user behaviour: popularity, content (MiniLM + faiss),
collaborative filtering (``implicit`` ALS and BPR) and a tuned hybrid, each with explanations.

Logic only (no streamlit): the CLI (:mod:`apps.recommender.cli`, ``lepton-rec``), the HTTP
router (:mod:`apps.recommender.api`) and tests share it.
"""
