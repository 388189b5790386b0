"""What every application of the suite shares, none of it Streamlit: where its data is kept,
its database, process checks, the catalogue of ready models and the page registry."""
