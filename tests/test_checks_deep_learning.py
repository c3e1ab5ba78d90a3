"""The checks of 02_deep_learning pass correct answers and catch the stub and plausible bugs."""
import re

import pytest
import torch
import torch.nn.functional as F

from genai_roadmap.checks import CheckFailed
from genai_roadmap.checks import deep_learning as check


def stub(*args, **kwargs):
    raise NotImplementedError


# ------------------------------------------------------------------ linear_backward
def make_linear(dw_t=False, dx_t=False, db="sum"):
    def linear_backward(x, w, dy):
        dx = dy @ w.T if dx_t else dy @ w
        dw = x.T @ dy if dw_t else dy.T @ x
        db_ = {"sum": dy.sum(0), "mean": dy.mean(0), "none": dy}[db]
        return dx, dw, db_

    return linear_backward


# ------------------------------------------------------------------ mlp_backward
def make_mlp(mask="pre", dw2_from="a"):
    def mlp_backward(x, w1, b1, w2, b2, dout):
        h = x @ w1.T + b1
        a = h.relu()
        da, dw2, db2 = dout @ w2, dout.T @ (a if dw2_from == "a" else h), dout.sum(0)
        dh = {"pre": da * (h > 0), "none": da, "grad": da * (da > 0), "value": da * a, "post": da * (a >= 0)}[mask]
        return dh.T @ x, dh.sum(0), dw2, db2

    return mlp_backward


def mlp_with_linear_backward(x, w1, b1, w2, b2, dout):
    # the notebook's shape: reuse exercise 1
    lb = make_linear()
    h = x @ w1.T + b1
    da, dw2, db2 = lb(h.relu(), w2, dout)
    _, dw1, db1 = lb(x, w1, da * (h > 0))
    return dw1, db1, dw2, db2


# ------------------------------------------------------------------ cross_entropy
def make_ce(smooth="K", reduce="mean", stable=True, smooth_term="mean"):
    def cross_entropy(logits, targets, label_smoothing=0.0):
        eps = label_smoothing
        logp = logits - logits.logsumexp(-1, keepdim=True) if stable else logits.softmax(-1).log()
        K = logits.shape[-1]
        nll = -logp.gather(1, targets[:, None]).squeeze(1)
        if smooth == "K":
            uniform = -(logp.mean(-1) if smooth_term == "mean" else logp.sum(-1))
            loss = (1 - eps) * nll + eps * uniform
        elif smooth == "K-1":
            loss = (1 - eps) * nll + eps * (-(logp.sum(-1) + nll) / (K - 1))
        elif smooth == "none":
            loss = nll
        else:
            loss = (1 - eps) * nll
        return loss.mean() if reduce == "mean" else (loss.sum() if reduce == "sum" else loss)

    return cross_entropy


def ce_naive_exp(logits, targets, label_smoothing=0.0):
    p = torch.exp(logits) / torch.exp(logits).sum(-1, keepdim=True)
    logp = torch.log(p)
    nll = -logp.gather(1, targets[:, None]).squeeze(1)
    return ((1 - label_smoothing) * nll - label_smoothing * logp.mean(-1)).mean()


def ce_one_hot_targets(logits, targets, label_smoothing=0.0):
    # a different but correct formulation: build the smoothed target distribution explicitly
    K = logits.shape[-1]
    q = F.one_hot(targets, K).float() * (1 - label_smoothing) + label_smoothing / K
    return -(q * F.log_softmax(logits, -1)).sum(-1).mean()


# ------------------------------------------------------------------ adamw_step
def make_adamw(bias_correction=True, eps_inside=False, beta_misuse=False, beta_swap=False, decay="decoupled",
               decay_after=False):
    def adamw_step(p, g, m, v, t, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        b1, b2 = (betas[1], betas[0]) if beta_swap else betas
        if decay == "l2":
            g = g + weight_decay * p
        if beta_misuse:
            m, v = (1 - b1) * m + b1 * g, (1 - b2) * v + b2 * g * g
        else:
            m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        m_hat, v_hat = (m / (1 - b1 ** t), v / (1 - b2 ** t)) if bias_correction else (m, v)
        denom = (v_hat + eps).sqrt() if eps_inside else v_hat.sqrt() + eps
        if decay == "decoupled" and not decay_after:
            p = p - lr * weight_decay * p
        elif decay == "no_lr":
            p = p - weight_decay * p
        p = p - lr * m_hat / denom
        if decay_after:
            p = p * (1 - lr * weight_decay)
        return p, m, v

    return adamw_step


def adamw_in_place(p, g, m, v, t, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
    # correct, written the way torch does it, in place
    b1, b2 = betas
    p.mul_(1 - lr * weight_decay)
    m.mul_(b1).add_(g, alpha=1 - b1)
    v.mul_(b2).addcmul_(g, g, value=1 - b2)
    p.addcdiv_(m / (1 - b1 ** t), (v / (1 - b2 ** t)).sqrt().add_(eps), value=-lr)
    return p, m, v


# ------------------------------------------------------------------ early_stopping
def make_stop(slack=0, ties=False, use_delta=True, one_based=False, global_best=False):
    def early_stopping(val_losses, patience, min_delta=0.0):
        best_epoch, best, wait, stop = 0, val_losses[0], 0, len(val_losses) - 1
        for epoch in range(1, len(val_losses)):
            d = min_delta if use_delta else 0.0
            if (val_losses[epoch] <= best - d) if ties else (val_losses[epoch] < best - d):
                best_epoch, best, wait = epoch, val_losses[epoch], 0
            else:
                wait += 1
                if wait >= patience + slack:
                    stop = epoch
                    break
        if global_best:
            best_epoch = min(range(len(val_losses)), key=lambda i: val_losses[i])
        return (best_epoch + 1, stop + 1) if one_based else (best_epoch, stop)

    return early_stopping


def stop_keras_style(val_losses, patience, min_delta=0.0):
    # correct, written differently: a counter since the best, improvement as best - loss > min_delta
    best_epoch = 0
    for epoch in range(1, len(val_losses)):
        if val_losses[best_epoch] - val_losses[epoch] > min_delta:
            best_epoch = epoch
        elif epoch - best_epoch >= patience:
            return best_epoch, epoch
    return best_epoch, len(val_losses) - 1


CASES = {
    "linear_backward": (make_linear(), {
        "dw transposed": (make_linear(dw_t=True), "transposed"),
        "dx uses w.T": (make_linear(dx_t=True), "dx uses w.T"),
        "db averaged": (make_linear(db="mean"), "averaged"),
        "db not summed": (make_linear(db="none"), "summed over the batch"),
    }),
    "mlp_backward": (make_mlp(), {
        "no relu mask": (make_mlp(mask="none"), "no ReLU"),
        "mask from gradient": (make_mlp(mask="grad"), "from the gradient"),
        "multiplied by relu output": (make_mlp(mask="value"), "ReLU's output"),
        "mask always one": (make_mlp(mask="post"), "always 1"),
        "dw2 from pre-activation": (make_mlp(dw2_from="h"), "pre-activation h"),
    }),
    "cross_entropy": (make_ce(), {
        "K-1 smoothing": (make_ce(smooth="K-1"), "K - 1"),
        "sum not mean": (make_ce(reduce="sum"), "summed over the batch"),
        "per-example": (make_ce(reduce="none"), "one number"),
        "smoothing ignored": (make_ce(smooth="none"), "ignored"),
        "uniform term missing": (make_ce(smooth="scaled"), "only (1 - eps)"),
        "smoothing term summed": (make_ce(smooth_term="sum"), "summed over the classes"),
        "log of softmax": (make_ce(stable=False), "not numerically stable"),
        "exp overflow": (ce_naive_exp, "not numerically stable"),
    }),
    "adamw_step": (make_adamw(), {
        "no bias correction": (make_adamw(bias_correction=False), "bias correction"),
        "eps inside sqrt": (make_adamw(eps_inside=True), "eps inside"),
        "betas misused": (make_adamw(beta_misuse=True), "wrong way round"),
        "betas swapped": (make_adamw(beta_swap=True), "swapped"),
        "L2 not decoupled": (make_adamw(decay="l2"), "L2"),
        "decay without lr": (make_adamw(decay="no_lr"), "not scaled by lr"),
        "decay ignored": (make_adamw(decay="none"), "ignored"),
    }),
    "early_stopping": (make_stop(), {
        "one late": (make_stop(slack=1), "one epoch late"),
        "one early": (make_stop(slack=-1), "one epoch early"),
        "ties improve": (make_stop(ties=True), "tie"),
        "min_delta ignored": (make_stop(use_delta=False), "min_delta ignored"),
        "one-based": (make_stop(one_based=True), "from 1"),
        "global best": (make_stop(global_best=True), "whole list"),
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


@pytest.mark.parametrize("name,fn", [
    ("mlp_backward", mlp_with_linear_backward),
    ("cross_entropy", ce_one_hot_targets),
    ("cross_entropy", lambda logits, targets, label_smoothing=0.0: F.cross_entropy(
        logits, targets, label_smoothing=label_smoothing)),
    ("adamw_step", adamw_in_place),
    ("early_stopping", stop_keras_style),
])
def test_other_correct_formulations_pass(name, fn):
    getattr(check, name)(fn)


def test_decay_after_the_update_is_caught():
    # shrinking p after the Adam update differs from torch by lr * wd * lr * update: small but real
    with pytest.raises(CheckFailed):
        check.adamw_step(make_adamw(decay_after=True))
