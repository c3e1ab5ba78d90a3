"""The checks of 15_inference_optimization pass correct answers and catch the stub and plausible bugs."""
import pytest
import torch

from genai_roadmap.checks import CheckFailed
from genai_roadmap.checks import inference_optimization as check


def stub(*args, **kwargs):
    raise NotImplementedError


# ------------------------------------------------------------------ quantize_int8
def int8(w, reduce_dim=1, qmax=127, rounding=torch.round, per_tensor=False, eps=1e-8, dtype=torch.int8):
    amax = w.abs().amax() if per_tensor else w.abs().amax(dim=reduce_dim, keepdim=True)
    scale = (amax / qmax).clamp(min=eps) if eps else amax / qmax
    return rounding(w / scale).clamp(-127, 127).to(dtype), scale


def test_quantize_int8_correct(capsys):
    check.quantize_int8(check.reference_quantize_int8)
    check.quantize_int8(int8)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("bad, message", [
    (stub, "not implemented"),
    (lambda w: int8(w, per_tensor=True), "per-tensor"),
    (lambda w: int8(w, reduce_dim=0), "per input column"),
    (lambda w: int8(w, qmax=128), "127"),
    (lambda w: int8(w, rounding=lambda x: x), "truncates"),
    (lambda w: int8(w, eps=0), "inf/nan"),
    (lambda w: int8(w, dtype=torch.int16), "int8"),
    (lambda w: int8(w)[0], "pair"),
])
def test_quantize_int8_bugs(bad, message):
    with pytest.raises(CheckFailed, match=message):
        check.quantize_int8(bad)


# ------------------------------------------------------------------ quantize_int4
def int4(w, group_size=32, levels=15, symmetric=False, grouped=True, round_zero=True):
    out_f, in_f = w.shape
    g = w.reshape(out_f, in_f // group_size, group_size)
    if symmetric:
        scale = g.abs().amax(-1, keepdim=True) / 7
        zero = torch.full_like(scale, 8.0)
    else:
        lo, hi = g.amin(-1, keepdim=True), g.amax(-1, keepdim=True)
        scale = ((hi - lo) / levels).clamp(min=1e-8)
        zero = torch.round(-lo / scale) if round_zero else -lo / scale
    q = (torch.round(g / scale) + zero).clamp(0, 15).to(torch.uint8)
    return (q, scale, zero) if grouped else (q.reshape(out_f, in_f), scale, zero)


def test_quantize_int4_correct(capsys):
    check.quantize_int4(int4)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("bad, message", [
    (stub, "not implemented"),
    (lambda w, g: int4(w, g, levels=16), "16 levels"),
    (lambda w, g: int4(w, g, symmetric=True), "symmetric"),
    (lambda w, g: int4(w, g, grouped=False), "reshape to groups"),
    (lambda w, g: int4(w, w.shape[1]), "one group per row"),
    (lambda w, g: int4(w, g, round_zero=False), "zero points differ"),
    (lambda w, g: int4(w, g)[:2], r"\(q, scale, zero\)"),
])
def test_quantize_int4_bugs(bad, message):
    with pytest.raises(CheckFailed, match=message):
        check.quantize_int4(bad)


# ------------------------------------------------------------------ slots_for
def test_slots_for_correct(capsys):
    check.slots_for(check.reference_slots_for)
    assert "slot 33" in capsys.readouterr().out


@pytest.mark.parametrize("bad, message", [
    (stub, "not implemented"),
    (lambda t, p, b: torch.as_tensor(p).clone(), "block table is ignored"),
    (lambda t, p, b: torch.as_tensor(t)[torch.as_tensor(p) // b] * b, "offset within the block"),
    (lambda t, p, b: torch.as_tensor(t)[torch.as_tensor(p) // b] + torch.as_tensor(p) % b, "not multiplied"),
    (lambda t, p, b: [int(x) for x in check.reference_slots_for(t, p, b)], "tensor"),
    (lambda t, p, b: torch.as_tensor(t)[torch.as_tensor(p) // 16] * 16 + torch.as_tensor(p) % 16, "block_size"),
])
def test_slots_for_bugs(bad, message):
    with pytest.raises(CheckFailed, match=message):
        check.slots_for(bad)


# ------------------------------------------------------------------ accept_greedy
def test_accept_greedy_correct(capsys):
    check.accept_greedy(check.reference_accept_greedy)
    assert "emits [5, 6, 9]" in capsys.readouterr().out


def _prefix(d, t):
    n = 0
    while n < len(d) and d[n] == t[n]:
        n += 1
    return n


@pytest.mark.parametrize("bad, message", [
    (stub, "not implemented"),
    (lambda d, t: check.reference_accept_greedy(d, t)[:-1], "target's own token"),
    (lambda d, t: list(d) + [t[len(d)]], "all draft tokens accepted"),
    (lambda d, t: list(d[: _prefix(d, t) + 1]) if _prefix(d, t) < len(d) else list(d) + [t[-1]], "rejected draft"),
    (lambda d, t: [a for a, b in zip(d, t) if a == b] + [t[len(d)]], "first mismatch"),
    (lambda d, t: list(d[: _prefix(d, t)]) + [t[min(_prefix(d, t) + 1, len(t) - 1)]], "off by one"),
])
def test_accept_greedy_bugs(bad, message):
    with pytest.raises(CheckFailed, match=message):
        check.accept_greedy(bad)
