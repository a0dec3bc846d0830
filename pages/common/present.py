"""Presenter mode: a classroom projector needs large type, high contrast and one idea per screen. It is a URL switch
(`present=1`, or the sidebar's toggle, which writes `present=true`) so a teacher can share a link that opens in it."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

KEY = "present"
TRUE = ("1", "true", "yes", "on")
FONT = 20  # px: chart text readable from the back of a room

STYLE = """<style>
html { font-size: 22px; }
[data-testid="stMain"] { color: #000; background: #fff; }
[data-testid="stMainBlockContainer"] { max-width: 1500px; padding-top: 2.2rem; }
[data-testid="stMarkdownContainer"] p, [data-testid="stMarkdownContainer"] li { font-size: 1.2rem; line-height: 1.5; }
[data-testid="stCaptionContainer"] { color: #1f2937; font-size: 1rem; }
h1 { font-size: 2.6rem !important; } h2, h3 { font-size: 1.9rem !important; }
.stButton button, .stDownloadButton button { font-size: 1.1rem; min-height: 3rem; }
[data-testid="stDataFrame"] { font-size: 1.1rem; }
</style>"""


def from_link() -> bool:
    """What the address bar asks for, before any widget is drawn (app.py needs it for the page config)."""
    return str(st.query_params.get(KEY, "")).lower() in TRUE


def on() -> bool:
    value = st.session_state.get(KEY)
    return from_link() if value is None else bool(value)


def enlarge(fig: go.Figure) -> go.Figure:
    """A copy with large type and a taller plot (the page's own figure is left as it was)."""
    big = go.Figure(fig)
    height = big.layout.height or 450
    big.update_layout(font=dict(size=FONT), title_font_size=FONT + 6, height=int(height * 1.25),
                      hoverlabel=dict(font_size=FONT), legend_font_size=FONT)
    big.update_xaxes(tickfont_size=FONT - 2, title_font_size=FONT)  # the theme sets these apart from the font
    big.update_yaxes(tickfont_size=FONT - 2, title_font_size=FONT)
    return big


def toggle() -> bool:
    """The sidebar's switch. It writes `present=1` into the address bar itself (a bound toggle would drop a link's
    `1` it cannot parse, and leave out a value equal to its default), so a copied link keeps presenter mode."""
    st.session_state[KEY] = bool(st.session_state.get(KEY, from_link()))  # re-assigned: survives page switches
    value = st.toggle("Presenter mode", key=KEY, help="Large type and high contrast for a projector, the sidebar "
                      "folded away. A link with present=1 opens in it.")
    if value and st.query_params.get(KEY) != "1":
        st.query_params[KEY] = "1"
    elif not value and KEY in st.query_params:
        del st.query_params[KEY]
    return value
