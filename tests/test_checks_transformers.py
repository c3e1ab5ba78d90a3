"""The checks of 04_transformers pass correct answers and catch the stub and plausible bugs."""
import math
import re

import pytest
import torch

from genai_roadmap.checks import CheckFailed
from genai_roadmap.checks import transformers as check


def stub(*args, **kwargs):
    raise NotImplementedError


# ------------------------------------------------------------------ scaled_dot_product_attention
def sdpa(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(dim=-1) @ v


def sdpa_unscaled(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(dim=-1) @ v


def sdpa_wrong_dim(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(dim=-2) @ v


def sdpa_mask_inverted(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(mask, -1e9)
    return scores.softmax(dim=-1) @ v


def sdpa_mask_ignored(q, k, v, mask=None):
    return sdpa(q, k, v)


# ------------------------------------------------------------------ causal_mask
def causal(T):
    return torch.ones(T, T, dtype=torch.bool).tril()


def causal_inverted(T):
    return torch.ones(T, T, dtype=torch.bool).triu()


def causal_no_diagonal(T):
    return torch.ones(T, T, dtype=torch.bool).tril(-1)


def causal_float(T):
    return torch.ones(T, T).tril()


# ------------------------------------------------------------------ multi_head_attention
def make_mha(split_ok=True, merge_ok=True, scale="d_head", use_causal=True, out_t=False):
    def mha(x, w_qkv, w_out, n_heads, causal_=False):
        B, T, d_model = x.shape
        d_head = d_model // n_heads
        q, k, v = (x @ w_qkv.T).split(d_model, dim=-1)  # 3 x (B, T, d_model)
        if split_ok:
            q, k, v = (t.view(B, T, n_heads, d_head).transpose(1, 2) for t in (q, k, v))
        else:
            q, k, v = (t.reshape(B, n_heads, T, d_head) for t in (q, k, v))
        scores = q @ k.transpose(-2, -1) / math.sqrt({"d_head": d_head, "d_model": d_model, "none": 1}[scale])
        if causal_ and use_causal:
            scores = scores.masked_fill(~causal(T), float("-inf"))
        y = scores.softmax(-1) @ v  # (B, n_heads, T, d_head)
        y = y.transpose(1, 2).reshape(B, T, d_model) if merge_ok else y.reshape(B, T, d_model)
        return y @ (w_out if out_t else w_out.T)

    return mha


# ------------------------------------------------------------------ apply_rope
def make_rope(pairs="half", sign=1.0, freq_exp=2.0, use_pos=True):
    def rope(x, pos):
        d = x.shape[-1]
        half = d // 2
        freqs = 10000.0 ** (-freq_exp * torch.arange(half) / d)
        angles = (pos if use_pos else torch.zeros_like(pos))[:, None].float() * freqs  # (T, d_head/2)
        cos, sin = angles.cos(), sign * angles.sin()
        if pairs == "half":
            x1, x2 = x[..., :half], x[..., half:]
            return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)
        x1, x2 = x[..., 0::2], x[..., 1::2]
        return torch.stack([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1).flatten(-2)

    return rope


# ------------------------------------------------------------------ kv_cache_step
def kv_step(q, k, v, k_cache, v_cache):
    k_cache, v_cache = torch.cat([k_cache, k], dim=2), torch.cat([v_cache, v], dim=2)
    return sdpa(q, k_cache, v_cache), k_cache, v_cache


def kv_step_old_cache_only(q, k, v, k_cache, v_cache):
    out = sdpa(q, k_cache, v_cache)
    return out, torch.cat([k_cache, k], dim=2), torch.cat([v_cache, v], dim=2)


def kv_step_wrong_axis(q, k, v, k_cache, v_cache):
    k_cache, v_cache = torch.cat([k_cache, k], dim=-1), torch.cat([v_cache, v], dim=-1)
    return sdpa(q, k_cache, v_cache), k_cache, v_cache


def kv_step_causal_mask(q, k, v, k_cache, v_cache):
    k_cache, v_cache = torch.cat([k_cache, k], dim=2), torch.cat([v_cache, v], dim=2)
    T = k_cache.shape[2]
    return sdpa(q, k_cache, v_cache, causal(T)[:1]), k_cache, v_cache


def kv_step_no_update(q, k, v, k_cache, v_cache):
    out = sdpa(q, torch.cat([k_cache, k], dim=2), torch.cat([v_cache, v], dim=2))
    return out, k_cache, v_cache


def kv_step_prepend(q, k, v, k_cache, v_cache):
    k_cache, v_cache = torch.cat([k, k_cache], dim=2), torch.cat([v, v_cache], dim=2)
    return sdpa(q, k_cache, v_cache), k_cache, v_cache


CASES = {
    "scaled_dot_product_attention": (sdpa, {
        "unscaled": (sdpa_unscaled, "1/sqrt(d_head)"),
        "wrong softmax dim": (sdpa_wrong_dim, "wrong dimension"),
        "mask inverted": (sdpa_mask_inverted, "wrong way round"),
        "mask ignored": (sdpa_mask_ignored, "mask ignored"),
    }),
    "causal_mask": (causal, {
        "inverted": (causal_inverted, "mask inverted"),
        "no diagonal": (causal_no_diagonal, "diagonal is missing"),
        "float": (causal_float, "bool"),
    }),
    "multi_head_attention": (make_mha(), {
        "merge order": (make_mha(merge_ok=False), "merged in the wrong order"),
        "split order": (make_mha(split_ok=False), "split in the wrong order"),
        "scaled by d_model": (make_mha(scale="d_model"), "sqrt(d_model)"),
        "causal ignored": (make_mha(use_causal=False), "causal=True ignored"),
        "w_out not transposed": (make_mha(out_t=True), "nn.Linear"),
    }),
    "apply_rope": (make_rope(), {
        "interleaved pairs": (make_rope(pairs="interleaved"), "wrong pairs"),
        "wrong way": (make_rope(sign=-1.0), "wrong way"),
        "wrong frequencies": (make_rope(freq_exp=1.0), "frequencies"),
        "positions unused": (make_rope(use_pos=False), "positions"),
    }),
    "kv_cache_step": (kv_step, {
        "old cache only": (kv_step_old_cache_only, "old cache only"),
        "wrong axis": (kv_step_wrong_axis, "time axis"),
        "causal mask": (kv_step_causal_mask, "causal mask"),
        "cache not updated": (kv_step_no_update, "key cache should be"),
        "prepended": (kv_step_prepend, "old first, new last"),
    }),
}


@pytest.mark.parametrize("name", CASES)
def test_correct_passes(name, capsys):
    getattr(check, name)(CASES[name][0])
    assert f"✓ {name} passed" in capsys.readouterr().out


@pytest.mark.parametrize("name", CASES)
def test_stub_fails(name):
    with pytest.raises(CheckFailed, match="not implemented yet"):
        getattr(check, name)(stub)


@pytest.mark.parametrize("name,bug", [(n, b) for n, (_, bugs) in CASES.items() for b in bugs])
def test_bug_fails_with_named_cause(name, bug):
    fn, message = CASES[name][1][bug]
    with pytest.raises(CheckFailed, match=re.escape(message)):
        getattr(check, name)(fn)


def test_correct_mha_accepts_keyword_causal():
    # the notebook's signature names the argument `causal`; the check passes it positionally
    def mha(x, w_qkv, w_out, n_heads, causal=False):
        return make_mha()(x, w_qkv, w_out, n_heads, causal)

    check.multi_head_attention(mha)


def test_rope_reference_matches_hugging_face_convention():
    # Hugging Face Llama: q * cos + rotate_half(q) * sin, with cos/sin of cat(freqs, freqs)
    x = torch.randn(1, 2, 5, 8)
    pos = torch.arange(5)
    freqs = 10000.0 ** (-torch.arange(0, 8, 2).float() / 8)
    emb = torch.cat([pos[:, None] * freqs, pos[:, None] * freqs], dim=-1)
    rotate_half = torch.cat([-x[..., 4:], x[..., :4]], dim=-1)
    hf = x * emb.cos() + rotate_half * emb.sin()
    torch.testing.assert_close(make_rope()(x, pos), hf, atol=1e-5, rtol=1e-5)
