"""The suite's own pages (Home) and the Streamlit pieces every application's pages share."""
