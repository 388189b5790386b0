"""The suite's own pages (Home) and the links between pages.

Not ``apps/pages/``: Streamlit treats a ``pages/`` folder beside the entry script as a
legacy page directory and answers a deep link (``/train``) with "Page not found".
"""
