"""The architecture picture: the loaded model drawn as one connected diagram with the followed token's real values
on it (core.interpret.architecture computes them), at the top of the Forward pass page and, with one part lit, as the guided
lesson's map.

Reading it: the grey vertical line is the residual stream; each ⊕ on it is an add. What flows down the stream is on
its left (a colour strip of the vector and its length after every stage); what reads the stream and adds to it —
attention, the feed-forward layer, with their norms where the model has them — is on its right. A block is one line
(how much its attention and feed-forward layer added) unless it is open, when its heads and hidden units show.

`figure(arch, highlight=…)` only draws; `show(ctx, position, key, …)` is the Streamlit glue: the "open a block"
choice, the cached data, the chart, and a click on a part opening its page at that layer.
"""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st
from plotly.colors import get_colorscale

from core.interpret.architecture import Architecture, BlockRow, Part, Strip, block_of, part_id
from core.interpret.norms import norm_of
from pages.common import figures
from pages.common.html import visible

# What each kind of part is drawn in: attention blue and feed-forward orange as in the Forward pass page's chart.
COLOURS = {"attn": "#2563eb", "head": "#2563eb", "cross": "#7c3aed", "mlp": "#f59e0b", "units": "#f59e0b",
           "norm": "#64748b", "embed": "#059669", "pos": "#059669", "rope": "#059669", "segment": "#059669",
           "unembed": "#db2777", "softmax": "#db2777", "output": "#0f766e"}
FILL = {"attn": "rgba(37,99,235,0.07)", "mlp": "rgba(245,158,11,0.09)", "norm": "rgba(100,116,139,0.10)"}
LIT = "#facc15"  # the highlighted part's band (a lesson step's place)
SPINE = "#94a3b8"
LINE = 18  # px per line of the picture
ROW = 20  # px per closed block
FONT = 11

# x positions (0–100 across the chart): row labels | the stream's strips | its length | the spine | the parts
LABEL_X, STREAM_X, NORM_X, SPINE_X, PART_X = 0.3, (11.5, 30.0), 30.6, 38.5, 41.0
PART_LABEL = (41.0, 66.0)  # a part's name and widths
PART_STRIP = (66.5, 91.0)
PART_VALUE = 91.6
NO_STRIP = Strip((), (), 0, 0.0)  # a line with no vector (a box's title)

# Where a click on a part goes: (page, setting(s) from the layer). Pages keep their layer in these keys.
PAGE_TITLES = {"tokenizer": "Tokenizer", "embeddings": "Embedding space", "positions": "Positional encoding",
               "attention": "Attention", "feed_forward": "Feed-forward layer", "residual": "Residual stream & norms",
               "next_token": "Next token", "translation": "Translation"}

def _norm_text(strip: Strip) -> str:
    return f"‖·‖ {strip.norm:.2f}"


class _Canvas:
    """Shapes, annotations and strips collected in px-high rows (y grows downwards), turned into one figure."""

    def __init__(self, lit: set[str]):
        self.y = 0.0
        self.lit = lit
        self.shapes: list[dict] = []
        self.notes: list[dict] = []  # arrows (annotations)
        self.labels: list[tuple[float, float, str, int, str, str]] = []  # x, y, text, size, colour, anchor
        self.strips: list[tuple[str, float, float, float, float, list[float], list[str]]] = []
        self.targets: list[tuple[float, float, str, str]] = []  # x, y, part name, hover
        self.spine_top = 0.0  # where the stream's line starts (the embedding's sum)
        self.enc_out = (0.0, 0.0)  # encoder–decoder: where the encoder's output is drawn

    def text(self, x: float, y: float, text: str, size: int = FONT, colour: str = "#111827", anchor: str = "left"
             ) -> None:
        """A label whose `anchor` side is at x, centred on y (all labels go to the browser as one text trace)."""
        self.labels.append((x, y, text, size, colour, anchor))

    def rect(self, x0, y0, x1, y1, fill="rgba(0,0,0,0)", line="rgba(0,0,0,0)", width=1, dash=None, layer="below"):
        self.shapes.append(dict(type="rect", x0=x0, x1=x1, y0=y0, y1=y1, fillcolor=fill, layer=layer,
                                line=dict(color=line, width=width, dash=dash)))

    def line(self, x0, y0, x1, y1, colour=SPINE, width=1.5, dash=None):
        self.shapes.append(dict(type="line", x0=x0, x1=x1, y0=y0, y1=y1, layer="below",
                                line=dict(color=colour, width=width, dash=dash)))

    def arrow(self, x0, y0, x1, y1, colour=SPINE):
        """An arrow from (x0, y0) to (x1, y1), head at the end."""
        self.notes.append(dict(x=x1, y=y1, ax=x0, ay=y0, xref="x", yref="y", axref="x", ayref="y", text="",
                               showarrow=True, arrowhead=2, arrowsize=1, arrowwidth=1.3, arrowcolor=colour))

    def add_mark(self, x: float, y: float) -> None:
        """⊕ on the stream."""
        self.shapes.append(dict(type="circle", x0=x - 0.9, x1=x + 0.9, y0=y - 6, y1=y + 6, fillcolor="white",
                                line=dict(color="#334155", width=1.3), layer="below"))  # under its "+" label
        self.text(x, y, "+", size=12, colour="#334155", anchor="center")

    def strip(self, part: Part, strip: Strip, x: tuple[float, float], y: float, height: float = 11) -> None:
        """The vector's cells as one row of the strips' heatmap, each cell on the strip's own colour scale (red < 0 <
        blue)."""
        scale = max(abs(v) for v in strip.cells) or 1.0
        hover = []
        for i, v in enumerate(strip.cells):
            a, b = strip.run(i)
            where = f"number {a}" if a == b else f"numbers {a}–{b}"
            hover.append(f"{visible(part.label)}: {where} of {strip.size:,}, {'value' if a == b else 'mean'} "
                         f"{v:+.3f}<br>length of the whole vector {strip.norm:.3f}")
        self.strips.append((part.name, x[0], x[1], y - height / 2, y + height / 2, [v / scale for v in strip.cells],
                            hover))
        self.rect(x[0], y - height / 2, x[1], y + height / 2, line="#cbd5e1", width=0.6, layer="above")

    def target(self, x: float, y: float, part: Part, hover: str) -> None:
        self.targets.append((x, y, part.name, hover))

    def band(self, part: Part, y0: float, y1: float, x0: float = 0.0, x1: float = 100.0) -> None:
        if part.name in self.lit:
            self.rect(x0, y0, x1, y1, fill="rgba(250,204,21,0.35)", line=LIT, width=2)


def _label(part: Part) -> str:
    return f"<b>{figures.plain(part.label)}</b> <span style='color:#64748b'>{figures.plain(part.width)}</span>"


def _where(part: Part) -> str:
    """The hover of a part's click target: where a click goes."""
    page = _target(part)
    if page is None:
        return visible(part.label)
    url_path, settings = page
    layer = next((v for k, v in settings.items() if k in ("layer", "ff.layer")), None)
    at = f" at layer {layer}" if layer is not None else ""
    at += f", head {settings['head']}" if "head" in settings else ""
    return f"{visible(part.label)} — click: open {PAGE_TITLES[url_path]}{at}"


def _target(part: Part, cfg=None) -> tuple[str, dict] | None:
    """The page a click on `part` opens, with the settings that put it at this part's layer."""
    kind, layer = part.kind, part.layer
    if part.name.startswith(("encoder.", "decoder.")) or part.name in ("unembed", "softmax") and cfg is not None \
            and cfg.encoder_decoder:
        return "translation", {}
    if kind == "tokens":
        return "tokenizer", {}
    if kind in ("embed", "segment"):
        return "embeddings", {}
    if kind in ("pos", "rope"):
        return "positions", {}
    if kind in ("attn", "head", "block"):
        settings = {"layer": layer}
        if part.head is not None:
            settings["head"] = part.head
        return "attention", settings
    if kind in ("mlp", "units"):
        return "feed_forward", {"ff.layer": layer}
    if kind in ("norm", "add", "stream", "output"):
        return "residual", {}
    if kind in ("unembed", "softmax"):
        return "next_token", {}
    return None


def target(arch: Architecture, name: str) -> tuple[str, dict] | None:
    """(page url path, session settings) that a click on the part `name` opens; the norms open the Residual page
    at that norm ("res.norm")."""
    part = arch.parts[name]
    page = _target(part, arch.config)
    if page and page[0] == "residual" and part.kind == "norm":
        cfg = arch.config
        norm = "ln_embed" if name == "ln_embed" else norm_of(cfg) if name == "ln_final" else \
            norm_of(cfg, part.layer, second=name.endswith("ln2"))
        page = ("residual", {"res.norm": norm})
    return page


def _part_line(c: _Canvas, part: Part, y: float, strip: Strip | None = None, value: str | None = None,
               label: str | None = None, indent: float = 0.0) -> None:
    """One line on the right of the stream: name and widths, the strip, its length (or `value`)."""
    strip = part.strip if strip is None else None if strip is NO_STRIP else strip
    c.band(part, y - LINE / 2, y + LINE / 2, PART_X - 1, 100)
    c.text(PART_LABEL[0] + indent, y, label or _label(part))
    if strip is not None:
        c.strip(part, strip, PART_STRIP, y)
        c.text(PART_VALUE, y, value or _norm_text(strip), size=10, colour="#334155")
    elif value:
        c.text(PART_STRIP[0], y, value, size=10, colour="#334155")
    c.target(PART_LABEL[0] + 2, y, part, _where(part))


def _stream_line(c: _Canvas, part: Part, y: float, label: str, strip: Strip | None = None, bold: bool = False
                 ) -> None:
    """The stream's vector after a stage, on the left of the spine, with the stage's name in the label column."""
    strip = strip if strip is not None else part.strip
    c.text(LABEL_X, y, f"<b>{label}</b>" if bold else label, size=10, colour="#334155")
    c.strip(part, strip, STREAM_X, y)
    c.text(NORM_X, y, _norm_text(strip), size=10, colour="#334155")


def _tokens(c: _Canvas, arch: Architecture, tokens: list[str], pos: int, part: Part, x0: float = LABEL_X,
            width: int = 10) -> None:
    first = max(0, pos - width + 1)
    shown = [figures.plain(visible(t)) for t in tokens[first: pos + 1]]
    shown[-1] = f"<b><span style='color:#b45309'>[{shown[-1]}]</span></b>"
    more = "… " if first else ""
    after = len(tokens) - pos - 1
    tail = f" <span style='color:#94a3b8'>(+{after} after)</span>" if after else ""
    y = c.y + LINE / 2
    c.band(part, c.y, c.y + 2 * LINE, x0, x0 + 100 if x0 < 50 else 100)
    c.text(x0, y, f"<b>Tokens</b>  {more}" + " <span style='color:#94a3b8'>|</span> ".join(shown) + tail)
    token_id = arch.token_ids[pos] if part.name == "tokens" or part.name == "decoder.tokens" else None
    idn = f", id {token_id:,}" if token_id is not None else ""
    c.text(x0, y + LINE, f"<span style='color:#64748b'>following token {pos}{idn} · each vector a strip (blue > 0 > "
                         "red), ‖·‖ its length</span>", size=10)
    c.target(x0 + 3, y, part, _where(part))
    c.y += 2 * LINE + 4


def _embedding(c: _Canvas, arch: Architecture) -> None:
    parts = arch.parts
    inputs = [p for p in parts.values() if p.kind in ("embed", "pos", "rope", "segment") and "." not in p.name]
    top = c.y
    into = top + len(inputs) * LINE + LINE / 2  # the sum's line
    for p in inputs:
        y = c.y + LINE / 2
        if p.kind == "rope":
            c.band(p, y - LINE / 2, y + LINE / 2, PART_X - 1, 100)
            c.rect(PART_LABEL[0], y - 7, 99.5, y + 7, line=COLOURS["rope"], dash="dot")
            c.text(PART_LABEL[0] + 0.5, y, "<b>No position vector added</b> <span style='color:#64748b'>RoPE: q "
                                           "and k are rotated by the position inside every attention</span>")
            c.target(PART_LABEL[0] + 2, y, p, _where(p))
        else:
            _part_line(c, p, y)
            c.arrow(PART_X - 0.3, y, SPINE_X + 1, into - 3, COLOURS["embed"])
        c.y += LINE
    total = parts["sum"]
    y = c.y + LINE / 2
    if len([p for p in inputs if p.kind != "rope"]) > 1:
        c.add_mark(SPINE_X, y)  # nothing is added to a RoPE model's embedding
    c.band(total, y - LINE / 2, y + LINE / 2, 0, SPINE_X - 1.5)
    summed = len([p for p in inputs if p.kind != "rope"])
    _stream_line(c, total, y, {1: "embedding", 2: "embedding + position"}.get(summed, f"the sum of {summed}"),
                 bold=True)
    c.target(LABEL_X + 3, y, total, _where(total))
    spine_top = y
    c.y += LINE
    if "ln_embed" in parts:
        y = c.y + LINE / 2
        _norm_on_spine(c, parts["ln_embed"], y)
        _stream_line(c, parts["ln_embed"], y, "after the norm")
        c.y += LINE
    c.spine_top = spine_top


def _norm_on_spine(c: _Canvas, part: Part, y: float) -> None:
    """A post-norm model's norm, which sits on the stream itself."""
    c.band(part, y - LINE / 2, y + LINE / 2, 0, 100)
    c.rect(SPINE_X - 2.2, y - 7, SPINE_X + 2.2, y + 7, fill="white", line=COLOURS["norm"], width=1.2)
    c.text(SPINE_X, y, "N", size=10, colour=COLOURS["norm"], anchor="center")
    c.text(PART_X, y, _label(part) + " <span style='color:#64748b'>on the stream itself (post-norm)</span>")
    c.target(SPINE_X, y, part, _where(part))


def _closed_block(c: _Canvas, arch: Architecture, part: Part, scale: float) -> None:
    row = next(r for r in arch.blocks if r.layer == part.layer)
    y = c.y + ROW / 2
    c.band(part, c.y, c.y + ROW, 0, 100)
    c.text(LABEL_X, y, f"Block {part.layer}", size=10, colour="#334155")
    c.strip(part, row.stream, STREAM_X, y, height=10)
    c.text(NORM_X, y, _norm_text(row.stream), size=10, colour="#334155")
    c.add_mark(SPINE_X, y)
    # what the sublayers added, as bars on one scale for every block
    x = PART_X
    span = (100 - PART_X) / len(row.added) - 1
    for kind, value in row.added.items():
        colour = COLOURS["cross" if kind == "cross" else kind]
        name = {"attn": "attention", "mlp": "feed-forward", "cross": "cross-attention"}[kind]
        bar = 0.55 * span * value / scale
        c.rect(x, y - 5, x + bar, y + 5, fill=colour, line=colour)
        c.text(x + bar + 0.4, y, f"{name} +{value:.2f}", size=10, colour=colour)
        x += span + 1
    c.target(LABEL_X + 3, y, part, f"Block {part.layer} — click: open it here (its norms, heads and units)")
    c.y += ROW


def _sublayer(c: _Canvas, arch: Architecture, lines: list[tuple[Part, Strip | None, str | None, str | None]],
              kind: str, add: Part, after: Part | None, norm_before: Part | None) -> None:
    """One sublayer branching off the stream and back into an ⊕: its lines on the right inside a tinted box, the
    branch and return arrows, and the stream after the add (and, post-norm, after the norm on the stream)."""
    top = c.y
    branch = top + LINE / 2
    c.line(SPINE_X, branch, PART_X - 0.8, branch, COLOURS[kind], 1.2)
    for part, strip, value, label in lines:
        y = c.y + LINE / 2
        if norm_before is part:
            c.rect(PART_X - 0.5, c.y + 1, 99.8, c.y + LINE - 1, fill=FILL["norm"], line="rgba(0,0,0,0)")
        _part_line(c, part, y, strip, value, label, indent=1.5 if part.kind in ("head", "units") else 0)
        c.y += LINE
    box_top = top + (LINE if norm_before is not None else 0)
    c.rect(PART_X - 0.5, box_top + 1, 99.8, c.y - 1, fill=FILL[kind], line=COLOURS[kind], width=0.8)
    y = c.y + LINE / 2
    c.arrow(PART_X + 1, c.y - 2, SPINE_X + 1, y, COLOURS[kind])
    c.add_mark(SPINE_X, y)
    c.band(add, y - LINE / 2, y + LINE / 2, 0, SPINE_X - 1.5)
    _stream_line(c, add, y, "after the add")
    c.target(SPINE_X, y, add, _where(add))
    c.y += LINE
    if after is not None:
        y = c.y + LINE / 2
        _norm_on_spine(c, after, y)
        _stream_line(c, after, y, "after the norm")
        c.y += LINE


def _open_block(c: _Canvas, arch: Architecture, i: int) -> None:
    parts, cfg = arch.parts, arch.config
    enter = parts[part_id(i, "in")]
    c.band(enter, c.y, c.y + LINE)
    c.rect(0, c.y + 1, 100, c.y + LINE - 1, fill="rgba(15,23,42,0.05)")
    y = c.y + LINE / 2
    c.text(LABEL_X, y, f"<b>Block {i}</b> (open)", size=10, colour="#334155")
    c.target(LABEL_X + 3, y, enter, _where(enter))
    c.text(PART_X, y, "<span style='color:#64748b'>reads the stream (the vector above) and adds to it twice: "
                      "attention, then the feed-forward layer</span>", size=10)
    c.y += LINE
    attn, mlp, units = parts[part_id(i, "attn")], parts[part_id(i, "mlp")], parts[part_id(i, "mlp.units")]
    heads = [parts[part_id(i, "attn", h)] for h in range(cfg.n_heads)]
    head_lines = [(h, None, None, f"head {h.head} <span style='color:#64748b'>its {h.width} numbers</span>")
                  for h in heads]
    out_label = f"<b>joined × W_O</b> <span style='color:#64748b'>{cfg.n_heads} × {cfg.head_dim} → {cfg.d_model}</span>"
    attn_lines = [(attn, attn.strip, f"+ {attn.strip.norm:.2f}", out_label)]
    title = (attn, NO_STRIP, None, _label(attn))
    fired = f"gate > 0 in {units.note}" if cfg.mlp == "swiglu" else f"> 0 in {units.note}"
    units_label = f"hidden units <span style='color:#64748b'>{fired}</span>"
    mlp_title = (mlp, NO_STRIP, None, _label(mlp))
    mlp_lines = [(units, None, None, units_label), (mlp, mlp.strip, f"+ {mlp.strip.norm:.2f}",
                                                    f"<b>× W_out</b> <span style='color:#64748b'>→ {cfg.d_model}</span>")]
    if cfg.post_norm:
        _sublayer(c, arch, [title, *head_lines, *attn_lines], "attn", parts[part_id(i, "add1")],
                  parts[part_id(i, "ln1")], None)
        _sublayer(c, arch, [mlp_title, *mlp_lines], "mlp", parts[part_id(i, "add2")], parts[part_id(i, "ln2")], None)
    else:
        ln1, ln2 = parts[part_id(i, "ln1")], parts[part_id(i, "ln2")]
        _sublayer(c, arch, [(ln1, None, None, None), title, *head_lines, *attn_lines], "attn",
                  parts[part_id(i, "add1")], None, ln1)
        _sublayer(c, arch, [(ln2, None, None, None), mlp_title, *mlp_lines], "mlp", parts[part_id(i, "add2")], None,
                  ln2)


def _tail(c: _Canvas, arch: Architecture) -> None:
    parts = arch.parts
    if "ln_final" in parts:
        y = c.y + LINE / 2
        ln = parts["ln_final"]
        c.band(ln, y - LINE / 2, y + LINE / 2)
        c.rect(SPINE_X - 2.2, y - 7, SPINE_X + 2.2, y + 7, fill="white", line=COLOURS["norm"], width=1.2)
        c.text(SPINE_X, y, "N", size=10, colour=COLOURS["norm"], anchor="center")
        _stream_line(c, ln, y, "final norm", bold=True)
        c.text(PART_X, y, _label(ln) + " <span style='color:#64748b'>on the stream, once, after the last block</span>")
        c.target(SPINE_X, y, ln, _where(ln))
        c.y += LINE
    if "output" in parts:
        out = parts["output"]
        y = c.y + LINE / 2
        c.band(out, y - LINE / 2, y + LINE / 2)
        _stream_line(c, out, y, "output", bold=True)
        c.text(PART_X, y, f"<b>{figures.plain(out.label)}</b> <span style='color:#64748b'>"
                          f"{figures.plain(out.note or 'the last block’s output')}</span>")
        c.target(LABEL_X + 3, y, out, _where(out))
        c.y += LINE
    if "unembed" not in parts:
        return
    unembed, softmax = parts["unembed"], parts["softmax"]
    y = c.y + LINE / 2
    c.arrow(SPINE_X, c.y - LINE / 2 + 7, PART_X - 0.5, y, COLOURS["unembed"])
    _part_line(c, unembed, y, strip=NO_STRIP, label=_label(unembed) + f" <span style='color:#64748b'>· top logit "
                                                                       f"{arch.top[0][2]:.2f}</span>")
    c.y += LINE
    y0 = c.y
    c.band(softmax, y0, y0 + LINE * (1 + len(arch.top)), PART_X - 1, 100)
    _part_line(c, softmax, y0 + LINE / 2, strip=NO_STRIP)
    c.y += LINE
    for _, shown, _, prob in arch.top:
        y = c.y + LINE / 2
        name = figures.plain(visible(shown))
        c.text(PART_LABEL[1], y, f"{name}", anchor="right")
        c.rect(PART_STRIP[0], y - 5, PART_STRIP[0] + (PART_STRIP[1] - PART_STRIP[0]) * prob, y + 5,
               fill=COLOURS["softmax"], line=COLOURS["softmax"])
        c.text(PART_VALUE, y, f"{prob:.1%}", size=10, colour="#334155")
        c.y += LINE
    c.text(LABEL_X, y0 + LINE / 2, "<b>next token</b>", size=10, colour="#334155")


def figure(arch: Architecture, highlight: str | None = None, title: str | None = None) -> go.Figure:
    """The picture of `arch` (core.interpret.architecture), with the part `highlight` names lit (see Architecture.lit)."""
    if arch.kind == "encoder-decoder":
        return _seq2seq_figure(arch, highlight, title)
    c = _Canvas(arch.lit(highlight))
    cfg = arch.config
    _tokens(c, arch, arch.tokens, arch.position, arch.parts["tokens"])
    _embedding(c, arch)
    scale = max(max(r.added.values()) for r in arch.blocks) or 1.0
    for row in arch.blocks:
        if row.layer == arch.open_block:
            _open_block(c, arch, row.layer)
        else:
            _closed_block(c, arch, arch.parts[part_id(row.layer)], scale)
    spine_end = c.y
    _tail(c, arch)
    c.line(SPINE_X, c.spine_top, SPINE_X, spine_end + (LINE / 2 if "ln_final" in arch.parts else 0), SPINE, 4)
    c.shapes.insert(0, c.shapes.pop())  # the stream's line first, under its ⊕ and N marks (their labels are in
    # the labels trace, drawn over every shape that is below the traces)
    kind = "a decoder" if arch.kind == "decoder" else "an encoder"
    shape = (f"{cfg.n_layers} blocks, d_model {cfg.d_model}, {'pre' if not cfg.post_norm else 'post'}-norm "
             f"{'LayerNorm' if cfg.norm == 'layernorm' else 'RMSNorm'}")
    return _finish(c, title or f"{cfg.name}, {kind}: {shape}")


STRIPS, LABELS = "strips", "labels"  # the metas of the trace of every strip and of every label
PAD = 0.25  # of the 0–100 across the chart: ~2 px


def _edges(values) -> list[float]:
    return sorted({round(v, 6) for v in values})


def _strips_trace(strips: list) -> dict:
    """Every strip in ONE heatmap on a shared grid (the union of their cells' edges; the cells between strips are
    gaps): one canvas for the browser to draw where a trace per strip cost each its own — the embedded model's
    picture drew in ~0.1 s less. Its meta maps each part to its row and first column."""
    xs = _edges(x0 + i * (x1 - x0) / len(cells) for _, x0, x1, _, _, cells, _ in strips for i in range(len(cells) + 1))
    ys = _edges(y for strip in strips for y in strip[3:5])
    col, row = {x: i for i, x in enumerate(xs)}, {y: i for i, y in enumerate(ys)}
    z = [[None] * (len(xs) - 1) for _ in range(len(ys) - 1)]
    text = [[""] * (len(xs) - 1) for _ in range(len(ys) - 1)]
    where = {}
    for name, x0, x1, y0, y1, cells, hover in strips:
        n, rows = len(cells), range(row[round(y0, 6)], row[round(y1, 6)])
        for i, (value, words) in enumerate(zip(cells, hover)):
            for j in range(col[round(x0 + i * (x1 - x0) / n, 6)], col[round(x0 + (i + 1) * (x1 - x0) / n, 6)]):
                for r in rows:
                    z[r][j], text[r][j] = value, words
        where[name] = [rows[0], col[round(x0, 6)], n]
    return dict(type="heatmap", z=z, x=xs, y=ys, zmin=-1, zmax=1, showscale=False,
                colorscale=get_colorscale(figures.DIVERGING),  # Plotly.js's own "RdBu" runs the other way
                text=text, hovertemplate="%{text}<extra></extra>", hoverongaps=False, xgap=0.5,
                meta={"name": STRIPS, "parts": where})


def _labels_trace(labels: list) -> dict:
    """Every label as one text trace: Plotly measures each annotation in the browser (forcing a layout each), where a
    trace's texts are placed in one pass. `anchor` is the side of the text at x, as an annotation's xanchor."""
    side = {"left": "middle right", "center": "middle center", "right": "middle left"}
    pad = {"left": PAD, "center": 0.0, "right": -PAD}  # an annotation's text sits ~2 px from its anchor
    xs, ys, texts, sizes, colours, anchors = zip(*labels)
    return dict(type="scatter", mode="text", x=[x + pad[a] for x, a in zip(xs, anchors)], y=ys, text=texts,
                textposition=[side[a] for a in anchors], textfont=dict(size=sizes, color=colours), hoverinfo="skip",
                showlegend=False, meta=LABELS)


def _finish(c: _Canvas, title: str) -> go.Figure:
    """The figure, built from plain dicts the code above made (Plotly's validation of ~150 shapes took most of a
    SmolLM2 picture's build time; what goes to the browser is the same)."""
    traces = [_strips_trace(c.strips)] * bool(c.strips) + [_labels_trace(c.labels)] * bool(c.labels)
    if c.targets:
        xs, ys, names, hovers = zip(*c.targets)
        traces.append(dict(type="scatter", x=xs, y=ys, mode="markers", customdata=list(names),
                           hovertext=list(hovers), hovertemplate="%{hovertext}<extra></extra>", meta="targets",
                           name="parts", marker=dict(size=16, symbol="square", color="rgba(0,0,0,0)",
                                                     line=dict(width=0)), showlegend=False))
    height = c.y + 10
    layout = dict(
        title=dict(text=figures.plain(title), x=0, xanchor="left", font=dict(size=14)), height=height + 44,
        margin=dict(l=8, r=8, t=36, b=8), plot_bgcolor="white", paper_bgcolor="white", shapes=c.shapes,
        annotations=c.notes, showlegend=False, dragmode=False, hovermode="closest",
        xaxis=dict(range=[0, 100], visible=False, fixedrange=True),
        yaxis=dict(range=[height, 0], visible=False, fixedrange=True),
    )
    return go.Figure(data=traces, layout=layout, _validate=False)


HALF = 50.0  # an encoder–decoder's picture: the encoder in the left half, the decoder in the right


def _seq2seq_inputs(c: _Canvas, arch: Architecture, root: str, x0: float, tokens: list[str], pos: int) -> None:
    """One stack's title, its tokens, its token and position vectors and their sum, the stream entering block 0."""
    parts = arch.parts
    head = "Encoder: reads the English sentence" if root == "encoder." else "Decoder: writes the French, word by word"
    c.text(x0, c.y + LINE / 2, f"<b>{head}</b>", size=12)
    c.y += LINE
    _tokens(c, arch, tokens, pos, parts[root + "tokens"], x0, width=6)
    for kind in ("embed", "pos"):
        p = parts[root + kind]
        y = c.y + LINE / 2
        c.band(p, y - LINE / 2, y + LINE / 2, x0, x0 + HALF - 1)
        c.text(x0, y, f"<b>{figures.plain(p.label)}</b>", size=10)
        c.strip(p, p.strip, (x0 + 24, x0 + 40), y)
        c.text(x0 + 40.6, y, _norm_text(p.strip), size=10, colour="#334155")
        c.target(x0 + 3, y, p, _where(p))
        c.y += LINE
    total = parts[root + "sum"]
    y = c.y + LINE / 2
    c.text(x0, y, "<b>= the stream</b> <span style='color:#64748b'>entering block 0</span>", size=10)
    c.strip(total, total.strip, (x0 + 24, x0 + 40), y)
    c.text(x0 + 40.6, y, _norm_text(total.strip), size=10, colour="#334155")
    c.y += LINE


def _seq2seq_block(c: _Canvas, arch: Architecture, root: str, x0: float, row: BlockRow, scale: float
                   ) -> list[tuple[float, float]]:
    """One block of a stack as a box: a bar for what each sublayer added, then the stream after it. Returns where
    its cross-attention's line is (the encoder's output is drawn into it)."""
    block = arch.parts[part_id(row.layer, root=root)]
    top, crosses = c.y, []
    c.band(block, top, top + LINE * (2 + len(row.added)), x0, x0 + HALF - 1)
    c.rect(x0, top + 2, x0 + HALF - 1.5, top + LINE * (2 + len(row.added)) - 2, fill="rgba(15,23,42,0.04)",
           line="#cbd5e1")
    c.text(x0 + 0.5, top + LINE / 2 + 2, f"<b>Block {row.layer}</b> <span style='color:#64748b'>"
                                          "Add & Norm after each sublayer (post-norm)</span>", size=10)
    c.y += LINE
    for kind, value in row.added.items():
        y = c.y + LINE / 2
        colour = COLOURS["cross" if kind == "cross" else kind]
        name = {"attn": "self-attention" + (" (masked)" if root == "decoder." else ""),
                "cross": "cross-attention ← encoder", "mlp": "feed-forward"}[kind]
        c.text(x0 + 1.5, y, name, size=10, colour=colour)
        bar = 15 * value / scale
        c.rect(x0 + 24, y - 5, x0 + 24 + bar, y + 5, fill=colour, line=colour)
        c.text(x0 + 24.4 + bar, y, f"+{value:.2f}", size=10, colour=colour)
        if kind == "cross":
            crosses.append((x0 + 1, y))
        c.y += LINE
    y = c.y + LINE / 2
    c.text(x0 + 1.5, y, "stream after", size=10, colour="#334155")
    c.strip(block, row.stream, (x0 + 24, x0 + 40), y)
    c.text(x0 + 40.6, y, _norm_text(row.stream), size=10, colour="#334155")
    c.target(x0 + 3, top + LINE / 2 + 2, block, _where(block))
    c.y += LINE + 4
    return crosses


def _encoder_output(c: _Canvas, arch: Architecture, x0: float) -> None:
    """The encoder's output under its last block, where the lines to every cross-attention start."""
    out = arch.parts["encoder.output"]
    y = c.y + LINE / 2
    c.band(out, y - LINE / 2, y + LINE / 2, x0, x0 + HALF - 1)
    c.text(x0, y, f"<b>{figures.plain(out.label)}</b>", size=10, colour=COLOURS["output"])
    c.strip(out, out.strip, (x0 + 24, x0 + 40), y)
    c.text(x0 + 40.6, y, _norm_text(out.strip), size=10, colour="#334155")
    c.target(x0 + 3, y, out, _where(out))
    c.text(x0, y + LINE, f"<span style='color:#64748b'>all {len(arch.source_tokens)} vectors: the keys and "
                         "values of every cross-attention →</span>", size=10)
    c.enc_out = (x0 + 46, y)
    c.y += 2 * LINE


def _seq2seq_next_word(c: _Canvas, arch: Architecture, x0: float) -> None:
    """Under the decoder: its unembedding, then the softmax's most likely next words as bars."""
    unembed, softmax = arch.parts["unembed"], arch.parts["softmax"]
    y = c.y + LINE / 2
    c.band(unembed, y - LINE / 2, y + LINE / 2, x0, 100)
    c.text(x0, y, f"<b>Unembedding</b> <span style='color:#64748b'>{figures.plain(unembed.width)}</span>", size=10)
    c.target(x0 + 3, y, unembed, _where(unembed))
    c.y += LINE
    y0 = c.y
    c.band(softmax, y0, y0 + LINE * (1 + len(arch.top)), x0, 100)
    c.text(x0, y0 + LINE / 2, f"<b>Softmax</b>: the next word after "
                              f"{figures.plain(visible(arch.tokens[arch.position]))}", size=10)
    c.target(x0 + 3, y0 + LINE / 2, softmax, _where(softmax))
    c.y += LINE
    for _, shown, _, prob in arch.top:
        y = c.y + LINE / 2
        c.text(x0 + 22, y, figures.plain(visible(shown)), size=10, anchor="right")
        c.rect(x0 + 23, y - 5, x0 + 23 + 18 * prob, y + 5, fill=COLOURS["softmax"], line=COLOURS["softmax"])
        c.text(x0 + 42, y, f"{prob:.1%}", size=10, colour="#334155")
        c.y += LINE


def _seq2seq_figure(arch: Architecture, highlight: str | None, title: str | None) -> go.Figure:
    """Encoder (left) and decoder (right) side by side: each stack's tokens, embedding, blocks and stream; the
    encoder's output drawn into every decoder block's cross-attention; the decoder's unembedding and softmax."""
    cfg = arch.config
    c = _Canvas(arch.lit(highlight))
    crosses, bottoms = [], {}
    for root, x0, tokens, pos, rows in (("encoder.", 0.0, arch.source_tokens, arch.source_position, arch.blocks),
                                        ("decoder.", HALF + 1, arch.tokens, arch.position, arch.decoder_blocks)):
        c.y = 0.0
        _seq2seq_inputs(c, arch, root, x0, tokens, pos)
        scale = max(max(r.added.values()) for r in rows) or 1.0
        for row in rows:
            crosses += _seq2seq_block(c, arch, root, x0, row, scale)
        if root == "encoder.":
            _encoder_output(c, arch, x0)
        bottoms[root] = c.y
    for x, y in crosses:
        c.line(c.enc_out[0], c.enc_out[1], x, y, COLOURS["cross"], 1.2, "dot")
        c.arrow(x - 1.5, y + (c.enc_out[1] - y) * 0.03, x, y, COLOURS["cross"])
    c.y = bottoms["decoder."]
    _seq2seq_next_word(c, arch, HALF + 1)
    c.y = max(c.y, bottoms["encoder."])
    c.targets = [(x, y, name, hover.split(" — click")[0]) for x, y, name, hover in c.targets]  # drawn, not clicked
    return _finish(c, title or f"{cfg.name}, an encoder–decoder: {cfg.n_layers} encoder and {cfg.n_decoder_layers} "
                               f"decoder blocks, d_model {cfg.d_model}, {cfg.n_heads} heads")


def go_to(url_path: str, settings: dict, model_name: str) -> None:
    """Open a page with its settings chosen, as pages/common/widgets.open_page's buttons do (the settings go into
    the session before the switch; the layer also into layer_head's per-model memory)."""
    from pages.common.nav import spec

    for name, value in settings.items():
        st.session_state[name] = value
    if "layer" in settings:
        memory = st.session_state.setdefault("_layer_head", {})
        memory[model_name] = [settings["layer"], settings.get("head", memory.get(model_name, [0, 0])[1])]
        st.session_state["head"] = memory[model_name][1]
    st.switch_page(spec(url_path).path, query_params={})


def _clicked(key: str) -> str | None:
    """The part the learner clicked in the chart `key` since the last run (each click acted on once)."""
    event = st.session_state.get(key)
    points = (event or {}).get("selection", {}).get("points", []) if isinstance(event, dict) else \
        list(getattr(getattr(event, "selection", None), "points", []) or [])
    names = [p.get("customdata") for p in points if p.get("customdata")]
    name = names[0] if names else None
    if isinstance(name, list):
        name = name[0]
    done = st.session_state.get(key + "._done")
    st.session_state[key + "._done"] = name
    return name if name != done else None


def show(ctx, position: int, key: str, highlight: str | None = None, open_block: int | None = None,
         choose: bool = True, caption: bool = True) -> Architecture:
    """The picture for the sidebar's text, following the token at `position`, with the part `highlight` lit.
    choose=True draws a "Open a block" choice (its key `key + ".block"`, in the URL) that opens one block in place,
    and a click on a closed block opens it; `open_block` is the block open at first. A click on any other part
    opens its page at that layer. Returns the data drawn."""
    from pages.common import cache, chart, widgets

    cfg = ctx.model.config
    block_key = key + ".block"
    name = _clicked(key)
    layer = block_of(name) if name else None
    if layer is not None and name == part_id(layer) and choose:
        st.session_state[block_key] = layer  # a closed block: open it here
        name = None
    if choose:
        options = [-1, *range(cfg.n_layers)]
        default = -1 if open_block is None else open_block
        chosen = widgets.choice("selectbox", "Open a block in the picture", block_key, options, default=default,
                                format_func=lambda i: "none: every block in one line" if i == -1 else f"block {i}")
        open_block = None if chosen == -1 else chosen
    arch = cache.architecture(ctx.model_name, ctx.device, ctx.text, position, open_block)
    if name and name in arch.parts:
        page = target(arch, name)
        if page is not None:
            go_to(*page, ctx.model_name)
    chart.show(figure(arch, highlight), key=key, on_select="rerun", selection_mode="points",
               alt=describe(arch, highlight))
    if caption:
        st.caption(CAPTION + (" Click a block's line to open it here; click any other part to open its page at that "
                              "layer." if choose else " Click a part to open its page at that layer."))
    return arch


CAPTION = (
    "**How to read it.** The grey line is the residual stream; each ⊕ on it is an add. On its left, the followed "
    "token's vector after each stage; on its right, what reads the stream and adds to it. Every vector is a strip: "
    "its numbers in at most 32 cells (each the mean of a run of consecutive numbers), blue above 0 and red below, "
    "each strip on its own scale, with ‖·‖ its length (L2 norm). The bars of a closed block are the lengths of what "
    "its attention and feed-forward layer added, on one scale for every block. Hover for the numbers.")


def show_translation(model_name: str, device: str, text: str, key: str, highlight: str | None = None
                     ) -> Architecture:
    """The encoder–decoder's picture for the translation of `text` (for the Translation page): encoder and decoder
    side by side, the encoder's output drawn into every decoder block's cross-attention."""
    from pages.common import cache, chart

    arch = cache.seq2seq_architecture(model_name, device, text)
    chart.show(figure(arch, highlight), key=key, alt=describe(arch, highlight))
    st.caption("Every strip is the vector's numbers in cells (blue above 0, red below, each on its own scale), ‖·‖ "
               "its length; the bars are the lengths of what each sublayer added to the followed word's stream. "
               "After each sublayer the sum is normalised (Add & Norm).")
    return arch


def describe(arch: Architecture, highlight: str | None = None) -> str:
    """The picture in words, for screen readers."""
    cfg = arch.config
    lengths = ", ".join(f"{r.stream.norm:.1f}" for r in arch.blocks)
    if arch.kind == "encoder-decoder":
        said = (f"The architecture of {cfg.name}: an encoder of {len(arch.blocks)} blocks beside a decoder of "
                f"{len(arch.decoder_blocks)} blocks, whose cross-attention reads the encoder's output, then the "
                f"unembedding and softmax. The decoder follows {visible(arch.tokens[arch.position])}.")
    else:
        said = (f"The architecture of {cfg.name}: tokens, embedding, {len(arch.blocks)} blocks, "
                + ("final norm, unembedding and softmax" if "softmax" in arch.parts else "output vectors")
                + f". Following token {arch.position} ({visible(arch.tokens[arch.position])}); the residual "
                f"stream's length after each block: {lengths}.")
    if arch.top:
        said += f" Most likely next token: {visible(arch.top[0][1])} ({arch.top[0][3]:.1%})."
    lit = arch.lit(highlight)
    if lit:
        said += f" Lit: {', '.join(sorted(lit))}."
    return said
