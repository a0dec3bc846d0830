"""The instrumented transformer: recorded names, fast vs explicit attention, attention math, logits modes,
KV-cached generation, sampling filters, threads, CUDA."""

import threading

import pytest
import torch

from core import Recorder, generate, sampling_distribution, trace
from core.trace import unpack_pattern
from tests.conftest import tiny

BLOCK_NAMES_GPT2 = [
    "blocks.0.hook_resid_pre",
    "blocks.0.ln1.hook_normalized",
    "blocks.0.attn.hook_q",
    "blocks.0.attn.hook_k",
    "blocks.0.attn.hook_v",
    "blocks.0.attn.hook_attn_scores",
    "blocks.0.attn.hook_pattern",
    "blocks.0.attn.hook_z",
    "blocks.0.hook_attn_out",
    "blocks.0.hook_resid_mid",
    "blocks.0.ln2.hook_normalized",
    "blocks.0.mlp.hook_pre",
    "blocks.0.mlp.hook_post",
    "blocks.0.hook_mlp_out",
    "blocks.0.hook_resid_post",
]


def test_recorded_names_gpt2_family():
    model = tiny("tiny-stories-1m", n_layers=1)
    assert trace(model, [1, 2, 3], record="*").names == [
        "hook_embed", "hook_pos_embed", *BLOCK_NAMES_GPT2, "ln_final.hook_normalized"
    ]


def test_recorded_names_llama_family():
    model = tiny("tiny-llama", n_layers=1)
    block = list(BLOCK_NAMES_GPT2)
    block.insert(block.index("blocks.0.mlp.hook_pre"), "blocks.0.mlp.hook_pre_linear")
    assert trace(model, [1, 2, 3], record="*").names == ["hook_embed", *block, "ln_final.hook_normalized"]


def test_recorded_shapes(any_model):
    cfg = any_model.config
    tr = trace(any_model, list(range(1, 11)), record="*")
    T, nh, nkv, hs = 10, cfg.n_heads, cfg.kv_heads, cfg.head_dim
    assert tr["blocks.0.attn.hook_q"].shape == (T, nh, hs)
    assert tr["blocks.0.attn.hook_k"].shape == (T, nkv, hs)
    assert tr.pattern(1).shape == (nh, T, T)
    assert tr["blocks.1.mlp.hook_post"].shape == (T, cfg.mlp_dim)
    assert tr.logits.shape == (cfg.vocab_size,)
    assert all(tr[n].device.type == "cpu" for n in tr.names)


def test_fast_path_equals_explicit_path(any_model):
    ids = torch.randint(0, any_model.config.vocab_size, (2, 40), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        fast, _ = any_model(ids, logits="all")
        rec = Recorder(["blocks.*.attn.hook_pattern"])
        explicit, _ = any_model(ids, rec=rec, logits="all")
    assert len(rec.store) == any_model.config.n_layers  # the explicit path really ran
    assert (fast - explicit).abs().max().item() <= 1e-5


def test_attention_math_from_recorded_tensors(any_model):
    cfg = any_model.config
    tr = trace(any_model, list(range(3, 30)), record="*")
    T, group = tr.n_tokens, cfg.n_heads // cfg.kv_heads
    for layer in range(cfg.n_layers):
        pattern, scores = tr.pattern(layer), tr.attn_scores(layer)
        assert torch.allclose(pattern.sum(-1), torch.ones(cfg.n_heads, T), atol=1e-6)
        future = torch.ones(T, T, dtype=torch.bool).triu(1)
        assert (pattern[:, future] == 0).all()
        assert torch.isinf(scores[:, future]).all()
        assert torch.allclose(pattern, scores.softmax(-1), atol=1e-6)
        q, k, v = tr.qkv(layer)  # (T, nh, hs), (T, nkv, hs), (T, nkv, hs)
        k = k.repeat_interleave(group, dim=1)
        v = v.repeat_interleave(group, dim=1)
        s = torch.einsum("qhd,khd->hqk", q, k) / cfg.head_dim**0.5
        s = s.masked_fill(future, float("-inf"))
        z = torch.einsum("hqk,khd->qhd", s.softmax(-1), v)
        assert torch.allclose(z, tr[f"blocks.{layer}.attn.hook_z"], atol=1e-5)


def test_logits_modes_and_logit_lens(any_model):
    ids = list(range(1, 21))
    last = trace(any_model, ids, record=())
    full = trace(any_model, ids, record=(), logits="all")
    assert last.all_logits is None and last.names == []
    assert full.all_logits.shape == (20, any_model.config.vocab_size)
    assert torch.allclose(full.all_logits[-1], last.logits, atol=1e-5)
    lens = trace(any_model, ids, record=(), lens_top_k=5)
    assert lens.lens_ids.shape == (any_model.config.n_layers, 20, 5)
    assert lens.names == []  # the residuals used by the lens are not kept unless asked
    assert lens.lens_ids[-1, -1, 0] == last.logits.argmax()  # the last layer's lens is the model's own output


def test_truncation_and_bad_ids():
    model = tiny("tiny-llama")
    tr = trace(model, [5] * 100, record=())
    assert tr.n_tokens == 64 and tr.n_truncated == 36
    with pytest.raises(ValueError, match="out of range"):
        trace(model, [1, 9999])
    with pytest.raises(ValueError, match="no tokens"):
        trace(model, [])


def test_kv_cache_generation_equals_full_recompute(any_model):
    gen = generate(any_model, [1, 2, 3, 4], max_new_tokens=12, temperature=0)
    ids = [1, 2, 3, 4]
    with torch.inference_mode():
        for _ in range(12):
            logits, _ = any_model(torch.tensor([ids]))
            ids.append(int(logits[0].argmax()))
    assert gen.new_ids == ids[4:]
    assert all(abs(s.probs.sum().item() - 1) < 1e-5 for s in gen.steps)


def test_a_forward_without_kv_cache_keeps_no_keys_and_gives_the_same_logits(any_model):
    idx = torch.tensor([[1, 2, 3, 4, 5]])
    with torch.inference_mode():
        with_cache, presents = any_model(idx)
        without, none = any_model(idx, kv_cache=False)
    assert len(presents) == any_model.config.n_layers and none == []  # trace runs this way: no q·k·v buffer kept
    assert torch.equal(with_cache, without)


def test_generation_is_seeded_and_stops_at_context():
    model = tiny("tiny-llama")
    a = generate(model, [1, 2], max_new_tokens=10, temperature=1.0, top_k=50, top_p=0.9, seed=3)
    b = generate(model, [1, 2], max_new_tokens=10, temperature=1.0, top_k=50, top_p=0.9, seed=3)
    assert a.new_ids == b.new_ids
    for step in a.steps:
        assert (step.probs > 0).sum() <= 50 and step.probs[step.token_id] > 0
    long = generate(model, [1] * 60, max_new_tokens=20, temperature=0)
    assert long.stopped == "context" and len(long.prompt_ids) + len(long.new_ids) == 64


def test_sampling_distribution_filters():
    logits = torch.tensor([4.0, 3.0, 2.0, 1.0, 0.0])
    cols = sampling_distribution(logits, temperature=2.0)
    assert torch.allclose(cols.scaled, logits / 2)
    top2 = sampling_distribution(logits, top_k=2).probs
    assert (top2[2:] == 0).all() and torch.isclose(top2.sum(), torch.tensor(1.0))
    p = logits.softmax(-1)  # p[0] ≈ 0.64, p[0] + p[1] ≈ 0.88
    assert (sampling_distribution(logits, top_p=0.5).probs > 0).sum() == 1
    assert (sampling_distribution(logits, top_p=0.8).probs > 0).sum() == 2
    assert p[0] < 0.8 < p[0] + p[1]
    greedy = sampling_distribution(logits, temperature=0).probs
    assert greedy[0] == 1 and greedy.sum() == 1


def test_threads_share_one_model():
    model = tiny("tiny-stories-1m")
    texts = [[(7 * i + j) % 2000 + 1 for j in range(5 + i)] for i in range(16)]
    sequential = [trace(model, t) for t in texts]
    results = [None] * len(texts)

    def work(i):
        results[i] = trace(model, texts[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for seq, par in zip(sequential, results):
        assert seq.token_ids == par.token_ids
        assert torch.equal(seq.logits, par.logits)
        assert all(torch.equal(seq[n], par[n]) for n in seq.names)
    assert not any(isinstance(v, torch.Tensor) for v in vars(model).values() if v is not None)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")
def test_cuda_matches_cpu():
    from core.loading.weights import _finish

    cpu = tiny("tiny-llama")
    gpu = _finish(tiny("tiny-llama"), "cuda")
    a, b = trace(cpu, list(range(1, 30)), record="*"), trace(gpu, list(range(1, 30)), record="*")
    assert all(t.device.type == "cpu" for t in b.cache.values())
    assert (a.logits - b.logits).abs().max() < 1e-3


def test_long_inputs_keep_compact_patterns():
    from core.trace import COMPACT_FROM

    model = tiny("tiny-stories-1m")
    ids = [(i * 13) % 2000 + 1 for i in range(COMPACT_FROM + 0)]  # 256 tokens: exact, then 256 + padding
    exact = trace(model, ids, record="*")
    assert exact.compact_names == []
    model = tiny("tiny-stories-1m", n_ctx=320)
    long = trace(model, ids + ids[:40], record="*")
    assert set(long.compact_names) == {f"blocks.{i}.attn.hook_pattern" for i in range(4)}
    full = long.attn_scores(0).softmax(-1)
    assert (long.pattern(0) - full).abs().max() < 5e-4
    assert (long.pattern(0)[:, torch.ones(296, 296, dtype=torch.bool).triu(1)] == 0).all()
    assert long.nbytes < exact.nbytes * 296**2 / 256**2


@pytest.mark.parametrize("preset", ["tiny-stories-1m", "tiny-llama"])  # learned positions; RoPE with shared kv heads
def test_block_attention_equals_one_matrix(preset):
    """Past ATTN_BLOCK tokens the pattern is computed block by block (Attention.causal_blocks); recording the
    scores forces the one-matrix path, so the two can be compared on the same input (a batch of two)."""
    from core.model import ATTN_BLOCK

    model = tiny(preset, n_ctx=2 * ATTN_BLOCK + 60)
    T = model.config.n_ctx - 3  # the last block is a partial one
    ids = torch.randint(1, model.config.vocab_size, (2, T), generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        fast, _ = model(ids, logits="all")
        blocks, one = Recorder(["blocks.*.attn.hook_pattern"]), Recorder(["blocks.*.attn.*"])
        by_blocks, _ = model(ids, rec=blocks, logits="all")
        by_one, _ = model(ids, rec=one, logits="all")
        packed = Recorder(["blocks.*.attn.hook_pattern"], compact_patterns=True)
        model(ids, rec=packed, logits="none")
    assert (by_blocks - by_one).abs().max() <= 1e-5 and (by_blocks - fast).abs().max() <= 1e-5
    for i in range(model.config.n_layers):
        name = f"blocks.{i}.attn.hook_pattern"
        a, b = blocks.store[name], one.store[name]
        assert a.shape == b.shape == (2, model.config.n_heads, T, T)
        assert (a - b).abs().max() <= 1e-6
        assert (a[:, :, torch.ones(T, T, dtype=torch.bool).triu(1)] == 0).all()
        assert packed.packed[name].dtype == torch.float16 and name not in packed.store
        for row in range(2):
            assert (unpack_pattern(packed.packed[name][row], T) - b[row]).abs().max() < 5e-4


def test_rope_profile_depends_on_distance_only():
    from core.model import rope_distance_profile

    model = tiny("tiny-llama")
    q = torch.ones(1, 1, 64, model.config.head_dim)  # the same vector at every position
    rotated = model.rotary(q, 0)[0, 0]  # (64, hs)
    profile = rope_distance_profile(model.config, 20)
    for m, n in [(5, 5), (10, 3), (40, 21)]:
        dot = (rotated[m] @ rotated[n]) / model.config.head_dim
        assert torch.isclose(dot, profile[abs(m - n)], atol=1e-5)


def test_token_limit_bounds_the_recorded_patterns():
    import dataclasses

    from core.config import PRESETS
    from core.trace import pattern_bytes, token_limit

    assert token_limit(PRESETS["gpt2"]) == 1024 and token_limit(PRESETS["tiny-stories-1m"]) == 256
    smollm_shape = dataclasses.replace(PRESETS["tiny-llama"], n_ctx=8192, n_layers=30, n_heads=9, n_kv_heads=3,
                                       d_model=576)
    limit = token_limit(smollm_shape)
    assert 768 <= limit < 8192 and pattern_bytes(smollm_shape, limit) <= 190_000_000
    model = tiny("tiny-stories-1m", dropout=0.0)
    tr = trace(model, list(range(100)), max_tokens=40)
    assert tr.n_tokens == 40 and tr.n_truncated == 60


def test_top_p_semantics_one_is_off_zero_keeps_the_top_token():
    logits = torch.tensor([3.0, 2.0, 1.0, 0.0])
    assert (sampling_distribution(logits, top_p=1.0).probs > 0).sum() == 4  # 1 is off
    assert (sampling_distribution(logits, top_p=0.0).probs > 0).sum() == 1  # towards 0: the top token alone
    assert (sampling_distribution(logits, top_p=0.01).probs > 0).sum() == 1
    cols = sampling_distribution(logits, temperature=2.0, top_k=3, top_p=0.9)
    assert torch.allclose(cols.candidates, torch.tensor([3.0, 2.0, 1.0, float("-inf")]).div(2).softmax(-1))
