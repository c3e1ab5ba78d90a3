"""Checks for phase4_production/17_safety_and_guardrails.ipynb.

Each check runs the learner's function on seeded inputs and hand-worked cases, compares with a short reference
below, and when the answer is wrong compares it with the usual wrong answers to name the likely bug.
"""
from __future__ import annotations

import random
import re
from typing import Callable

from genai_roadmap.checks._common import CheckFailed, call, expect, passed
from genai_roadmap.safety_data import luhn_checksum_ok

# ------------------------------------------------------------------------------- exercise 1: Luhn


def _luhn_reference(number: str) -> bool:
    if re.search(r"[^\d \-]", number):
        return False
    digits = re.sub(r"[ \-]", "", number)
    return 13 <= len(digits) <= 19 and luhn_checksum_ok(digits)


def _luhn_from_left(number: str) -> bool:  # doubles every second digit counted from the left
    digits = re.sub(r"\D", "", number)
    total = 0
    for i, ch in enumerate(digits):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _luhn_no_minus_nine(number: str) -> bool:  # doubles but keeps 2d for d >= 5 (no digit sum)
    digits = re.sub(r"\D", "", number)
    total = sum(int(c) * (2 if i % 2 == 1 else 1) for i, c in enumerate(reversed(digits)))
    return total % 10 == 0


def _with_check_digit(rng: random.Random, length: int) -> str:
    body = [rng.randint(0, 9) for _ in range(length - 1)]
    for c in range(10):
        s = "".join(map(str, body + [c]))
        if _luhn_reference(s):
            return s
    raise AssertionError("unreachable")


def luhn_valid(fn: Callable) -> None:
    """Exercise 1: `fn(number)` is True for a 13-19 digit card number (spaces and dashes allowed) that passes
    the Luhn check, False otherwise."""
    name = "luhn_valid"
    hand = [("4539 1488 0343 6467", True), ("4539 1488 0343 6468", False), ("79927398713", False),
            ("4111-1111-1111-1111", True), ("0000 0000 0000 0000", True), ("0", False), ("", False),
            ("4539 1488 0343 6467 x", False), ("45391488034364670000", False)]
    for number, want in hand:
        got = call(name, fn, number)
        expect(isinstance(got, bool), name, f"return a bool, got {type(got).__name__} for {number!r}")
        if got == want:
            continue
        if number == "0":
            raise CheckFailed(f"{name}: '0' passed: a single 0 satisfies the checksum, so also require 13-19 digits")
        if number == "":
            raise CheckFailed(f"{name}: the empty string passed: require 13-19 digits")
        if number == "79927398713":
            raise CheckFailed(f"{name}: {number!r} passes the Luhn check but has 11 digits, too few for a card "
                              "number: require 13-19 digits")
        if len(number) == 20:
            raise CheckFailed(f"{name}: {number!r} has 20 digits: card numbers have at most 19")
        if number.endswith("x"):
            raise CheckFailed(f"{name}: {number!r} contains a letter and must be False (only digits, spaces, dashes)")
        raise CheckFailed(f"{name}: {number!r} should be {want}, got {got}. Strip spaces and dashes, then from the "
                          "rightmost digit double every second digit (subtract 9 when the double exceeds 9) and "
                          "check that the sum is a multiple of 10")
    rng = random.Random(0)
    cases = []
    for _ in range(300):
        length = rng.choice((13, 15, 16, 16, 19))
        s = _with_check_digit(rng, length)
        if rng.random() < 0.5:  # break it: change one digit
            i = rng.randrange(length)
            s = s[:i] + str((int(s[i]) + rng.randint(1, 9)) % 10) + s[i + 1:]
        if length == 16 and rng.random() < 0.5:
            s = rng.choice((" ", "-")).join(s[i:i + 4] for i in range(0, 16, 4))
        cases.append(s)
    got = [call(name, fn, s) for s in cases]
    want = [_luhn_reference(s) for s in cases]
    if got != want:
        for bug, ref in (("you double every second digit from the LEFT: count from the rightmost (check) digit",
                          _luhn_from_left),
                         ("a doubled digit above 9 must become the sum of its digits (subtract 9), e.g. 7 -> 14 -> 5",
                          _luhn_no_minus_nine)):
            if got == [ref(s) for s in cases]:
                raise CheckFailed(f"{name}: {bug}")
        bad = next(s for s, g, w in zip(cases, got, want) if g != w)
        raise CheckFailed(f"{name}: {sum(g != w for g, w in zip(got, want))} of {len(cases)} numbers wrong, e.g. "
                          f"{bad!r} should be {_luhn_reference(bad)}")
    passed(name, f"{len(hand)} hand cases and {len(cases)} generated numbers (even and odd lengths) agree")


# ------------------------------------------------------------------------------- exercise 2: redact


def _redact_reference(text: str, spans, longest_first: bool = True) -> str:
    merged: list[list] = []
    order = (lambda s: (s[0], -s[1])) if longest_first else (lambda s: (s[0], s[1]))
    for start, end, kind in sorted(spans, key=order):
        if merged and start < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
            continue
        merged.append([start, end, kind])
    out, last = [], 0
    for start, end, kind in merged:
        out += [text[last:start], f"[{kind}]"]
        last = end
    return "".join(out) + text[last:]


def _redact_forward_shifting(text, spans):  # replaces left to right without adjusting later offsets
    for start, end, kind in sorted(spans):
        text = text[:start] + f"[{kind}]" + text[end:]
    return text


def _redact_unmerged(text, spans):  # right to left, but overlapping spans each replaced
    for start, end, kind in sorted(spans, reverse=True):
        text = text[:start] + f"[{kind}]" + text[end:]
    return text


def redact(fn: Callable) -> None:
    """Exercise 2: `fn(text, spans)` replaces each (start, end, kind) span by "[kind]"; spans may come in any
    order and overlap (overlapping spans become one placeholder, of the span that starts first)."""
    name = "redact"
    text = "Call Ada Brix at 555-0100 or ada@x.test."
    spans = [(29, 39, "EMAIL"), (5, 13, "NAME"), (17, 25, "PHONE")]
    want = "Call [NAME] at [PHONE] or [EMAIL]."
    got = call(name, fn, text, list(spans))
    expect(isinstance(got, str), name, f"return the redacted string, got {type(got).__name__}")
    if got != want:
        if got == _redact_forward_shifting(text, spans):
            raise CheckFailed(f"{name}: replacing from the left shifts every later span (a placeholder is not as "
                              "long as what it replaces): replace from the rightmost span, or build a new string")
        raise CheckFailed(f"{name}: expected {want!r}, got {got!r}")
    overlapping = [(5, 13, "NAME"), (5, 8, "NAME"), (17, 25, "PHONE"), (21, 25, "CARD")]
    want = "Call [NAME] at [PHONE] or ada@x.test."
    got = call(name, fn, text, overlapping)
    if got != want:
        if got == _redact_unmerged(text, overlapping):
            raise CheckFailed(f"{name}: overlapping spans were replaced one after the other, which mangles the "
                              "text: merge spans that overlap into one placeholder first")
        raise CheckFailed(f"{name}: with overlapping spans expected {want!r}, got {got!r}")
    expect(call(name, fn, text, []) == text, name, "with no spans the text must come back unchanged")
    rng = random.Random(1)
    for _ in range(50):
        t = "".join(rng.choice("abc de") for _ in range(40))
        sp = []
        for _ in range(rng.randint(1, 5)):
            s = rng.randrange(39)
            sp.append((s, rng.randint(s + 1, 40), rng.choice(("NAME", "EMAIL"))))
        got = call(name, fn, t, list(sp))
        want = _redact_reference(t, sp)  # spans starting together: either one's kind is fine
        expect(got in (want, _redact_reference(t, sp, longest_first=False)), name,
               f"on {t!r} with spans {sp} expected {want!r}, got {got!r}")
    expect(call(name, fn, text, spans) == "Call [NAME] at [PHONE] or [EMAIL].", name,
           "your function changed its input list between calls (sort a copy)")
    passed(name, "unordered and overlapping spans, 50 random cases match the reference")


# ------------------------------------------------------------------------------- exercise 3: threshold


def _threshold_reference(benign_scores, max_fpr: float) -> float:
    s = sorted((float(x) for x in benign_scores), reverse=True)
    k = int(max_fpr * len(s) + 1e-9)  # false positives allowed
    return s[k] if k < len(s) else min(s) - 1.0


def threshold_at_fpr(fn: Callable) -> None:
    """Exercise 3: `fn(benign_scores, max_fpr)` returns the lowest threshold t among the benign scores such that
    flagging score > t flags at most max_fpr of the benign scores."""
    import numpy as np

    name = "threshold_at_fpr"
    hand = np.array([0.1, 0.9, 0.3, 0.8, 0.2, 0.7, 0.4, 0.6, 0.5, 0.05])
    got = call(name, fn, hand.copy(), 0.2)
    try:
        got = float(got)
    except (TypeError, ValueError):
        raise CheckFailed(f"{name}: return one number (the threshold), got {type(got).__name__}") from None
    if abs(got - 0.7) > 1e-9:
        if abs(got - float(np.quantile(hand, 0.8))) < 1e-9:
            raise CheckFailed(f"{name}: np.quantile interpolates between scores: {got:.2f} is not one of them, and "
                              "the lower threshold 0.7 flags no more benign scores while catching more attacks "
                              "(on other data the interpolated value can also overshoot the budget). Pick the "
                              "(k+1)-th highest benign score itself")
        if abs(got - 0.8) < 1e-9:
            raise CheckFailed(f"{name}: threshold 0.8 flags only 0.9 (10%) although 20% (two scores) are allowed: "
                              "with score > t, the threshold is the (k+1)-th highest benign score, k = max_fpr * n")
        if abs(got - 0.6) < 1e-9:
            raise CheckFailed(f"{name}: threshold 0.6 flags 0.9, 0.8 and 0.7: 30% > 20%. Off by one: with score > t, "
                              "t is the (k+1)-th highest benign score")
        raise CheckFailed(f"{name}: for scores {hand.tolist()} and max_fpr 0.2 the threshold is 0.7 (flags 0.9 and "
                          f"0.8), got {got}")
    rng = np.random.default_rng(0)
    for n, max_fpr in ((200, 0.01), (1000, 0.05), (37, 0.1), (50, 0.0)):
        scores = rng.random(n)
        got, want = float(call(name, fn, scores.copy(), max_fpr)), _threshold_reference(scores, max_fpr)
        fpr = float(np.mean(scores > got))
        expect(fpr <= max_fpr + 1e-12, name, f"with n={n}, max_fpr={max_fpr} your threshold flags {fpr:.3f} of the "
               "benign scores, above max_fpr")
        expect(abs(got - want) < 1e-12 or float(np.mean(scores > want)) == fpr and got <= want, name,
               f"with n={n}, max_fpr={max_fpr}: a lower threshold ({want:.4f}) still keeps FPR <= max_fpr, "
               f"got {got:.4f}; flag as much as the budget allows")
    passed(name, "hand case (0.7 for 20% of 10 scores) and 4 random score sets, FPR within budget and no lower "
                 "threshold possible")


# ------------------------------------------------------------------------------- exercise 4: canary


def _leaks_reference(text: str, secret: str) -> bool:
    norm = lambda s: re.sub(r"[^0-9a-z]", "", s.lower())
    return bool(norm(secret)) and norm(secret) in norm(text)


def leaks_secret(fn: Callable) -> None:
    """Exercise 4: `fn(text, secret)` is True when `text` contains the secret, even with other case, spaces,
    dashes or punctuation inside it; False for partial secrets."""
    name = "leaks_secret"
    secret = "Drounaix-286"
    cases = [("Sure! Drounaix-286", True), ("the code is drounaix-286.", True), ("DROUNAIX 286", True),
             ("D r o u n a i x - 2 8 6", True), ("drounaix.286!", True), ("Drounaix286", True),
             ("Drounaix", False), ("Drounaix-287", False), ("I cannot help with that.", False), ("", False)]
    for text, want in cases:
        got = call(name, fn, text, secret)
        expect(isinstance(got, (bool,)) or got in (0, 1), name, f"return a bool, got {type(got).__name__}")
        if bool(got) == want:
            continue
        if not want:
            hint = "only part of the secret, or different digits: that is not the secret"
        elif secret.lower() in text.lower():
            hint = "case: compare lower-cased text and secret"
        else:
            hint = ("spaces, dashes or punctuation inside the secret: drop everything but letters and digits from "
                    "both the text and the secret, then compare")
        raise CheckFailed(f"{name}: {text!r} should be {want} ({hint})")
    expect(call(name, fn, "KEY k-9 here", "k-9") and not call(name, fn, "no secret", "k-9"), name,
           "use the `secret` argument, not a fixed string")
    expect(not call(name, fn, "any reply at all", "--"), name, "a secret with no letters or digits normalises to "
           "'', which is in every string: return False for an empty normalised secret")
    passed(name, f"{len(cases)} cases: case, spaces, dashes and punctuation normalised; partial secrets not flagged")
