"""The checks of 16_llmops pass correct answers and catch the stub and plausible bugs."""
import hashlib
import json
import math

import numpy as np
import pytest
from scipy.stats import norm

from genai_roadmap.checks import CheckFailed
from genai_roadmap.checks import llmops as check


def stub(*args, **kwargs):
    raise NotImplementedError


# ------------------------------------------------------------------ content_hash
def content_hash(template, params, sort_keys=True, separators=(",", ":"), with_params=True, algo="sha256",
                 ensure_ascii=False):
    payload = {"template": template, "params": params} if with_params else {"template": template}
    text = json.dumps(payload, sort_keys=sort_keys, separators=separators, ensure_ascii=ensure_ascii)
    return getattr(hashlib, algo)(text.encode("utf-8")).hexdigest()


def test_content_hash_correct(capsys):
    check.content_hash(content_hash)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("bad, message", [
    (stub, "not implemented"),
    (lambda t, p: content_hash(t, p, with_params=False), "params are not in the hash"),
    (lambda t, p: hashlib.sha256(t.encode()).hexdigest(), "params are not in the hash"),
    (lambda t, p: content_hash(t, p, sort_keys=False), "not sorted"),
    (lambda t, p: content_hash(t, p, separators=None), "separators"),
    (lambda t, p: content_hash(t, p, algo="md5"), "md5"),
    (lambda t, p: content_hash(t, p, ensure_ascii=True), "non-ASCII"),
    (lambda t, p: str(hash((t, json.dumps(p, sort_keys=True)))), "sha256"),
])
def test_content_hash_bugs(bad, message):
    with pytest.raises(CheckFailed, match=message):
        check.content_hash(bad)


# ------------------------------------------------------------------ sample_size
def sample_size(p_a, p_b, alpha=0.05, power=0.8, z_alpha=None, power_term=True, rounding=math.ceil, per_arm=True,
                pooled=True, extra=0):
    z_a = norm.ppf(1 - alpha / 2) if z_alpha is None else z_alpha(alpha)
    z_b = norm.ppf(power) if power_term else 0.0
    p_bar = (p_a + p_b) / 2
    unpooled = math.sqrt(p_a * (1 - p_a) + p_b * (1 - p_b))
    n = (z_a * (math.sqrt(2 * p_bar * (1 - p_bar)) if pooled else unpooled) + z_b * unpooled) ** 2
    n = n / (p_a - p_b) ** 2
    return int(rounding(n if per_arm else 2 * n)) + extra


def test_sample_size_correct(capsys):
    check.sample_size(sample_size)
    assert "388 per arm" in capsys.readouterr().out


def test_sample_size_unpooled_is_385():
    assert sample_size(0.5, 0.6, pooled=False) == 385 and sample_size(0.5, 0.6) == 388


@pytest.mark.parametrize("bad, message", [
    (stub, "not implemented"),
    (lambda a, b, al, pw: sample_size(a, b, al, pw, z_alpha=lambda x: norm.ppf(1 - x)), "one-sided"),
    (lambda a, b, al, pw: sample_size(a, b, al, pw, power_term=False), "power term is missing"),
    (lambda a, b, al, pw: sample_size(a, b, al, pw, rounding=math.floor), "one short: round"),
    (lambda a, b, al, pw: sample_size(a, b, al, pw, rounding=round), "one short: round"),
    (lambda a, b, al, pw: sample_size(a, b, al, pw, extra=1), "one too many"),
    (lambda a, b, al, pw: sample_size(a, b, al, pw, pooled=False), "unpooled textbook variant"),
    (lambda a, b, al, pw: sample_size(a, b, al, pw, per_arm=False), "per arm"),
    (lambda a, b, al, pw: float(sample_size(a, b, al, pw)), "return an int"),
])
def test_sample_size_bugs(bad, message):
    with pytest.raises(CheckFailed, match=message):
        check.sample_size(bad)


# ------------------------------------------------------------------ two_proportion_ztest
def ztest(sa, na, sb, nb, pooled=True, sign=1, sides=2, use_abs=True):
    pa, pb = sa / na, sb / nb
    if pooled:
        p = (sa + sb) / (na + nb)
        se = math.sqrt(p * (1 - p) * (1 / na + 1 / nb))
    else:
        se = math.sqrt(pa * (1 - pa) / na + pb * (1 - pb) / nb)
    z = sign * (pb - pa) / se
    tail = norm.sf(abs(z)) if use_abs else norm.sf(z)
    return z, sides * tail


def test_ztest_correct(capsys):
    check.two_proportion_ztest(ztest)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("bad, message", [
    (stub, "not implemented"),
    (lambda *a: ztest(*a, pooled=False), "unpooled"),
    (lambda *a: ztest(*a, sign=-1), "wrong sign"),
    (lambda *a: ztest(*a, sides=1), "one-sided"),
    (lambda *a: ztest(*a, use_abs=False), r"\|z\|"),
    (lambda *a: ztest(*a)[0], "tuple"),
])
def test_ztest_bugs(bad, message):
    with pytest.raises(CheckFailed, match=message):
        check.two_proportion_ztest(bad)


# ------------------------------------------------------------------ mmd2_unbiased
def mmd2(K, m, biased=False, cross=2.0, denominator="m(m-1)", swap=False, unit_diagonal=False):
    K = np.asarray(K, dtype=np.float64)
    n = len(K) - m
    if swap:
        Kxx, Kyy, Kxy = K[:n, :n], K[n:, n:], K[:n, n:]
        m, n = n, m
    else:
        Kxx, Kyy, Kxy = K[:m, :m], K[m:, m:], K[:m, m:]
    if biased:
        return Kxx.mean() + Kyy.mean() - cross * Kxy.mean()
    dx, dy = (m * (m - 1), n * (n - 1)) if denominator == "m(m-1)" else (m * m, n * n)
    tx, ty = (m, n) if unit_diagonal else (np.trace(Kxx), np.trace(Kyy))   # the bug: assumes k(x, x) = 1
    return (Kxx.sum() - tx) / dx + (Kyy.sum() - ty) / dy - cross * Kxy.mean()


def test_mmd2_correct(capsys):
    check.mmd2_unbiased(mmd2)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("bad, message", [
    (stub, "not implemented"),
    (lambda K, m: mmd2(K, m, biased=True), "biased estimate"),
    (lambda K, m: mmd2(K, m, cross=1.0), "counted twice"),
    (lambda K, m: mmd2(K, m, denominator="m^2"), r"m \(m - 1\)"),
    (lambda K, m: mmd2(K, m, swap=True), "swapped"),
    (lambda K, m: mmd2(K, m, unit_diagonal=True), "np.trace"),
    (lambda K, m: -mmd2(K, m), "expected"),
])
def test_mmd2_bugs(bad, message):
    with pytest.raises(CheckFailed, match=message):
        check.mmd2_unbiased(bad)
