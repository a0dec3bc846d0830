"""Plotly builders for the Information flow page (core.interpret.flow's graph) and the Two models page (two texts' surprise on
one axis of characters). Like figures.py they draw what they are given and compute nothing about a model."""

from __future__ import annotations

import plotly.graph_objects as go

from core.interpret.flow import Edge
from pages.common.figures import SERIES, labels, plain

KINDS = {  # colour and legend of each kind of edge (Okabe & Ito: apart for every colour vision)
    "attention": ("#0072B2", "attention: a token's information moved to another position (or read again)"),
    "ffn": ("#E69F00", "feed-forward block (the square) writing into the stream"),
    "residual": ("#7c8ba1", "residual path: the stream carried up unchanged"),
}
WIDTHS = ((0.10, 1.2), (0.25, 2.5), (0.50, 4.5), (1.01, 7.0))  # share up to → line width (px)
FFN_SHIFT = 0.28  # the feed-forward square sits to the right of its position's column


def _row(node: tuple[str, int, int]) -> float:
    """The input at 0, block l's attention at 2l + 1, the stream leaving block l at 2l + 2."""
    stage, layer, _ = node
    return 0.0 if stage == "input" else 2 * layer + (1 if stage == "attn" else 2)


def _path(edge: Edge) -> tuple[list[float], list[float]]:
    """The points of one edge: attention between positions straight, a position reading itself bent to the left of
    its residual line, a feed-forward edge through its square on the right."""
    (x0, y0), (x1, y1) = (edge.source[2], _row(edge.source)), (edge.target[2], _row(edge.target))
    if edge.kind == "ffn":
        return [x0, x0 + FFN_SHIFT, x1], [y0, (y0 + y1) / 2, y1]
    if edge.kind == "attention" and x0 == x1:
        return [x0, x0 - 0.14, x1], [y0, (y0 + y1) / 2, y1]
    return [x0, x1], [y0, y1]


def _hover(edge: Edge, tokens: list[str]) -> str:
    into = f"the stream at “{tokens[edge.target[2]]}” ({edge.target[2]})"
    where = f"after block {edge.target[1]}'s attention" if edge.target[0] == "attn" else \
        f"leaving block {edge.target[1]}"
    if edge.kind == "attention":
        heads = ", ".join(f"head {h}: {w:.3f}" for h, w in edge.heads[:4])
        what = f"block {edge.target[1]}'s heads reading “{tokens[edge.source[2]]}” ({edge.source[2]})"
        return f"{what}<br>share of {into} {where}: {edge.share:.3f}<br>{heads}"
    if edge.kind == "ffn":
        return f"block {edge.target[1]}'s feed-forward block<br>share of {into} {where}: {edge.share:.3f}"
    return f"residual path<br>share of {into} {where}: {edge.share:.3f}"


def flow_graph(edges: list[Edge], n_layers: int, tokens: list[str], position: int, title: str,
               output_label: str) -> go.Figure:
    """The contribution graph: input tokens at the bottom, two rows per block (after its attention, after its
    feed-forward block), the followed stream at the top; edge width by share."""
    T = len(tokens)
    traces: list[go.Scatter] = []
    for kind, (colour, legend) in KINDS.items():
        shown = False
        lower = 0.0
        for upper, width in WIDTHS:
            xs, ys = [], []
            for edge in (e for e in edges if e.kind == kind and lower < e.share <= upper):
                px, py = _path(edge)
                xs += px + [None]
                ys += py + [None]
            lower = upper
            if not xs:
                continue
            traces.append(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color=colour, width=width), opacity=0.75,
                                     hoverinfo="skip", name=legend, legendgroup=kind, showlegend=not shown))
            shown = True
    mids = [(_path(e), e) for e in edges]
    traces.append(go.Scatter(  # invisible points mid-edge: the hover of each edge
        x=[sum(px) / len(px) if e.kind != "ffn" else px[1] for (px, _), e in mids],
        y=[sum(py) / len(py) for (_, py), _ in mids], mode="markers", marker=dict(size=9, opacity=0),
        text=[_hover(e, tokens) for e in edges], hovertemplate="%{text}<extra></extra>", showlegend=False))
    squares = [e.target for e in edges if e.kind == "ffn"]
    traces.append(go.Scatter(x=[n[2] + FFN_SHIFT for n in squares], y=[_row(n) - 0.5 for n in squares],
                             mode="markers", marker=dict(symbol="square", size=7, color=KINDS["ffn"][0]),
                             hoverinfo="skip", showlegend=False))
    ends = sorted({e.source for e in edges if e.source[0] == "input"}) + [("ffn", n_layers - 1, position)]
    traces.append(go.Scatter(x=[n[2] for n in ends], y=[_row(n) for n in ends], mode="markers",
                             marker=dict(size=9, color="#1e293b"), hoverinfo="skip", showlegend=False))
    fig = go.Figure(traces)
    rows = 2 * n_layers + 1
    per_row = max(13.0, min(48.0, 820 / rows))
    ticks = [0.0] + [2 * layer + 1.5 for layer in range(n_layers)]
    names = ["input"] + [f"block {layer}" for layer in range(n_layers)]
    fig.add_annotation(x=position, y=2 * n_layers + 0.6, text=plain(output_label), showarrow=False,
                       yanchor="bottom", font=dict(size=13, color="#b91c1c"))
    fig.update_layout(
        title=dict(text=title, y=0.995, yanchor="top"), height=int(rows * per_row + 230), plot_bgcolor="white",
        margin=dict(l=10, r=10, t=110, b=10),
        legend=dict(orientation="h", y=1.0, yanchor="bottom", x=0, font=dict(size=12)),
        xaxis=dict(tickvals=list(range(T)), ticktext=labels(tokens), tickangle=0 if T <= 12 else -45,
                   range=[-0.6, T - 0.4], automargin=True,
                   showgrid=True, gridcolor="#f1f5f9", zeroline=False, title="input token (position)", side="bottom"),
        yaxis=dict(tickvals=ticks, ticktext=names, range=[-0.6, 2 * n_layers + 1.6], showgrid=False, zeroline=False,
                   title="", tickfont=dict(size=11 if n_layers > 16 else 12)),
    )
    return fig


def surprise_by_byte(series: dict[str, tuple[list[int], list[float], list[str]]], title: str) -> go.Figure:
    """Each model's −log p of each token, drawn over the text's bytes that token covers: two tokenizers on one axis.
    series: name → (byte where each token ends, −log p, token labels)."""
    fig = go.Figure([go.Scatter(x=x, y=y, text=[plain(t) for t in text], name=name, mode="lines+markers",
                                line=dict(color=SERIES[i % len(SERIES)], shape="vh"),
                                hovertemplate="%{text}: %{y:.2f} nats (ends at byte %{x})<extra>" + plain(name)
                                              + "</extra>")
                     for i, (name, (x, y, text)) in enumerate(series.items())])
    fig.update_layout(title=title, height=360, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h"),
                      xaxis_title="bytes into the text (each token drawn over its own bytes)", yaxis_title="−log p (nats)")
    return fig
