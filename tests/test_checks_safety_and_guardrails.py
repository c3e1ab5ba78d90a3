"""The checks of 17_safety_and_guardrails pass correct answers and catch the stub and plausible bugs."""
import re

import numpy as np
import pytest

from genai_roadmap.checks import CheckFailed
from genai_roadmap.checks import safety_and_guardrails as check
from genai_roadmap.safety_data import (
    GOALS,
    PII_TYPES,
    STYLES,
    attack_prompts,
    benign_prompts,
    luhn_checksum_ok,
    pii_messages,
)


def stub(*args, **kwargs):
    raise NotImplementedError


# ------------------------------------------------------------------ luhn_valid
def luhn(number, from_left=False, minus_nine=True, length_rule=True, strict_chars=True):
    if strict_chars and re.search(r"[^\d \-]", number):
        return False
    digits = re.sub(r"\D", "", number)
    if length_rule and not 13 <= len(digits) <= 19:
        return False
    seq = digits if from_left else digits[::-1]
    total = 0
    for i, ch in enumerate(seq):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if minus_nine and d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def test_luhn_correct(capsys):
    check.luhn_valid(luhn)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("bad, message", [
    (stub, "not implemented"),
    (lambda n: luhn(n, from_left=True), "LEFT|should be"),
    (lambda n: luhn(n, minus_nine=False), "subtract 9|should be"),
    (lambda n: luhn(n, length_rule=False), "13-19 digits"),
    (lambda n: luhn(n, strict_chars=False), "letter"),
    (lambda n: int(luhn(n)), "bool"),
    (lambda n: luhn(n, length_rule=False) if len(re.sub(r"\D", "", n)) > 12 else False, "20 digits"),
])
def test_luhn_bugs(bad, message):
    with pytest.raises(CheckFailed, match=message):
        check.luhn_valid(bad)


# ------------------------------------------------------------------ redact
def redact(text, spans):
    merged = []
    for s, e, k in sorted(spans, key=lambda x: (x[0], -x[1])):
        if merged and s < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e, k])
    out, last = [], 0
    for s, e, k in merged:
        out += [text[last:s], f"[{k}]"]
        last = e
    return "".join(out) + text[last:]


def redact_sorting_in_place(text, spans):
    spans.sort(reverse=True)
    spans[:] = spans[:1]  # also damages the caller's list
    return redact(text, spans)


def test_redact_correct(capsys):
    check.redact(redact)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("bad, message", [
    (stub, "not implemented"),
    (check._redact_forward_shifting, "shifts every later span"),
    (check._redact_unmerged, "merge spans"),
    (lambda t, s: redact(t, s).replace("[", "<").replace("]", ">"), "expected"),
    (redact_sorting_in_place, "expected|changed its input"),
])
def test_redact_bugs(bad, message):
    with pytest.raises(CheckFailed, match=message):
        check.redact(bad)


# ------------------------------------------------------------------ threshold_at_fpr
def threshold(scores, max_fpr):
    s = np.sort(np.asarray(scores, dtype=float))[::-1]
    k = int(max_fpr * len(s) + 1e-9)
    return float(s[k]) if k < len(s) else float(s[-1]) - 1


def test_threshold_correct(capsys):
    check.threshold_at_fpr(threshold)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("bad, message", [
    (stub, "not implemented"),
    (lambda s, f: float(np.quantile(s, 1 - f)), "interpolates"),
    (lambda s, f: float(np.sort(s)[::-1][max(0, int(f * len(s)) - 1)]), "only 0.9|0.7"),
    (lambda s, f: float(np.sort(s)[::-1][int(f * len(s)) + 1]), "Off by one"),
    (lambda s, f: float(np.max(s)), "threshold is 0.7|only"),
    (lambda s, f: "0.7", "one number|threshold"),
])
def test_threshold_bugs(bad, message):
    with pytest.raises(CheckFailed, match=message):
        check.threshold_at_fpr(bad)


# ------------------------------------------------------------------ leaks_secret
def leaks(text, secret):
    norm = lambda s: re.sub(r"[^0-9a-z]", "", s.lower())
    return bool(norm(secret)) and norm(secret) in norm(text)


def test_leaks_correct(capsys):
    check.leaks_secret(leaks)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("bad, message", [
    (stub, "not implemented"),
    (lambda t, s: s in t, "case"),
    (lambda t, s: s.lower() in t.lower(), "spaces|punctuation|dash"),
    (lambda t, s: re.sub(r"\s", "", s.lower()) in re.sub(r"\s", "", t.lower()), "punctuation|dash"),
    (lambda t, s: re.sub(r"[^0-9a-z]", "", s.lower())[:5] in re.sub(r"[^0-9a-z]", "", t.lower()), "part of the secret"),
    (lambda t, s: leaks(t, "Drounaix-286"), "argument"),
    (lambda t, s: re.sub(r"[^0-9a-z]", "", s.lower()) in re.sub(r"[^0-9a-z]", "", t.lower()), "empty"),
])
def test_leaks_bugs(bad, message):
    with pytest.raises(CheckFailed, match=message):
        check.leaks_secret(bad)


# ------------------------------------------------------------------ the generated data
def test_pii_messages_spans_are_labelled_and_deterministic():
    a, b = pii_messages(60, seed=1), pii_messages(60, seed=1)
    assert a == b and a != pii_messages(60, seed=2)
    kinds = {k for m in a for *_, k in m.spans}
    assert kinds == set(PII_TYPES)
    for m in a:
        for s, e, k in m.spans:
            piece = m.text[s:e]
            if k == "CARD":
                assert luhn_checksum_ok(re.sub(r"\D", "", piece)) and piece[0] in "345"
            if k == "EMAIL":
                assert "@" in piece
    assert {m.name_source for m in a} == {"world", "fresh"}
    with pytest.raises(ValueError, match="positive int"):
        pii_messages(0)
    test = pii_messages(60, seed=1, templates="test")
    assert {m.text for m in test}.isdisjoint(m.text for m in a)
    with pytest.raises(ValueError, match="templates must be"):
        pii_messages(5, templates="train")


def test_attacks_and_benign_prompts():
    attacks = attack_prompts(200, ("story", "encoded"), GOALS[:2], seed=0)
    assert {s for _, s, _ in attacks} == {"story", "encoded"} and {g for _, _, g in attacks} <= set(GOALS[:2])
    assert attacks == attack_prompts(200, ("story", "encoded"), GOALS[:2], seed=0)
    assert len(set(STYLES)) == 8 and len(GOALS) == 16
    with pytest.raises(ValueError, match="unknown attack styles"):
        attack_prompts(3, ("nope",))
    benign = benign_prompts(50, seed=0)
    assert len(benign) == 50 and benign == benign_prompts(50, seed=0)
