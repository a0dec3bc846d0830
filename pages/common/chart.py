"""Every chart and coloured token view a page draws goes through here, so each one gets the same things: a visible
row of download buttons (PNG and SVG drawn by the browser's own Plotly, the numbers as CSV; a token view as PNG or
self-contained HTML), a file name that says the model, the page, the chart and its layer and head, a text
alternative for screen readers, and presenter mode's large type. The buttons are handled in the browser by
assets/ui/glassbox.js: nothing is rendered on the server and nothing is fetched from outside, so they work offline
and cost the page nothing until clicked."""

from __future__ import annotations

import functools
import html
import logging
import re

import plotly.graph_objects as go
import streamlit as st

from core.loading.integrity import ASSETS, DamagedFile, check_asset
from pages.common import figures, present

SAFE = re.compile(r"[^A-Za-z0-9_-]+")
STYLE = (
    "<style>[data-testid='stMarkdownContainer'] code {white-space: nowrap}"  # `cl100k_base` never breaks inside
    ".gb-exports {display: flex; gap: 6px; justify-content: flex-end; margin-top: -6px}"
    ".gb-exports button {font: 12px sans-serif; padding: 2px 10px; border: 1px solid #94a3b8; border-radius: 6px;"
    " background: #fff; color: #1e293b; cursor: pointer}"
    ".gb-exports button:hover, .gb-exports button:focus-visible {border-color: #1d4ed8; color: #1d4ed8;"
    " outline: 2px solid #1d4ed8}</style>"
)


@functools.lru_cache(maxsize=1)
def browser_side() -> str:
    """What app.py sends once per run: the shared styles and the buttons' script (assets/ui/glassbox.js). A damaged
    script is left out — the buttons then do nothing, and the server log says why — rather than run."""
    path = ASSETS / "ui" / "glassbox.js"
    try:
        check_asset(path)
        return STYLE + f"<script>{path.read_text(encoding='utf-8')}</script>"
    except (DamagedFile, OSError) as err:
        logging.getLogger("glassbox").warning("download buttons disabled: %s", err)
        return STYLE


def css_key(key: str) -> str:
    """The class Streamlit gives an element with this key (`st-key-…`), as the browser script looks it up."""
    return SAFE.sub("-", key)


def file_name(key: str, layer: int | None = None, head: int | None = None) -> str:
    """glassbox_<model>_<page>_<chart>[_L<layer>][_H<head>], safe on every file system."""
    ctx = st.session_state.get("ctx")
    parts = ["glassbox", ctx.model_name if ctx else "model", st.session_state.get("_page", "page"), key]
    parts += [f"L{layer}"] if layer is not None else []
    parts += [f"H{head}"] if head is not None else []
    return "_".join(SAFE.sub("-", p).strip("-") for p in parts)


def _title(axis_or_layout) -> str:
    title = getattr(axis_or_layout, "title", None)
    text = getattr(title, "text", None) if title is not None else None
    return re.sub(r"<[^>]+>", " ", html.unescape(text)).strip() if text else ""


def describe(fig: go.Figure) -> str:
    """A sentence for screen readers from what the figure says about itself: its kind, title and axes."""
    kinds = {"heatmap": "Heatmap", "bar": "Bar chart", "scatter": "Line or point chart", "scattergl": "Point chart",
             "scatter3d": "3-D point chart"}
    kind = kinds.get(fig.data[0].type, "Chart") if fig.data else "Chart"
    layout = fig.layout
    axes = [f"{name}: {t}" for name, t in (("horizontal axis", _title(layout.xaxis)),
                                           ("vertical axis", _title(layout.yaxis))) if t]
    names = [t.name for t in fig.data if getattr(t, "name", None)]
    series = [f"series: {', '.join(names[:6])}"] if len(names) > 1 else []
    return ". ".join([f"{kind}" + (f": {_title(layout)}" if _title(layout) else "")] + axes + series) + "."


def buttons(key: str, name: str, formats: tuple[str, ...], kind: str = "chart") -> str:
    cells = "".join(
        f'<button type="button" data-gb-export="{f}" data-gb-kind="{kind}" data-gb-key="{css_key(key)}" '
        f'data-gb-name="{html.escape(name, quote=True)}" title="Download as {f.upper()}: {html.escape(name)}.{f}">'
        f"⬇ {f.upper()}</button>" for f in formats)
    return f'<div class="gb-exports" role="group" aria-label="Download">{cells}</div>'


def show(fig: go.Figure, key: str, where=None, alt: str | None = None, layer: int | None = None,
         head: int | None = None, **kwargs):
    """st.plotly_chart with the download row under it. `alt` replaces the description made from the figure's title
    and axes; `layer`/`head` go into the file name. Returns what st.plotly_chart returns (a selection event)."""
    where = where or st
    if present.on():
        fig = present.enlarge(fig)
    if not fig.layout.colorway:
        fig.update_layout(colorway=figures.SERIES)
    name = file_name(key, layer, head)
    config = {"displaylogo": False, "toImageButtonOptions": {"filename": name, "scale": 2}}
    event = where.plotly_chart(fig, key=key, width=kwargs.pop("width", "stretch"), config=config,
                               alt=alt or describe(fig), **kwargs)
    where.html(buttons(key, name, ("png", "svg", "csv")))
    return event


def tokens(spans_html: str, key: str, where=None, alt: str = "The text cut into coloured tokens") -> None:
    """A coloured token view (pages.common.html.token_spans) with PNG and HTML download buttons."""
    where = where or st
    box = where.container(key=key)
    box.html(f'<div role="group" aria-label="{html.escape(alt, quote=True)}">{spans_html}</div>')
    box.html(buttons(key, file_name(key), ("png", "html"), kind="tokens"))
