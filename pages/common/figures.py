"""Plotly figure builders. They draw numbers they are given; they compute nothing about the model."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from pages.common.html import visible

MASKED = "#fef3c7"  # pale yellow: outside the blue weight scale, so a masked cell never reads as a small weight
MASKED_NAME = "pale yellow"  # what the texts call MASKED
MAX_HEIGHT = 760  # px: a long text gets a fixed-size map to zoom into (drag a box), not a page-long one
DENSE = 64  # rows or columns past which axis labels are thinned out
ATTENTION_COLORS = "Blues"  # attention weights, 0 to 1
# Colours of the series in line and bar charts: Okabe & Ito's palette for colour-vision deficiencies (yellow and
# black left out: too faint, and black is the text). Streamlit's own theme puts red beside pink.
SERIES = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9"]
# Signed values, one convention on every page: blue = positive, red = negative (RdBu, its own two ends for bars).
DIVERGING = "RdBu"  # heatmaps: red below 0, blue above
POSITIVE, NEGATIVE = "#2166ac", "#b2182b"  # bars and marks: a positive value blue, a negative one red
SIGNED = "Blue: positive, red: negative"  # the sentence a chart's caption uses for it


TITLE_PAD = 8  # px above a title at the top of a figure
LINE = 1.3  # a line of text takes this many times its font size


def legend_on_top(fig: go.Figure, font: int = 14, title_font: int = 17) -> go.Figure:
    """A horizontal legend between the title and the plot, never on the title: the title at the top of the figure,
    the legend just above the plot, and a top margin that holds both (each line LINE × its font size)."""
    lines = (fig.layout.title.text or "").count("<br>") + 1 if fig.layout.title.text else 0
    fig.update_layout(title=dict(y=1, yref="container", yanchor="top", pad=dict(t=TITLE_PAD)),
                      legend=dict(orientation="h", x=0, xanchor="left", y=1, yanchor="bottom"),
                      margin=dict(t=round(TITLE_PAD + lines * LINE * title_font + LINE * font + 10)))
    return fig


def plain(text: str) -> str:
    """Text for a Plotly label or title, shown as typed: Plotly reads <s>, <b>, <br> … as markup (an encoder–decoder's
    `<s>` became a strikethrough and `</s>` vanished), so < > & become entities, which it shows as the characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def labels(tokens: list[str], first: int = 0) -> list[str]:
    """Axis labels: position-prefixed (counting from `first`, for a window of a longer text) so repeated tokens stay
    distinct, whitespace visible, markup shown as text."""
    return [plain(f"{i}:{visible(t)[:14]}") for i, t in enumerate(tokens, first)]


def attention_heatmap(pattern: np.ndarray, tokens: list[str], title: str = "",
                      hidden: np.ndarray | None = None, key_tokens: list[str] | None = None,
                      ytitle: str = "query (attending)", xtitle: str = "key (attended to)", first: int = 0
                      ) -> go.Figure:
    """rows = query tokens, columns = key tokens (`key_tokens` when they differ, as in cross-attention); cells the
    model's mask hides (`hidden`, True = masked) are drawn pale yellow (MASKED) with 'masked' on hover. `first`: the
    position of the first token, when the map shows a window of a longer text."""
    T, S = pattern.shape
    z = pattern.astype(float).copy()
    text = np.vectorize(lambda v: f"{v:.3f}")(z)
    if hidden is not None:
        z[hidden] = np.nan
        text[hidden] = "masked (future)"
    ay = labels(tokens, first)
    ax = ay if key_tokens is None else labels(key_tokens, first)
    fig = go.Figure(
        go.Heatmap(
            z=z, x=ax, y=ay, colorscale=ATTENTION_COLORS, zmin=0, zmax=1, text=text, hoverongaps=False,
            hovertemplate="query %{y}<br>key %{x}<br>weight %{text}<extra></extra>", colorbar=dict(title="weight"),
        )
    )
    fig.update_layout(
        # masked cells are gaps that show the background; with nothing masked (an encoder) no yellow anywhere
        title=title, plot_bgcolor=MASKED if hidden is not None and hidden.any() else "white",
        height=min(MAX_HEIGHT, max(320, 22 * T + 140)), margin=dict(l=10, r=10, t=40, b=10),
        xaxis=dict(title=xtitle, tickangle=-60, side="bottom", range=[-0.5, S - 0.5]),
        yaxis=dict(title=ytitle, range=[T - 0.5, -0.5]),  # query 0 at the top, no padding
    )
    return thin_labels(fig, T, S)


def thin_labels(fig: go.Figure, n_rows: int, n_cols: int) -> go.Figure:
    """Past DENSE rows or columns show every k-th label (each cell still names its token on hover)."""
    if n_cols > DENSE:
        fig.update_xaxes(nticks=DENSE // 2)
    if n_rows > DENSE:
        fig.update_yaxes(nticks=DENSE // 2)
    return fig


def attention_grid(patterns: list[np.ndarray], n_heads: int, labels_fn=None,
                   hidden: np.ndarray | None = None) -> go.Figure:
    """All layers × heads in ONE heatmap: row block = layer, column block = head, one grey gap between blocks
    (one trace instead of layers × heads subplots keeps the page fast)."""
    n_layers, T = len(patterns), patterns[0].shape[-1]
    step = T + 1
    z = np.full((n_layers * step - 1, n_heads * step - 1), np.nan)
    future = np.zeros((T, T), dtype=bool) if hidden is None else hidden
    for lay, pattern in enumerate(patterns):
        for h in range(n_heads):
            block = pattern[h].astype(float).copy()
            block[future] = np.nan
            z[lay * step: lay * step + T, h * step: h * step + T] = block
    fig = go.Figure(go.Heatmap(z=z.astype(np.float32), colorscale=ATTENTION_COLORS, zmin=0, zmax=1, hoverongaps=False,
                               hovertemplate="weight %{z:.3f}<extra></extra>", colorbar=dict(title="weight")))
    # float32: half the bytes sent for SmolLM2's 270 heads, and still 7 digits where the hover shows 3
    centers = [i * step + T / 2 for i in range(max(n_layers, n_heads))]
    head_text = [f"H{h}" for h in range(n_heads)]
    layer_text = [labels_fn(lay, None) if labels_fn else f"L{lay}" for lay in range(n_layers)]
    fig.update_xaxes(tickvals=centers[:n_heads], ticktext=head_text, side="top", showgrid=False)
    fig.update_yaxes(tickvals=centers[:n_layers], ticktext=layer_text, autorange="reversed", showgrid=False)
    fig.update_layout(height=max(300, 130 * n_layers + 60), margin=dict(l=10, r=10, t=30, b=10), plot_bgcolor="white")
    return fig


def heatmap(z: np.ndarray, x=None, y=None, title: str = "", colorscale: str = DIVERGING, zmid: float | None = 0.0,
            xtitle: str = "", ytitle: str = "", height: int = 380, text=None, robust: bool = False) -> go.Figure:
    """robust: the colour range covers the central 99% of |values| (symmetric around 0), so a few outliers cannot
    wash everything else out; the outliers show in the extreme colour, their values on hover."""
    limits = {}
    if robust and np.isfinite(z).any():
        bound = float(np.nanpercentile(np.abs(z), 99)) or 1.0
        limits = {"zmin": -bound, "zmax": bound}
    readable = text is not None and z.shape[-1] <= 40  # cell labels only while they fit
    hover = "%{y} · %{x}<br>%{text} (%{z:.3f})<extra></extra>" if text is not None else None
    fig = go.Figure(go.Heatmap(z=z, x=x, y=y, colorscale=colorscale, zmid=None if limits else zmid, text=text,
                               texttemplate="%{text}" if readable else None, hovertemplate=hover, **limits))
    fig.update_layout(title=title, height=min(MAX_HEIGHT, height), margin=dict(l=10, r=10, t=40, b=10),
                      xaxis_title=xtitle, yaxis_title=ytitle)
    fig.update_yaxes(autorange="reversed")
    return thin_labels(fig, z.shape[0], z.shape[-1])


def bars(labels_: list[str], values: list[float], title: str = "", xtitle: str = "probability") -> go.Figure:
    fig = go.Figure(go.Bar(x=values, y=[plain(label) for label in labels_], orientation="h", text=[f"{v:.3f}" for v in values],
                           textposition="outside", cliponaxis=False))
    top = max(values, default=1.0)
    fig.update_layout(title=title, height=max(260, 28 * len(values) + 80), margin=dict(l=10, r=60, t=40, b=10),
                      xaxis_title=xtitle, xaxis_range=[0, top * 1.15 if top > 0 else 1])  # room for the labels
    fig.update_yaxes(autorange="reversed")
    return fig


def rotation(before: np.ndarray, after: np.ndarray, labels: list[str], title: str = "") -> go.Figure:
    """2-D points before (hollow) and after (filled) a rotation, joined by a line, one per token."""
    lines_x, lines_y = [], []
    for (x0, y0), (x1, y1) in zip(before, after):
        lines_x += [x0, x1, None]
        lines_y += [y0, y1, None]
    fig = go.Figure([
        go.Scatter(x=lines_x, y=lines_y, mode="lines", line=dict(color="#cbd5e1"), hoverinfo="skip", showlegend=False),
        go.Scatter(x=before[:, 0], y=before[:, 1], mode="markers", text=labels, name="before rotation",
                   marker=dict(symbol="circle-open", size=9, color="#64748b"), hovertemplate="%{text}<extra></extra>"),
        go.Scatter(x=after[:, 0], y=after[:, 1], mode="markers+text", text=labels, name="after rotation (used)",
                   textposition="top center", marker=dict(size=9, color="#dc2626"), hovertemplate="%{text}<extra></extra>"),
    ])
    fig.update_layout(title=title, height=420, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h"))
    fig.update_yaxes(scaleanchor="x", scaleratio=1)  # a rotation must look like one
    return fig


def tree(places: list[tuple[int, int]], parents: list[int | None], labels: list[str], highlight: set[int],
         current: int) -> go.Figure:
    """A generation tree drawn left to right: each node a token, edges to its parent; the current path in red.
    The nodes are the second trace, in node order, so a clicked point's index is its node."""
    edges_x, edges_y = [], []
    for node, parent in enumerate(parents):
        if parent is not None:
            edges_x += [places[parent][0], places[node][0], None]
            edges_y += [places[parent][1], places[node][1], None]
    colours = ["#dc2626" if i in highlight else "#64748b" for i in range(len(places))]
    sizes = [16 if i == current else 10 for i in range(len(places))]
    fig = go.Figure([
        go.Scatter(x=edges_x, y=edges_y, mode="lines", line=dict(color="#cbd5e1"), hoverinfo="skip", showlegend=False),
        go.Scatter(x=[p[0] for p in places], y=[p[1] for p in places], mode="markers+text", text=labels,
                   textposition="top center", marker=dict(color=colours, size=sizes),
                   hovertemplate="%{text}<extra>click to rewind here</extra>", showlegend=False),
    ])
    rows = max(p[1] for p in places) + 1
    fig.update_layout(height=max(200, 60 * rows + 80), margin=dict(l=10, r=10, t=30, b=10), plot_bgcolor="white",
                      xaxis=dict(visible=False), yaxis=dict(visible=False, autorange="reversed"), clickmode="event+select")
    return fig


def two_axes(x, left: tuple[str, list[float]], right: tuple[str, list[float]], title: str = "",
             xtitle: str = "") -> go.Figure:
    """Two curves over the same x, each on its own y-axis (entropy in nats beside a probability)."""
    fig = go.Figure([go.Scatter(x=x, y=left[1], name=left[0], mode="lines", line_color="#0068c9"),
                     go.Scatter(x=x, y=right[1], name=right[0], mode="lines", yaxis="y2", line_color="#e8590c",
                                line_dash="dash")])  # blue and dashed orange: apart for every colour vision
    fig.update_layout(title=title, height=360, margin=dict(l=10, r=10, t=40, b=10), xaxis_title=xtitle,
                      yaxis=dict(title=left[0]), yaxis2=dict(title=right[0], overlaying="y", side="right",
                                                             range=[0, 1.02]),
                      legend=dict(orientation="h", y=-0.25))
    return fig


def grouped_bars(categories: list[str], series: dict[str, list[float]], title: str = "", ytitle: str = "") -> go.Figure:
    fig = go.Figure([go.Bar(name=name, x=categories, y=values) for name, values in series.items()])
    fig.update_layout(barmode="group", title=title, height=380, margin=dict(l=10, r=10, t=40, b=10),
                      yaxis_title=ytitle)
    return fig


def lines(x, series: dict[str, list[float]], title: str = "", xtitle: str = "", ytitle: str = "",
          height: int = 340) -> go.Figure:
    fig = go.Figure([go.Scatter(x=x, y=y, mode="lines+markers" if len(y) < 40 else "lines", name=name)
                     for name, y in series.items()])
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=40, b=10), xaxis_title=xtitle,
                      yaxis_title=ytitle)
    return fig


def scatter_tokens(coords: np.ndarray, hover: list[str], marked: np.ndarray, marked_labels: list[str], dims: int = 2,
                   title: str = "") -> go.Figure:
    """The embedding cloud, with the typed tokens (their own coordinates, `marked`) drawn large and labelled."""
    if dims == 3:
        base = go.Scatter3d(x=coords[:, 0], y=coords[:, 1], z=coords[:, 2], mode="markers", text=hover,
                            marker=dict(size=2, color="#94a3b8"), hoverinfo="text", name="vocabulary")
        mark = go.Scatter3d(x=marked[:, 0], y=marked[:, 1], z=marked[:, 2], mode="markers+text", text=marked_labels,
                            marker=dict(size=6, color="#dc2626"), name="your tokens")
    else:
        base = go.Scattergl(x=coords[:, 0], y=coords[:, 1], mode="markers", text=hover, hoverinfo="text",
                            marker=dict(size=4, color="#94a3b8", opacity=0.6), name="vocabulary")
        mark = go.Scatter(x=marked[:, 0], y=marked[:, 1], mode="markers+text", text=marked_labels,
                          textposition="top center", marker=dict(size=10, color="#dc2626"), name="your tokens")
    fig = go.Figure([base, mark])
    fig.update_layout(title=title, height=560, margin=dict(l=10, r=10, t=40, b=10))
    if dims == 2:  # equal units on both axes: distances on screen are distances in the projection
        fig.update_layout(xaxis_title="principal component 1", yaxis_title="principal component 2")
        fig.update_yaxes(scaleanchor="x", scaleratio=1)
    else:
        fig.update_layout(scene=dict(xaxis_title="PC 1", yaxis_title="PC 2", zaxis_title="PC 3", aspectmode="data"))
    return fig
