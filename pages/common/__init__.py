"""Streamlit glue shared by the pages: caching, sidebar and URL state, figures, explanation texts, HTML."""
