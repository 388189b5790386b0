"""The recommender's Streamlit page (the only modules of apps.recommender that import streamlit)."""
