"""The original Transformer ("Attention Is All You Need", Vaswani et al. 2017): an encoder–decoder in the same
instrumented core, and `translate`, which runs it on a sentence and records what it computed.

The encoder is a stack of core.model Blocks with nothing masked. Each decoder block has three sublayers: masked
self-attention over the words written so far, cross-attention whose queries come from the decoder and whose keys and
values come from the encoder's OUTPUT (the last encoder block's, the same for every decoder layer), and the
feed-forward layer. As in the paper: sinusoidal positions, Add & Norm after every sublayer (post-norm), ReLU, one
embedding matrix shared by the source words, the target words and the output layer, scaled by √d_model on the way
in. The recorder, the fast and explicit attention paths and the KV cache are core.model's.

Recorded names (B = batch, S = source tokens, T = target tokens, nh = heads, hs = head size, d = d_model):

| name                                          | shape          | what                                          |
|-----------------------------------------------|----------------|-----------------------------------------------|
| encoder.hook_embed / decoder.hook_embed       | (B, S|T, d)    | embedding rows × √d                           |
| encoder.hook_pos_embed / decoder.hook_pos_embed | (B, S|T, d)  | sinusoidal position vectors                   |
| encoder.blocks.{i}.…                          |                | as core.model's post-norm Block (nothing masked) |
| decoder.blocks.{i}.hook_resid_pre             | (B, T, d)      | entering decoder block i                      |
| decoder.blocks.{i}.attn.hook_q|k|v|attn_scores|pattern|z | | masked self-attention, as core.model's        |
| decoder.blocks.{i}.hook_attn_out              | (B, T, d)      | self-attention's output                       |
| decoder.blocks.{i}.hook_resid_mid             | (B, T, d)      | after Add & Norm (ln1)                        |
| decoder.blocks.{i}.cross_attn.hook_q          | (B, T, nh, hs) | queries, from the decoder                     |
| decoder.blocks.{i}.cross_attn.hook_k|v        | (B, S, nh, hs) | keys and values, from the encoder's output    |
| decoder.blocks.{i}.cross_attn.hook_attn_scores|pattern | (B, nh, T, S) | target × source, nothing masked      |
| decoder.blocks.{i}.cross_attn.hook_z          | (B, T, nh, hs) |                                               |
| decoder.blocks.{i}.hook_cross_attn_out        | (B, T, d)      | cross-attention's output                      |
| decoder.blocks.{i}.hook_resid_mid_cross       | (B, T, d)      | after Add & Norm (ln_cross)                   |
| decoder.blocks.{i}.mlp.hook_pre|post, hook_mlp_out, hook_resid_post | | the feed-forward layer, Add & Norm (ln2) |
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from core.config import ModelConfig
from core.model import MLP, Attention, Block, Recorder, SinusoidalPositions, _rec, attention_mask, make_norm, table
from core.tokenizer import BOS, EOS

PastKV = list[tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]]  # per layer: self, cross

DEFAULT_RECORD = (
    "encoder.hook_embed", "encoder.hook_pos_embed", "decoder.hook_embed", "decoder.hook_pos_embed",
    "encoder.blocks.*.attn.hook_pattern", "decoder.blocks.*.attn.hook_pattern",
    "decoder.blocks.*.cross_attn.hook_pattern",
)


class CrossAttention(Attention):
    """Attention whose queries come from the decoder (x) and whose keys and values come from the encoder's output
    (memory); nothing is masked: every target word may read every source word. Same parameters as self-attention
    (one stacked q, k, v matrix and the output projection); its "KV cache" is the memory's keys and values, computed
    once per sentence."""

    def project(self, x, rotary, past, memory):
        cfg = self.cfg
        B, T, _ = x.shape
        nh, nkv, hs = cfg.n_heads, cfg.kv_heads, cfg.head_dim
        n_q, weight, bias = self.split[0], self.qkv.weight, self.qkv.bias
        q = F.linear(x, weight[:n_q], None if bias is None else bias[:n_q])  # (B, T, nh·hs)
        q = q.view(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        if past is not None:
            return q, past[0], past[1], 0
        S = memory.shape[1]
        k, v = F.linear(memory, weight[n_q:], None if bias is None else bias[n_q:]).split(self.split[1:], dim=-1)
        k = k.view(B, S, nkv, hs).transpose(1, 2)  # (B, nkv, S, hs)
        v = v.view(B, S, nkv, hs).transpose(1, 2)  # (B, nkv, S, hs)
        return q, k, v, 0


class DecoderBlock(nn.Module):
    """Masked self-attention, cross-attention over the encoder's output, feed-forward; Add & Norm after each."""

    def __init__(self, cfg: ModelConfig, index: int):
        super().__init__()
        self.prefix = p = f"decoder.blocks.{index}."
        self.index, self.dropout = index, cfg.dropout
        self.ln1, self.ln_cross, self.ln2 = make_norm(cfg), make_norm(cfg), make_norm(cfg)
        self.attn = Attention(dataclasses.replace(cfg, causal=True), p + "attn.", index)
        self.cross_attn = CrossAttention(dataclasses.replace(cfg, causal=False), p + "cross_attn.", index)
        self.mlp = MLP(cfg, p + "mlp.")

    def add_norm(self, x: torch.Tensor, sublayer_out: torch.Tensor, norm: nn.Module) -> torch.Tensor:
        return norm(x + F.dropout(sublayer_out, self.dropout, self.training))  # (B, T, d)

    def forward(self, x, memory, rec, past):
        p = self.prefix
        x = _rec(rec, p + "hook_resid_pre", x)  # every _rec hands back the tensor as the call's edits left it
        attn_out, self_kv = self.attn(x, rec, None, None if past is None else past[0])  # (B, T, d)
        attn_out = _rec(rec, p + "hook_attn_out", attn_out)
        x = _rec(rec, p + "hook_resid_mid", self.add_norm(x, attn_out, self.ln1))  # (B, T, d)
        cross_out, cross_kv = self.cross_attn(x, rec, None, None if past is None else past[1], memory)  # (B, T, d)
        cross_out = _rec(rec, p + "hook_cross_attn_out", cross_out)
        x = _rec(rec, p + "hook_resid_mid_cross", self.add_norm(x, cross_out, self.ln_cross))  # (B, T, d)
        mlp_out = _rec(rec, p + "hook_mlp_out", self.mlp(x, rec))  # (B, T, d)
        x = _rec(rec, p + "hook_resid_post", self.add_norm(x, mlp_out, self.ln2))  # (B, T, d)
        return x, (self_kv, cross_kv)


class Stack(nn.Module):
    def __init__(self, blocks: Iterable[nn.Module]):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)


class EncoderDecoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if not cfg.encoder_decoder or cfg.positional != "sinusoidal" or not cfg.tied_embeddings:
            raise ValueError("an EncoderDecoder needs n_decoder_layers > 0, sinusoidal positions and tied embeddings")
        self.config = cfg
        self.tokenizer = None
        self.source: str | None = None
        self.embed = table(cfg.vocab_size, cfg.d_model)  # shared: source words, target words and the output layer
        self.pos_embed = SinusoidalPositions(cfg)
        self.encoder = Stack(Block(dataclasses.replace(cfg, causal=False), i, "encoder.") for i in range(cfg.n_layers))
        self.decoder = Stack(DecoderBlock(cfg, i) for i in range(cfg.n_decoder_layers))
        if self.embed.weight.device.type == "meta":  # built to be loaded: no init
            return
        for name, param in self.named_parameters():
            if name.endswith("weight") and param.dim() == 2:
                nn.init.xavier_uniform_(param)  # the paper's code (tensor2tensor) uses Glorot-uniform
            elif name.endswith("bias") and ".ln" not in name:
                nn.init.zeros_(param)
        nn.init.normal_(self.embed.weight, std=cfg.d_model**-0.5)  # × √d on the way in: unit-size rows

    @property
    def device(self) -> torch.device:
        return self.embed.weight.device

    def num_params(self, non_embedding: bool = False) -> int:
        return sum(p.numel() for p in self.parameters()) - (self.embed.weight.numel() if non_embedding else 0)

    def embed_tokens(self, ids: torch.Tensor, root: str, rec: Recorder | None, start: int = 0) -> torch.Tensor:
        cfg = self.config
        B, T = ids.shape
        if start + T > cfg.n_ctx:
            raise ValueError(f"{start + T} tokens exceed the translator's length limit {cfg.n_ctx}")
        x = _rec(rec, root + "hook_embed", self.embed(ids) * math.sqrt(cfg.d_model))  # (B, T, d)
        pos = self.pos_embed(torch.arange(start, start + T, device=ids.device)).expand(B, T, cfg.d_model)  # (B, T, d)
        pos = _rec(rec, root + "hook_pos_embed", pos)
        return F.dropout(x + pos, cfg.dropout, self.training)

    def encode(self, source: torch.Tensor, rec: Recorder | None = None) -> torch.Tensor:
        """source (B, S) ids → the encoder's output (B, S, d), which every decoder layer's cross-attention reads."""
        x = self.embed_tokens(source, "encoder.", rec)
        for block in self.encoder.blocks:
            x, _ = block(x, rec, None, None)
        return x

    def decode(self, target: torch.Tensor, memory: torch.Tensor, rec: Recorder | None = None,
               past: PastKV | None = None, logits: str = "all") -> tuple[torch.Tensor, PastKV]:
        """target (B, T) ids (the words so far, after <s>) → (logits, new cache). logits "all": (B, T, V), each
        position's guess for the NEXT word; "last": (B, V)."""
        start = 0 if past is None else past[0][0][0].shape[2]
        x = self.embed_tokens(target, "decoder.", rec, start)
        presents: PastKV = []
        for i, block in enumerate(self.decoder.blocks):
            x, present = block(x, memory, rec, None if past is None else past[i])
            presents.append(present)
        out = x if logits == "all" else x[:, -1]
        return F.linear(out, self.embed.weight), presents  # (B, T, V) or (B, V)

    def forward(self, source: torch.Tensor, target: torch.Tensor, rec: Recorder | None = None) -> torch.Tensor:
        """Teacher forcing: (B, S) source and (B, T) decoder input → (B, T, V) logits for every next word."""
        return self.decode(target, self.encode(source, rec), rec)[0]


@dataclass
class Seq2SeqTrace:
    """What one encoder–decoder pass computed: the encoder on the source, the decoder on `target_ids` (<s> followed
    by the words it was given). Plain and picklable; hands out copies."""

    source_ids: list[int]
    source_tokens: list[str]
    target_ids: list[int]  # the decoder's input
    target_tokens: list[str]
    config: ModelConfig
    _cache: dict[str, torch.Tensor] = field(repr=False)
    _logits: torch.Tensor = field(repr=False)  # (T, V): position t's scores for the word after target_ids[t]

    def __getitem__(self, name: str) -> torch.Tensor:
        try:
            return self._cache[name].clone()
        except KeyError:
            raise KeyError(f"{name!r} was not recorded; recorded: {self.names}") from None

    def __contains__(self, name: str) -> bool:
        return name in self._cache

    @property
    def names(self) -> list[str]:
        return list(self._cache)

    @property
    def logits(self) -> torch.Tensor:
        return self._logits.clone()

    @property
    def probs(self) -> torch.Tensor:
        """(T, V) at each decoder position, the distribution over the next word."""
        return self._logits.softmax(dim=-1)

    def encoder_pattern(self, layer: int) -> torch.Tensor:
        """(heads, S, S) the encoder's self-attention: every source word may read every other one."""
        return self[f"encoder.blocks.{layer}.attn.hook_pattern"]

    def decoder_pattern(self, layer: int) -> torch.Tensor:
        """(heads, T, T) the decoder's masked self-attention: a position reads itself and the words before it."""
        return self[f"decoder.blocks.{layer}.attn.hook_pattern"]

    def cross_pattern(self, layer: int) -> torch.Tensor:
        """(heads, T, S) cross-attention: each decoder position (row) over the source words; rows sum to 1."""
        return self[f"decoder.blocks.{layer}.cross_attn.hook_pattern"]

    def decoder_hidden(self) -> torch.Tensor:
        """(T, T) bool: True where a decoder position may NOT look (the words after it)."""
        return attention_mask(dataclasses.replace(self.config, causal=True), 0, len(self.target_ids)).cpu()


@dataclass
class Translation:
    source: str  # the text as typed
    text: str  # the greedy translation
    output_ids: list[int]  # the words it wrote, the final </s> included when it stopped by itself
    finished: bool  # it wrote </s> within the length limit
    trace: Seq2SeqTrace  # the encoder on the source, the decoder fed <s> and its own outputs


class UnknownWords(ValueError):
    """Words the translator was never trained to read."""

    def __init__(self, words: list[str], known: Iterable[str]):
        self.words = words
        shown = ", ".join(f"“{w}”" for w in words[:8]) + (" …" if len(words) > 8 else "")
        super().__init__(f"Not in the translator's English vocabulary: {shown}. It was trained only on short "
                         f"sentences over {len(set(known))} English words: " + ", ".join(sorted(known)) + ".")


def source_ids(model: EncoderDecoder, text: str) -> list[int]:
    """The encoder's input: the sentence's words and </s>; a clear ValueError for anything it cannot read."""
    tok = model.tokenizer
    if not tok.pieces(text):
        raise ValueError("Type an English sentence to translate.")
    unknown = tok.unknown(text)
    if unknown:
        raise UnknownWords(unknown, tok.source_words)
    ids = tok.encode(text) + [tok.id_of(EOS)]
    if len(ids) > model.config.n_ctx:
        raise ValueError(f"{len(ids) - 1} words: the translator reads at most {model.config.n_ctx - 1} (its "
                         "training sentences have at most 11).")
    return ids


@torch.no_grad()
def greedy(model: EncoderDecoder, source: list[int], use_cache: bool = True,
           prefix: tuple[int, ...] = ()) -> tuple[list[int], torch.Tensor]:
    """Write the most likely word at each step until </s> (or the length limit), after `prefix` if one is given
    (words imposed on the decoder as if it had written them). Returns the words written after the prefix and the
    (steps, V) logits each step chose from. use_cache=False recomputes every step from scratch (same result)."""
    bos, eos = model.tokenizer.id_of(BOS), model.tokenizer.id_of(EOS)
    memory = model.encode(torch.tensor([source], device=model.device))  # (1, S, d), once per sentence
    written, steps, past = [bos, *prefix], [], None
    while len(written) < model.config.n_ctx:
        fed = written[-1:] if past is not None else written
        logits, present = model.decode(torch.tensor([fed], device=model.device), memory, past=past, logits="last")
        past = present if use_cache else None
        steps.append(logits[0].float().cpu())
        written.append(int(logits[0].argmax()))
        if written[-1] == eos:
            break
    return written[1 + len(prefix):], torch.stack(steps)


@torch.no_grad()
def run(model: EncoderDecoder, source: list[int], decoder_input: list[int],
        record: str | Iterable[str] = DEFAULT_RECORD) -> Seq2SeqTrace:
    """One recorded pass: the encoder on `source`, the decoder on `decoder_input` (<s> + words) all at once."""
    tok = model.tokenizer
    rec = Recorder(record)
    src = torch.tensor([source], device=model.device)
    logits = model(src, torch.tensor([decoder_input], device=model.device), rec)  # (1, T, V)
    return Seq2SeqTrace(source, [tok.display(i) for i in source], list(decoder_input),
                        [tok.display(i) for i in decoder_input], model.config,
                        {k: v[0].float().cpu() for k, v in rec.store.items()}, logits[0].float().cpu())


def translate(model: EncoderDecoder, text: str, record: str | Iterable[str] = DEFAULT_RECORD) -> Translation:
    """Greedy translation of an English sentence, with everything the encoder and decoder computed on the way."""
    if not model.config.encoder_decoder:
        raise ValueError(f"{model.config.name} is not an encoder–decoder: it does not translate")
    source = source_ids(model, text)
    written, _ = greedy(model, source)
    eos = model.tokenizer.id_of(EOS)
    finished = written[-1] == eos
    words = written[:-1] if finished else written
    trace = run(model, source, [model.tokenizer.id_of(BOS), *words], record)
    return Translation(text, model.tokenizer.decode(words), written, finished, trace)


def continue_after(model: EncoderDecoder, text: str, prefix_words: list[str]) -> list[str]:
    """What the decoder writes (greedily) after `prefix_words`, imposed as if it had written them: how one wrong
    word at inference carries into the next steps."""
    tok = model.tokenizer
    written, _ = greedy(model, source_ids(model, text), prefix=tuple(tok.id_of(w) for w in prefix_words))
    return [tok.display(i) for i in written]


def teacher_forced(model: EncoderDecoder, text: str, target_words: list[str],
                   record: str | Iterable[str] = DEFAULT_RECORD) -> Seq2SeqTrace:
    """The decoder as it was trained: fed <s> and the CORRECT translation shifted right by one, all positions at
    once, whatever it would have written itself."""
    tok = model.tokenizer
    return run(model, source_ids(model, text), [tok.id_of(BOS), *(tok.id_of(w) for w in target_words)], record)
