"""Checks for phase1_foundations/02_deep_learning.ipynb.

Each check calls the learner's function on small seeded inputs, compares it with a trusted reference
(autograd, ``torch.nn.functional.cross_entropy``, ``torch.optim.AdamW``, or a short reference below) and a
hand-worked case, and when the answer is wrong compares it with the usual wrong answers to name the bug.
"""
from __future__ import annotations

import math
from typing import Callable

from genai_roadmap.checks._common import CheckFailed, call, expect, expect_close, generator, passed

# ----------------------------------------------------------------------------------------- helpers


def _randn(g, *shape):
    import torch

    return torch.randn(*shape, generator=g, dtype=torch.float64)


def _close(a, b, atol: float = 1e-6, rtol: float = 1e-5) -> bool:
    import torch

    try:
        a, b = torch.as_tensor(a).detach().double(), torch.as_tensor(b).detach().double()
    except (TypeError, ValueError, RuntimeError):
        return False
    return a.shape == b.shape and bool(torch.allclose(a, b, atol=atol, rtol=rtol))


def _all_close(got: tuple, expected: tuple, atol: float = 1e-6) -> bool:
    return len(got) == len(expected) and all(_close(a, b, atol) for a, b in zip(got, expected))


def _as_tuple(name: str, got, n: int, what: str) -> tuple:
    expect(isinstance(got, (tuple, list)) and len(got) == n, name,
           f"return a tuple {what} ({n} items), got {type(got).__name__}"
           + (f" of {len(got)} items" if isinstance(got, (tuple, list)) else ""))
    return tuple(got)


def _diagnose(name: str, got: tuple, expected: tuple, labels: tuple[str, ...], wrong: dict[str, tuple],
              hint: str, atol: float = 1e-6) -> None:
    """Compare a tuple of tensors with the reference; on a mismatch name the bug whose answer `got` is."""
    import torch

    if _all_close(got, expected, atol):
        return
    for bug, answer in wrong.items():
        if _all_close(got, answer, atol):
            raise CheckFailed(f"{name}: {bug}")
    for label, a, e in zip(labels, got, expected):
        a_t = torch.as_tensor(a)
        expect(tuple(a_t.shape) == tuple(e.shape), name,
               f"{label} should have shape {tuple(e.shape)}, got {tuple(a_t.shape)}")
        expect_close(a_t, e, f"{name} ({label})", hint, atol=atol, rtol=1e-5)


# ------------------------------------------------------------------------------- exercise 1


def _linear_reference(x, w, dy):
    """Autograd's gradients of y = x @ w.T + b, given dL/dy."""
    import torch

    x, w = x.clone().requires_grad_(), w.clone().requires_grad_()
    b = torch.zeros(w.shape[0], dtype=x.dtype, requires_grad=True)
    (x @ w.T + b).backward(dy)
    return x.grad, w.grad, b.grad


def linear_backward(fn: Callable) -> None:
    """Exercise 1: `fn(x, w, dy) -> (dx, dw, db)` for y = x @ w.T + b (nn.Linear's layout)."""
    import torch

    name = "linear_backward"
    labels = ("dx", "dw", "db")
    g = generator(0)
    # square first (d_in == d_out): a missing or extra transpose then gives wrong values, not a crash
    for B, d_in, d_out in ((5, 4, 4), (6, 3, 5)):
        x, w, dy = _randn(g, B, d_in), _randn(g, d_out, d_in), _randn(g, B, d_out)
        dx, dw, db = _linear_reference(x, w, dy)
        got = _as_tuple(name, call(name, fn, x.clone(), w.clone(), dy.clone()), 3, "(dx, dw, db)")
        wrong = {
            "bias gradient averaged over the batch? Each example adds its own dy, so db = dy.sum(0).":
                (dx, dw, dy.mean(0)),
            "bias gradient not summed over the batch: db = dy.sum(0), shape (d_out,).": (dx, dw, dy),
        }
        if d_in == d_out:
            wrong["dw is transposed: it must have w's (d_out, d_in) layout, dw = dy.T @ x (not x.T @ dy)."] = \
                (dx, x.T @ dy, db)
            wrong["dx uses w.T: y = x @ w.T, so dx = dy @ w (shape (B, d_in))."] = (dy @ w.T, dw, db)
        if d_in != d_out:  # the transposed dw and an unsummed db give a telling shape
            got_t = [torch.as_tensor(t) for t in got]
            if tuple(got_t[1].shape) == (d_in, d_out):
                raise CheckFailed(f"{name}: dw has shape (d_in, d_out) = {(d_in, d_out)}, so it is transposed: "
                                  "it must have w's (d_out, d_in) layout, dw = dy.T @ x")
            if tuple(got_t[2].shape) == (B, d_out):
                raise CheckFailed(f"{name}: db has shape (B, d_out): the bias gradient must be summed over the "
                                  "batch, db = dy.sum(0)")
        _diagnose(name, got, (dx, dw, db), labels, wrong,
                  "for y = x @ w.T + b: dx = dy @ w, dw = dy.T @ x, db = dy.sum(0)")

    # hand-worked: two examples, three inputs, two outputs
    x = torch.tensor([[1.0, 2.0, 3.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    w = torch.tensor([[1.0, 0.0, -1.0], [2.0, 1.0, 0.0]], dtype=torch.float64)
    dy = torch.tensor([[1.0, -1.0], [2.0, 0.0]], dtype=torch.float64)
    expected = (torch.tensor([[-1.0, -1.0, -1.0], [2.0, 0.0, -2.0]], dtype=torch.float64),
                torch.tensor([[1.0, 4.0, 3.0], [-1.0, -2.0, -3.0]], dtype=torch.float64),
                torch.tensor([3.0, -1.0], dtype=torch.float64))
    got = _as_tuple(name, call(name, fn, x, w, dy), 3, "(dx, dw, db)")
    _diagnose(name, got, expected, labels, {},
              "hand-worked case: x=[[1,2,3],[0,1,0]], w=[[1,0,-1],[2,1,0]], dy=[[1,-1],[2,0]] -> "
              "dx=[[-1,-1,-1],[2,0,-2]], dw=[[1,4,3],[-1,-2,-3]], db=[3,-1]")
    passed(name, "dx, dw, db match autograd (float64) and the hand-worked case")


# ------------------------------------------------------------------------------- exercise 2


def _mlp_reference(x, w1, b1, w2, b2, dout):
    params = [t.clone().requires_grad_() for t in (w1, b1, w2, b2)]
    w1_, b1_, w2_, b2_ = params
    ((x @ w1_.T + b1_).relu() @ w2_.T + b2_).backward(dout)
    return tuple(p.grad for p in params)


def _mlp_variant(x, w1, b1, w2, b2, dout, mask="pre", dw2_from="a"):
    h = x @ w1.T + b1  # (B, d_hidden) pre-activation
    a = h.relu()  # (B, d_hidden)
    da = dout @ w2  # (B, d_hidden)
    dw2 = dout.T @ (a if dw2_from == "a" else h)
    db2 = dout.sum(0)
    dh = {"pre": da * (h > 0), "none": da, "grad": da * (da > 0), "value": da * a}[mask]
    return dh.T @ x, dh.sum(0), dw2, db2


def mlp_backward(fn: Callable) -> None:
    """Exercise 2: `fn(x, w1, b1, w2, b2, dout) -> (dw1, db1, dw2, db2)` for relu(x @ w1.T + b1) @ w2.T + b2."""
    name = "mlp_backward"
    labels = ("dw1", "db1", "dw2", "db2")
    g = generator(1)
    B, d_in, d_hidden, d_out = 6, 5, 7, 3
    x = _randn(g, B, d_in)
    w1, b1 = _randn(g, d_hidden, d_in) / 2, _randn(g, d_hidden) / 2
    w2, b2 = _randn(g, d_out, d_hidden) / 2, _randn(g, d_out)
    dout = _randn(g, B, d_out)
    args = (x, w1, b1, w2, b2, dout)
    got = _as_tuple(name, call(name, fn, *(t.clone() for t in args)), 4, "(dw1, db1, dw2, db2)")
    wrong = {
        "no ReLU in the backward pass (or a mask that is always 1, such as relu(h) >= 0)? Multiply the gradient "
        "by the ReLU's slope, (h > 0), where h is the pre-activation x @ w1.T + b1.": _mlp_variant(*args, mask="none"),
        "ReLU mask taken from the gradient? The slope depends on the forward pre-activation: "
        "dh = da * (h > 0), not da * (da > 0).": _mlp_variant(*args, mask="grad"),
        "gradient multiplied by the ReLU's output? The ReLU's derivative is the 0/1 mask (h > 0), "
        "not relu(h).": _mlp_variant(*args, mask="value"),
        "dw2 computed from the pre-activation h? The second layer's input is a = relu(h): dw2 = dout.T @ a.":
            _mlp_variant(*args, dw2_from="h"),
    }
    _diagnose(name, got, _mlp_reference(*args), labels, wrong,
              "forward h = x @ w1.T + b1, a = relu(h); backward through layer 2, then dh = da * (h > 0), "
              "then through layer 1")
    passed(name, "all four gradients match autograd (float64)")


# ------------------------------------------------------------------------------- exercise 3


def _ce_variant(logits, targets, eps, smooth="K", reduce="mean", smooth_term="mean"):
    import torch

    logp = torch.log_softmax(logits.double(), dim=-1)  # (B, K)
    K = logits.shape[-1]
    nll = -logp.gather(1, targets[:, None]).squeeze(1)  # (B,)
    if smooth == "K":  # torch: (1 - eps) on the target, eps / K spread over ALL K classes
        uniform = -(logp.mean(-1) if smooth_term == "mean" else logp.sum(-1))
        loss = (1 - eps) * nll + eps * uniform
    elif smooth == "K-1":  # 1 - eps on the target, eps / (K - 1) on each of the others
        others = -(logp.sum(-1) + nll) / (K - 1)
        loss = (1 - eps) * nll + eps * others
    elif smooth == "none":
        loss = nll
    else:  # "scaled": forgot the uniform part, kept the (1 - eps)
        loss = (1 - eps) * nll
    return loss.mean() if reduce == "mean" else loss.sum()


def cross_entropy(fn: Callable) -> None:
    """Exercise 3: `fn(logits, targets, label_smoothing=0.0)` equals F.cross_entropy(..., label_smoothing=...)."""
    import torch
    import torch.nn.functional as F

    name = "cross_entropy"
    g = generator(2)
    B, K = 8, 5
    logits, targets = 3 * torch.randn(B, K, generator=g), torch.randint(0, K, (B,), generator=g)
    for eps in (0.0, 0.1, 0.3):
        got = torch.as_tensor(call(name, fn, logits.clone(), targets.clone(), eps))
        expect(got.numel() == 1, name, f"return one number, the mean over the batch; got shape {tuple(got.shape)} "
               "(per-example losses? take .mean())")
        expected = F.cross_entropy(logits, targets, label_smoothing=eps)
        if _close(got.reshape(()), expected, atol=1e-5):
            continue
        wrong = {
            "summed over the batch? F.cross_entropy averages over the B examples: return loss.mean().":
                _ce_variant(logits, targets, eps, reduce="sum"),
            f"label_smoothing={eps} ignored? The target distribution is (1 - eps) on the true class plus "
            "eps / K on every class.": _ce_variant(logits, targets, eps, smooth="none"),
            "smoothing spread over the K - 1 wrong classes? PyTorch (like Szegedy et al., who introduced it) spreads "
            "eps / K over ALL K classes, the true one included.": _ce_variant(logits, targets, eps, smooth="K-1"),
            "only (1 - eps) * nll? Add the smoothing term eps * mean_k(-log p_k) (a uniform target).":
                _ce_variant(logits, targets, eps, smooth="scaled"),
            "smoothing term summed over the classes? The uniform target puts eps / K on each class: "
            "eps * mean_k(-log p_k), not eps * sum_k.": _ce_variant(logits, targets, eps, smooth_term="sum"),
        }
        for bug, answer in wrong.items():
            if _close(got.reshape(()), answer, atol=1e-5):
                raise CheckFailed(f"{name}: {bug}")
        expect_close(got.reshape(()), expected, name,
                     f"with label_smoothing={eps}: loss = (1 - eps) * nll + eps * mean_k(-log_softmax(logits)_k), "
                     "averaged over the batch", atol=1e-5)

    # stability: confident logits, one of them confidently wrong; exact answers are finite
    logits = torch.tensor([[1000.0, 0.0, -1000.0], [0.0, 800.0, 0.0]])
    targets = torch.tensor([2, 1])
    for eps in (0.0, 0.1):
        got = torch.as_tensor(call(name, fn, logits.clone(), targets, eps)).reshape(())
        expected = F.cross_entropy(logits.double(), targets, label_smoothing=eps)
        expect(bool(torch.isfinite(got)), name,
               f"logits like 1000 give {got.item()}: not numerically stable. exp(1000) overflows and log(0) is "
               "-inf; compute log-softmax as logits - logsumexp(logits) (torch.logsumexp or log_softmax).")
        expect_close(got, expected, name, "with large logits: log_softmax = logits - logsumexp(logits, -1)",
                     atol=1e-3, rtol=1e-5)
    # hand-worked: all-zero logits give a uniform prediction, so the loss is ln K whatever the smoothing
    logits, targets = torch.zeros(2, 4), torch.tensor([0, 3])
    got = torch.as_tensor(call(name, fn, logits, targets, 0.1))
    expect(got.numel() == 1, name, f"return one number, the mean over the batch; got shape {tuple(got.shape)} "
           "(per-example losses? take .mean())")
    if _close(got, 2 * math.log(4), atol=1e-5):
        raise CheckFailed(f"{name}: summed over the batch? F.cross_entropy averages: return loss.mean()")
    expect_close(got.reshape(()), torch.tensor(math.log(4)), name,
                 "hand-worked case: all-zero logits over K=4 classes give ln 4 = 1.386, with or without smoothing")
    passed(name, "matches F.cross_entropy with label_smoothing 0, 0.1, 0.3, stable for logits of 1000")


# ------------------------------------------------------------------------------- exercise 4


def _adamw_variant(p, g, m, v, t, lr, betas, eps, wd, bias_correction=True, eps_inside=False,
                   beta_misuse=False, beta_swap=False, decay="decoupled"):
    import torch

    b1, b2 = (betas[1], betas[0]) if beta_swap else betas
    if decay == "l2":
        g = g + wd * p
    if beta_misuse:  # the weights on the old value and the new gradient swapped
        m, v = (1 - b1) * m + b1 * g, (1 - b2) * v + b2 * g * g
    else:
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
    m_hat, v_hat = (m / (1 - b1 ** t), v / (1 - b2 ** t)) if bias_correction else (m, v)
    denom = torch.sqrt(v_hat + eps) if eps_inside else v_hat.sqrt() + eps
    if decay == "decoupled":
        p = p - lr * wd * p
    elif decay == "no_lr":
        p = p - wd * p
    return p - lr * m_hat / denom, m, v


def _adam_run(step, p0, grads, lr, betas, eps, wd):
    """Feed a step function its own outputs for len(grads) steps; return the parameters after each step."""
    import torch

    p, m, v = p0.clone(), torch.zeros_like(p0), torch.zeros_like(p0)
    out = []
    for t, g in enumerate(grads, start=1):
        p, m, v = step(p, g, m, v, t, lr, betas, eps, wd)
        out.append(p)
    return out


def _torch_run(p0, grads, lr, betas, eps, wd):
    import torch

    p = p0.clone().requires_grad_()
    opt = torch.optim.AdamW([p], lr=lr, betas=betas, eps=eps, weight_decay=wd)
    out = []
    for g in grads:
        p.grad = g.clone()
        opt.step()
        out.append(p.detach().clone())
    return out


def adamw_step(fn: Callable) -> None:
    """Exercise 4: `fn(p, g, m, v, t, lr, betas, eps, weight_decay) -> (p, m, v)` matches torch.optim.AdamW."""
    import torch

    name = "adamw_step"
    gen = generator(3)
    # eps comparable to sqrt(v) and a large decay, so that every usual bug shows in the numbers
    cases = [(0.05, (0.8, 0.95), 1e-2, 0.5), (1e-3, (0.9, 0.999), 1e-8, 0.0)]
    for lr, betas, eps, wd in cases:
        p0 = _randn(gen, 3, 4)
        grads = [0.02 * _randn(gen, 3, 4) for _ in range(6)]
        expected = _torch_run(p0, grads, lr, betas, eps, wd)

        def learner(p, g, m, v, t, lr, betas, eps, wd):
            out = _as_tuple(name, call(name, fn, p.clone(), g.clone(), m.clone(), v.clone(), t, lr, betas, eps, wd),
                            3, "(p, m, v)")
            return tuple(torch.as_tensor(o).detach().double() for o in out)

        got = _adam_run(learner, p0, grads, lr, betas, eps, wd)
        if _all_close(got, expected, atol=1e-9):
            continue
        variants = {
            "no bias correction? Use m_hat = m / (1 - beta1**t) and v_hat = v / (1 - beta2**t).":
                dict(bias_correction=False),
            "eps inside the square root? Adam divides by sqrt(v_hat) + eps.": dict(eps_inside=True),
            "betas used the wrong way round in the averages? m = beta1 * m + (1 - beta1) * g: the old value "
            "keeps the weight beta1.": dict(beta_misuse=True),
            "beta1 and beta2 swapped? beta1 averages the gradient (m), beta2 its square (v).": dict(beta_swap=True),
            "weight decay added to the gradient (L2, what torch.optim.Adam(weight_decay=...) does)? AdamW decays "
            "the parameter directly: p = p - lr * weight_decay * p, outside the Adam update.": dict(decay="l2"),
            "weight decay not scaled by lr? AdamW (PyTorch) shrinks p by lr * weight_decay * p.":
                dict(decay="no_lr"),
            "weight decay ignored? AdamW shrinks p by lr * weight_decay * p each step.": dict(decay="none"),
        }
        for bug, knobs in variants.items():
            wrong = _adam_run(lambda *a, k=knobs: _adamw_variant(*a, **k), p0, grads, lr, betas, eps, wd)
            if _all_close(got, wrong, atol=1e-9):
                raise CheckFailed(f"{name}: {bug}")
        first = next(i for i, (a, e) in enumerate(zip(got, expected)) if not _close(a, e, atol=1e-9))
        expect_close(got[first], expected[first], name,
                     f"after step t={first + 1} with lr={lr}, betas={betas}, eps={eps}, weight_decay={wd}, the "
                     "parameters differ from torch.optim.AdamW", atol=1e-9, rtol=1e-7)
    # hand-worked: Adam's first step moves every parameter by about lr, against the sign of its gradient
    p, g = torch.tensor([1.0, 1.0], dtype=torch.float64), torch.tensor([0.5, -2.0], dtype=torch.float64)
    z = torch.zeros(2, dtype=torch.float64)
    got = _as_tuple(name, call(name, fn, p.clone(), g.clone(), z.clone(), z.clone(), 1, 0.1, (0.9, 0.999), 1e-8, 0.0),
                    3, "(p, m, v)")
    if _close(got[0], _adamw_variant(p, g, z, z, 1, 0.1, (0.9, 0.999), 1e-8, 0.0, bias_correction=False)[0]):
        raise CheckFailed(f"{name}: no bias correction? At t=1, m = 0.1 g and v = 0.001 g², so the step is 3.2x too "
                          "big; divide by (1 - beta1**t) and (1 - beta2**t).")
    expect_close(got[0], torch.tensor([0.9, 1.1], dtype=torch.float64), name,
                 "hand-worked case: at t=1, m_hat = g and v_hat = g², so each parameter moves by lr * g / |g| "
                 "= 0.1 against its gradient: p=[1, 1], g=[0.5, -2] -> [0.9, 1.1]", atol=1e-6)
    passed(name, "6 steps match torch.optim.AdamW to 1e-9 (float64), with and without weight decay")


# ------------------------------------------------------------------------------- exercise 5


def _stop_variant(losses, patience, min_delta=0.0, slack=0, ties=False, use_delta=True, one_based=False,
                  global_best=False):
    best_epoch, best, wait = 0, losses[0], 0
    stop = len(losses) - 1
    for epoch in range(1, len(losses)):
        margin = min_delta if use_delta else 0.0
        better = losses[epoch] <= best - margin if ties else losses[epoch] < best - margin
        if better:
            best_epoch, best, wait = epoch, losses[epoch], 0
        else:
            wait += 1
            if wait >= patience + slack:
                stop = epoch
                break
    if global_best:
        best_epoch = min(range(len(losses)), key=lambda i: (losses[i], i))
    return (best_epoch + 1, stop + 1) if one_based else (best_epoch, stop)


def early_stopping(fn: Callable) -> None:
    """Exercise 5: `fn(val_losses, patience, min_delta=0.0) -> (best_epoch, stop_epoch)`, epochs from 0."""
    import random

    name = "early_stopping"
    cases = [  # (losses, patience, min_delta, expected)
        ([1.0, 0.8, 0.7, 0.7, 0.71, 0.72, 0.5], 3, 0.0, (2, 5)),  # a tie is not an improvement
        ([1.0, 0.9, 0.8, 0.7], 2, 0.0, (3, 3)),  # never stops early: ran to the last epoch
        ([1.0, 0.95, 0.94, 0.93, 0.92, 0.5], 2, 0.1, (0, 2)),  # small gains are not improvements
        ([2.0, 1.0, 1.1, 0.2, 1.2, 1.3], 1, 0.0, (1, 2)),  # patience 1: the first bad epoch stops it
    ]
    rng = random.Random(4)
    for _ in range(30):
        n = rng.randint(8, 40)
        turn = rng.randint(2, n)
        losses = [round(2.0 / (1 + 0.3 * min(i, turn)) + 0.02 * max(0, i - turn) + rng.uniform(-0.04, 0.04), 2)
                  for i in range(n)]
        patience, min_delta = rng.randint(1, 6), rng.choice([0.0, 0.0, 0.025, 0.055])  # never a multiple of 0.01
        cases.append((losses, patience, min_delta, _stop_variant(losses, patience, min_delta)))

    variants = {
        "stopped one epoch late? Stop at the epoch where the count of epochs without improvement reaches "
        "patience (== patience, not > patience).": dict(slack=1),
        "stopped one epoch early? Count the epochs without improvement and stop when the count reaches "
        "patience.": dict(slack=-1),
        "a tie counted as an improvement? An epoch improves only if its loss < best - min_delta (strictly).":
            dict(ties=True),
        "min_delta ignored? An epoch improves only if its loss < best - min_delta.": dict(use_delta=False),
        "epochs counted from 1? Epoch i is val_losses[i], counting from 0.": dict(one_based=True),
        "best epoch taken over the whole list? Training stopped at stop_epoch: the best epoch is the best one "
        "seen before stopping.": dict(global_best=True),
    }
    for losses, patience, min_delta, expected in cases:
        got = call(name, fn, list(losses), patience, min_delta)
        expect(isinstance(got, (tuple, list)) and len(got) == 2, name,
               f"return a tuple (best_epoch, stop_epoch), got {got!r}")
        try:
            got = (int(got[0]), int(got[1]))
        except (TypeError, ValueError):
            raise CheckFailed(f"{name}: return two integers (best_epoch, stop_epoch), got {got!r}") from None
        if got == tuple(expected):
            continue
        for bug, knobs in variants.items():
            if got == _stop_variant(losses, patience, min_delta, **knobs):
                raise CheckFailed(f"{name}: {bug} (losses={losses}, patience={patience}, min_delta={min_delta}: "
                                  f"expected {tuple(expected)}, got {got})")
        raise CheckFailed(f"{name}: losses={losses}, patience={patience}, min_delta={min_delta}: expected "
                          f"(best_epoch, stop_epoch) = {tuple(expected)}, got {got}")
    passed(name, f"{len(cases)} loss curves: best and stop epochs right, ties and min_delta handled")
