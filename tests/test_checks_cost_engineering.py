"""The checks of 18_cost_engineering pass correct answers and catch the stub and plausible bugs."""
import random
from dataclasses import replace

import pytest

from genai_roadmap.checks import CheckFailed
from genai_roadmap.checks import cost_engineering as check


def stub(*args, **kwargs):
    raise NotImplementedError


# ------------------------------------------------------------------ cost_of
def cost_of(usages, prices, per=1e6, cached_price="cached_input", subtract_cached=True, output=True, which=None,
            swap=False):
    total = 0.0
    for u in usages if which is None else [usages[which]]:
        cached = ((u.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
        uncached = u["prompt_tokens"] - cached if subtract_cached else u["prompt_tokens"]
        i, o = ("output", "input") if swap else ("input", "output")
        total += uncached * prices[i] + cached * prices[cached_price] + output * u["completion_tokens"] * prices[o]
    return total / per


def test_cost_of_correct(capsys):
    check.cost_of(cost_of)
    assert "$0.004000" in capsys.readouterr().out


@pytest.mark.parametrize("bad, message", [
    (stub, "not implemented"),
    (lambda u, p: cost_of(u, p, per=1e3), "per thousand"),
    (lambda u, p: cost_of(u, p, per=1), "not per token"),
    (lambda u, p: cost_of(u, p, swap=True), "swapped"),
    (lambda u, p: cost_of(u, p, output=False), "not billed"),
    (lambda u, p: cost_of(u, p, cached_price="input"), "full input price"),
    (lambda u, p: cost_of(u, p, subtract_cached=False), "billed twice"),
    (lambda u, p: cost_of(u, p, which=-1), "only the last"),
    (lambda u, p: sum((x["prompt_tokens"] - x.get("prompt_tokens_details", {}).get("cached_tokens", 0)) * p["input"]
                      + x.get("prompt_tokens_details", {}).get("cached_tokens", 0) * p["cached_input"]
                      + x["completion_tokens"] * p["output"] for x in u) / 1e6, "raised"),  # details None
    (lambda u, p: None, "float"),
])
def test_cost_of_bugs(bad, message):
    with pytest.raises(CheckFailed, match=message):
        check.cost_of(bad)


# ------------------------------------------------------------------ fit_to_budget
def fit(chunks, scores, budget, count_tokens, keep_order=True, stop=False, reverse=False, strict=False, ties=1):
    order = sorted(range(len(chunks)), key=lambda i: (scores[i] if reverse else -scores[i], ties * i))
    kept, used = [], 0
    for i in order:
        n = count_tokens(chunks[i])
        if (used + n < budget) if strict else (used + n <= budget):
            kept.append(i)
            used += n
        elif stop:
            break
    return [chunks[i] for i in (sorted(kept) if keep_order else kept)]


def test_fit_to_budget_correct(capsys):
    check.fit_to_budget(fit)
    assert "['a1 a2', 'b1 b2', 'd1 d2 d3']" in capsys.readouterr().out


def prefix(chunks, scores, budget, count_tokens):
    out, used = [], 0
    for c in chunks:
        used += count_tokens(c)
        if used > budget:
            break
        out.append(c)
    return out


@pytest.mark.parametrize("bad, message", [
    (stub, "not implemented"),
    (lambda c, s, b, t: fit(c, s, b, t, keep_order=False), "original order"),
    (lambda c, s, b, t: fit(c, s, b, t, stop=True), "stops at the first"),
    (lambda c, s, b, t: fit(c, s, b, t, reverse=True), "lowest-scored"),
    (lambda c, s, b, t: fit(c, s, b, t, strict=True), "inclusive"),
    (lambda c, s, b, t: fit(c, s, b, t, ties=-1), "ties"),
    (prefix, "first chunks in document order"),
    (lambda c, s, b, t: list(c), "over the budget"),
    (lambda c, s, b, t: " ".join(fit(c, s, b, t)), "return a list"),
])
def test_fit_to_budget_bugs(bad, message):
    with pytest.raises(CheckFailed, match=message):
        check.fit_to_budget(bad)


# ------------------------------------------------------------------ backoff_delays
def backoff(attempts, base, cap, rng, variant="full"):
    out = []
    for k in range(attempts):
        ceiling = min(cap, base * 2 ** k)
        out.append({"full": lambda: rng.uniform(0, ceiling), "none": lambda: ceiling,
                    "nocap": lambda: rng.uniform(0, base * 2 ** k),
                    "equal": lambda: ceiling / 2 + rng.uniform(0, ceiling / 2),
                    "from1": lambda: rng.uniform(0, min(cap, base * 2 ** (k + 1))),
                    "added": lambda: ceiling + rng.uniform(0, ceiling),
                    "clip": lambda: min(cap, rng.uniform(0, base * 2 ** k)),
                    "linear": lambda: rng.uniform(0, min(cap, base * (k + 1))),
                    "global": lambda: random.uniform(0, ceiling)}[variant]())
    return out


def test_backoff_delays_correct(capsys):
    check.backoff_delays(backoff)
    assert "passed" in capsys.readouterr().out


def test_backoff_delays_random_form_is_the_same():
    check.backoff_delays(lambda n, b, c, rng: [rng.random() * min(c, b * 2 ** k) for k in range(n)])


@pytest.mark.parametrize("variant, message", [
    ("none", "no jitter"), ("nocap", "cap is not applied"), ("equal", "equal jitter"), ("from1", "exponent starts"),
    ("added", "added on top"), ("clip", "clips the jittered"), ("linear", "linearly"), ("global", "the rng you are given"),
])
def test_backoff_delays_bugs(variant, message):
    with pytest.raises(CheckFailed, match=message):
        check.backoff_delays(lambda n, b, c, rng: backoff(n, b, c, rng, variant))


def test_backoff_delays_stub_and_length():
    with pytest.raises(CheckFailed, match="not implemented"):
        check.backoff_delays(stub)
    with pytest.raises(CheckFailed, match="list of `attempts`"):
        check.backoff_delays(lambda n, b, c, rng: backoff(n + 1, b, c, rng))


# ------------------------------------------------------------------ breaker_step
def step(b, event, now, bug=None):
    if event == "call":
        if b.state == "open" and bug != "never_half_open":
            waited = now - (b.first_failure if bug == "from_first" else b.opened_at)
            if (waited > b.cooldown) if bug == "strict_cooldown" else (waited >= b.cooldown):
                return replace(b, state="half_open")
        return b
    if event == "success":
        if b.state == "half_open":
            return replace(b, state="closed", failures=b.failures if bug == "no_reset_on_close" else 0)
        if b.state == "closed":
            return b if bug == "total_failures" else replace(b, failures=0)
        return b
    if b.state == "half_open":
        return replace(b, state="closed" if bug == "half_open_failure_closes" else "open", opened_at=now)
    if b.state == "closed":
        n = b.failures + 1
        first = now if b.failures == 0 else getattr(b, "first_failure", now)
        opens = n > b.threshold if bug == "late" else n >= b.threshold
        if bug == "early":
            opens = n >= b.threshold - 1
        if opens:
            return replace(b, state="open", failures=n, opened_at=now)
        return replace(b, failures=n) if bug != "from_first" else replace(b, failures=n, first_failure=first)
    if bug == "open_failure_reopens":
        return replace(b, opened_at=now)
    return b


def test_breaker_step_correct(capsys):
    check.breaker_step(step)
    assert "openings" in capsys.readouterr().out


def test_breaker_step_from_first_failure_is_caught():
    # a breaker that times its cooldown from the first failure of the run
    def from_first(b, event, now, memo={}):
        if event == "failure" and b.state == "closed" and b.failures == 0:
            memo[id(b)] = now
        if event == "failure" and b.state == "closed" and b.failures + 1 >= b.threshold:
            first = min(memo.values()) if memo else now
            memo.clear()
            return replace(b, state="open", failures=b.failures + 1, opened_at=first)
        return step(b, event, now)
    with pytest.raises(CheckFailed, match="opened_at|from when it opened"):
        check.breaker_step(from_first)


@pytest.mark.parametrize("bug, message", [
    ("never_half_open", "never half-opens"),
    ("strict_cooldown", "cooldown over, >="),
    ("total_failures", "consecutive"),
    ("late", "should open the breaker"),
    ("early", "one failure early"),
    ("half_open_failure_closes", "re-open"),
    ("no_reset_on_close", "reset the failures|reset failures"),
    ("open_failure_reopens", "late answer"),
])
def test_breaker_step_bugs(bug, message):
    with pytest.raises(CheckFailed, match=message):
        check.breaker_step(lambda b, e, t: step(b, e, t, bug))


def test_breaker_step_stub_and_mutation():
    with pytest.raises(CheckFailed, match="not implemented"):
        check.breaker_step(stub)

    def mutates(b, event, now):
        b.failures += 1  # a frozen dataclass: raises
        return b
    with pytest.raises(CheckFailed, match="raised"):
        check.breaker_step(mutates)
    with pytest.raises(CheckFailed, match="return a BreakerState"):
        check.breaker_step(lambda b, e, t: b.state)
