"""Checks for phase1_foundations/01_math_and_statistics.ipynb.

Each check calls the learner's function on small seeded inputs, compares it with a trusted reference
(torch's own log_softmax, kl_div, autograd and SVD) and one hand-worked case, and when the answer is
wrong compares it with the usual wrong answers to name the likely bug.
"""
from __future__ import annotations

import math
import random
from typing import Callable

from genai_roadmap.checks._common import CheckFailed, call, expect, expect_close, passed

# ----------------------------------------------------------------------------------------- helpers


def _as_double(x):
    import torch

    return torch.as_tensor(x).detach().to(torch.float64)


def _close(a, b, atol: float = 1e-8) -> bool:
    """Same shape and values; NaN matches NaN and inf matches inf (so wrong answers full of them match)."""
    import torch

    a, b = _as_double(a), _as_double(b)
    return a.shape == b.shape and bool(torch.allclose(a, b, atol=atol, rtol=1e-6, equal_nan=True))


def _compare(name: str, got, expected, wrong_answers: dict[str, object], hint: str, atol: float = 1e-8) -> None:
    """Shape, then values; on a mismatch, name the bug whose wrong answer `got` reproduces."""
    import torch

    got_t = _as_double(got)
    expected = _as_double(expected)
    expect(tuple(got_t.shape) == tuple(expected.shape), name,
           f"expected shape {tuple(expected.shape)}, got {tuple(got_t.shape)}")
    if _close(got_t, expected, atol):
        return
    for bug, wrong in wrong_answers.items():
        if wrong is not None and _close(got_t, wrong, atol):
            raise CheckFailed(f"{name}: {bug}")
    if not bool(torch.isfinite(got_t).all()) and bool(torch.isfinite(expected).all()):
        raise CheckFailed(f"{name}: your output contains nan or inf where the answer is finite. {hint}")
    expect_close(got_t, expected, name, hint, atol=atol, rtol=1e-6)


# ------------------------------------------------------------------------------- exercise 1


def _svd_variant(W, k: int, which: str = "top", use_s: bool = True):
    import torch

    U, S, Vh = torch.linalg.svd(W, full_matrices=False)  # (m, r), (r,), (r, n)
    if k <= 0:
        return torch.zeros_like(W)
    keep = slice(0, k) if which == "top" else slice(len(S) - k, len(S))
    s = S[keep] if use_s else torch.ones_like(S[keep])
    return (U[:, keep] * s) @ Vh[keep]


def _low_rank_wrong(W, k: int) -> dict[str, object]:
    r = min(W.shape)
    return {
        "kept the smallest singular values? torch.linalg.svd returns them largest first: keep U[:, :k], "
        "S[:k], Vh[:k].": _svd_variant(W, k, which="bottom"),
        "the singular values are missing: U[:, :k] @ Vh[:k] is a rank-k matrix but not the closest one; "
        "scale the columns by S[:k] (U[:, :k] * S[:k]) or use torch.diag(S[:k]).": _svd_variant(W, k, use_s=False),
        "off by one: you kept k + 1 singular values; a slice [:k] keeps exactly k.":
            _svd_variant(W, k + 1) if k < r else None,
        "off by one: you kept k - 1 singular values; a slice [:k] keeps exactly k.": _svd_variant(W, k - 1),
    }


def low_rank_approx(fn: Callable) -> None:
    """Exercise 1: `fn(W, k)` is the best rank-k approximation of W (top k singular triples)."""
    import torch

    name = "low_rank_approx"
    # hand-worked: W = diag(3, 2, 1), k = 1 keeps the largest singular value: diag(3, 0, 0)
    W = torch.diag(torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64))
    _compare(name, call(name, fn, W.clone(), 1), torch.diag(torch.tensor([3.0, 0.0, 0.0], dtype=torch.float64)),
             _low_rank_wrong(W, 1), "hand-worked case: diag(3, 2, 1) at rank 1 is diag(3, 0, 0)")

    g = torch.Generator().manual_seed(0)
    # a matrix with a known, spread-out spectrum, so every wrong answer differs from the right one
    m, n = 9, 6
    Q1, _ = torch.linalg.qr(torch.randn(m, n, generator=g, dtype=torch.float64))
    Q2, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    s = torch.tensor([5.0, 3.0, 2.0, 1.2, 0.7, 0.3], dtype=torch.float64)
    W = (Q1 * s) @ Q2.T  # (9, 6), singular values s
    for k in (2, 3):
        got = call(name, fn, W.clone(), k)
        _compare(name, got, _svd_variant(W, k), _low_rank_wrong(W, k),
                 "U, S, Vh = torch.linalg.svd(W, full_matrices=False); return (U[:, :k] * S[:k]) @ Vh[:k]")
        err = torch.linalg.matrix_norm(W - _as_double(got)).item()
        tail = s[k:].pow(2).sum().sqrt().item()
        expect(abs(err - tail) < 1e-8, name, f"the error at rank {k} should be sqrt(sum of the dropped s_i^2) = "
               f"{tail:.4f} (Eckart-Young), got {err:.4f}")
    expect(_close(call(name, fn, W.clone(), n), W), name,
           f"at full rank k = {n} the approximation must give W back")
    wide = torch.randn(4, 7, generator=g, dtype=torch.float64)  # wider than tall: the same code must work
    _compare(name, call(name, fn, wide.clone(), 2), _svd_variant(wide, 2), _low_rank_wrong(wide, 2),
             "for a wide (4, 7) matrix too: full_matrices=False gives U (4, 4), S (4,), Vh (4, 7)")
    passed(name, "top-k singular triples; error = sqrt(sum of the dropped s_i^2), as Eckart-Young says")


# ------------------------------------------------------------------------------- exercise 2


def _huge_logits():
    import torch

    return torch.tensor([[1000.0, 0.0, -1000.0],
                         [-1000.0, -1000.0, -999.0],
                         [1.0, 2.0, 3.0],
                         [500.0, 500.0, 0.0]], dtype=torch.float64)


def _log_softmax_wrong(x) -> dict[str, object]:
    import torch

    with torch.no_grad():
        m = x.amax(dim=-1, keepdim=True)
        naive = (x.exp() / x.exp().sum(dim=-1, keepdim=True)).log()
        return {
            "exp overflows (exp(1000) = inf, so inf/inf = nan) or underflows (exp(-1000) = 0, so log 0 = -inf): "
            "subtract each row's max before exponentiating: x - m - log(sum(exp(x - m))).": naive,
            "the max was subtracted inside the exponential but not outside: log_softmax(x) = "
            "(x - m) - log(sum(exp(x - m))).": x - (x - m).exp().sum(dim=-1, keepdim=True).log(),
            "subtracted the max of the whole tensor, not of each row? Use x.amax(dim=-1, keepdim=True), "
            "so every row is shifted by its own max.":
                x - x.max() - (x - x.max()).exp().sum(dim=-1, keepdim=True).log(),
            "returned the softmax, not its log? log_softmax = (x - m) - log(sum(exp(x - m))).":
                torch.softmax(x, dim=-1),
            "normalised over the wrong dimension? Each row (the last dim) is one distribution.":
                torch.log_softmax(x, dim=0) if x.dim() > 1 else None,
        }


def log_softmax(fn: Callable) -> None:
    """Exercise 2: `fn(logits)` is a numerically stable log-softmax over the last dimension."""
    import torch

    name = "log_softmax"
    # hand-worked: logits (0, ln 3) -> probabilities (1/4, 3/4) -> logs (-ln 4, ln 3 - ln 4)
    x = torch.tensor([0.0, math.log(3.0)], dtype=torch.float64)
    _compare(name, call(name, fn, x.clone()), torch.tensor([-math.log(4), math.log(3 / 4)], dtype=torch.float64),
             _log_softmax_wrong(x), "hand-worked case: logits (0, ln 3) -> probabilities (1/4, 3/4)")

    g = torch.Generator().manual_seed(1)
    x = 3 * torch.randn(5, 7, generator=g, dtype=torch.float64)
    _compare(name, call(name, fn, x.clone()), torch.log_softmax(x, dim=-1), _log_softmax_wrong(x),
             "compare with (x - m) - log(sum(exp(x - m))), m = x.amax(dim=-1, keepdim=True)")

    x = _huge_logits()  # naive exp() overflows in row 0 and underflows in row 1
    got = call(name, fn, x.clone())
    _compare(name, got, torch.log_softmax(x, dim=-1), _log_softmax_wrong(x),
             "logits like 1000 and -1000: subtract each row's max first, x - m, so the largest exponent is exp(0)")
    probs = _as_double(got).exp().sum(dim=-1)
    expect(_close(probs, torch.ones(4)), name, "exp(log_softmax) should sum to 1 in every row")

    x3 = torch.randn(2, 3, 4, generator=g, dtype=torch.float64)  # batched: the last dim is the distribution
    _compare(name, call(name, fn, x3.clone()), torch.log_softmax(x3, dim=-1), _log_softmax_wrong(x3),
             "for a (2, 3, 4) input, normalise each length-4 row (the last dim)")
    passed(name, "matches torch.log_softmax, also on logits of +-1000 where the naive formula gives nan/inf")


# ------------------------------------------------------------------------------- exercise 3


class _Node:
    """A scalar graph node laid out like the notebook's `Value` (data, grad, _prev, _op, _exponent)."""

    def __init__(self, data: float, _prev=(), _op: str = "", _exponent=None):
        self.data, self.grad = float(data), 0.0
        self._prev, self._op, self._exponent = tuple(_prev), _op, _exponent

    @staticmethod
    def _wrap(other):
        return other if isinstance(other, _Node) else _Node(other)

    def __add__(self, other):
        other = self._wrap(other)
        return _Node(self.data + other.data, (self, other), "+")

    def __mul__(self, other):
        other = self._wrap(other)
        return _Node(self.data * other.data, (self, other), "*")

    def __pow__(self, k):
        return _Node(self.data ** k, (self,), "**", _exponent=k)

    def exp(self):
        return _Node(math.exp(self.data), (self,), "exp")

    def tanh(self):
        return _Node(math.tanh(self.data), (self,), "tanh")

    __radd__, __rmul__ = __add__, __mul__

    def __neg__(self):
        return self * -1

    def __sub__(self, other):
        return self + (-other)

    def __truediv__(self, other):
        return self * other ** -1


def _backprop(step: Callable, root, name: str) -> None:
    """Reverse-mode sweep over root's graph, calling the learner's `step` on every non-leaf node."""
    order, seen = [], set()

    def visit(v):
        if id(v) not in seen:
            seen.add(id(v))
            for p in v._prev:
                visit(p)
            order.append(v)

    visit(root)
    root.grad = 1.0
    for v in reversed(order):
        if v._prev:
            call(name, step, v)


# The local derivative d out / d input of each op, from the input and output values.
_LOCAL = {
    "exp": lambda x, y, k: y,
    "tanh": lambda x, y, k: 1 - y * y,
    "**": lambda x, y, k: k * x ** (k - 1),
}
_LOCAL_WRONG = {
    "exp": {"the derivative of exp(x) is exp(x) itself (out.data), not 1.": lambda x, y, k: 1.0,
            "the derivative of exp(x) is exp(x) (out.data), not x.": lambda x, y, k: x},
    "tanh": {"the derivative of tanh(x) is 1 - tanh(x)**2, and tanh(x) is out.data: you used the input "
             "(1 - x**2)?": lambda x, y, k: 1 - x * x,
             "the derivative of tanh(x) is 1 - tanh(x)**2: the square is missing?": lambda x, y, k: 1 - y,
             "the derivative of tanh(x) is 1 - tanh(x)**2, not tanh(x)**2 - 1 (sign)?": lambda x, y, k: y * y - 1},
    "**": {"the derivative of x**k is k * x**(k - 1): the exponent should drop by one.":
           lambda x, y, k: k * x ** k,
           "the derivative of x**k is k * x**(k - 1): the factor k is missing.": lambda x, y, k: x ** (k - 1),
           "the derivative of x**k is k * x**(k - 1), not (k - 1) * x**k.": lambda x, y, k: (k - 1) * x ** k},
}
_ACCUMULATE = ("the gradient was overwritten, not accumulated: a node can feed several others, so add "
               "with `a.grad += ...`, never `a.grad = ...`.")
_CHAIN = "out.grad is missing: the chain rule multiplies the local derivative by out.grad (d loss / d out)."


def _diagnose(name: str, got: float, expected: float, before: float, local_true: float, out_grad: float,
              wrong_locals: dict[str, float], what: str) -> None:
    if abs(got - expected) <= 1e-9 * max(1.0, abs(expected)):
        return
    guesses = {_ACCUMULATE: local_true * out_grad, _CHAIN: before + local_true,
               f"{what}'s gradient did not change: add local derivative * out.grad to it.": before}
    for bug, local in wrong_locals.items():
        guesses[bug] = before + local * out_grad
        guesses[bug + " (and accumulate with +=)"] = local * out_grad
    for bug, value in guesses.items():
        if abs(got - value) <= 1e-9 * max(1.0, abs(value)):
            raise CheckFailed(f"{name}: {bug}")
    raise CheckFailed(f"{name}: {what}.grad should be {expected:.6g} after one backward step, got {got:.6g}")


def _one_step(fn: Callable, name: str) -> None:
    """Each rule on one node, with non-zero gradients already on the inputs and out.grad = 2."""
    # multiplication: a = 1.5, b = -4, out = a * b
    a, b = _Node(1.5), _Node(-4.0)
    out = a * b
    a.grad, b.grad, out.grad = 0.25, -0.5, 2.0
    call(name, fn, out)
    swapped = "the local derivatives of a * b are swapped: d(ab)/da = b, d(ab)/db = a."
    _diagnose(name, a.grad, 0.25 + (-4.0) * 2.0, 0.25, -4.0, 2.0, {swapped: 1.5}, "a (in a * b)")
    _diagnose(name, b.grad, -0.5 + 1.5 * 2.0, -0.5, 1.5, 2.0, {swapped: -4.0}, "b (in a * b)")

    for op, x, k in (("**", 1.3, 3), ("**", -0.8, -1), ("exp", 0.7, None), ("tanh", 0.6, None)):
        a = _Node(x)
        out = a ** k if op == "**" else getattr(a, op)()
        a.grad, out.grad = 0.25, 2.0
        call(name, fn, out)
        y = out.data
        wrong = {bug: f(x, y, k) for bug, f in _LOCAL_WRONG[op].items()}
        label = f"a (in a ** {k})" if op == "**" else f"a (in a.{op}())"
        local = _LOCAL[op](x, y, k)
        _diagnose(name, a.grad, 0.25 + local * 2.0, 0.25, local, 2.0, wrong, label)


_EXPRESSION_OPS = (
    lambda a, b: a + b,
    lambda a, b: a * b,
    lambda a, b: a - b,
    lambda a, b: a / (b * b + 1),
    lambda a, b: a ** 2,
    lambda a, b: a.tanh(),
    lambda a, b: (a * 0.5).exp(),
)


def _expression(leaves: list, rng: random.Random, n_ops: int):
    """A random expression of the leaves (reusing nodes), built the same way for _Node and torch."""
    nodes = list(leaves)
    for _ in range(n_ops):
        op = rng.choice(_EXPRESSION_OPS)
        nodes.append(op(rng.choice(nodes), rng.choice(nodes)))
    return sum(nodes[len(leaves):])


def backward_step(fn: Callable) -> None:
    """Exercise 3: `fn(out)` pushes out.grad to out._prev with the chain rule, for *, **, exp and tanh."""
    import torch

    name = "backward_step"
    _one_step(fn, name)
    # a node used twice: y = x * x needs both uses' contributions, 2x
    x = _Node(3.0)
    y = x * x
    _backprop(fn, y, name)
    expect(abs(x.grad - 6.0) < 1e-12, name,
           f"for y = x * x at x = 3, dy/dx = 6 but got {x.grad:g}: " + (_ACCUMULATE if x.grad == 3.0 else
                                                                       "both inputs of the product are x"))
    worst = 0.0
    for seed in range(20):
        values = [random.Random(f"{seed}-{i}").uniform(-1.5, 1.5) for i in range(3)]
        nodes = [_Node(v) for v in values]
        out = _expression(nodes, random.Random(seed), 10)
        _backprop(fn, out, name)
        ts = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in values]
        _expression(ts, random.Random(seed), 10).backward()
        for node, t in zip(nodes, ts):
            want = 0.0 if t.grad is None else t.grad.item()  # None: this leaf is not in the expression
            worst = max(worst, abs(node.grad - want) / max(1.0, abs(want)))
            expect(worst < 1e-9, name, f"on a random expression (seed {seed}) a leaf's gradient is {node.grad:.6g}, "
                   f"torch.autograd says {want:.6g}; check each rule's local derivative and the +=")
    passed(name, "each rule right and accumulated; 20 random expressions match torch.autograd to 1e-9")


# ------------------------------------------------------------------------------- exercise 4


def _kl_reference(p, q):
    import torch.nn.functional as F

    return F.kl_div(q.log(), p, reduction="none").sum(dim=-1)  # sum p (log p - log q), with 0 log 0 = 0


def _kl_wrong(p, q) -> dict[str, object]:
    import torch

    with torch.no_grad():
        safe = torch.where(p > 0, p, torch.ones_like(p))
        return {
            "the arguments are swapped: KL(p || q) = sum p log(p / q), weighted by p, not by q.":
                _kl_reference(q, p) if bool((p > 0).all()) else None,
            "the log is base 2 (bits); the course measures KL in nats (natural log, torch.log).":
                _kl_reference(p, q) / math.log(2),
            "the weights p are missing: KL = sum p * log(p / q), not sum log(p / q).":
                (safe.log() - q.log()).where(p > 0, torch.zeros_like(p)).sum(dim=-1),
            "averaged over the outcomes instead of summed? KL sums p log(p / q) over the last dim.":
                _kl_reference(p, q) / p.shape[-1],
        }


def kl_divergence(fn: Callable) -> None:
    """Exercise 4: `fn(p, q)` is KL(p || q) = sum p log(p / q) over the last dim, in nats, 0 log 0 = 0."""
    import torch

    name = "kl_divergence"
    # hand-worked: p = (1/2, 1/2), q = (1/4, 3/4): KL = 1/2 ln 2 + 1/2 ln(2/3) = 1/2 ln(4/3) = 0.1438 nats
    p = torch.tensor([0.5, 0.5], dtype=torch.float64)
    q = torch.tensor([0.25, 0.75], dtype=torch.float64)
    _compare(name, call(name, fn, p.clone(), q.clone()), torch.tensor(0.5 * math.log(4 / 3), dtype=torch.float64),
             _kl_wrong(p, q), "hand-worked case: p = (1/2, 1/2), q = (1/4, 3/4) gives 1/2 ln(4/3) = 0.1438 nats")

    g = torch.Generator().manual_seed(3)
    p = torch.randn(4, 6, generator=g, dtype=torch.float64).softmax(-1)
    q = torch.randn(4, 6, generator=g, dtype=torch.float64).softmax(-1)
    got = _as_double(call(name, fn, p.clone(), q.clone()))
    expect(tuple(got.shape) == (4,), name, f"for p and q of shape (4, 6) return one KL per row, shape (4,), got "
           f"{tuple(got.shape)}: sum over the last dimension only, .sum(dim=-1)")
    _compare(name, got, _kl_reference(p, q), _kl_wrong(p, q), "one number per row: (p * (p.log() - q.log())).sum(-1)")
    same = _as_double(call(name, fn, p.clone(), p.clone()))
    expect(_close(same, torch.zeros(4)), name, "KL(p || p) must be 0 for every row")

    # zeros in p: 0 * log 0 counts as 0 (a one-hot target is the usual case)
    p0 = torch.tensor([[0.0, 0.3, 0.7], [1.0, 0.0, 0.0]], dtype=torch.float64)
    q0 = torch.tensor([[0.2, 0.3, 0.5], [0.5, 0.25, 0.25]], dtype=torch.float64)
    got = _as_double(call(name, fn, p0.clone(), q0.clone()))
    if got.shape == (2,) and not bool(torch.isfinite(got).all()):
        raise CheckFailed(f"{name}: p has zeros and you got {got.tolist()}: a term with p = 0 contributes 0 "
                          "(0 * log 0 = 0). Use torch.xlogy(p, p) - torch.xlogy(p, q), or torch.where(p > 0, ...).")
    _compare(name, got, _kl_reference(p0, q0), _kl_wrong(p0, q0),
             "terms with p = 0 contribute 0; for a one-hot p, KL(p || q) = -log q[target]")
    passed(name, "matches torch.nn.functional.kl_div (nats), also when p has zeros")
