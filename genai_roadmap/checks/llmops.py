"""Checks for phase4_production/16_llmops.ipynb.

Each check runs the learner's function on small seeded inputs, compares it with a trusted reference
(hashlib on the canonical JSON, scipy.stats, a simulation, the textbook formula below) and one hand-worked
case, and when the answer is wrong compares it with the usual wrong answers to name the likely bug.
"""
from __future__ import annotations

import hashlib
import json
import math
from typing import Callable

from genai_roadmap.checks._common import CheckFailed, call, expect, passed


# ------------------------------------------------------------------------------- exercise 1
def _canonical(template: str, params: dict) -> str:
    return json.dumps({"template": template, "params": params}, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False)


def reference_content_hash(template: str, params: dict) -> str:
    """sha256 of the canonical JSON of {"template", "params"}: keys sorted, no spaces, UTF-8."""
    return hashlib.sha256(_canonical(template, params).encode("utf-8")).hexdigest()


def content_hash(fn: Callable) -> None:
    """Exercise 1: `fn(template, params)` -> the sha256 hex digest of the canonical JSON of the prompt."""
    name = "content_hash"
    template = "Facts: {{facts}}\nQuestion: {{question}}"
    params = {"model": "course-chat", "temperature": 0, "max_tokens": 8, "max_context_chars": 170}
    got = call(name, fn, template, params)
    expect(isinstance(got, str), name, f"return the hex digest as a str (hashlib.sha256(...).hexdigest()), got "
           f"{type(got).__name__}")
    want = reference_content_hash(template, params)
    if got != want:
        raw = json.dumps({"template": template, "params": params})
        wrong = {
            "the params are not in the hash: a prompt that only changes max_context_chars or the model must get "
            "a new hash": [hashlib.sha256(template.encode()).hexdigest(),
                           hashlib.sha256(json.dumps({"template": template}, sort_keys=True,
                                                     separators=(",", ":")).encode()).hexdigest()],
            "the keys are not sorted: json.dumps(..., sort_keys=True), or the same prompt written with its params "
            "in another order gets another hash": [hashlib.sha256(json.dumps(
                {"template": template, "params": params}, separators=(",", ":")).encode()).hexdigest()],
            "default separators: use separators=(',', ':') (the canonical form has no spaces)": [
                hashlib.sha256(json.dumps({"template": template, "params": params}, sort_keys=True).encode()
                               ).hexdigest()],
            "that is md5 / sha1, not sha256": [hashlib.md5(_canonical(template, params).encode()).hexdigest(),
                                               hashlib.sha1(_canonical(template, params).encode()).hexdigest()],
            "use .hexdigest() (a 64-character hex string), not .digest() or a truncated hash": [
                str(hashlib.sha256(_canonical(template, params).encode()).digest())],
        }
        for bug, answers in wrong.items():
            if got in answers:
                raise CheckFailed(f"{name}: {bug}")
        if got == hashlib.sha256(raw.encode()).hexdigest():
            raise CheckFailed(f"{name}: the JSON is not canonical: sort_keys=True and separators=(',', ':')")
        expect(len(got) == 64, name, f"expected a 64-character sha256 hex digest, got {len(got)} characters")
        raise CheckFailed(f"{name}: expected {want[:12]}... for the hand-worked prompt, got {got[:12]}...: hash "
                          "json.dumps({'template': ..., 'params': ...}, sort_keys=True, separators=(',', ':'))"
                          ".encode('utf-8') with hashlib.sha256")
    reordered = dict(reversed(list(params.items())))
    expect(call(name, fn, template, reordered) == want, name,
           "the same params in another order got another hash: sort the keys")
    for changed in ({**params, "max_context_chars": None}, {**params, "model": "course-chat-int8"}):
        expect(call(name, fn, template, changed) != want, name, "changing a param must change the hash")
    expect(call(name, fn, template + " ", params) != want, name, "a changed template must change the hash")
    unicode = call(name, fn, "Réponds: {{q}}", {})
    expect(unicode == reference_content_hash("Réponds: {{q}}", {}), name,
           "non-ASCII text hashes differently from the reference: json.dumps(..., ensure_ascii=False) and "
           ".encode('utf-8')")
    passed(name, f"sha256 of the canonical JSON, order-independent, {want[:12]}... for the hand-worked prompt")


# ------------------------------------------------------------------------------- exercise 2
def reference_sample_size(p_a: float, p_b: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Users per arm for a two-sided two-proportion z-test (the pooled-null formula, rounded up)."""
    from scipy.stats import norm

    z_a, z_b = norm.ppf(1 - alpha / 2), norm.ppf(power)
    p_bar = (p_a + p_b) / 2
    n = (z_a * math.sqrt(2 * p_bar * (1 - p_bar)) + z_b * math.sqrt(p_a * (1 - p_a) + p_b * (1 - p_b))) ** 2
    return math.ceil(n / (p_a - p_b) ** 2)


def _sample_size_variants(p_a, p_b, alpha, power):
    from scipy.stats import norm

    z_a2, z_a1, z_b = norm.ppf(1 - alpha / 2), norm.ppf(1 - alpha), norm.ppf(power)
    p_bar = (p_a + p_b) / 2
    d2 = (p_a - p_b) ** 2
    pooled, unpooled = math.sqrt(2 * p_bar * (1 - p_bar)), math.sqrt(p_a * (1 - p_a) + p_b * (1 - p_b))
    exact = (z_a2 * pooled + z_b * unpooled) ** 2 / d2
    return {
        "one-sided: use z at 1 - alpha/2 (the test is two-sided), not at 1 - alpha":
            (z_a1 * pooled + z_b * unpooled) ** 2 / d2,
        "the power term is missing: add z_(power) * sqrt(p_a q_a + p_b q_b); without it the power is only 50%":
            (z_a2 * pooled) ** 2 / d2,
        "that is the total for both arms: return the users per arm": 2 * exact,
        "divided by the difference, not its square": (z_a2 * pooled + z_b * unpooled) ** 2 / abs(p_a - p_b),
        "z_power taken at 1 - power (norm.ppf(0.2) < 0): it is norm.ppf(power)":
            (z_a2 * pooled + norm.ppf(1 - power) * unpooled) ** 2 / d2,
        "that is the unpooled textbook variant (z_(1-alpha/2) + z_power)^2 (p_a q_a + p_b q_b) / delta^2 (385 for "
        "0.5 vs 0.6): this exercise's formula puts the pooled variance under the first term, "
        "z_(1-alpha/2) sqrt(2 p_bar q_bar), since the threshold is set under 'no difference'":
            (z_a2 + z_b) ** 2 * (p_a * (1 - p_a) + p_b * (1 - p_b)) / d2,
    }


def sample_size(fn: Callable) -> None:
    """Exercise 2: `fn(p_a, p_b, alpha, power)` -> users per arm (an int, rounded up)."""
    import numpy as np

    name = "sample_size"
    got = call(name, fn, 0.5, 0.6, 0.05, 0.8)
    expect(isinstance(got, (int, np.integer)) and not isinstance(got, bool), name,
           f"return an int (math.ceil of the formula), got {type(got).__name__} {got!r}")
    cases = [(0.5, 0.6, 0.05, 0.8), (0.63, 0.78, 0.05, 0.8), (0.2, 0.25, 0.01, 0.9), (0.8, 0.7, 0.05, 0.8),
             (0.1, 0.12, 0.05, 0.95)]
    for p_a, p_b, alpha, power in cases:
        got = call(name, fn, p_a, p_b, alpha, power)
        want = reference_sample_size(p_a, p_b, alpha, power)
        if got == want:
            continue
        for bug, wrong in _sample_size_variants(p_a, p_b, alpha, power).items():
            if got in (math.ceil(wrong), round(wrong), math.floor(wrong)) and abs(wrong - want) > 1:
                raise CheckFailed(f"{name}({p_a}, {p_b}, alpha={alpha}, power={power}): {bug} (got {got}, "
                                  f"expected {want})")
        where = f"{name}({p_a}, {p_b}, alpha={alpha}, power={power}): got {got}, expected {want}"
        if got == want - 1:
            raise CheckFailed(f"{where}: one short: round *up* (math.ceil), since a fraction of a user short is "
                              "underpowered; and take the z-values from norm.ppf, not rounded to 1.96 and 0.84")
        if got == want + 1:
            raise CheckFailed(f"{where}: one too many: return math.ceil of the formula itself (not ceil + 1, "
                              "nor int(...) + 1, which is one too many when the formula is a whole number)")
        raise CheckFailed(f"{name}({p_a}, {p_b}, alpha={alpha}, power={power}): got {got}, expected {want}; "
                          "hand-worked: 0.5 vs 0.6 at alpha 0.05, power 0.8 needs 388 per arm")
    # the number means what it says: simulated experiments of that size reach the power
    rng = np.random.default_rng(0)
    n = reference_sample_size(0.63, 0.78)
    a, b = rng.binomial(n, 0.63, 4000) / n, rng.binomial(n, 0.78, 4000) / n
    pooled = (a + b) / 2
    z = (b - a) / np.sqrt(pooled * (1 - pooled) * 2 / n)
    simulated = float(np.mean(np.abs(z) > 1.959964))
    expect(abs(simulated - 0.8) < 0.04, name, f"simulated power {simulated:.2f} at the reference n: the check "
           "itself is off")
    passed(name, f"0.5 vs 0.6 -> 388 per arm; 0.63 vs 0.78 -> {n}, simulated power {simulated:.2f}")


# ------------------------------------------------------------------------------- exercise 3
def reference_ztest(successes_a: int, n_a: int, successes_b: int, n_b: int) -> tuple[float, float]:
    """(z, two-sided p) of the pooled two-proportion z-test; z > 0 when B's rate is higher."""
    from scipy.stats import norm

    p_a, p_b = successes_a / n_a, successes_b / n_b
    pooled = (successes_a + successes_b) / (n_a + n_b)
    z = (p_b - p_a) / math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    return z, 2 * norm.sf(abs(z))


def two_proportion_ztest(fn: Callable) -> None:
    """Exercise 3: `fn(successes_a, n_a, successes_b, n_b)` -> (z, p_value), pooled, two-sided, z = B - A."""
    from scipy.stats import chi2_contingency, norm

    name = "two_proportion_ztest"
    out = call(name, fn, 45, 100, 60, 100)
    expect(isinstance(out, tuple) and len(out) == 2, name, "return a tuple (z, p_value)")
    cases = [(45, 100, 60, 100), (60, 100, 45, 100), (120, 160, 101, 150), (30, 200, 31, 190), (7, 20, 15, 25),
             (500, 1000, 560, 1000)]
    for sa, na, sb, nb in cases:
        z, p = (float(v) for v in call(name, fn, sa, na, sb, nb))
        want_z, want_p = reference_ztest(sa, na, sb, nb)
        chi2 = chi2_contingency([[sa, na - sa], [sb, nb - sb]], correction=False)
        assert abs(chi2.statistic - want_z ** 2) < 1e-8 and abs(chi2.pvalue - want_p) < 1e-10  # the reference
        where = f"({sa}/{na} vs {sb}/{nb})"
        if abs(z - want_z) > 1e-6:
            if abs(z + want_z) < 1e-6:
                raise CheckFailed(f"{name}{where}: z has the wrong sign: z = (p_b - p_a) / se, positive when B is "
                                  "better")
            pa, pb = sa / na, sb / nb
            unpooled = (pb - pa) / math.sqrt(pa * (1 - pa) / na + pb * (1 - pb) / nb)
            if abs(abs(z) - abs(unpooled)) < 1e-6:
                raise CheckFailed(f"{name}{where}: that is the unpooled standard error; under H0 (no difference) "
                                  "use the pooled rate p = (s_a + s_b) / (n_a + n_b) in both arms")
            raise CheckFailed(f"{name}{where}: z = {z:.4f}, expected {want_z:.4f} (scipy's chi-square on the 2x2 "
                              "table gives z^2)")
        if abs(p - want_p) > 1e-6:
            if abs(p - want_p / 2) < 1e-6:
                raise CheckFailed(f"{name}{where}: that p-value is one-sided; two-sided is 2 * norm.sf(|z|)")
            if abs(p - norm.sf(z)) < 1e-6 or abs(p - 2 * norm.sf(z)) < 1e-6 or abs(p - 2 * norm.cdf(z)) < 1e-6:
                raise CheckFailed(f"{name}{where}: take |z| in the p-value (2 * norm.sf(abs(z))), or a B that is "
                                  "worse than A looks insignificant")
            raise CheckFailed(f"{name}{where}: p = {p:.4g}, expected {want_p:.4g} (two-sided, scipy's chi-square "
                              "p-value on the 2x2 table)")
    passed(name, "pooled z and two-sided p match scipy's chi-square test (z^2 = chi2) on 6 tables, "
                 f"45/100 vs 60/100 -> z = {reference_ztest(45, 100, 60, 100)[0]:.3f}")


# ------------------------------------------------------------------------------- exercise 4
def reference_mmd2(K, m: int) -> float:
    """Unbiased MMD^2 from the kernel matrix of [X; Y] (X = the first m rows)."""
    import numpy as np

    K = np.asarray(K, dtype=np.float64)
    n = len(K) - m
    Kxx, Kyy, Kxy = K[:m, :m], K[m:, m:], K[:m, m:]
    return float((Kxx.sum() - np.trace(Kxx)) / (m * (m - 1)) + (Kyy.sum() - np.trace(Kyy)) / (n * (n - 1))
                 - 2 * Kxy.mean())


def _mmd2_variants(K, m):
    import numpy as np

    K = np.asarray(K, dtype=np.float64)
    n = len(K) - m
    Kxx, Kyy, Kxy = K[:m, :m], K[m:, m:], K[:m, m:]
    off_x = (Kxx.sum() - np.trace(Kxx)) / (m * (m - 1))
    off_y = (Kyy.sum() - np.trace(Kyy)) / (n * (n - 1))
    return {
        "that is the biased estimate (the diagonal k(x, x) is included): leave out i = j in the X-X and "
        "Y-Y means, dividing by m (m - 1)": Kxx.mean() + Kyy.mean() - 2 * Kxy.mean(),
        "the diagonal is removed as m (or n), which is right only when every k(x, x) = 1: subtract "
        "np.trace(Kxx) (a linear or unnormalised kernel has other values on its diagonal)":
            (Kxx.sum() - m) / (m * (m - 1)) + (Kyy.sum() - n) / (n * (n - 1)) - 2 * Kxy.mean(),
        "the cross term should be counted twice: - 2 * mean(K_xy)": off_x + off_y - Kxy.mean(),
        "the diagonal is removed but the sum still divided by m^2: divide by m (m - 1)":
            (Kxx.sum() - np.trace(Kxx)) / m ** 2 + (Kyy.sum() - np.trace(Kyy)) / n ** 2 - 2 * Kxy.mean(),
        "the X block is K[:m, :m] and the Y block K[m:, m:]: the sample sizes m and n are swapped":
            reference_mmd2(K, n) if m != n else None,
    }


def mmd2_unbiased(fn: Callable) -> None:
    """Exercise 4: `fn(K, m)` -> unbiased MMD^2 (a float) from the kernel matrix of the stacked samples."""
    import numpy as np

    name = "mmd2_unbiased"
    # hand-worked: X = {a, b}, Y = {c, d}; k(a, b) = 0.8, k(c, d) = 0.6, every cross pair 0.5
    hand = np.array([[1, .8, .5, .5], [.8, 1, .5, .5], [.5, .5, 1, .6], [.5, .5, .6, 1]])
    got = call(name, fn, hand, 2)
    try:
        got = float(got)
    except (TypeError, ValueError):
        raise CheckFailed(f"{name}: return a float (the MMD^2 estimate), got {type(got).__name__}") from None
    want = reference_mmd2(hand, 2)  # 0.8 + 0.6 - 2 * 0.5 = 0.4
    rng = np.random.default_rng(0)
    cases = [(hand, 2)]
    for m, n, shift in ((30, 30, 0.0), (25, 40, 0.5), (50, 20, 1.0)):
        Z = np.vstack([rng.normal(size=(m, 5)), rng.normal(size=(n, 5)) + shift])
        D = ((Z[:, None] - Z[None]) ** 2).sum(-1)
        cases.append((np.exp(-D / np.median(D[D > 0])), m))
    Z = np.vstack([rng.normal(size=(20, 4)), rng.normal(size=(15, 4)) + 0.5])
    cases.append((Z @ Z.T, 20))                # a linear kernel: k(x, x) = |x|^2, not 1 on the diagonal
    for K, m in cases:
        got = float(call(name, fn, K.copy(), m))
        want = reference_mmd2(K, m)
        if abs(got - want) < 1e-8:
            continue
        for bug, wrong in _mmd2_variants(K, m).items():
            if wrong is not None and abs(got - wrong) < 1e-8:
                raise CheckFailed(f"{name}: {bug}")
        raise CheckFailed(f"{name}: expected {want:.6f}, got {got:.6f}" + (
            " (hand-worked: k(a,b) + k(c,d) - 2 * 0.5 = 0.8 + 0.6 - 1.0 = 0.4)" if K is hand else ""))
    # unbiased: on two samples of one distribution the estimates average to ~0 (the biased one stays > 0)
    null = []
    for _ in range(60):
        Z = rng.normal(size=(24, 3))
        D = ((Z[:, None] - Z[None]) ** 2).sum(-1)
        null.append(float(call(name, fn, np.exp(-D / 6.0), 12)))
    expect(abs(np.mean(null)) < 3 * np.std(null) / math.sqrt(len(null)) + 1e-3, name,
           f"the mean estimate under no shift is {np.mean(null):.4f}, not ~0: the estimator is biased")
    passed(name, f"matches the unbiased estimator on 5 kernel matrices, RBF and linear (hand-worked "
                 f"0.8 + 0.6 - 2·0.5 = {reference_mmd2(hand, 2):.1f}), ~0 on average without a shift")
