"""Checks for phase4_production/15_inference_optimization.ipynb.

Each check runs the learner's function on seeded inputs, compares it with the reference below, checks the
properties that matter (dtype, range, round trip, error bound), and when the answer is wrong compares it with
the usual wrong answers to name the likely bug.
"""
from __future__ import annotations

from typing import Callable

from genai_roadmap.checks._common import CheckFailed, call, close, expect, generator, passed


# ------------------------------------------------------------------------------- exercise 1
def reference_quantize_int8(w):
    """Symmetric per-output-channel int8: scale = max|row| / 127, q = round(w / scale) in [-127, 127]."""
    import torch

    scale = (w.abs().amax(dim=1, keepdim=True) / 127).clamp(min=1e-8)
    return torch.round(w / scale).clamp(-127, 127).to(torch.int8), scale


def _as_pair(name, got, what):
    expect(isinstance(got, (tuple, list)) and len(got) == 2, name,
           f"return the pair ({what}), got {type(got).__name__}")
    return got


def quantize_int8(fn: Callable) -> None:
    """Exercise 1: `fn(w)` -> (q, scale): int8 weights (out, in) and one float scale per output row (out, 1)."""
    import torch

    name = "quantize_int8"
    w = torch.randn(48, 64, generator=generator(15)) * torch.logspace(-2, 1, 48)[:, None]  # rows of very different size
    w[3] = 0.0  # an all-zero row must not divide by zero
    q, scale = _as_pair(name, call(name, fn, w.clone()), "q, scale")
    expect(isinstance(q, torch.Tensor) and q.dtype == torch.int8, name,
           f"q must be a torch.int8 tensor (.to(torch.int8)), got {getattr(q, 'dtype', type(q).__name__)}")
    expect(tuple(q.shape) == tuple(w.shape), name, f"q must have the weight's shape {tuple(w.shape)}, got {tuple(q.shape)}")
    scale = torch.as_tensor(scale, dtype=torch.float32)
    want_q, want_scale = reference_quantize_int8(w)
    if scale.numel() == 1:
        raise CheckFailed(f"{name}: one scale for the whole matrix is per-tensor quantization: the small rows then "
                          "round to a few levels. Take one scale per output row: w.abs().amax(dim=1, keepdim=True)")
    if tuple(scale.shape) in ((1, w.shape[1]), (w.shape[1],)):
        raise CheckFailed(f"{name}: that is one scale per input column (amax over dim 0); per-channel means per "
                          "output row, amax(dim=1, keepdim=True), shape (out, 1)")
    expect(scale.numel() == w.shape[0], name, f"expected one scale per output row, shape ({w.shape[0]}, 1), "
           f"got {tuple(scale.shape)}")
    scale = scale.reshape(-1, 1)
    expect(bool(torch.isfinite(scale).all()) and bool((scale > 0).all()), name,
           "an all-zero row gave inf/nan: clamp the scale to a small minimum (1e-8) before dividing")
    if close(scale, w.abs().amax(dim=1, keepdim=True).clamp(min=1e-8) / 128) or close(
            scale, w.abs().amax(dim=1, keepdim=True).clamp(min=1e-8) / 255):
        raise CheckFailed(f"{name}: divide max|w| by 127, the largest int8 you use symmetrically (-127..127); "
                          "/128 overflows +127 and /255 is the unsigned range")
    expect(close(scale, want_scale, rtol=1e-5, atol=1e-12), name,
           "the scales differ from max|row| / 127: scale = w.abs().amax(dim=1, keepdim=True) / 127")
    if torch.equal(q, torch.trunc(w / want_scale).clamp(-127, 127).to(torch.int8)) and not torch.equal(q, want_q):
        raise CheckFailed(f"{name}: .to(torch.int8) truncates toward zero: torch.round(w / scale) first (the "
                          "rounding error doubles otherwise)")
    diff = (q.int() - want_q.int()).abs()
    expect(int(diff.max()) <= 1 and float((diff > 0).float().mean()) < 0.01, name,
           "q differs from round(w / scale).clamp(-127, 127)")
    err = (q.float() * scale - w).abs()
    expect(bool((err <= scale / 2 + 1e-6).all()), name, "dequantized q * scale is further than half a step from w")
    passed(name, f"worst dequantization error {float((err / scale.clamp(min=1e-12)).max()):.2f} steps "
                 f"(at most 0.5), {q.numel()} bytes instead of {4 * w.numel()}")


# ------------------------------------------------------------------------------- exercise 2
def reference_quantize_int4(w, group_size: int = 32):
    """Asymmetric group-wise 4-bit: per group of `group_size` inputs of a row, scale = (max - min) / 15,
    zero = round(-min / scale), q = clamp(round(w / scale) + zero, 0, 15). Shapes (out, in/g, g), (out, in/g, 1)."""
    import torch

    out_f, in_f = w.shape
    g = w.reshape(out_f, in_f // group_size, group_size)
    lo, hi = g.amin(dim=-1, keepdim=True), g.amax(dim=-1, keepdim=True)
    scale = ((hi - lo) / 15).clamp(min=1e-8)
    zero = torch.round(-lo / scale)
    q = (torch.round(g / scale) + zero).clamp(0, 15).to(torch.uint8)
    return q, scale, zero


def dequantize_int4(q, scale, zero):
    return (q.float() - zero) * scale


def quantize_int4(fn: Callable) -> None:
    """Exercise 2: `fn(w, group_size)` -> (q, scale, zero) with q uint8 in 0..15, shape (out, in/g, g)."""
    import torch

    name = "quantize_int4"
    w = torch.randn(24, 128, generator=generator(4)) + 0.3  # an offset, so symmetric grids waste levels
    w[:, 5] *= 8  # an outlier column: per-row scales suffer, groups keep it to its own group
    got = call(name, fn, w.clone(), 32)
    expect(isinstance(got, (tuple, list)) and len(got) == 3, name,
           f"return (q, scale, zero), got {type(got).__name__}")
    q, scale, zero = got
    want_q, want_scale, want_zero = reference_quantize_int4(w, 32)
    expect(isinstance(q, torch.Tensor), name, f"q must be a tensor, got {type(q).__name__}")
    if tuple(q.shape) == (24, 128):
        raise CheckFailed(f"{name}: q has the weight's shape; reshape to groups first: w.reshape(out, in // "
                          "group_size, group_size), and return q in that shape")
    if tuple(q.shape) == (24, 1, 128):
        raise CheckFailed(f"{name}: that is one group per row; use groups of group_size inputs: w.reshape(out, "
                          "in // group_size, group_size)")
    if tuple(q.shape) == (24 * 4, 32) or tuple(q.shape) == (128 // 32, 24, 32):
        raise CheckFailed(f"{name}: expected q of shape (out, in/group_size, group_size) = {tuple(want_q.shape)}, got "
                          f"{tuple(q.shape)}")
    expect(tuple(q.shape) == tuple(want_q.shape), name, f"expected q of shape {tuple(want_q.shape)}, got {tuple(q.shape)}")
    expect(q.dtype == torch.uint8, name, f"store q as torch.uint8 (values 0..15), got {q.dtype}")
    expect(int(q.min()) >= 0 and int(q.max()) <= 15, name,
           f"4-bit codes must lie in 0..15, got {int(q.min())}..{int(q.max())}: clamp(0, 15)")
    scale, zero = torch.as_tensor(scale).float(), torch.as_tensor(zero).float()
    expect(scale.numel() == want_scale.numel() and zero.numel() == want_zero.numel(), name,
           f"one scale and one zero point per group: shape {tuple(want_scale.shape)}, got {tuple(scale.shape)}, "
           f"{tuple(zero.shape)}")
    scale, zero = scale.reshape(want_scale.shape), zero.reshape(want_zero.shape)
    if close(scale, want_scale * 15 / 16):
        raise CheckFailed(f"{name}: 4 bits give 16 levels, 15 steps between min and max: scale = (max - min) / 15")
    if close(scale, (w.reshape(24, 4, 32).abs().amax(-1, keepdim=True) / 7)):
        raise CheckFailed(f"{name}: that is a symmetric grid (max|w| / 7); this exercise is asymmetric: scale = "
                          "(max - min) / 15 with a zero point, so an offset group uses all 16 levels")
    expect(close(scale, want_scale, rtol=1e-5), name,
           "the scales differ from (max - min) / 15 of each group (min and max over the last dim of the groups)")
    expect(close(zero, want_zero), name, "zero points differ: zero = round(-min / scale), a whole number")
    deq = dequantize_int4(q, scale, zero).reshape(24, 128)
    expect(bool((deq - w).abs().le(scale.repeat_interleave(32, dim=1).reshape(24, 128) * 0.5 + 1e-5).float().mean() > 0.99),
           name, "dequantized (q - zero) * scale is not within half a step of w: q = round(w / scale) + zero")
    err, err_row = (deq - w).pow(2).mean(), (dequantize_int4(*reference_quantize_int4(w, 128)).reshape(24, 128) - w).pow(2).mean()
    passed(name, f"mean squared error {err:.2e} with groups of 32, {err_row:.2e} with one group per row")


# ------------------------------------------------------------------------------- exercise 3
def reference_slots_for(block_table, positions, block_size: int):
    """The physical KV-cache slot of each logical position: block_table[p // B] * B + p % B."""
    import torch

    block_table, positions = torch.as_tensor(block_table), torch.as_tensor(positions)
    return block_table[positions // block_size] * block_size + positions % block_size


def slots_for(fn: Callable) -> None:
    """Exercise 3: `fn(block_table, positions, block_size)` -> a LongTensor of physical slots."""
    import torch

    name = "slots_for"
    table, pos = torch.tensor([7, 2, 9]), torch.arange(0, 40)
    got = call(name, fn, table.clone(), pos.clone(), 16)
    expect(isinstance(got, torch.Tensor), name, f"return a tensor of slots, got {type(got).__name__}")
    want = reference_slots_for(table, pos, 16)
    if got.shape == want.shape and not torch.equal(got.long(), want):
        wrong = {
            "the block table is ignored: position p lives in physical block block_table[p // block_size], not in "
            "block p // block_size": pos.clone(),
            "offset and block swapped: slot = block_table[p // B] * B + p % B": table[pos % 16 % 3] * 16 + pos // 16,
            "the offset within the block is missing: + p % block_size": table[pos // 16] * 16,
            "the block number is not multiplied by the block size: block_table[p // B] * B + p % B":
                table[pos // 16] + pos % 16,
        }
        for bug, answer in wrong.items():
            if torch.equal(got.long(), answer):
                raise CheckFailed(f"{name}: {bug}")
        raise CheckFailed(f"{name}: position 17 should be in slot {int(want[17])} (block_table[1] = 2, offset 1), "
                          f"got {int(got[17])}")
    expect(got.shape == want.shape, name, f"one slot per position: shape {tuple(want.shape)}, got {tuple(got.shape)}")
    g = generator(3)
    for bs in (1, 4, 32):
        table = torch.randperm(50, generator=g)[:6]
        pos = torch.randint(0, 6 * bs, (25,), generator=g)
        got = call(name, fn, table.clone(), pos.clone(), bs)
        expect(torch.equal(torch.as_tensor(got).long(), reference_slots_for(table, pos, bs)), name,
               f"wrong slots for block_size {bs} and positions out of order: compute each position on its own")
    passed(name, "position 17 with block table [7, 2, 9] and blocks of 16 is slot 33")


# ------------------------------------------------------------------------------- exercise 4
def reference_accept_greedy(draft_tokens, target_tokens):
    """Keep the draft's tokens while they equal the target's greedy choices, then add the target's next token."""
    n = 0
    while n < len(draft_tokens) and draft_tokens[n] == target_tokens[n]:
        n += 1
    return list(draft_tokens[:n]) + [target_tokens[n]]


def accept_greedy(fn: Callable) -> None:
    """Exercise 4: `fn(draft_tokens, target_tokens)` -> the tokens to emit (len(target) = len(draft) + 1)."""
    name = "accept_greedy"
    cases = [([5, 6, 7, 8], [5, 6, 9, 8, 1]), ([5, 6, 7, 8], [5, 6, 7, 8, 2]), ([5, 6, 7, 8], [4, 6, 7, 8, 1]),
             ([3], [3, 4]), ([3], [2, 4]), ([1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 0, 9])]
    for draft, target in cases:
        got = call(name, fn, list(draft), list(target))
        expect(isinstance(got, (list, tuple)), name, f"return a list of tokens, got {type(got).__name__}")
        got, want = [int(t) for t in got], reference_accept_greedy(draft, target)
        if got == want:
            continue
        n = len(want) - 1
        wrong = {
            "the target's own token after the accepted ones is missing: every round emits at least one token, the "
            "target's choice at the first mismatch (or after all k)": want[:-1],
            "all draft tokens accepted: keep them only while they equal the target's": list(draft) + [target[len(draft)]],
            "after a mismatch, emit the target's token, not the rejected draft token": list(draft[: n + 1])
            if n < len(draft) else None,
            "matches after the first mismatch count too: stop at the first mismatch (later tokens were drafted "
            "from a wrong prefix)": [d for d, t in zip(draft, target) if d == t] + [target[len(draft)]],
            "off by one: the target token that follows n accepted draft tokens is target_tokens[n]":
                list(draft[:n]) + [target[n + 1]] if n + 1 < len(target) else None,
        }
        for bug, answer in wrong.items():
            if answer is not None and got == answer:
                raise CheckFailed(f"{name}: {bug} (draft {draft}, target {target}: expected {want}, got {got})")
        raise CheckFailed(f"{name}: draft {draft}, target {target}: expected {want}, got {got}")
    passed(name, "draft [5, 6, 7, 8] against target [5, 6, 9, 8, 1] emits [5, 6, 9]: 2 accepted + the target's 9")
