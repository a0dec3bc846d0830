"""Plotly figure builders. They draw numbers they are given; they compute nothing about the model."""

from __future__ import annotations

import unicodedata

import numpy as np
import plotly.graph_objects as go
from plotly.colors import get_colorscale
from plotly.subplots import make_subplots

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
    model's mask hides (`hidden`, True = masked) are gaps drawn pale yellow (MASKED), with no hover. `first`: the
    position of the first token, when the map shows a window of a longer text.

    The weights go to the browser as float32 (plotly sends them as one base64 typed array) and each cell's hover
    formats its own value: a 768-token map is 4 MB built in 0.02 s, where a string per cell made it 12 MB in 0.8 s."""
    T, S = pattern.shape
    z = pattern.astype(np.float32, copy=True)
    if hidden is not None:
        z[hidden] = np.nan
    ay = labels(tokens, first)
    ax = ay if key_tokens is None else labels(key_tokens, first)
    heat = dict(type="heatmap", z=z, x=ax, y=ay, colorscale=get_colorscale(ATTENTION_COLORS), zmin=0, zmax=1,
                hoverongaps=False, hovertemplate="query %{y}<br>key %{x}<br>weight %{z:.3f}<extra></extra>",
                colorbar=dict(title=dict(text="weight")))
    layout = dict(
        # masked cells are gaps that show the background; with nothing masked (an encoder) no yellow anywhere
        title=dict(text=title), plot_bgcolor=MASKED if hidden is not None and hidden.any() else "white",
        height=min(MAX_HEIGHT, max(320, 22 * T + 140)), margin=dict(l=10, r=10, t=40, b=10),
        xaxis=dict(title=dict(text=xtitle), tickangle=-60, side="bottom", range=[-0.5, S - 0.5]),
        yaxis=dict(title=dict(text=ytitle), range=[T - 0.5, -0.5]),  # query 0 at the top, no padding
    )
    layout["xaxis"].update(thinned(S))
    layout["yaxis"].update(thinned(T))
    layout["margin"].update(margins(ay, ax, -60, bool(xtitle), bool(ytitle)))
    layout["xaxis"]["automargin"] = layout["yaxis"]["automargin"] = False
    # Built from plain dicts without Plotly's validation (5 → 1 ms; the page asks for one on every text and head)
    return go.Figure(data=[heat], layout=layout, _validate=False)


TICK_FONT, TITLE_ROOM = 12, 28  # px: the theme's tick label size; an axis title's line and its gap to the labels
CHAR = 0.62  # a character's width, as a share of the font size (generous for this sans-serif; a wide one counts 2)


def label_width(labels, font: int = TICK_FONT) -> float:
    """The px the longest of `labels` takes across: CJK characters and emoji (East Asian wide) count twice."""
    return max((sum(1 + (unicodedata.east_asian_width(ch) in "WF") for ch in str(label)) for label in labels),
               default=0) * CHAR * font


def label_height(labels, angle: float, font: int = TICK_FONT) -> float:
    """The px `labels` turned `angle` degrees take below an x axis: width × sin + one line × cos."""
    a = np.radians(abs(angle))
    return label_width(labels, font) * np.sin(a) + font * np.cos(a)


def margins(y_labels, x_labels, x_angle: float = 0.0, x_title: bool = False, y_title: bool = False) -> dict:
    """The left and bottom margins (px) that hold the tick labels and axis titles, computed here instead of measured
    in the browser: Plotly's automargin measures every label and draws the chart again (a 20-token attention map
    drew in ~40 ms instead of ~65 ms in Chromium without it). Presenter mode's large type turns it back on."""
    left = label_width(y_labels) + TITLE_ROOM * y_title + 10
    bottom = label_height(x_labels, x_angle) + TITLE_ROOM * x_title + 10
    return {"l": round(left), "b": round(bottom)}


def thinned(n: int) -> dict:
    """An axis of n labels: past DENSE, every k-th label shown (each cell still names its token on hover)."""
    return {"nticks": DENSE // 2} if n > DENSE else {}


def thin_labels(fig: go.Figure, n_rows: int, n_cols: int) -> go.Figure:
    """`thinned` on a figure's two axes."""
    fig.update_xaxes(**thinned(n_cols))
    fig.update_yaxes(**thinned(n_rows))
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
    z = np.asarray(z)
    if z.dtype.kind == "f":  # sent as one base64 float32 array: half the bytes of float64, 7 digits where hover shows 3
        z = z.astype(np.float32)
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
                      yaxis=dict(title=left[0]),
                      # its own round ticks (0, 0.2 … 1) and no grid of its own: the theme would sync its ticks to
                      # the left axis's grid lines, at values such as 0.051 and 0.884
                      yaxis2=dict(title=right[0], overlaying="y", side="right", range=[0, 1.02], tickmode="linear",
                                  tick0=0, dtick=0.2, showgrid=False),
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


# --- the lesson's pictures: vectors as strips, one query's scores as bars per key, a sum as stacked parts ---

MASKED_BAR = "#9ca3af"  # grey, hatched: a key the mask hides (its score −∞), never read as a small value
STRIP_ROW = 34  # px per strip


def length(vector) -> float:
    return float(np.linalg.norm(np.asarray(vector, dtype=float)))


def strips(vectors: dict[str, np.ndarray], title: str = "", bound: float | None = None) -> go.Figure:
    """Each vector one row of coloured cells (blue above 0, red below, one scale for all rows so that rows can be
    compared and added), labelled with its length (L2 norm) and size; every number on hover. Rows may differ in
    size (a head's hs numbers beside the stream's d). bound: the scale's end (default: the largest |value|)."""
    rows = {name: np.asarray(v, dtype=float).reshape(-1) for name, v in vectors.items()}
    bound = bound or max((float(np.abs(v).max()) for v in rows.values() if v.size), default=1.0) or 1.0
    fig = make_subplots(rows=len(rows), cols=1, vertical_spacing=min(0.5 / len(rows), 0.12))
    for r, (name, v) in enumerate(rows.items(), 1):
        label = plain(f"{name}  ‖·‖ {length(v):.2f}  ({v.size} numbers)")
        fig.add_trace(go.Heatmap(
            z=v[None, :], y=[label], colorscale=DIVERGING, zmin=-bound, zmax=bound, showscale=r == 1, name=label,
            colorbar=dict(title="value", thickness=12, len=1, y=0.5, yanchor="middle"), xgap=0,
            hovertemplate=plain(name) + "<br>number %{x}: %{z:.4f}<extra></extra>"), row=r, col=1)
        fig.update_yaxes(showticklabels=False, row=r, col=1)
        fig.update_xaxes(showticklabels=r == len(rows), row=r, col=1)
        fig.add_annotation(text=f"<b>{label}</b>", x=0, y=1, xref=f"x{r if r > 1 else ''} domain",
                           yref=f"y{r if r > 1 else ''} domain", xanchor="left", yanchor="bottom",
                           showarrow=False, font=dict(size=12))
    fig.update_layout(title=title, height=70 + (STRIP_ROW + 26) * len(rows), margin=dict(l=10, r=10, t=50, b=10),
                      plot_bgcolor="white")
    return fig


def key_bars(keys: list[str], values, masked=None, title: str = "", ytitle: str = "score", first: int = 0,
             behind=None, behind_name: str = "", masked_text: str = "−∞") -> go.Figure:
    """One bar per key (labelled by position and token): blue above 0, red below; the keys in `masked` (True =
    the mask hides it) drawn as grey hatched bars reaching the bottom, labelled `masked_text` (their score is −∞;
    after the softmax their weight is 0). `behind`: other values drawn as pale outlined bars under these (the same
    scores before a rescaling). The drawn keys' real values are the first trace's y."""
    values = np.asarray(values, dtype=float)
    masked = np.zeros(len(values), dtype=bool) if masked is None else np.asarray(masked, dtype=bool)
    x = labels(keys, first)
    shown = np.where(masked, np.nan, values)
    seen = [v for v in shown if np.isfinite(v)] + ([] if behind is None else list(np.asarray(behind, float)[~masked]))
    low, high = min(seen + [0.0]), max(seen + [0.0])
    floor = low - 0.15 * ((high - low) or 1.0)
    colours = [POSITIVE if v >= 0 else NEGATIVE for v in np.nan_to_num(shown)]
    traces = [go.Bar(x=x, y=shown, name=ytitle, marker_color=colours, text=[f"{v:.3f}" for v in shown],
                     textposition="outside", cliponaxis=False, hovertemplate="key %{x}<br>" + ytitle +
                     " %{y:.4f}<extra></extra>")]
    if behind is not None:
        traces.append(go.Bar(x=x, y=np.where(masked, np.nan, np.asarray(behind, float)), name=behind_name,
                             marker=dict(color="rgba(0,0,0,0)", line=dict(color="#64748b", width=1.5)),
                             hovertemplate="key %{x}<br>" + behind_name + " %{y:.4f}<extra></extra>"))
    if masked.any():
        traces.append(go.Bar(x=[x[i] for i in np.flatnonzero(masked)], y=[floor] * int(masked.sum()),
                             name=f"masked ({masked_text})", text=[masked_text] * int(masked.sum()),
                             textposition="inside", marker=dict(color=MASKED_BAR, pattern=dict(shape="/")),
                             hovertemplate="key %{x}<br>masked: this query may not see it (score −∞, weight 0)"
                                           "<extra></extra>"))
    fig = go.Figure(traces)
    fig.update_layout(title=title, barmode="overlay", height=340, margin=dict(l=10, r=10, t=50, b=10),
                      yaxis=dict(title=ytitle, range=[floor if masked.any() else low - 0.05 * abs(low),
                                                      high + 0.15 * ((high - low) or 1.0)]),
                      xaxis=dict(tickangle=-45), showlegend=behind is not None or bool(masked.any()),
                      legend=dict(orientation="h", y=1.02, yanchor="bottom", x=0))
    return fig


def stacked_parts(parts: dict[str, np.ndarray], total: np.ndarray, title: str = "", xtitle: str = "number",
                  total_name: str = "the sum") -> go.Figure:
    """A vector as the sum of its parts: one stacked bar per number, a part each colour (SERIES), positive parts
    stacked up and negative ones down, and the sum as a black mark on each bar; every part's number on hover."""
    total = np.asarray(total, dtype=float).reshape(-1)
    x = list(range(total.size))
    fig = go.Figure([go.Bar(x=x, y=np.asarray(v, dtype=float).reshape(-1), name=plain(name),
                            marker_color=SERIES[i % len(SERIES)],
                            hovertemplate=plain(name) + "<br>number %{x}: %{y:.4f}<extra></extra>")
                     for i, (name, v) in enumerate(parts.items())])
    fig.add_trace(go.Scatter(x=x, y=total, mode="markers", name=plain(total_name), marker=dict(
        color="black", symbol="line-ew-open", size=10, line=dict(width=2)),
        hovertemplate=plain(total_name) + "<br>number %{x}: %{y:.4f}<extra></extra>"))
    fig.update_layout(barmode="relative", title=title, height=380, margin=dict(l=10, r=10, t=50, b=10),
                      xaxis_title=xtitle, yaxis_title="value", bargap=0.1)
    return legend_on_top(fig)


def feed_forward(stream: np.ndarray, hidden: np.ndarray, out: np.ndarray, fired: list[int], names: tuple[str, str, str],
                 title: str = "") -> go.Figure:
    """d → m → d: the stream it reads and what it adds as strips (blue above 0, red below), between them the m hidden
    units as bars, the units in `fired` (the strongest) labelled; every number on hover."""
    hidden = np.asarray(hidden, dtype=float).reshape(-1)
    fig = make_subplots(rows=3, cols=1, row_heights=[0.15, 0.7, 0.15], vertical_spacing=0.12,
                        subplot_titles=[plain(n) for n in names])
    for row, v in ((1, stream), (3, out)):
        v = np.asarray(v, dtype=float).reshape(-1)
        bound = float(np.abs(v).max()) or 1.0
        fig.add_trace(go.Heatmap(z=v[None, :], colorscale=DIVERGING, zmin=-bound, zmax=bound, showscale=False,
                                 name=plain(names[row - 1]), hovertemplate="number %{x}: %{z:.4f}<extra></extra>"),
                      row=row, col=1)
        fig.update_yaxes(showticklabels=False, row=row, col=1)
    fig.add_trace(go.Bar(x=list(range(hidden.size)), y=hidden, name=plain(names[1]), marker_line_width=0,
                         marker_color=[POSITIVE if v >= 0 else NEGATIVE for v in hidden],
                         hovertemplate="unit %{x}: %{y:.4f}<extra></extra>"), row=2, col=1)
    for unit in fired:
        fig.add_annotation(x=unit, y=hidden[unit], text=f"unit {unit}", showarrow=True, arrowhead=0, ax=0,
                           ay=-18 if hidden[unit] >= 0 else 18, font=dict(size=11), row=2, col=1)
    fig.update_layout(title=title, height=440, margin=dict(l=10, r=10, t=60, b=10), showlegend=False,
                      plot_bgcolor="white", bargap=0)
    return fig


def weight_matrix(m) -> go.Figure:
    """A weight matrix (core.interpret.matrices.Matrix) as a heatmap in x @ W orientation: hover gives each cell's
    true rows and columns; dotted lines mark the heads; the followed token's embedding row is outlined."""
    R, C = m.shape
    rows = [m.first_row + int(i * m.row_step) for i in range(m.values.shape[0])]
    cols = [int(j * m.col_step) for j in range(m.values.shape[1])]
    per = f"each cell the mean of {m.row_step:.0f} × {m.col_step:.0f} entries" if m.row_step * m.col_step > 1 else \
        "every entry"
    fig = heatmap(m.values.numpy(), x=cols, y=rows, robust=True, height=520, xtitle=m.cols, ytitle=m.rows,
                  title=f"{m.name}: {R:,} × {C:,} ({per})")
    fig.update_traces(hovertemplate="row %{y} · column %{x}: %{z:.4f}<extra></extra>")
    for step, axis in ((m.col_group, "x"), (m.row_group, "y")):
        for edge in range(step, (C if axis == "x" else R), step) if step else ():
            line = dict(type="line", line=dict(color="black", width=1, dash="dot"))
            fig.add_shape(**line, **({"x0": edge, "x1": edge, "y0": rows[0], "y1": rows[-1]} if axis == "x" else
                                     {"y0": edge, "y1": edge, "x0": cols[0], "x1": cols[-1]}))
    if m.marked_row is not None:
        fig.add_shape(type="rect", x0=cols[0] - 0.5, x1=cols[-1] + 0.5, y0=m.marked_row - 0.5, y1=m.marked_row + 0.5,
                      line=dict(color="black", width=2))
    return fig
