"""The checks of 19_evaluation pass correct answers and catch the stub and plausible bugs."""
import collections

import numpy as np
import pytest

from genai_roadmap.checks import CheckFailed
from genai_roadmap.checks import evaluation as check
from genai_roadmap.checks.evaluation import normalize_answer


def stub(*args, **kwargs):
    raise NotImplementedError


# ------------------------------------------------------------------ token_f1
def f1(prediction, reference, counter=True, normalise=True, empty_rule=True):
    norm = normalize_answer if normalise else (lambda s: s)
    p, r = norm(prediction).split(), norm(reference).split()
    if not p or not r:
        return float(p == r) if empty_rule else 0.0
    common = sum((collections.Counter(p) & collections.Counter(r)).values()) if counter else len(set(p) & set(r))
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(r)
    return 2 * precision * recall / (precision + recall)


def test_token_f1_correct(capsys):
    check.token_f1(f1)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("bad, message", [
    (stub, "not implemented"),
    (lambda p, r: f1(p, r, counter=False), "Counter"),
    (lambda p, r: f1(p, r, normalise=False), "normalise"),
    (lambda p, r: f1(p, r, empty_rule=False), "empty"),
    (lambda p, r: float(normalize_answer(p) == normalize_answer(r)), "should be"),
])
def test_token_f1_bugs(bad, message):
    with pytest.raises(CheckFailed, match=message):
        check.token_f1(bad)


# ------------------------------------------------------------------ rouge_l
def rouge(c, r, swap=False, substring=False, f_mean="harmonic"):
    lcs = check._longest_substring(c, r) if substring else check._lcs(c, r)
    p, rec = (lcs / len(c) if c else 0.0), (lcs / len(r) if r else 0.0)
    if swap:
        p, rec = rec, p
    if f_mean == "harmonic":
        f = 2 * p * rec / (p + rec) if p + rec else 0.0
    else:
        f = (p + rec) / 2
    return p, rec, f


def test_rouge_l_correct(capsys):
    check.rouge_l(rouge)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("bad, message", [
    (stub, "not implemented"),
    (lambda c, r: rouge(c, r, substring=True), "substring"),
    (lambda c, r: rouge(c, r, swap=True), "swapped"),
    (lambda c, r: rouge(c, r, f_mean="arithmetic"), "expected f|harmonic"),
    (lambda c, r: rouge(c, r)[2], "tuple"),
])
def test_rouge_l_bugs(bad, message):
    with pytest.raises(CheckFailed, match=message):
        check.rouge_l(bad)


# ------------------------------------------------------------------ cohen_kappa
def kappa(a, b, pe_from_a_only=False, raw=False):
    n = len(a)
    p_o = sum(x == y for x, y in zip(a, b)) / n
    if raw:
        return p_o
    ca, cb = collections.Counter(a), collections.Counter(b)
    if pe_from_a_only:
        cb = ca
    p_e = sum(ca[k] / n * cb[k] / n for k in set(ca) | set(cb))
    return (p_o - p_e) / (1 - p_e)


def test_cohen_kappa_correct(capsys):
    check.cohen_kappa(kappa)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("bad, message", [
    (stub, "not implemented"),
    (lambda a, b: kappa(a, b, raw=True), "raw agreement"),
    (lambda a, b: kappa(a, b, pe_from_a_only=True), "both annotators"),
    (lambda a, b: 1 - kappa(a, b), "expected"),
])
def test_cohen_kappa_bugs(bad, message):
    with pytest.raises(CheckFailed, match=message):
        check.cohen_kappa(bad)


# ------------------------------------------------------------------ bradley_terry
def bt(wins, iters=3000, center=True, transpose=False):
    w = np.asarray(wins, dtype=float)
    if transpose:
        w = w.T
    n, W, p = w + w.T, w.sum(1), np.ones(len(w))
    for _ in range(iters):
        p = W / (n / (p[:, None] + p[None, :])).sum(1)
        p /= p.sum()
    s = np.log(p)
    return s - s.mean() if center else s


def win_rate_scores(wins):
    w = np.asarray(wins, dtype=float)
    rate = w.sum(1) / (w + w.T).sum(1)
    return rate - rate.mean()


def test_bradley_terry_correct(capsys):
    check.bradley_terry(bt)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("bad, message", [
    (stub, "not implemented"),
    (lambda w: bt(w, transpose=True), "reversed"),
    (lambda w: bt(w, center=False), "centre"),
    (win_rate_scores, "win rates|log-strengths|expected"),
    (lambda w: bt(w, iters=2), "expected|converged"),
    (lambda w: bt(w)[:1], "shape"),
])
def test_bradley_terry_bugs(bad, message):
    with pytest.raises(CheckFailed, match=message):
        check.bradley_terry(bad)
