"""Applications built on the lepton-nlp core: the Streamlit suite and its Model Studio."""
