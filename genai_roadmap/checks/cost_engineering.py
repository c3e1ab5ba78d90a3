"""Checks for phase4_production/18_cost_engineering.ipynb.

Each check runs the learner's function on small seeded inputs, compares it with the reference below (and a
hand-worked case), and when the answer is wrong compares it with the usual wrong answers to name the likely
bug. Nothing here reads a wall clock: the circuit breaker is driven with made-up times.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from typing import Callable

from genai_roadmap.checks._common import CheckFailed, call, expect, passed


# ------------------------------------------------------------------------------- exercise 1
def _cached(usage: dict) -> int:
    details = usage.get("prompt_tokens_details") or {}
    return int(details.get("cached_tokens") or 0)


def reference_cost_of(usages: list[dict], prices: dict) -> float:
    """Dollars for a list of OpenAI-style usage dicts at per-million-token prices.

    Cached prompt tokens (``prompt_tokens_details.cached_tokens``, part of ``prompt_tokens``) are billed at
    ``prices["cached_input"]``, the other prompt tokens at ``prices["input"]``, completions at ``prices["output"]``.
    """
    total = 0.0
    for u in usages:
        cached = _cached(u)
        total += ((u["prompt_tokens"] - cached) * prices["input"] + cached * prices["cached_input"]
                  + u["completion_tokens"] * prices["output"])
    return total / 1e6


def _cost_variants(usages, prices):
    p = dict(prices)
    swapped = {**p, "input": p["output"], "output": p["input"]}
    per_usage = [reference_cost_of([u], prices) for u in usages]
    return {
        "prices are per million tokens: divide the token counts by 1e6 (that is per thousand)":
            reference_cost_of(usages, prices) * 1000,
        "prices are per million tokens, not per token: divide by 1e6": reference_cost_of(usages, prices) * 1e6,
        "input and output prices are swapped: prompt tokens at prices['input'], completion tokens at "
        "prices['output']": reference_cost_of(usages, swapped),
        "the completion (output) tokens are not billed": reference_cost_of(
            [{**u, "completion_tokens": 0} for u in usages], prices),
        "cached tokens are billed at the full input price: price them at prices['cached_input']":
            reference_cost_of(usages, {**p, "cached_input": p["input"]}),
        "cached tokens are billed twice: they are part of prompt_tokens, so the uncached ones are "
        "prompt_tokens - cached_tokens": reference_cost_of(usages, prices)
        + sum(_cached(u) * p["input"] for u in usages) / 1e6,
        "only the last request is counted: sum over every usage": per_usage[-1],
        "only the first request is counted: sum over every usage": per_usage[0],
    }


def cost_of(fn: Callable) -> None:
    """Exercise 1: `fn(usages, prices)` -> dollars (a float) for OpenAI-style usage dicts."""
    name = "cost_of"
    prices = {"input": 2.50, "cached_input": 1.25, "output": 10.00}
    # hand-worked: 1,000 prompt tokens of which 400 cached, 200 completion tokens:
    # 600 x 2.50 + 400 x 1.25 + 200 x 10.00 = 1,500 + 500 + 2,000 = 4,000 $/M -> $0.004
    hand = [{"prompt_tokens": 1000, "completion_tokens": 200, "total_tokens": 1200,
             "prompt_tokens_details": {"cached_tokens": 400}}]
    rng = random.Random(0)
    workload = []
    for i in range(12):
        prompt = rng.randint(20, 3000)
        usage = {"prompt_tokens": prompt, "completion_tokens": rng.randint(1, 400)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        if i % 3 == 0:
            usage["prompt_tokens_details"] = {"cached_tokens": rng.randint(0, prompt), "audio_tokens": 0}
        elif i % 3 == 1:
            usage["prompt_tokens_details"] = None  # what usage.model_dump() gives when the server sends none
        workload.append(usage)
    cheap = {"input": 0.15, "cached_input": 0.075, "output": 0.60}
    for usages, p, label in ((hand, prices, "the hand-worked request"), (workload, prices, "12 requests"),
                             (workload, cheap, "12 requests at other prices"),
                             ([{"prompt_tokens": 0, "completion_tokens": 0}], prices, "an empty request")):
        got = call(name, fn, [dict(u) for u in usages], dict(p))
        try:
            got = float(got)
        except (TypeError, ValueError):
            raise CheckFailed(f"{name}: return the cost in dollars as a float, got {type(got).__name__}") from None
        want = reference_cost_of(usages, p)
        if math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12):
            continue
        for bug, wrong in _cost_variants(usages, p).items():
            if math.isclose(got, wrong, rel_tol=1e-9, abs_tol=1e-12) and not math.isclose(wrong, want, rel_tol=1e-9):
                raise CheckFailed(f"{name} ({label}): {bug}")
        raise CheckFailed(f"{name} ({label}): got ${got:.6f}, expected ${want:.6f}" + (
            "; hand-worked: (600 x 2.50 + 400 x 1.25 + 200 x 10.00) / 1e6 = $0.004" if usages is hand else ""))
    passed(name, f"hand-worked request $0.004000; 12 requests ${reference_cost_of(workload, prices):.4f}, cached "
                 "tokens at their discount, missing details treated as 0 cached")


# ------------------------------------------------------------------------------- exercise 2
def reference_fit_to_budget(chunks: list[str], scores: list[float], budget: int, count_tokens) -> list[str]:
    """The highest-scored chunks whose token counts sum to at most `budget`, in their original order.

    Greedy by score (ties: the earlier chunk first); a chunk that does not fit is skipped and the next tried.
    """
    order = sorted(range(len(chunks)), key=lambda i: (-scores[i], i))
    kept, used = set(), 0
    for i in order:
        n = count_tokens(chunks[i])
        if used + n <= budget:
            kept.add(i)
            used += n
    return [chunks[i] for i in sorted(kept)]


def _fit_variants(chunks, scores, budget, count_tokens):
    order = sorted(range(len(chunks)), key=lambda i: (-scores[i], i))

    def greedy(order, stop_at_first=False, strict=False):
        kept, used = [], 0
        for i in order:
            n = count_tokens(chunks[i])
            if (used + n < budget) if strict else (used + n <= budget):
                kept.append(i)
                used += n
            elif stop_at_first:
                break
        return kept

    def prefix():
        kept, used = [], 0
        for i in range(len(chunks)):
            used += count_tokens(chunks[i])
            if used > budget:
                break
            kept.append(i)
        return kept

    by_order = lambda idx: [chunks[i] for i in sorted(idx)]  # noqa: E731
    return {
        "return the kept chunks in their original order (the order of `chunks`), not by score":
            [chunks[i] for i in greedy(order)],
        "it stops at the first chunk that does not fit: skip it and try the next (smaller) ones":
            by_order(greedy(order, stop_at_first=True)),
        "that keeps the first chunks in document order, whatever their score: rank them by `scores`":
            by_order(prefix()),
        "the lowest-scored chunks were kept: sort by score, highest first": by_order(
            greedy(sorted(range(len(chunks)), key=lambda i: (scores[i], i)))),
        "the budget is inclusive: a total of exactly `budget` tokens fits (<=, not <)":
            by_order(greedy(order, strict=True)),
        "ties in score go to the earlier chunk (sort by (-score, index))": by_order(
            greedy(sorted(range(len(chunks)), key=lambda i: (-scores[i], -i)))),
    }


def fit_to_budget(fn: Callable) -> None:
    """Exercise 2: `fn(chunks, scores, budget, count_tokens)` -> the kept chunks, in their original order."""
    name = "fit_to_budget"
    words = lambda text: len(text.split())  # noqa: E731  (a stand-in tokenizer: one token per word)
    # hand-worked: budget 7 words; by score d (3 words), b (2), a (2), c (3): d, b, a fit (3 + 2 + 2 = 7), c does not
    hand = ["a1 a2", "b1 b2", "c1 c2 c3", "d1 d2 d3"]
    cases = [(["a1", "b1", "c1"], [0.9, 0.5, 0.1], 2), (hand, [0.5, 0.9, 0.1, 0.95], 7),
             (hand, [0.5, 0.9, 0.1, 0.95], 0), (hand, [1, 1, 1, 1], 10)]
    rng = random.Random(0)
    for _ in range(25):
        n = rng.randint(1, 9)
        chunks = [" ".join(f"w{k}_{j}" for j in range(rng.randint(1, 8))) for k in range(n)]
        scores = [rng.choice([0.1, 0.2, 0.5, 0.7, 0.9]) for _ in range(n)]
        cases.append((chunks, scores, rng.randint(0, 25)))
    cases.append((["x " * 5, "y " * 3, "z " * 2], [0.9, 0.8, 0.7], 5))  # exactly the budget: y + z = 5
    cases.append((["x " * 6, "y " * 2, "z " * 2], [0.9, 0.8, 0.7], 5))  # x does not fit, y and z do
    for chunks, scores, budget in cases:
        got = call(name, fn, list(chunks), list(scores), budget, words)
        expect(isinstance(got, list), name, f"return a list of chunks (str), got {type(got).__name__}")
        want = reference_fit_to_budget(chunks, scores, budget, words)
        if got == want:
            continue
        for bug, wrong in _fit_variants(chunks, scores, budget, words).items():
            if got == wrong and wrong != want:
                raise CheckFailed(f"{name}: {bug}")
        used = sum(words(c) for c in got) if all(isinstance(c, str) for c in got) else None
        if used is not None and used > budget:
            raise CheckFailed(f"{name}: the kept chunks hold {used} tokens, over the budget of {budget}")
        raise CheckFailed(f"{name}(budget={budget}, scores={scores}): got {got}, expected {want}")
    passed(name, "greedy by score, skips what does not fit, original order kept; hand-worked budget 7 keeps "
                 f"{reference_fit_to_budget(hand, [0.5, 0.9, 0.1, 0.95], 7, words)}")


# ------------------------------------------------------------------------------- exercise 3
def reference_backoff_delays(attempts: int, base: float, cap: float, rng: random.Random) -> list[float]:
    """AWS's "full jitter": wait k (k = 0, 1, ...) is uniform on [0, min(cap, base * 2**k)]."""
    return [rng.uniform(0, min(cap, base * 2 ** k)) for k in range(attempts)]


def _backoff_variants(attempts, base, cap, seed):
    def draws(f):
        rng = random.Random(seed)
        return [f(k, rng) for k in range(attempts)]

    return {
        "there is no jitter: the wait is uniform on [0, min(cap, base * 2**k)] (rng.uniform), not the ceiling "
        "itself; without jitter every client that failed together retries together":
            [min(cap, base * 2 ** k) for k in range(attempts)],
        "the cap is not applied: the ceiling is min(cap, base * 2**k)": draws(lambda k, r: r.uniform(0, base * 2 ** k)),
        "that is 'equal jitter' (half the ceiling plus a uniform half): full jitter draws the whole wait "
        "uniformly from [0, ceiling]": draws(lambda k, r: min(cap, base * 2 ** k) / 2
                                             + r.uniform(0, min(cap, base * 2 ** k) / 2)),
        "the exponent starts at 1: the first wait's ceiling is base * 2**0 = base": draws(
            lambda k, r: r.uniform(0, min(cap, base * 2 ** (k + 1)))),
        "the jitter is added on top of the exponential wait: full jitter replaces it, "
        "uniform(0, min(cap, base * 2**k))": draws(lambda k, r: min(cap, base * 2 ** k)
                                                   + r.uniform(0, min(cap, base * 2 ** k))),
        "the cap clips the jittered wait instead of the ceiling: draw uniform(0, min(cap, base * 2**k))":
            draws(lambda k, r: min(cap, r.uniform(0, base * 2 ** k))),
        "the ceiling grows linearly (base * (k + 1)): it doubles, base * 2**k": draws(
            lambda k, r: r.uniform(0, min(cap, base * (k + 1)))),
    }


def backoff_delays(fn: Callable) -> None:
    """Exercise 3: `fn(attempts, base, cap, rng)` -> list of `attempts` waits with full jitter."""
    name = "backoff_delays"
    cases = [(6, 0.1, 1.0, 0), (10, 0.05, 2.0, 1), (4, 1.0, 3.0, 2), (1, 0.5, 10.0, 3), (0, 0.5, 1.0, 4)]
    for attempts, base, cap, seed in cases:
        got = call(name, fn, attempts, base, cap, random.Random(seed))
        expect(isinstance(got, (list, tuple)) and len(got) == attempts, name,
               f"return a list of `attempts` = {attempts} waits, got {got!r:.80}")
        want = reference_backoff_delays(attempts, base, cap, random.Random(seed))
        if all(math.isclose(g, w, rel_tol=1e-12, abs_tol=1e-15) for g, w in zip(got, want)):
            continue
        for bug, wrong in _backoff_variants(attempts, base, cap, seed).items():
            if all(math.isclose(g, w, rel_tol=1e-9, abs_tol=1e-12) for g, w in zip(got, wrong)) and wrong != want:
                raise CheckFailed(f"{name}: {bug}")
        ceilings = [min(cap, base * 2 ** k) for k in range(attempts)]
        outside = [(k, g) for k, (g, c) in enumerate(zip(got, ceilings)) if not 0 <= g <= c]
        if outside:
            k, g = outside[0]
            raise CheckFailed(f"{name}: wait {k} is {g:.4f}, outside [0, min(cap, base * 2**{k})] = "
                              f"[0, {ceilings[k]:.4f}]")
        raise CheckFailed(f"{name}: the waits are in range but not the reference's draws: draw wait k with one "
                          "rng.uniform(0, ceiling) call on the rng you are given, k = 0, 1, ... in order (a seeded "
                          "rng makes retries reproducible)")
    passed(name, "full jitter, uniform on [0, min(cap, base * 2**k)], from the given rng; e.g. base 0.1, cap 1: "
                 + ", ".join(f"{d:.3f}" for d in reference_backoff_delays(6, 0.1, 1.0, random.Random(0))))


# ------------------------------------------------------------------------------- exercise 4
@dataclass(frozen=True)
class BreakerState:
    """What the check hands to the learner's breaker_step: the notebook's dataclass has the same fields."""
    state: str = "closed"          # "closed", "open" or "half_open"
    failures: int = 0              # consecutive failures while closed
    opened_at: float | None = None  # when it last opened
    threshold: int = 3             # consecutive failures that open it
    cooldown: float = 5.0          # seconds open before a trial call


def reference_breaker_step(b, event: str, now: float):
    """One event for a circuit breaker; returns the new state (a copy), never changing `b`."""
    if event == "call":
        if b.state == "open" and now - b.opened_at >= b.cooldown:
            return replace(b, state="half_open")
        return b
    if event == "success":
        if b.state in ("closed", "half_open"):
            return replace(b, state="closed", failures=0)
        return b
    if event == "failure":
        if b.state == "half_open":
            return replace(b, state="open", opened_at=now)
        if b.state == "closed":
            failures = b.failures + 1
            if failures >= b.threshold:
                return replace(b, state="open", failures=failures, opened_at=now)
            return replace(b, failures=failures)
        return b
    raise ValueError(f"unknown event {event!r}")


def _view(b) -> tuple:
    """What must match: the state and when it opened, and the failure count while closed."""
    try:
        state, failures, opened_at = b.state, b.failures, b.opened_at
    except AttributeError:
        raise CheckFailed("breaker_step: return a BreakerState (dataclasses.replace(b, ...)), got "
                          f"{type(b).__name__}") from None
    return (state, failures if state == "closed" else None, opened_at if state != "closed" else None)


def _run(fn, events, start=None):
    b = start or BreakerState()
    out = []
    for event, now in events:
        b = call("breaker_step", fn, b, event, now)
        out.append(_view(b))
    return out


def breaker_step(fn: Callable) -> None:
    """Exercise 4: `fn(b, event, now)` -> the new BreakerState after `event` ("call", "success", "failure")."""
    name = "breaker_step"
    S = BreakerState

    def scenario(events, start=None):
        return _run(fn, events, start)[-1], _run(reference_breaker_step, events, start)[-1]

    got, want = scenario([("failure", 1.0), ("failure", 2.0)])
    expect(got == want, name, f"two failures with threshold 3 gave {got}: it should still be closed, counting 2 "
           "(does it open one failure early, with > instead of >=?)")
    got, want = scenario([("failure", 1.0), ("failure", 2.0), ("failure", 3.0)])
    expect(got[0] == "open", name, f"3 consecutive failures with threshold 3 should open the breaker, got {got[0]!r}"
           " (failures >= threshold)")
    expect(got == want, name, f"after opening at t=3.0 expected opened_at 3.0, got {got}: record when it opened")
    got, want = scenario([("failure", 1.0), ("failure", 2.0), ("success", 2.5), ("failure", 3.0), ("failure", 4.0)])
    expect(got == want, name, "failure, failure, success, failure, failure opened it (or miscounted): a success "
           f"resets the count; the breaker counts *consecutive* failures (got {got}, expected {want})")
    opened = S(state="open", opened_at=10.0, failures=3)
    got = _view(call(name, fn, opened, "call", 12.0))
    expect(got[0] == "open", name, f"open at t=10 with cooldown 5: a call at t=12 must be refused (stay open), "
           f"got {got[0]!r}")
    got = _view(call(name, fn, opened, "call", 15.0))
    expect(got[0] == "half_open", name, f"open at t=10 with cooldown 5: a call at t=15 (cooldown over, >=) lets a "
           f"trial call through: half_open, got {got[0]!r}" + (" (it never half-opens?)" if got[0] == "open" else ""))
    got, want = scenario([("failure", 1.0), ("failure", 2.0), ("failure", 10.0), ("call", 13.0)])
    expect(got == want, name, f"failures at t=1, 2 and 10 (cooldown 5): a call at t=13 must still be refused; the "
           f"cooldown runs from when it opened (t=10), not from the first failure (got {got})")
    half = S(state="half_open", opened_at=10.0, failures=3)
    got = _view(call(name, fn, half, "failure", 16.0))
    expect(got == ("open", None, 16.0), name, f"a failed trial call (half_open, failure at t=16) must re-open the "
           f"breaker with opened_at 16.0, got {got}")
    got = _view(call(name, fn, half, "success", 16.0))
    expect(got == ("closed", 0, None), name, f"a successful trial call must close the breaker and reset the "
           f"failures to 0, got {got}")
    got, want = scenario([("success", 16.0), ("failure", 17.0)], start=half)
    expect(got == want, name, f"after closing from half_open, one failure reopened it (got {got}): reset failures "
           "to 0 when closing")
    got = _view(call(name, fn, S(), "call", 0.0))
    expect(got == ("closed", 0, None), name, f"a call on a closed breaker changes nothing, got {got}")
    for event in ("success", "failure"):
        got = _view(call(name, fn, opened, event, 11.0))
        expect(got == ("open", None, 10.0), name, f"an open breaker refuses calls, so a {event} while open (a late "
               f"answer) should leave it open at opened_at 10.0, got {got}")
    # a long seeded random run against the reference
    rng = random.Random(0)
    now, events = 0.0, []
    for _ in range(400):
        now += rng.choice([0.1, 0.5, 1.0, 2.0])
        events.append(("call", now))
        events.append((rng.choice(["success", "failure", "failure"]), now))
    for start in (S(), S(threshold=1, cooldown=2.0), S(threshold=5, cooldown=0.5)):
        got_run, want_run = _run(fn, events, start), _run(reference_breaker_step, events, start)
        for k, (g, w) in enumerate(zip(got_run, want_run)):
            expect(g == w, name, f"on a seeded run of 800 events (threshold {start.threshold}, cooldown "
                   f"{start.cooldown}), event {k} {events[k]} gave {g}, the reference {w}")
    opens = sum(1 for a, b in zip(want_run, want_run[1:]) if a[0] != "open" and b[0] == "open")
    passed(name, f"closed -> open at the threshold, half-open after the cooldown, closed or re-opened by the "
                 f"trial call; a seeded run of 800 events matches the reference ({opens} openings)")
