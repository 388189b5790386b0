"""The finance monitor's Streamlit pages (views over :mod:`apps.finance.views`)."""
