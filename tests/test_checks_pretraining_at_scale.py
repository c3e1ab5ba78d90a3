"""The checks of 20_pretraining_at_scale pass correct answers and catch the stub and plausible bugs."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from genai_roadmap.checks import CheckFailed
from genai_roadmap.checks import pretraining_at_scale as check

P = np.uint64((1 << 61) - 1)
MASK = np.uint64((1 << 32) - 1)


def stub(*args, **kwargs):
    raise NotImplementedError


# ------------------------------------------------------------------ minhash_signature
def minhash(hashes, a, b, reduce="min", mod=True, mask=True, axis=0):
    x = hashes[:, None] * a + b
    x = x % P if mod else x
    x = np.bitwise_and(x, MASK) if mask else x
    return x.min(axis=axis) if reduce == "min" else x.max(axis=axis)


def minhash_python_ints(hashes, a, b):
    return np.array([min(((int(ak) * int(h) + int(bk)) % int(P)) & int(MASK) for h in hashes) for ak, bk in zip(a, b)],
                    dtype=np.uint64)


def test_minhash_signature_correct(capsys):
    check.minhash_signature(minhash)
    assert "identical to datasketch" in capsys.readouterr().out


def test_minhash_reference_matches_datasketch():
    from datasketch import MinHash
    a, b = MinHash(num_perm=32, seed=5, scheme="legacy").permutations
    hashes = np.random.default_rng(0).integers(0, 1 << 32, size=40, dtype=np.uint64)
    assert np.array_equal(check.reference_minhash_signature(hashes, a, b), check._datasketch_signature(hashes, a, b))


@pytest.mark.parametrize("bad, message", [
    (stub, "not implemented"),
    (lambda h, a, b: minhash(h, a, b, reduce="max"), "maximum"),
    (lambda h, a, b: minhash(h, a, b, mod=False), "Mersenne prime"),
    (lambda h, a, b: minhash(h, a, b, mask=False), "mask to 32 bits"),
    (lambda h, a, b: minhash(h, a, b, axis=1), "over the shingles"),
    (minhash_python_ints, "exact Python integers"),
    (lambda h, a, b: minhash(h, a, b).astype(np.float64), "dtype"),
    (lambda h, a, b: minhash(h, a[::-1].copy(), b), "differs from datasketch"),
])
def test_minhash_signature_bugs(bad, message):
    with pytest.raises(CheckFailed, match=message):
        check.minhash_signature(bad)


# ------------------------------------------------------------------ shard_linear
def shard(weight, bias, rank, world_size, style, swap=False, column_bias="split", row_bias="full", strided=False,
          check_divisible=True):
    dim = {"column": 0, "row": 1}[style]
    if swap:
        dim = 1 - dim
    if check_divisible and weight.shape[dim] % world_size:
        raise ValueError("not divisible")
    if strided:
        w = weight[rank::world_size] if dim == 0 else weight[:, rank::world_size]
    else:
        w = weight.chunk(world_size, dim=dim)[rank]
    if style == "column":
        b = bias.chunk(world_size)[rank] if column_bias == "split" else bias
    else:
        b = {"full": bias, "split": bias.chunk(world_size)[rank] if bias.numel() % world_size == 0 else bias[:1],
             "none": None}[row_bias]
    return w, b


def test_shard_linear_correct(capsys):
    check.shard_linear(shard)
    assert "to the full layer" in capsys.readouterr().out


@pytest.mark.parametrize("bad, message", [
    (stub, "not implemented"),
    (lambda *a: shard(*a, swap=True), "wrong dimension"),
    (lambda *a: shard(*a, column_bias="full"), "split like the rows"),
    (lambda *a: shard(*a, row_bias="split"), "full bias"),
    (lambda *a: shard(*a, row_bias="none"), "full bias"),
    (lambda *a: shard(*a, strided=True), "strided"),
    (lambda *a: shard(*a, check_divisible=False), "ValueError"),
    (lambda w, b, r, ws, s: (w, b), "shape"),
    (lambda w, b, r, ws, s: shard(w, b, (r + 1) % ws, ws, s), "wrong values"),
    (lambda w, b, r, ws, s: shard(w, b, r, ws, s)[0], "pair"),
])
def test_shard_linear_bugs(bad, message):
    with pytest.raises(CheckFailed, match=message):
        check.shard_linear(bad)


# ------------------------------------------------------------------ load_balancing_loss
def balance(logits, top_k, p_from="probs", f_from="topk", scale=True, reduce="sum", f_div=1.0):
    E = logits.shape[-1]
    probs = logits.softmax(-1)
    chosen = probs.topk(top_k, dim=-1)
    if f_from == "topk":
        f = F.one_hot(chosen.indices, E).sum(1).float().mean(0)
    elif f_from == "top1":
        f = F.one_hot(probs.argmax(-1), E).float().mean(0)
    elif f_from == "probs":
        f = probs.mean(0)
    elif f_from == "masked probs":  # the right value at a balanced router only: f carries a gradient here
        mask = F.one_hot(chosen.indices, E).sum(1).float()
        f = (mask + probs - probs.detach()).mean(0)
    f = f / f_div
    if p_from == "probs":
        P = probs.mean(0)
    elif p_from == "logits":
        P = logits.mean(0)
    elif p_from == "renormalised":
        P = torch.zeros_like(probs).scatter(1, chosen.indices, chosen.values / chosen.values.sum(-1, keepdim=True)).mean(0)
    terms = f * P
    out = terms.sum() if reduce == "sum" else terms.mean()
    return E * out if scale else out


def test_load_balancing_loss_correct(capsys):
    check.load_balancing_loss(balance)
    assert "load_balancing_loss_func" in capsys.readouterr().out


@pytest.mark.parametrize("bad, message", [
    (stub, "not implemented"),
    (lambda x, k: balance(x, k, p_from="logits"), "not the mean logit"),
    (lambda x, k: balance(x, k, f_from="probs"), "E \\* sum P\\^2"),
    (lambda x, k: balance(x, k, scale=False), "factor n_experts"),
    (lambda x, k: balance(x, k, reduce="mean"), "instead of summing"),
    (lambda x, k: balance(x, k, f_from="top1"), "top-1"),
    (lambda x, k: balance(x, k, f_div=k), "divided f by top_k"),
    (lambda x, k: balance(x, k, p_from="renormalised"), "renormalised top-k"),
    (lambda x, k: balance(x, k, f_from="masked probs"), "gradient"),
    (lambda x, k: balance(x, k).detach(), "no gradient"),
    (lambda x, k: balance(x, k).reshape(1).repeat(2), "scalar"),
    (lambda x, k: balance(x, k).item(), "torch.Tensor"),
])
def test_load_balancing_loss_bugs(bad, message):
    with pytest.raises(CheckFailed, match=message):
        check.load_balancing_loss(bad)
