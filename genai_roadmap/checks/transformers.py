"""Checks for phase1_foundations/04_transformers.ipynb.

Each check calls the learner's function on small seeded inputs, compares it with a trusted reference
(torch's own attention where one exists, else a short reference below) and one hand-worked case, and
when the answer is wrong compares it with the usual wrong answers to name the likely bug.
"""
from __future__ import annotations

import math
from typing import Callable

from genai_roadmap.checks._common import (
    CheckFailed,
    call,
    close,
    compare,
    expect,
    expect_close,
    expect_shape,
    generator,
    passed,
)

# ----------------------------------------------------------------------------------------- helpers


def _randn(g, *shape):
    import torch

    return torch.randn(*shape, generator=g)


def _compare(name: str, got, expected, wrong_answers: dict[str, object], hint: str, atol: float = 1e-5) -> None:
    """Shape, then values; on a mismatch, name the bug whose wrong answer `got` reproduces."""
    import torch

    got_t = torch.as_tensor(got)
    expect(tuple(got_t.shape) == tuple(expected.shape), name,
           f"expected shape {tuple(expected.shape)}, got {tuple(got_t.shape)}")
    if bool(torch.isnan(got_t).any()) and not bool(torch.isnan(expected).any()):
        for bug, wrong in wrong_answers.items():
            if wrong is not None and bool(torch.isnan(torch.as_tensor(wrong)).any()):
                raise CheckFailed(f"{name}: your output contains NaN. {bug}")
        raise CheckFailed(f"{name}: your output contains NaN (a softmax over a row where every score is -inf?)")
    compare(name, got_t, expected, wrong_answers, hint, atol)


def _attention(q, k, v, mask=None, scale=None, softmax_dim=-1, masked_value=True):
    """Reference attention with knobs that reproduce the usual bugs (for diagnosis only)."""
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = q @ k.transpose(-2, -1) * scale
    if mask is not None:
        fill = ~mask if masked_value else mask
        scores = scores.masked_fill(fill, float("-inf"))
    return scores.softmax(dim=softmax_dim) @ v


def _random_mask(g, t_q: int, t_k: int):
    import torch

    mask = torch.rand(t_q, t_k, generator=g) > 0.4
    mask[:, 0] = True  # every query keeps at least one key, so no row is all -inf
    return mask


# ------------------------------------------------------------------------------- exercise 1


def scaled_dot_product_attention(fn: Callable) -> None:
    """Exercise 1: `fn(q, k, v, mask=None)` equals softmax(q k^T / sqrt(d_head)) v, mask True = may attend."""
    import torch
    import torch.nn.functional as F

    name = "scaled_dot_product_attention"
    # hand-worked: scores (4, 0) / sqrt(4) = (2, 0); softmax = (e^2, 1) / (e^2 + 1) = (0.881, 0.119)
    q = torch.ones(1, 4)
    k = torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    v = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    w = math.e ** 2 / (math.e ** 2 + 1)
    _compare(name, call(name, fn, q, k, v), torch.tensor([[w, 1 - w]]), {
        "scores not scaled by 1/sqrt(d_head)? (got the unscaled softmax of (4, 0))":
            _attention(q, k, v, scale=1.0),
        "scores divided by d_head instead of sqrt(d_head)?": _attention(q, k, v, scale=1 / 4),
        "softmax over the wrong dimension? Each query's weights over the keys (dim=-1) must sum to 1.":
            _attention(q, k, v, softmax_dim=-2),
    }, "hand-worked case: q=(1,1,1,1), keys (1,1,1,1) and 0, d_head=4 -> weights (0.881, 0.119)")

    g = generator(0)
    q, k, v = _randn(g, 2, 3, 5, 8), _randn(g, 2, 3, 7, 8), _randn(g, 2, 3, 7, 6)
    wrong = {
        "scores not scaled by 1/sqrt(d_head)?": _attention(q, k, v, scale=1.0),
        "scores divided by d_head instead of sqrt(d_head)?": _attention(q, k, v, scale=1 / 8),
        "softmax over the wrong dimension? Each query's weights over the keys (dim=-1) must sum to 1.":
            _attention(q, k, v, softmax_dim=-2),
    }
    _compare(name, call(name, fn, q, k, v), F.scaled_dot_product_attention(q, k, v), wrong,
             "compare with softmax(q @ k.transpose(-2, -1) / sqrt(d_head)) @ v")

    mask = _random_mask(g, 5, 7)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    wrong = {
        "mask applied the wrong way round? True means 'may attend': fill scores with -inf where the mask is False.":
            _attention(q, k, v, mask, masked_value=False),
        "mask ignored? Fill the scores with -inf where the mask is False, before the softmax.":
            _attention(q, k, v),
        "mask applied after the softmax? Fill the scores with -inf before the softmax.":
            (torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(8), dim=-1) * mask) @ v,
    }
    _compare(name, call(name, fn, q, k, v, mask), expected, wrong,
             "with a mask: scores.masked_fill(~mask, float('-inf')) before the softmax")
    passed(name, "matches torch.nn.functional.scaled_dot_product_attention, with and without a mask")


# ------------------------------------------------------------------------------- exercise 2


def causal_mask(fn: Callable) -> None:
    """Exercise 2: `fn(T)` is a (T, T) bool tensor, True where query i may attend to key j (j <= i)."""
    import torch

    name = "causal_mask"
    for T in (1, 3, 6):
        got = call(name, fn, T)
        expect(isinstance(got, torch.Tensor), name, f"return a torch.Tensor, got {type(got).__name__}")
        expect_shape(got, (T, T), name)
        expect(got.dtype == torch.bool, name,
               f"return a bool tensor (True = may attend), got dtype {got.dtype}; e.g. "
               "torch.ones(T, T, dtype=torch.bool).tril()")
        expected = torch.ones(T, T, dtype=torch.bool).tril()
        if torch.equal(got, expected):
            continue
        if torch.equal(got, expected.tril(-1)):
            raise CheckFailed(f"{name}: the diagonal is missing: a token may attend to itself (j == i), "
                              "so use .tril() not .tril(-1)")
        if torch.equal(got, expected.T) or torch.equal(got, ~expected):  # the future, not the past
            raise CheckFailed(f"{name}: mask inverted? Row i (a query) may attend to columns j <= i (the past "
                              "and itself), never to the future: use .tril(), True below the diagonal")
        if bool(got.all()):
            raise CheckFailed(f"{name}: every entry is True, so nothing is masked: keep only j <= i")
        raise CheckFailed(f"{name}: wrong pattern for T={T}: expected\n{expected.int()}\ngot\n{got.int()}")
    passed(name, "(T, T) bool, True on and below the diagonal")


# ------------------------------------------------------------------------------- exercise 3


def _mha_reference(x, w_qkv, w_out, n_heads: int, causal: bool):
    """torch's own multi-head attention with the learner's weights (nn.Linear layout, no biases)."""
    import torch

    B, T, d_model = x.shape
    mha = torch.nn.MultiheadAttention(d_model, n_heads, bias=False, batch_first=True)
    with torch.no_grad():
        mha.in_proj_weight.copy_(w_qkv)
        mha.out_proj.weight.copy_(w_out)
        # nn.MultiheadAttention's bool mask means "may NOT attend": the opposite of SDPA's
        future = torch.ones(T, T, dtype=torch.bool).triu(1) if causal else None
        return mha(x, x, x, attn_mask=future, need_weights=False)[0]


def _mha_variant(x, w_qkv, w_out, n_heads, causal, split="ok", merge="ok", scale_by="d_head", out_t=False):
    import torch

    B, T, d_model = x.shape
    d_head = d_model // n_heads
    q, k, v = (x @ w_qkv.T).split(d_model, dim=-1)  # 3 x (B, T, d_model)
    if split == "ok":
        q, k, v = (t.view(B, T, n_heads, d_head).transpose(1, 2) for t in (q, k, v))  # (B, n_heads, T, d_head)
    else:  # viewed straight as (B, n_heads, T, d_head): mixes positions and features
        q, k, v = (t.reshape(B, n_heads, T, d_head) for t in (q, k, v))
    mask = torch.ones(T, T, dtype=torch.bool).tril() if causal else None
    scale = 1 / math.sqrt(d_head if scale_by == "d_head" else d_model) if scale_by != "none" else 1.0
    y = _attention(q, k, v, mask, scale=scale)  # (B, n_heads, T, d_head)
    if merge == "ok":
        y = y.transpose(1, 2).reshape(B, T, d_model)
    else:  # reshaped without moving the head axis back next to d_head
        y = y.reshape(B, T, d_model)
    return y @ (w_out if out_t else w_out.T)


def multi_head_attention(fn: Callable) -> None:
    """Exercise 3: `fn(x, w_qkv, w_out, n_heads, causal=False)` equals torch.nn.MultiheadAttention."""
    import torch

    name = "multi_head_attention"
    g = generator(1)
    B, T, d_model, n_heads = 2, 5, 12, 3
    x = _randn(g, B, T, d_model)
    w_qkv, w_out = _randn(g, 3 * d_model, d_model) / math.sqrt(d_model), _randn(g, d_model, d_model) / math.sqrt(d_model)
    for causal in (False, True):
        args = (x, w_qkv, w_out, n_heads, causal)
        expected = _mha_reference(*args)
        wrong = {
            "heads merged in the wrong order? Transpose (B, n_heads, T, d_head) back to (B, T, n_heads, d_head) "
            "before reshaping to (B, T, d_model).": _mha_variant(*args, merge="bad"),
            "heads split in the wrong order? View (B, T, d_model) as (B, T, n_heads, d_head), then "
            "transpose(1, 2) to (B, n_heads, T, d_head).": _mha_variant(*args, split="bad"),
            "heads split and merged with plain reshapes? Each needs a transpose(1, 2) to keep positions apart.":
                _mha_variant(*args, split="bad", merge="bad"),
            "scores scaled by 1/sqrt(d_model) instead of 1/sqrt(d_head)? Each head works in d_head dimensions.":
                _mha_variant(*args, scale_by="d_model"),
            "scores not scaled by 1/sqrt(d_head)?": _mha_variant(*args, scale_by="none"),
            "output projection applied as x @ w_out? Weights use nn.Linear's layout: x @ w_out.T.":
                _mha_variant(*args, out_t=True),
        }
        if causal:
            wrong["causal=True ignored? Pass a causal mask so no position attends to a later one."] = \
                _mha_variant(x, w_qkv, w_out, n_heads, False)
        got = call(name, fn, *args)
        _compare(name, got, expected, wrong,
                 "q, k, v = (x @ w_qkv.T).split(d_model, -1); split heads; attend; merge heads; @ w_out.T")
    # hand-worked: one head, identity projections, a single token attends only to itself: out = x
    eye = torch.eye(4)
    x1 = torch.tensor([[[1.0, 2.0, 3.0, 4.0]]])
    _compare(name, call(name, fn, x1, torch.cat([eye, eye, eye]), eye, 1, False), x1, {},
             "hand-worked case: one token, identity weights: the output must equal the input")
    passed(name, f"matches torch.nn.MultiheadAttention (d_model={d_model}, n_heads={n_heads}, causal and not)")


# ------------------------------------------------------------------------------- exercise 4


def _rope_variant(x, pos, base=10000.0, pairs="half", sign=1.0, freq_exp=2.0):
    import torch

    d = x.shape[-1]
    half = d // 2
    freqs = base ** (-freq_exp * torch.arange(half, dtype=torch.float64) / d)  # (d_head/2,)
    angles = pos.to(torch.float64)[:, None] * freqs[None, :]  # (T, d_head/2)
    cos, sin = angles.cos().to(x.dtype), (sign * angles.sin()).to(x.dtype)
    if pairs == "half":  # pair x[i] with x[i + d_head/2], as Hugging Face's Llama does
        x1, x2 = x[..., :half], x[..., half:]
        return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)
    x1, x2 = x[..., 0::2], x[..., 1::2]  # interleaved pairs (x[2i], x[2i+1]), as in the RoFormer paper
    return torch.stack([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1).flatten(-2)


def apply_rope(fn: Callable) -> None:
    """Exercise 4: `fn(x, pos)` rotates pairs (x[i], x[i + d_head/2]) by pos * 10000**(-2i/d_head)."""
    import torch

    name = "apply_rope"
    # hand-worked: d_head=2 has one pair and frequency 1: position p rotates (1, 0) to (cos p, sin p)
    x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    pos = torch.tensor([0, 1, 2])
    expected = torch.tensor([[1.0, 0.0], [math.cos(1), math.sin(1)], [-2 * math.sin(2), 2 * math.cos(2)]])
    _compare(name, call(name, fn, x, pos), expected, {
        "rotating the wrong way? (x1, x2) -> (x1 cos - x2 sin, x1 sin + x2 cos)": _rope_variant(x, pos, sign=-1.0),
        "positions not used? Each position p turns by the angle p * frequency.": x,
    }, "hand-worked case: d_head=2, position p rotates (1, 0) to (cos p, sin p)")

    g = generator(2)
    x = _randn(g, 2, 3, 7, 8)  # (B, n_heads, T, d_head)
    pos = torch.tensor([0, 1, 2, 5, 9, 17, 30])
    wrong = {
        "rotating the wrong pairs? This course (like Hugging Face Llama) pairs x[i] with x[i + d_head/2], "
        "not x[2i] with x[2i+1].": _rope_variant(x, pos, pairs="interleaved"),
        "rotating the wrong way? (x1, x2) -> (x1 cos - x2 sin, x1 sin + x2 cos)": _rope_variant(x, pos, sign=-1.0),
        "wrong frequencies? Pair i turns at base ** (-2 i / d_head), i = 0 .. d_head/2 - 1.":
            _rope_variant(x, pos, freq_exp=1.0),
        "positions not used? Each position p turns by the angle p * frequency.": x,
    }
    _compare(name, call(name, fn, x, pos), _rope_variant(x, pos), wrong,
             "angles = pos[:, None] * 10000 ** (-2 * arange(d_head/2) / d_head); rotate (x[:half], x[half:])",
             atol=1e-4)
    got = torch.as_tensor(call(name, fn, x, pos))
    expect_close(got.norm(dim=-1), x.norm(dim=-1), name, "a rotation must keep each vector's length", atol=1e-4)
    passed(name, "rotates (x[i], x[i + d_head/2]) by pos * 10000**(-2i/d_head), like Hugging Face Llama")


# ------------------------------------------------------------------------------- exercise 5


def kv_cache_step(fn: Callable) -> None:
    """Exercise 5: `fn(q, k, v, k_cache, v_cache) -> (out, k_cache, v_cache)` for one new token."""
    import torch.nn.functional as F

    name = "kv_cache_step"
    g = generator(3)
    B, n_heads, T, d_head = 2, 3, 6, 8
    q, k, v = (_randn(g, B, n_heads, T, d_head) for _ in range(3))  # (B, n_heads, T, d_head)
    full = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # what uncached attention gives
    # first one step onto a cache that already holds 3 tokens, then a whole sequence from an empty cache
    for start, stop in ((3, 4), (0, T)):
        _cached_steps(fn, name, q, k, v, full, start, stop)
    passed(name, f"{T} cached steps reproduce full causal attention exactly")


def _cached_steps(fn, name, q, k, v, full, start: int, stop: int) -> None:
    import torch

    B, n_heads, _, d_head = q.shape
    k_cache, v_cache = k[:, :, :start], v[:, :, :start]  # (B, n_heads, start, d_head)
    for t in range(start, stop):
        qt, kt, vt = q[:, :, t:t + 1], k[:, :, t:t + 1], v[:, :, t:t + 1]  # (B, n_heads, 1, d_head)
        try:
            result = call(name, fn, qt, kt, vt, k_cache, v_cache)
        except CheckFailed as e:
            if "not implemented yet" in str(e):
                raise
            raise CheckFailed(f"{e} (the caches are (B, n_heads, T_past, d_head) and the new k, v are "
                              "(B, n_heads, 1, d_head): append along the time axis, dim=2)") from e
        expect(isinstance(result, tuple) and len(result) == 3, name,
               "return a tuple (out, k_cache, v_cache): the output and the grown caches")
        out, new_k, new_v = result
        expect(tuple(new_k.shape) == (B, n_heads, t + 1, d_head), name,
               f"after step {t} the key cache should be (B, n_heads, {t + 1}, d_head) = "
               f"{(B, n_heads, t + 1, d_head)}, got {tuple(new_k.shape)}: append the new key along the time "
               "axis, torch.cat([k_cache, k], dim=2)")
        expect(tuple(new_v.shape) == (B, n_heads, t + 1, d_head), name,
               f"after step {t} the value cache should be {(B, n_heads, t + 1, d_head)}, got "
               f"{tuple(new_v.shape)}: append the new value too")
        expect(close(new_k, k[:, :, :t + 1]) and close(new_v, v[:, :, :t + 1]), name,
               "the caches should hold the past keys/values followed by the new one (old first, new last)")
        past_k, past_v = k[:, :, :t], v[:, :, :t]
        wrong = {
            "scores not scaled by 1/sqrt(d_head)?":
                _attention(qt, k[:, :, :t + 1], v[:, :, :t + 1], scale=1.0),
            "attending with a causal mask? A single new query may see every cached position and itself: "
            "no mask is needed in a one-token step.":
                _attention(qt, k[:, :, :t + 1], v[:, :, :t + 1], torch.ones(1, t + 1, dtype=torch.bool).tril()),
            "attending over the old cache only? Append the new key and value first, then attend.":
                _attention(qt, past_k, past_v) if t > 0 else None,
        }
        _compare(name, out, full[:, :, t:t + 1], wrong,
                 f"step {t}: the output should equal row {t} of full causal attention")
        k_cache, v_cache = new_k, new_v
