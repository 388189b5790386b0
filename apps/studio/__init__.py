"""Model Studio: train, evaluate, compare and try models from the browser.

``store`` keeps runs (SQLAlchemy), ``worker`` trains one run in its own process, ``logic``
holds everything the pages compute; none of them imports streamlit.
"""
