"""The checks of 01_math_and_statistics pass correct answers and catch the stub and plausible bugs."""
import math
import re

import pytest
import torch

from genai_roadmap.checks import CheckFailed
from genai_roadmap.checks import math_and_statistics as check


def stub(*args, **kwargs):
    raise NotImplementedError


# ------------------------------------------------------------------ low_rank_approx
def make_low_rank(which="top", use_s=True, shift=0):
    def low_rank_approx(W, k):
        U, S, Vh = torch.linalg.svd(W, full_matrices=False)  # (m, r), (r,), (r, n)
        k = k + shift
        keep = slice(0, k) if which == "top" else slice(len(S) - k, len(S))
        s = S[keep] if use_s else torch.ones_like(S[keep])
        return U[:, keep] @ torch.diag(s) @ Vh[keep]

    return low_rank_approx


def low_rank_numpy(W, k):  # a NumPy answer is fine too
    import numpy as np

    U, S, Vh = np.linalg.svd(W.numpy(), full_matrices=False)
    return (U[:, :k] * S[:k]) @ Vh[:k]


# ------------------------------------------------------------------ log_softmax
def log_softmax_stable(x):
    m = x.amax(dim=-1, keepdim=True)
    return (x - m) - (x - m).exp().sum(dim=-1, keepdim=True).log()


def log_softmax_naive(x):
    return (x.exp() / x.exp().sum(dim=-1, keepdim=True)).log()


def log_softmax_forgot_outer_max(x):
    m = x.amax(dim=-1, keepdim=True)
    return x - (x - m).exp().sum(dim=-1, keepdim=True).log()


def log_softmax_global_max(x):
    m = x.max()
    return (x - m) - (x - m).exp().sum(dim=-1, keepdim=True).log()


def log_softmax_returns_softmax(x):
    return log_softmax_stable(x).exp()


def log_softmax_dim0(x):
    m = x.amax(dim=0, keepdim=True)
    return (x - m) - (x - m).exp().sum(dim=0, keepdim=True).log()


# ------------------------------------------------------------------ backward_step
def make_backward(mul="ok", tanh="ok", exp="ok", power="ok", accumulate=True, chain=True):
    def backward_step(out):
        if out._op == "+":
            a, b = out._prev
            a.grad += out.grad
            b.grad += out.grad
            return
        g = out.grad if chain else 1.0
        if out._op == "*":
            a, b = out._prev
            da, db = (b.data, a.data) if mul == "ok" else (a.data, b.data)
            updates = [(a, da * g), (b, db * g)]
        else:
            (a,) = out._prev
            x, y, k = a.data, out.data, out._exponent
            local = {
                "exp": {"ok": y, "one": 1.0}[exp] if out._op == "exp" else None,
                "tanh": {"ok": 1 - y * y, "input": 1 - x * x, "no square": 1 - y}[tanh] if out._op == "tanh" else None,
                "**": {"ok": k * x ** (k - 1), "no drop": k * x ** k, "no k": x ** (k - 1)}[power]
                if out._op == "**" else None,
            }[out._op]
            updates = [(a, local * g)]
        for node, value in updates:
            if accumulate:
                node.grad += value
            else:
                node.grad = value

    return backward_step


# ------------------------------------------------------------------ kl_divergence
def kl(p, q):
    return (torch.xlogy(p, p) - torch.xlogy(p, q)).sum(dim=-1)


def kl_where(p, q):
    return torch.where(p > 0, p * (p / q).log(), torch.zeros_like(p)).sum(dim=-1)


def kl_swapped(p, q):
    return kl(q, p)


def kl_log2(p, q):
    return kl(p, q) / math.log(2)


def kl_no_weights(p, q):
    return torch.where(p > 0, (p / q).log(), torch.zeros_like(p)).sum(dim=-1)


def kl_mean(p, q):
    return kl(p, q) / p.shape[-1]


def kl_naive_zeros(p, q):
    return (p * (p / q).log()).sum(dim=-1)


def kl_sum_all(p, q):
    return kl(p, q).sum()


def kl_sum_dim0(p, q):
    return (torch.xlogy(p, p) - torch.xlogy(p, q)).sum(dim=0)


CASES = {
    "low_rank_approx": (make_low_rank(), {
        "smallest singular values": (make_low_rank(which="bottom"), "smallest singular values"),
        "no singular values": (make_low_rank(use_s=False), "singular values are missing"),
        "k + 1": (make_low_rank(shift=1), "k + 1"),
        "k - 1": (make_low_rank(shift=-1), "k - 1"),
    }),
    "log_softmax": (log_softmax_stable, {
        "naive": (log_softmax_naive, "subtract each row's max"),
        "forgot outer max": (log_softmax_forgot_outer_max, "not outside"),
        "global max": (log_softmax_global_max, "whole tensor"),
        "softmax": (log_softmax_returns_softmax, "not its log"),
        "dim 0": (log_softmax_dim0, "wrong dimension"),
    }),
    "backward_step": (make_backward(), {
        "mul swapped": (make_backward(mul="swapped"), "swapped"),
        "tanh from the input": (make_backward(tanh="input"), "you used the input"),
        "tanh without the square": (make_backward(tanh="no square"), "square is missing"),
        "exp derivative 1": (make_backward(exp="one"), "not 1"),
        "pow exponent not dropped": (make_backward(power="no drop"), "drop by one"),
        "pow without k": (make_backward(power="no k"), "factor k is missing"),
        "overwrite": (make_backward(accumulate=False), "accumulated"),
        "no out.grad": (make_backward(chain=False), "out.grad is missing"),
    }),
    "kl_divergence": (kl, {
        "swapped": (kl_swapped, "swapped"),
        "log base 2": (kl_log2, "base 2"),
        "no p weights": (kl_no_weights, "weights p are missing"),
        "mean": (kl_mean, "averaged"),
        "nan on zeros": (kl_naive_zeros, "0 * log 0 = 0"),
        "summed over everything": (kl_sum_all, "one KL per row"),
        "summed over the rows": (kl_sum_dim0, "one KL per row"),
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


@pytest.mark.parametrize("fn", [low_rank_numpy, make_low_rank()])
def test_low_rank_accepts_numpy_or_torch(fn):
    check.low_rank_approx(fn)


def test_kl_with_where_passes():
    check.kl_divergence(kl_where)


def test_log_softmax_with_logsumexp_passes():
    check.log_softmax(lambda x: x - x.logsumexp(dim=-1, keepdim=True))


def test_backward_stub_with_given_add_rule_fails_as_not_implemented():
    # the student version keeps the given "+" branch and raises for every other op
    def backward_step(out):
        if out._op == "+":
            a, b = out._prev
            a.grad += out.grad
            b.grad += out.grad
            return
        raise NotImplementedError

    with pytest.raises(CheckFailed, match="not implemented yet"):
        check.backward_step(backward_step)


def test_backward_reference_expressions_stay_moderate():
    # the random expressions the check uses must not overflow or blow up gradients
    import random

    from genai_roadmap.checks.math_and_statistics import _expression

    for seed in range(20):
        values = [random.Random(f"{seed}-{i}").uniform(-1.5, 1.5) for i in range(3)]
        ts = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in values]
        out = _expression(ts, random.Random(seed), 10)
        out.backward()
        assert math.isfinite(out.item()) and all(t.grad is None or abs(t.grad.item()) < 1e3 for t in ts)
