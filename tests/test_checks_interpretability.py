"""The checks of 22_interpretability pass correct answers and catch the stub and plausible bugs."""
import pytest
import torch

from genai_roadmap.checks import CheckFailed
from genai_roadmap.checks import interpretability as check


def stub(*args, **kwargs):
    raise NotImplementedError


# ------------------------------------------------------------------ logit_lens
def logit_lens(hidden, norm, W_U):
    return norm(hidden) @ W_U.T


def test_logit_lens_correct(capsys):
    check.logit_lens(logit_lens)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("bad, message", [
    (stub, "not implemented"),
    (lambda h, norm, W_U: h @ W_U.T, "final norm is missing"),
    (lambda h, norm, W_U: torch.softmax(norm(h) @ W_U.T, -1), "probabilities"),
    (lambda h, norm, W_U: torch.log_softmax(norm(h) @ W_U.T, -1), "log-probabilities"),
    (lambda h, norm, W_U: torch.nn.functional.rms_norm(h, (h.shape[-1],), eps=1e-6) @ W_U.T, "learned weight"),
    (lambda h, norm, W_U: norm(h[-1:]) @ W_U.T, "shape"),
    (lambda h, norm, W_U: norm(h) @ W_U.T * 2, "differ"),
])
def test_logit_lens_bugs(bad, message):
    with pytest.raises(CheckFailed, match=message):
        check.logit_lens(bad)


# ------------------------------------------------------------------ induction_score
def induction_score(attn, seq_len, offset=1, start=None, reduce="mean"):
    start = 1 + seq_len if start is None else start
    dest = torch.arange(start, start + seq_len)
    a = attn[:, :, dest, dest - seq_len + offset]
    return a.mean((0, 2)) if reduce == "mean" else a.mean(0).sum(-1)


def test_induction_score_correct(capsys):
    check.induction_score(induction_score)
    assert "planted induction head" in capsys.readouterr().out


@pytest.mark.parametrize("bad, message", [
    (stub, "not implemented"),
    (lambda a, n: induction_score(a, n, offset=0), "duplicate-token"),
    (lambda a, n: a[:, :, torch.arange(1 + n, 1 + 2 * n), torch.arange(n, 2 * n)].mean((0, 2)), "previous-token"),
    (lambda a, n: induction_score(a, n, start=n), "bos"),
    (lambda a, n: induction_score(a, n, reduce="sum"), "summed"),
    (lambda a, n: induction_score(a, n).mean(), "shape"),
])
def test_induction_score_bugs(bad, message):
    with pytest.raises(CheckFailed, match=message):
        check.induction_score(bad)


# ------------------------------------------------------------------ logit_diff_recovered
def recovered(patched, clean, corrupted, answer, wrong):
    def ld(x):
        return x[..., answer] - x[..., wrong]
    return (ld(patched) - ld(corrupted)) / (ld(clean) - ld(corrupted))


def test_logit_diff_recovered_correct(capsys):
    check.logit_diff_recovered(recovered)
    assert "full restore" in capsys.readouterr().out


def test_logit_diff_recovered_accepts_log_probs(capsys):
    # log-softmax shifts every logit of a row equally: the difference, hence the metric, is unchanged
    check.logit_diff_recovered(lambda p, c, x, a, w: recovered(*(torch.log_softmax(t, -1) for t in (p, c, x)), a, w))


def ld(x, a, w):
    return x[..., a] - x[..., w]


@pytest.mark.parametrize("bad, message", [
    (stub, "not implemented"),
    (lambda p, c, x, a, w: ld(p, a, w) - ld(x, a, w), "not normalised"),
    (lambda p, c, x, a, w: ld(p, a, w) / ld(c, a, w), "divided by LD_clean only"),
    (lambda p, c, x, a, w: 1 - recovered(p, c, x, a, w), "still missing"),
    (lambda p, c, x, a, w: recovered(*(torch.softmax(t, -1) for t in (p, c, x)), a, w), "probabilities"),
    (lambda p, c, x, a, w: (p[:, a] - x[a]) / (c[a] - x[a]), "only the answer"),
    (lambda p, c, x, a, w: recovered(p, c, x, w, a) * 0.9, "expected"),
])
def test_logit_diff_recovered_bugs(bad, message):
    with pytest.raises(CheckFailed, match=message):
        check.logit_diff_recovered(bad)


# ------------------------------------------------------------------ sae_forward
def sae_forward(x, W_enc, b_enc, W_dec, b_dec, k, center=True, relu=True, topk=True, dec_bias=True):
    pre = (x - b_dec if center else x) @ W_enc + b_enc
    pre = torch.relu(pre) if relu else pre
    if topk:
        v, i = pre.topk(k, dim=-1)
        f = torch.zeros_like(pre).scatter(-1, i, v)
    else:
        f = pre
    return f @ W_dec + (b_dec if dec_bias else 0), f


def test_sae_forward_correct(capsys):
    check.sae_forward(sae_forward)
    assert "top-4 of ReLU" in capsys.readouterr().out


@pytest.mark.parametrize("bad, message", [
    (stub, "not implemented"),
    (lambda *a: sae_forward(*a, center=False), "decoder bias is not subtracted"),
    (lambda *a: sae_forward(*a, relu=False), "no ReLU"),
    (lambda *a: sae_forward(*a, topk=False), "no top-k"),
    (lambda *a: sae_forward(*a, dec_bias=False), "decoder bias is missing"),
    (lambda *a: sae_forward(*a)[1], "pair"),
])
def test_sae_forward_bugs(bad, message):
    with pytest.raises(CheckFailed, match=message):
        check.sae_forward(bad)
