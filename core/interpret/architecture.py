"""The loaded model's architecture as one connected graph, with one token's real values on it: what the Forward pass
page draws at its top and the guided lesson uses as its map (pages/common/architecture.py draws it).

`architecture(model, trace, position)` reads one trace (grown with `architecture_record`) and returns the parts in
the order the forward pass meets them — tokens, embedding (+ position vectors where the model adds them; a RoPE
model adds none and rotates q and k instead), the blocks, the final norm where the model has one, the unembedding
and the softmax (a decoder) or the output vectors (an encoder) — the edges between them (the residual stream's
skips included, around each sublayer), every block's summary row (what attention and the feed-forward layer added
and the stream's length after it), and, for ONE open block, its norms, heads, hidden units and adds. The order of
norm and add is the model's own: pre-norm (GPT-2, Llama) normalises what a sublayer reads, post-norm (BERT, the
original Transformer) normalises the stream after each add.
`seq2seq_architecture` does the same for the encoder–decoder (core.seq2seq): two stacks side by side, every
decoder block's cross-attention reading the encoder's output.
The picture's names of a block's parts ("blocks.3.attn.2") are built here (`part_id`, read back by `block_of`), and
the part each step of the guided lesson lights (`lesson_part`), so the page that draws them never types one.

Every vector is a `Strip`: its numbers in at most CELLS cells (each cell the mean of a run of consecutive numbers),
with the vector's real size and length (L2 norm), computed from the recorded tensor itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from core.config import ModelConfig
from core.interpret.lens import SUMMARY_RECORD
from core.interpret.neurons import firing
from core.lesson import LAYER as LESSON_LAYER
from core.trace import Trace, hook, missing_names

CELLS = 32  # cells per colour strip: a vector of 576 numbers becomes 32 runs of 18
TOP_K = 5  # next tokens shown at the softmax

NORM = {"layernorm": "LayerNorm", "rmsnorm": "RMSNorm"}
ACTIVATION = {"gelu": "GELU", "gelu_exact": "GELU", "swiglu": "SwiGLU", "relu": "ReLU"}


@dataclass(frozen=True)
class Strip:
    """A vector as a colour strip. cells[i] is the mean of vector[starts[i] : starts[i + 1]] (the last run ends at
    `size`); `size` and `norm` are the whole vector's."""

    cells: tuple[float, ...]
    starts: tuple[int, ...]
    size: int
    norm: float

    def run(self, i: int) -> tuple[int, int]:
        """The first and last index of the numbers cell i averages."""
        stop = self.starts[i + 1] if i + 1 < len(self.starts) else self.size
        return self.starts[i], stop - 1


def strip(vector: torch.Tensor, cells: int = CELLS) -> Strip:
    """A (n,) vector as at most `cells` cells, each the mean of one run of consecutive numbers (runs differ in
    length by at most one)."""
    x = vector.detach().float().reshape(-1)
    runs = torch.tensor_split(x, min(cells, x.numel()))
    starts, at = [], 0
    for r in runs:
        starts.append(at)
        at += r.numel()
    return Strip(tuple(float(r.mean()) for r in runs), tuple(starts), x.numel(), float(x.norm()))


@dataclass(frozen=True)
class Part:
    """One node of the picture. `name` is what `highlight=` and a click name: "embed", "blocks.3" (a block as one
    row), "blocks.3.attn", "blocks.3.attn.2" (head 2), "blocks.3.add1", "ln_final", "softmax"…; in an encoder–decoder
    the names start with "encoder." or "decoder.". `strip`: the followed token's vector where this part leaves it."""

    name: str
    kind: str  # tokens, embed, pos, rope, segment, add, norm, stream, attn, cross, head, mlp, units, block,
    #            unembed, softmax, output
    label: str
    width: str  # the sizes from the config, as printed
    layer: int | None = None
    head: int | None = None
    strip: Strip | None = None
    note: str = ""  # one line of real numbers: "adds a vector of length 3.21", "412 of 1,536 units > 0"


BLOCK_INSIDES = ("in", "ln1", "attn", "add1", "ln2", "mlp", "mlp.units", "add2")  # an open block's parts


def part_id(layer: int, inside: str | None = None, head: int | None = None, root: str = "") -> str:
    """The name of a block's part in the picture: part_id(3) == "blocks.3" (the block as one row),
    part_id(3, "attn") == "blocks.3.attn", part_id(3, "attn", 2) == "blocks.3.attn.2" (head 2); `root` is
    "encoder." or "decoder." in an encoder–decoder. The one place these names are built."""
    if inside is not None and inside not in BLOCK_INSIDES:
        raise ValueError(f"a block's part is one of {BLOCK_INSIDES}, not {inside!r}")
    if head is not None and inside != "attn":
        raise ValueError("a head is inside the attention: part_id(layer, \"attn\", head)")
    name = f"{root}blocks.{layer}"
    name += f".{inside}" if inside is not None else ""
    return name + (f".{head}" if head is not None else "")


def block_of(part: str) -> int | None:
    """The layer of the block a part of a one-stack model lies in ("blocks.3.attn.2" → 3, "blocks.3" → 3); None for
    a part outside the blocks ("embed", "ln_final") or of an encoder–decoder's stack."""
    words = part.split(".")
    if len(words) < 2 or words[0] != "blocks" or not words[1].isdigit():
        return None
    return int(words[1])


# The guided lesson's steps (pages/lesson.py's STEPS, by function name) and the part each lights: a name of the
# picture's, or (the steps inside the block the lesson opens, core.lesson.LAYER) one of that block's parts, "head"
# standing for the lesson's head (Lesson.head) in its attention.
LESSON_PARTS = {
    "text": "tokens", "tokens": "tokens", "ids": "tokens", "embed": "embed", "positions": "pos",
    "qkv": "head", "scores": "head", "scale": "head", "mask": "head", "softmax": "head", "values": "head",
    "heads": "attn", "concat": "attn", "add": "add1", "mlp": "mlp",
    "blocks": "blocks", "final_norm": "ln_final", "logits": "unembed", "probs": "softmax", "temperature": "softmax",
    "next": "softmax", "encoder_end": "output",
}


def lesson_part(step: str, head: int = 0, post_norm: bool = False) -> str:
    """The part a lesson step lights (LESSON_PARTS), in the lesson's block and at its head; a post-norm model has no
    final norm (its last block's second norm ends it), so that step lights its output vectors. "" for a step that
    lights nothing."""
    part = LESSON_PARTS.get(step, "")
    if part == "head":
        return part_id(LESSON_LAYER, "attn", head)
    if part in BLOCK_INSIDES:
        return part_id(LESSON_LAYER, part)
    if post_norm and part == "ln_final":
        return "output"
    return part


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    kind: str = "flow"  # "flow": the vector goes through; "residual": the stream skips the sublayer to the add


@dataclass(frozen=True)
class BlockRow:
    """One block in one line: the length of what each sublayer added to the followed token's stream ("attn",
    "mlp"; a decoder block of the encoder–decoder also "cross") and the stream leaving the block."""

    layer: int
    added: dict[str, float]
    stream: Strip


@dataclass(frozen=True)
class Architecture:
    kind: str  # "decoder", "encoder" or "encoder-decoder"
    config: ModelConfig
    tokens: list[str]  # display strings (the decoder's input for an encoder–decoder)
    token_ids: list[int]
    position: int  # the followed token
    parts: dict[str, Part]  # in the order the forward pass meets them
    edges: list[Edge]
    blocks: list[BlockRow]  # the encoder's blocks for an encoder–decoder
    open_block: int | None = None  # the block whose insides are among `parts`
    top: list[tuple[int, str, float, float]] = ()  # the softmax's top tokens: (id, display, logit, probability)
    decoder_blocks: list[BlockRow] = ()
    source_tokens: list[str] = ()  # encoder–decoder: the encoder's input
    source_position: int | None = None  # encoder–decoder: the source token the encoder side follows

    def lit(self, highlight: str | None) -> set[str]:
        """The parts a highlight names: the part itself and everything inside it ("blocks.0.attn" lights its
        heads; "blocks" every block). A block that is not open stands for all its insides."""
        if not highlight:
            return set()
        inside = {n for n in self.parts if n == highlight or n.startswith(highlight + ".")}
        if not inside:  # inside a block drawn as one row: light the row
            words = highlight.split(".")
            block = ".".join(words[: words.index("blocks") + 2]) if "blocks" in words else ""
            inside = {block} & set(self.parts)
        return inside


def _block_record(layer: int) -> tuple[str, ...]:
    return tuple(hook(layer, n) for n in ("ln1.hook_normalized", "ln2.hook_normalized", "attn.hook_z",
                                          "mlp.hook_pre", "mlp.hook_post"))


def architecture_record(cfg: ModelConfig, open_block: int | None = None) -> tuple[str, ...]:
    """What a trace needs for `architecture`: every block's adds and stream (the forward summary's names), and the
    open block's norms, heads and hidden units."""
    return SUMMARY_RECORD + (_block_record(open_block) if open_block is not None else ())


def _heads(cfg: ModelConfig) -> str:
    shared = f", {cfg.kv_heads} key/value heads" if cfg.kv_heads != cfg.n_heads else ""
    rotated = ", q and k rotated by position (RoPE)" if cfg.positional == "rope" else ""
    return f"{cfg.n_heads} heads × {cfg.head_dim} = {cfg.n_heads * cfg.head_dim}{shared}{rotated}"


def _mlp(cfg: ModelConfig) -> str:
    up = f"2 × {cfg.mlp_dim:,}" if cfg.mlp == "swiglu" else f"{cfg.mlp_dim:,}"
    return f"{cfg.d_model} → {up} → {cfg.d_model}, {ACTIVATION[cfg.mlp]}"


def _embedding(cfg: ModelConfig, tr, pos: int, cells: int, root: str = "") -> tuple[list[Part], list[Edge], str]:
    """Tokens → embedding row (+ position, + segment) → the sum (→ BERT's norm): the parts, the edges and the name
    of the part whose output enters block 0."""
    d = cfg.d_model
    token = tr[root + "hook_embed"][pos]
    token_id = (tr.token_ids if hasattr(tr, "token_ids") else tr.source_ids if root == "encoder." else
                tr.target_ids)[pos]
    scaled = " × √d" if cfg.encoder_decoder else ""
    parts = [Part(root + "tokens", "tokens", "Tokens", f"{cfg.vocab_size:,} in the vocabulary"),
             Part(root + "embed", "embed", "Token embedding" + scaled, f"row {token_id:,} of {cfg.vocab_size:,}",
                  strip=strip(token, cells))]
    added = [token]
    if cfg.positional == "rope":
        parts.append(Part(root + "pos", "rope", "No position vector", "RoPE",
                          note="positions rotate q and k inside every attention layer"))
    else:
        pos_vec = tr[root + "hook_pos_embed"][pos]
        added.append(pos_vec)
        what = "learned" if cfg.positional == "learned" else "sin/cos"
        table = f"row {pos} of {cfg.n_ctx:,}" if cfg.positional == "learned" else f"position {pos}"
        parts.append(Part(root + "pos", "pos", f"Position vector ({what})", table, strip=strip(pos_vec, cells)))
    if root + "hook_token_type_embed" in tr:
        segment = tr[root + "hook_token_type_embed"][pos]
        added.append(segment)
        parts.append(Part(root + "segment", "segment", "Segment vector (A)", f"row 0 of {cfg.n_token_types}",
                          strip=strip(segment, cells)))
    total = torch.stack(added).sum(0)
    parts.append(Part(root + "sum", "add", "Sum" if len(added) > 1 else "Stream", str(d),
                      strip=strip(total, cells)))
    edges = [Edge(root + "tokens", root + "embed")] + [Edge(p.name, root + "sum") for p in parts[1:-1]
                                                       if p.kind != "rope"]
    last = root + "sum"
    if cfg.post_norm and not cfg.encoder_decoder:
        parts.append(Part("ln_embed", "norm", NORM[cfg.norm], str(d), strip=strip(tr["ln_embed.hook_normalized"][pos],
                                                                                   cells)))
        edges.append(Edge(last, "ln_embed"))
        last = "ln_embed"
    return parts, edges, last


def _open_block(cfg: ModelConfig, tr: Trace, pos: int, i: int, cells: int, into: str
                ) -> tuple[list[Part], list[Edge], str]:
    """Block i's insides in the model's order: pre-norm x + attn(ln1(x)), x + mlp(ln2(x)); post-norm
    ln1(x + attn(x)), ln2(x + mlp(x))."""
    d, norm = cfg.d_model, NORM[cfg.norm]
    resid_pre, attn_out, mlp_out = tr.resid_pre(i)[pos], tr.attn_out(i)[pos], tr.mlp_out(i)[pos]
    z = tr.z(i)[pos]  # (nh, hs)
    post = tr.mlp_post(i)[pos]  # (m,)
    fired = round(float(firing(tr, i)[pos]) * cfg.mlp_dim)
    stream_in = Part(part_id(i, "in"), "stream", f"Entering block {i}", str(d), layer=i, strip=strip(resid_pre, cells))
    attn = Part(part_id(i, "attn"), "attn", "Attention" + ("" if cfg.causal else " (sees every token)"), _heads(cfg),
                layer=i, strip=strip(attn_out, cells), note=f"heads joined, × W_O: adds length {attn_out.norm():.2f}")
    heads = [Part(part_id(i, "attn", h), "head", f"head {h}", str(cfg.head_dim), layer=i, head=h, strip=strip(z[h], cells))
             for h in range(cfg.n_heads)]
    mlp = Part(part_id(i, "mlp"), "mlp", "Feed-forward", _mlp(cfg), layer=i, strip=strip(mlp_out, cells),
               note=f"adds length {mlp_out.norm():.2f}")
    units = Part(part_id(i, "mlp.units"), "units", "Hidden units", f"{cfg.mlp_dim:,}", layer=i, strip=strip(post, cells),
                 note=f"{fired:,} of {cfg.mlp_dim:,}")  # > 0 before the activation (SwiGLU: the gate)
    if cfg.post_norm:
        first_sum, second_sum = resid_pre + attn_out, tr.resid_mid(i)[pos] + mlp_out
        add1 = Part(part_id(i, "add1"), "add", "+ (residual)", str(d), layer=i, strip=strip(first_sum, cells))
        ln1 = Part(part_id(i, "ln1"), "norm", norm, str(d), layer=i, strip=strip(tr.resid_mid(i)[pos], cells))
        add2 = Part(part_id(i, "add2"), "add", "+ (residual)", str(d), layer=i, strip=strip(second_sum, cells))
        ln2 = Part(part_id(i, "ln2"), "norm", norm, str(d), layer=i, strip=strip(tr.resid_post(i)[pos], cells))
        parts = [stream_in, attn, *heads, add1, ln1, mlp, units, add2, ln2]
        edges = [Edge(into, stream_in.name), Edge(stream_in.name, attn.name), Edge(attn.name, add1.name),
                 Edge(stream_in.name, add1.name, "residual"), Edge(add1.name, ln1.name), Edge(ln1.name, mlp.name),
                 Edge(mlp.name, add2.name), Edge(ln1.name, add2.name, "residual"), Edge(add2.name, ln2.name)]
        return parts, edges, ln2.name
    ln1 = Part(part_id(i, "ln1"), "norm", norm, str(d), layer=i, strip=strip(tr[hook(i, "ln1.hook_normalized")][pos], cells))
    add1 = Part(part_id(i, "add1"), "add", "+ (residual)", str(d), layer=i, strip=strip(tr.resid_mid(i)[pos], cells))
    ln2 = Part(part_id(i, "ln2"), "norm", norm, str(d), layer=i, strip=strip(tr[hook(i, "ln2.hook_normalized")][pos], cells))
    add2 = Part(part_id(i, "add2"), "add", "+ (residual)", str(d), layer=i, strip=strip(tr.resid_post(i)[pos], cells))
    parts = [stream_in, ln1, attn, *heads, add1, ln2, mlp, units, add2]
    edges = [Edge(into, stream_in.name), Edge(stream_in.name, ln1.name), Edge(ln1.name, attn.name),
             Edge(attn.name, add1.name), Edge(stream_in.name, add1.name, "residual"), Edge(add1.name, ln2.name),
             Edge(ln2.name, mlp.name), Edge(mlp.name, add2.name), Edge(add1.name, add2.name, "residual")]
    return parts, edges, add2.name


def _row(tr, i: int, pos: int, cells: int, root: str = "", cross: bool = False) -> BlockRow:
    p = f"{root}blocks.{i}."
    added = {"attn": float(tr[p + "hook_attn_out"][pos].norm())}
    if cross:
        added["cross"] = float(tr[p + "hook_cross_attn_out"][pos].norm())
    added["mlp"] = float(tr[p + "hook_mlp_out"][pos].norm())
    return BlockRow(i, added, strip(tr[p + "hook_resid_post"][pos], cells))


def _compact(cfg: ModelConfig, row: BlockRow, root: str = "") -> Part:
    added = ", ".join(f"{k} adds {v:.2f}" for k, v in row.added.items())
    return Part(part_id(row.layer, root=root), "block", f"Block {row.layer}", str(cfg.d_model), layer=row.layer,
                strip=row.stream, note=added)


def _top(logits: torch.Tensor, display, k: int) -> list[tuple[int, str, float, float]]:
    probs = logits.float().softmax(-1)
    top = probs.topk(min(k, probs.numel()))
    return [(int(i), display(int(i)), float(logits[i]), float(p)) for i, p in zip(top.indices, top.values)]


def _check(cfg: ModelConfig, tr: Trace, position: int, open_block: int | None) -> None:
    """A ValueError unless `architecture` can draw this trace at this position with this block open."""
    if cfg.encoder_decoder:
        raise ValueError("an encoder–decoder has two stacks: use seq2seq_architecture")
    missing = missing_names(tr, architecture_record(cfg, open_block))
    if missing:
        raise ValueError(f"the trace lacks {missing[:4]}: grow it with architecture_record(config, {open_block})")
    if not 0 <= position < tr.n_tokens:
        raise ValueError(f"position {position} is not in the text (0 to {tr.n_tokens - 1})")
    if open_block is not None and not 0 <= open_block < cfg.n_layers:
        raise ValueError(f"block {open_block} is not in this model (0 to {cfg.n_layers - 1})")


def _ending(model, tr: Trace, position: int, last_row: BlockRow, last: str, cells: int, top_k: int
            ) -> tuple[list[Part], list[Edge], list[tuple[int, str, float, float]]]:
    """After the last block: the final norm (pre-norm) or the output vectors (post-norm), then, for a model with a
    next-token head, the unembedding and the softmax's top tokens. The parts, the edges and those top tokens."""
    cfg = model.config
    if cfg.post_norm:
        parts = [Part("output", "output", "Output vectors" if not cfg.lm_head else "Last block's output",
                      str(cfg.d_model), strip=last_row.stream,
                      note="no unembedding: an encoder ends at its vectors" if not cfg.lm_head else "")]
    else:
        final = tr["ln_final.hook_normalized"][position]
        parts = [Part("ln_final", "norm", f"Final {NORM[cfg.norm]}", str(cfg.d_model), strip=strip(final, cells))]
    edges = [Edge(last, parts[0].name)]
    if not cfg.lm_head:
        return parts, edges, []
    if position == tr.n_tokens - 1:
        logits = tr.logits
    else:
        final = tr["ln_final.hook_normalized"][position] if not cfg.post_norm else tr.resid_post(cfg.n_layers - 1)[
            position]
        with torch.inference_mode():
            logits = model.unembed_logits(final.to(model.device, model.embed.weight.dtype)).float().cpu()
    display = model.tokenizer.display if model.tokenizer is not None else str
    top = _top(logits, display, top_k)
    tied = "tied: the embedding table" if cfg.tied_embeddings else "its own matrix"
    parts.append(Part("unembed", "unembed", "Unembedding", f"{cfg.d_model} → {cfg.vocab_size:,} logits, {tied}",
                      note=f"top logit {top[0][2]:.2f}"))
    parts.append(Part("softmax", "softmax", "Softmax", f"{cfg.vocab_size:,} probabilities, sum 1",
                      note=f"next token: {top[0][1]} {top[0][3]:.1%}"))
    edges += [Edge(parts[0].name, "unembed"), Edge("unembed", "softmax")]
    return parts, edges, top


def architecture(model, tr: Trace, position: int, open_block: int | None = None, cells: int = CELLS,
                 top_k: int = TOP_K) -> Architecture:
    """The picture's data for a decoder or an encoder (one stack), following the token at `position`. `tr` must
    hold `architecture_record(model.config, open_block)` (a ValueError says what is missing). The softmax's top
    tokens are the trace's own logits at the last position; at an earlier one, the final norm's recorded output
    through the model's unembedding."""
    cfg = model.config
    _check(cfg, tr, position, open_block)
    parts, edges, last = _embedding(cfg, tr, position, cells)
    rows = [_row(tr, i, position, cells) for i in range(cfg.n_layers)]
    for row in rows:
        if row.layer == open_block:
            inside, links, last_inside = _open_block(cfg, tr, position, row.layer, cells, last)
            parts += inside
            edges += links
            last = last_inside
        else:
            part = _compact(cfg, row)
            parts.append(part)
            edges.append(Edge(last, part.name))
            last = part.name
        if cfg.positional == "rope":  # nothing added: the positions turn q and k inside each attention
            edges.append(Edge("pos", part_id(row.layer, "attn" if row.layer == open_block else None), "rotary"))
    ending, links, top = _ending(model, tr, position, rows[-1], last, cells, top_k)
    parts += ending
    edges += links
    return Architecture("decoder" if cfg.lm_head else "encoder", cfg, list(tr.tokens), list(tr.token_ids), position,
                        {p.name: p for p in parts}, edges, rows, open_block, top)


SEQ2SEQ_RECORD = (
    "encoder.hook_embed", "encoder.hook_pos_embed", "decoder.hook_embed", "decoder.hook_pos_embed",
    "encoder.blocks.*.hook_attn_out", "encoder.blocks.*.hook_mlp_out", "encoder.blocks.*.hook_resid_post",
    "decoder.blocks.*.hook_attn_out", "decoder.blocks.*.hook_cross_attn_out", "decoder.blocks.*.hook_mlp_out",
    "decoder.blocks.*.hook_resid_post",
)


def seq2seq_architecture(model, tr, source_position: int | None = None, position: int | None = None,
                         cells: int = CELLS, top_k: int = TOP_K) -> Architecture:
    """The picture's data for the encoder–decoder from one recorded pass (`core.seq2seq.run(…, record=
    SEQ2SEQ_RECORD)`): the encoder following a source word (default: the last before </s>), the decoder following
    a position of its input (default: the one that wrote the last word; the last position only writes </s>)."""
    cfg = model.config
    S, T = len(tr.source_ids), len(tr.target_ids)
    source_position = max(0, S - 2) if source_position is None else source_position
    position = max(0, T - 2) if position is None else position
    parts: list[Part] = []
    edges: list[Edge] = []
    rows = {}
    for root, n_layers, pos in (("encoder.", cfg.n_layers, source_position), ("decoder.", cfg.n_decoder_layers,
                                                                             position)):
        inside, links, last = _embedding(cfg, tr, pos, cells, root)
        parts += inside
        edges += links
        rows[root] = [_row(tr, i, pos, cells, root, cross=root == "decoder.") for i in range(n_layers)]
        for row in rows[root]:
            part = _compact(cfg, row, root)
            parts.append(part)
            edges.append(Edge(last, part.name))
            last = part.name
        if root == "encoder.":
            output = Part("encoder.output", "output", "Encoder output", f"{S} vectors of {cfg.d_model}",
                          strip=rows[root][-1].stream, note="keys and values of every cross-attention")
            parts.append(output)
            edges.append(Edge(last, output.name))
    edges += [Edge("encoder.output", part_id(i, root="decoder."), "cross") for i in range(cfg.n_decoder_layers)]
    logits = tr.logits[position]  # (V,) the decoder's own logits at that position
    top = _top(logits, model.tokenizer.display, top_k)
    parts.append(Part("unembed", "unembed", "Unembedding", f"{cfg.d_model} → {cfg.vocab_size} logits, tied: the "
                      "embedding table", note=f"top logit {top[0][2]:.2f}"))
    parts.append(Part("softmax", "softmax", "Softmax", f"{cfg.vocab_size} probabilities, sum 1",
                      note=f"next word: {top[0][1]} {top[0][3]:.1%}"))
    edges += [Edge(part_id(cfg.n_decoder_layers - 1, root="decoder."), "unembed"), Edge("unembed", "softmax")]
    return Architecture("encoder-decoder", cfg, list(tr.target_tokens), list(tr.target_ids), position,
                        {p.name: p for p in parts}, edges, rows["encoder."], None, top,
                        decoder_blocks=rows["decoder."], source_tokens=list(tr.source_tokens),
                        source_position=source_position)
