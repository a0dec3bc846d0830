"""Presenter mode: a classroom projector needs large type, high contrast and one idea per screen. It is a URL switch
(`present=1`, or the sidebar's toggle, which writes `present=true`) so a teacher can share a link that opens in it."""

from __future__ import annotations

import textwrap

import plotly.graph_objects as go
import streamlit as st

from pages.common import figures

KEY = "present"
TRUE = ("1", "true", "yes", "on")
FONT = 20  # px: chart text readable from the back of a room
TITLE_CHARS = 48  # a title line at FONT + 6 px that fits half of a projected page (a chart in one of two columns)

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


def wrap_title(title: str, width: int = TITLE_CHARS) -> str:
    """A title broken into lines of at most `width` characters at spaces (Plotly never wraps a title: a long one runs
    off the chart), its own <br> breaks kept."""
    return "<br>".join(line for part in title.split("<br>")
                       for line in textwrap.wrap(part, width, break_long_words=False, break_on_hyphens=False) or [""])


def enlarge(fig: go.Figure) -> go.Figure:
    """A copy with large type and a taller plot (the page's own figure is left as it was): the title wrapped to fit
    a column at that size, and the top margin grown to hold it (and a legend on top, figures.legend_on_top)."""
    big = go.Figure(fig)
    height = big.layout.height or 450
    big.update_layout(font=dict(size=FONT), title_font_size=FONT + 6, height=int(height * 1.25),
                      hoverlabel=dict(font_size=FONT), legend_font_size=FONT)
    title = big.layout.title.text
    if title:
        wrapped = wrap_title(title)
        lines = wrapped.count("<br>") + 1
        legend_on_top = big.layout.legend.yanchor == "bottom" and (big.layout.legend.y or 0) >= 1
        room = figures.TITLE_PAD + lines * figures.LINE * (FONT + 6) + (figures.LINE * FONT if legend_on_top else 0)
        big.update_layout(title=dict(text=wrapped, y=1, yref="container", yanchor="top",
                                     pad=dict(t=figures.TITLE_PAD)),
                          margin_t=max(big.layout.margin.t or 0, round(room + 10)))
    # the theme sets these apart from the font; margins fixed for the page's type (figures.margins) are
    # measured again in the browser for the large type
    big.update_xaxes(tickfont_size=FONT - 2, title_font_size=FONT, automargin=True)
    big.update_yaxes(tickfont_size=FONT - 2, title_font_size=FONT, automargin=True)
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
