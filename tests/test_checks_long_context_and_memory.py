"""The checks of 23_long_context_and_memory pass correct answers and catch the stub and plausible bugs."""
import numpy as np
import pytest
import torch

from genai_roadmap.checks import CheckFailed
from genai_roadmap.checks import long_context_and_memory as check


def stub(*args, **kwargs):
    raise NotImplementedError


# ------------------------------------------------------------------ rope
def rope(x, positions, base=10000.0, pairs="half", sign=1.0, exponent=2.0, swap=False, offset=0, use_positions=True):
    d_head = x.shape[-1]
    positions = positions if use_positions else torch.arange(x.shape[-2])
    inv_freq = base ** (-exponent * torch.arange(d_head // 2, dtype=torch.float) / d_head)
    angles = sign * (positions[:, None].float() + offset) * inv_freq[None]
    cos, sin = (angles.sin(), angles.cos()) if swap else (angles.cos(), angles.sin())
    if pairs == "half":
        x1, x2 = x[..., : d_head // 2], x[..., d_head // 2:]
        return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2)


def test_rope_correct(capsys):
    check.rope(rope)
    assert "matches transformers" in capsys.readouterr().out


def test_reference_rope_is_transformers_rotation():
    x = torch.randn(1, 2, 5, 8)
    assert torch.allclose(check.reference_rope(x, torch.arange(5)), rope(x, torch.arange(5)), atol=1e-5)


@pytest.mark.parametrize("bad, message", [
    (stub, "not implemented"),
    (lambda x, p, b=10000.0: rope(x, p, b, pairs="interleaved"), "interleaved"),
    (lambda x, p, b=10000.0: rope(x, p, b, sign=-1.0), "wrong way"),
    (lambda x, p, b=10000.0: rope(x, p, b, exponent=1.0), "wrong frequencies"),
    (lambda x, p, b=10000.0: rope(x, p, b, swap=True), "swapped"),
    (lambda x, p, b=10000.0: rope(x, p, b, offset=1), "off by one"),
    (lambda x, p, b=10000.0: rope(x, p, b, use_positions=False), "positions are ignored"),
    (lambda x, p, b=10000.0: x.clone(), "nothing is rotated"),
    (lambda x, p, b=10000.0: rope(x, p, b)[..., :-1], "shape"),
    (lambda x, p, b=10000.0: rope(x, p, b) * 1.01, "differs from transformers"),
    (lambda x, p, b=10000.0: rope(x, p, b).numpy(), "torch.Tensor"),
])
def test_rope_bugs(bad, message):
    with pytest.raises(CheckFailed, match=message):
        check.rope(bad)


# ------------------------------------------------------------------ rope_inv_freq
def inv_freq(d_head, base=10000.0, factor=1.0, method="none", ntk_exponent=None, ntk_also_divide=False,
             linear_multiply=False):
    i = torch.arange(0, d_head, 2, dtype=torch.float)
    if method == "linear":
        plain = base ** (-i / d_head)
        return plain * factor if linear_multiply else plain / factor
    if method == "ntk":
        exponent = d_head / (d_head - 2) if ntk_exponent is None else ntk_exponent(d_head)
        out = (base * factor ** exponent) ** (-i / d_head)
        return out / factor if ntk_also_divide else out
    return base ** (-i / d_head)


def test_rope_inv_freq_correct(capsys):
    check.rope_inv_freq(inv_freq)
    assert "match transformers" in capsys.readouterr().out


@pytest.mark.parametrize("bad, message", [
    (stub, "not implemented"),
    (lambda d, b, f, m: inv_freq(d, b, f, m, linear_multiply=True), "multiplied by the factor"),
    (lambda d, b, f, m: inv_freq(d, b, 1.0 if m == "linear" else f, m), "unscaled frequency: linear"),
    (lambda d, b, f, m: inv_freq(d, b, f, "ntk" if m == "linear" else m), "that is NTK"),
    (lambda d, b, f, m: inv_freq(d, b, f, m, ntk_exponent=lambda d: 1.0), "lacks the exponent"),
    (lambda d, b, f, m: inv_freq(d, b, f, m, ntk_exponent=lambda d: (d - 2) / d), "upside down"),
    (lambda d, b, f, m: inv_freq(d, b, f, m, ntk_also_divide=True), "also divided"),
    (lambda d, b, f, m: inv_freq(d, b, f, "linear" if m == "ntk" else m), "position interpolation"),
    (lambda d, b, f, m: inv_freq(d, b, f, "none" if m == "ntk" else m), "unscaled frequency: NTK"),
    (lambda d, b, f, m: b ** (-torch.arange(d // 2, dtype=torch.float) / d), "wrong exponent"),
    (lambda d, b, f, m: 1 / inv_freq(d, b, f, m), "inverse"),
    (lambda d, b, f, m: torch.cat([inv_freq(d, b, f, m)] * 2), "shape"),
    (lambda d, b, f, m: inv_freq(32, 10000.0, 4.0, m), "use the arguments"),
])
def test_rope_inv_freq_bugs(bad, message):
    with pytest.raises(CheckFailed, match=message):
        check.rope_inv_freq(bad)


# ------------------------------------------------------------------ kv_cache_bytes
def kv_bytes(config, seq_len, batch_size=1, bytes_per_value=2, kv=True, gqa=True, head_dim=True, window=True,
             cap=True, batch=True, nbytes=True, hidden=False):
    n_heads = config.num_attention_heads
    n_kv = (config.num_key_value_heads or n_heads) if gqa else n_heads
    d_head = config.head_dim if head_dim else config.hidden_size // n_heads
    width = config.hidden_size if hidden else n_kv * d_head
    w = getattr(config, "sliding_window", None) if window else None
    tokens = (min(seq_len, w) if cap else w) if w else seq_len
    return ((2 if kv else 1) * config.num_hidden_layers * width * tokens * (batch_size if batch else 1)
            * (bytes_per_value if nbytes else 1))


def test_kv_cache_bytes_correct(capsys):
    check.kv_cache_bytes(kv_bytes)
    assert "forward pass fills" in capsys.readouterr().out


def test_measured_cache_matches_the_formula():
    from transformers import MistralConfig

    config = MistralConfig(hidden_size=32, num_attention_heads=4, num_key_value_heads=2, num_hidden_layers=2,
                           vocab_size=32, intermediate_size=32, sliding_window=8)
    # transformers keeps window - 1 tokens: the next token's own key and value complete the window
    assert check.measured_kv_cache_bytes(config, 20) == check.reference_kv_cache_bytes(config, 7, bytes_per_value=4)


@pytest.mark.parametrize("bad, message", [
    (stub, "not implemented"),
    (lambda c, t, b=1, n=2: kv_bytes(c, t, b, n, kv=False), "K and V"),
    (lambda c, t, b=1, n=2: kv_bytes(c, t, b, n, gqa=False), "grouped-query"),
    (lambda c, t, b=1, n=2: kv_bytes(c, t, b, n, head_dim=False), "config.head_dim"),
    (lambda c, t, b=1, n=2: kv_bytes(c, t, b, n, hidden=True), "hidden_size for the width"),
    (lambda c, t, b=1, n=2: kv_bytes(c, t, b, n, window=False), "sliding window"),
    (lambda c, t, b=1, n=2: kv_bytes(c, t, b, n, cap=False), "shorter than the window"),
    (lambda c, t, b=1, n=2: kv_bytes(c, t, b, n, batch=False), "batch_size"),
    (lambda c, t, b=1, n=2: kv_bytes(c, t, b, 2), "bytes_per_value"),
    (lambda c, t, b=1, n=2: kv_bytes(c, t, b, n, nbytes=False), "number of values"),
    (lambda c, t, b=1, n=2: kv_bytes(c, t, b, n) / 3, "whole number"),
    (lambda c, t, b=1, n=2: kv_bytes(c, t, b, n) + 1, "expected"),
])
def test_kv_cache_bytes_bugs(bad, message):
    with pytest.raises(CheckFailed, match=message):
        check.kv_cache_bytes(bad)


# ------------------------------------------------------------------ recall
def recall(memory, queries, k, normalise=True, descending=True, ordered=True):
    m, q = memory, queries
    if normalise:
        m = m / np.linalg.norm(m, axis=1, keepdims=True)
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
    sims = q @ m.T
    top = np.argsort(-sims if descending else sims, axis=1)[:, :k]
    return np.sort(top, axis=1) if ordered else top


def test_recall_correct(capsys):
    check.recall(recall)
    assert "match FAISS" in capsys.readouterr().out


def test_recall_accepts_torch():
    check.recall(lambda m, q, k: torch.as_tensor(recall(m, q, k)))


@pytest.mark.parametrize("bad, message", [
    (stub, "not implemented"),
    (lambda m, q, k: recall(m, q, k, ordered=False), "similarity order"),
    (lambda m, q, k: recall(m, q, k, normalise=False), "raw dot product: normalise"),
    (lambda m, q, k: recall(m, q, k, descending=False), "least"),
    (lambda m, q, k: recall(m, q, k, normalise=False, ordered=False), "left in score order"),
    (lambda m, q, k: recall(m, q, k + 1), "shape"),
    (lambda m, q, k: recall(m, q, k).astype(float), "integer"),
    (lambda m, q, k: recall(m, q, k)[::-1], "expected"),
])
def test_recall_bugs(bad, message):
    with pytest.raises(CheckFailed, match=message):
        check.recall(bad)
