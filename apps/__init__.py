"""Applications built on the lepton-nlp core, in one Streamlit suite: what they share
(``common``), the suite's own pages (``pages``) and the Model Studio (``studio``)."""
