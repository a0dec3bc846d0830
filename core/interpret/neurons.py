"""Feed-forward neurons: the activation, the units that fire on a text, what one unit promotes, and the shipped
example sentences each unit fires on most."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from core.interpret.attribution import require_sum_of_parts
from core.loading.integrity import ASSETS, check_asset
from core.model import ACTIVATION_NAMES, Transformer
from core.model import activation as model_activation
from core.trace import Trace, trace


def activation(cfg, x: torch.Tensor) -> torch.Tensor:
    """The MLP's activation function applied to x (core.model.activation, the one the model runs)."""
    return model_activation(cfg.mlp, x)


def activation_name(cfg) -> str:
    return ACTIVATION_NAMES[cfg.mlp]


def top_neurons(tr: Trace, layer: int, k: int = 20) -> list[int]:
    """The k hidden units of one MLP with the largest |activation| anywhere in the text after its first token,
    largest first. The first token is left out (when there are others): with nothing before it, many models give
    it outsized activations that would crowd out every unit that reads the text."""
    post = tr.mlp_post(layer)
    post = (post[1:] if len(post) > 1 else post).abs().amax(dim=0)  # (m,)
    return post.topk(min(k, post.numel())).indices.tolist()



def firing(tr: Trace, layer: int) -> torch.Tensor:
    """(T,) share of one MLP's hidden units whose pre-activation (SwiGLU: gate) is positive at each token: the units
    the activation passes on (GELU and SiLU let positive inputs through almost unchanged and squash negative ones
    towards zero)."""
    return (tr.mlp_pre(layer) > 0).float().mean(dim=-1)



def neuron_logit_effect(model: Transformer, layer: int, neuron: int, k: int = 10
                        ) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """The vocabulary tokens one MLP unit's output direction promotes and suppresses most, directly: its column of
    the down-projection, through the final norm's gain (centred for LayerNorm), times the unembedding. Per unit of
    activation, before the final norm's per-token division, and ignoring every later layer."""
    require_sum_of_parts(model, "direct effect on the logits")
    cfg = model.config
    if not 0 <= layer < cfg.n_layers or not 0 <= neuron < cfg.mlp_dim:
        raise ValueError(f"no unit {neuron} in layer {layer}")
    with torch.inference_mode():
        w = model.blocks[layer].mlp.fc_out.weight[:, neuron].float()  # (d,)
        if isinstance(model.ln_final, torch.nn.LayerNorm):
            w = w - w.mean()
        effect = model.unembed_logits((w * model.ln_final.weight.float()).to(model.embed.weight.dtype)).float().cpu()
    up, down = effect.topk(k), (-effect).topk(k)
    return ([(int(i), float(v)) for i, v in zip(up.indices, up.values)],
            [(int(i), -float(v)) for i, v in zip(down.indices, down.values)])



EXAMPLE_SENTENCES = ASSETS / "texts" / "neuron_sentences.txt"



def example_sentences() -> list[str]:
    """The sentences the project ships for neuron examples (written for Glassbox; see assets/texts/NOTICE.md)."""
    check_asset(EXAMPLE_SENTENCES)
    return [line for line in EXAMPLE_SENTENCES.read_text(encoding="utf-8").splitlines() if line.strip()]



@dataclass(frozen=True)
class NeuronExamples:
    """Every MLP layer's activations over a set of sentences (each traced on its own): acts (layers, N, m) float16
    for all N tokens, with the sentence and position each row comes from."""

    sentences: list[list[str]]  # display tokens of each sentence
    sentence_of: torch.Tensor  # (N,)
    position_of: torch.Tensor  # (N,)
    acts: torch.Tensor  # (layers, N, m)

    def top(self, layer: int, neuron: int, k: int = 8) -> list[tuple[int, int, float]]:
        """(sentence, position, activation) of the k largest activations of one unit by size (a SwiGLU unit's sign
        is the up branch's, so either sign is strong), largest first; first tokens left out (see top_neurons)."""
        column = self.acts[layer, :, neuron].float().masked_fill(self.position_of == 0, 0.0)
        best = column.abs().topk(min(k, len(column))).indices
        return [(int(self.sentence_of[i]), int(self.position_of[i]), float(column[i])) for i in best]



def neuron_examples(model: Transformer, sentences: list[str] | list[list[int]]) -> NeuronExamples:
    """Every unit of every MLP layer on every sentence (see NeuronExamples)."""
    tokens, rows, sent, pos = [], [], [], []
    for s, text in enumerate(sentences):
        tr = trace(model, text, record=("blocks.*.mlp.hook_post",), logits="none")
        tokens.append(tr.tokens)
        rows.append(torch.stack([tr.mlp_post(i).half() for i in range(model.config.n_layers)]))  # (L, T, m)
        sent += [s] * tr.n_tokens
        pos += list(range(tr.n_tokens))
    return NeuronExamples(tokens, torch.tensor(sent), torch.tensor(pos), torch.cat(rows, dim=1))
