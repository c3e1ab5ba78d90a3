"""Checks for phase3_architecture/11_fine_tuning.ipynb.

Each check runs the learner's code on small seeded inputs, compares it with a short reference below
and one hand-worked case, and when the answer is wrong compares it with the usual wrong answers to
name the likely bug.
"""
from __future__ import annotations

from typing import Callable

from genai_roadmap.checks._common import CheckFailed, call, close, compare, expect, expect_close, generator, passed

# The 16 NF4 levels (QLoRA, Dettmers et al. 2023): quantiles of a standard normal, scaled to [-1, 1],
# with an exact zero.
NF4_LEVELS = (-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
              -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
              0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
              0.7229568362236023, 1.0)


# ------------------------------------------------------------------------------- exercise 1


def lora_parameters(fn: Callable) -> None:
    """Exercise 1: `fn(base, r, alpha)` freezes the nn.Linear `base` and returns (lora_A, lora_B, scaling):
    A (r, d_in) random, B (d_out, r) zero, both trainable nn.Parameter, scaling = alpha / r."""
    import torch
    import torch.nn as nn

    name = "lora_parameters"
    torch.manual_seed(0)
    d_in, d_out, r, alpha = 12, 10, 4, 8
    base = nn.Linear(d_in, d_out)
    out = call(name, fn, base, r, alpha)
    expect(isinstance(out, tuple) and len(out) == 3, name, "return a tuple (lora_A, lora_B, scaling)")
    A, B, scaling = out
    expect(isinstance(A, nn.Parameter) and isinstance(B, nn.Parameter), name,
           "lora_A and lora_B must be nn.Parameter, so the optimizer sees them")
    if tuple(A.shape) == (d_in, r) or tuple(B.shape) == (r, d_out):
        raise CheckFailed(f"{name}: lora_A / lora_B are transposed: A is (r, d_in) = {(r, d_in)} and B is "
                          f"(d_out, r) = {(d_out, r)}, so that B @ A is (d_out, d_in) like base.weight")
    expect(tuple(A.shape) == (r, d_in), name, f"lora_A should be (r, d_in) = {(r, d_in)}, got {tuple(A.shape)}")
    expect(tuple(B.shape) == (d_out, r), name, f"lora_B should be (d_out, r) = {(d_out, r)}, got {tuple(B.shape)}")
    expect(not base.weight.requires_grad and (base.bias is None or not base.bias.requires_grad), name,
           "the base layer is not frozen: call base.requires_grad_(False) (weight and bias)")
    expect(A.requires_grad and B.requires_grad, name, "lora_A and lora_B must be trainable (requires_grad=True)")
    expect(bool((B.detach() == 0).all()), name, "lora_B is not zero-initialised: the wrapped layer must start "
           "out computing exactly what the base layer did (B = 0 makes B A = 0)")
    expect(float(A.detach().abs().sum()) > 0, name, "lora_A is all zeros: with A = 0 and B = 0 neither gets a "
           "gradient; initialise A randomly")
    expect(float(A.detach().std()) < 2, name, "lora_A's values are large: scale the random init down "
           "(e.g. / sqrt(d_in)) so the first updates stay small")
    scaling = float(scaling)
    for bug, wrong in (("the scaling is r / alpha: it should be alpha / r", r / alpha),
                       ("the scaling is alpha alone: divide by r (alpha / r)", float(alpha)),
                       ("the scaling is 1: it should be alpha / r", 1.0)):
        if abs(scaling - wrong) < 1e-9:
            raise CheckFailed(f"{name}: {bug}")
    expect(abs(scaling - alpha / r) < 1e-9, name, f"scaling should be alpha / r = {alpha / r}, got {scaling}")
    # the layer they make: base(x) + scaling * x A^T B^T equals base(x) at the start
    x = torch.randn(3, 5, d_in, generator=generator(1))
    with torch.no_grad():
        out0 = base(x) + scaling * (x @ A.T @ B.T)
    expect_close(out0, base(x), name, "at initialisation the output must equal the base layer's")
    passed(name, "frozen base, A (r, d_in) random, B (d_out, r) = 0, scaling alpha / r")


# ------------------------------------------------------------------------------- exercise 2


def _nf4_reference(w, levels, block_size):
    blocks = w.reshape(-1, block_size)
    absmax = blocks.abs().amax(dim=1)
    codes = ((blocks / absmax[:, None]).unsqueeze(-1) - levels).abs().argmin(dim=-1)
    return codes, absmax


def nf4_quantize(fn: Callable) -> None:
    """Exercise 2: `fn(w, levels, block_size)` returns (codes (n_blocks, block_size) ints in 0..15,
    absmax (n_blocks,)): each block scaled by its own absmax, each value mapped to the nearest level."""
    import torch

    name = "nf4_quantize"
    levels = torch.tensor(NF4_LEVELS)
    # hand-worked: one block of 4 with absmax 2: 2 -> 1.0 (code 15), -1 -> -0.5 (code 2), 0.1 -> 0.05 (code 8:
    # 0.05 is nearer 0.0796 than 0.0), 0 -> 0.0 (code 7)
    hand = torch.tensor([[2.0, -1.0, 0.1, 0.0]])
    out = call(name, fn, hand, levels, 4)
    expect(isinstance(out, tuple) and len(out) == 2, name, "return a tuple (codes, absmax)")
    codes, absmax = out
    codes, absmax = torch.as_tensor(codes), torch.as_tensor(absmax)
    expect(tuple(absmax.shape) == (1,), name, f"absmax should have one entry per block: expected (1,), got "
           f"{tuple(absmax.shape)}")
    expect(close(absmax.float(), torch.tensor([2.0])), name,
           f"hand-worked block [2, -1, 0.1, 0]: the scale should be its absmax 2, got {absmax.tolist()}")
    expect(tuple(codes.shape) == (1, 4), name, f"codes should be (n_blocks, block_size) = (1, 4), got "
           f"{tuple(codes.shape)}")
    expect(codes.long().tolist() == [[15, 2, 8, 7]], name,
           f"hand-worked block [2, -1, 0.1, 0] / 2 = [1, -0.5, 0.05, 0]: codes should be [15, 2, 8, 7] (nearest "
           f"level: 0.05 is nearer 0.0796 than 0.0), got {codes.long().tolist()[0]}: not the argmin of "
           "|x - level|?")

    w = torch.randn(6, 64, generator=generator(0)) * torch.linspace(0.1, 3, 6)[:, None]  # rows of different scale
    w = w.reshape(12, 32)  # block_size 64 spans two rows: blocks are taken over the flattened tensor
    codes, absmax = call(name, fn, w, levels, 64)
    codes, absmax = torch.as_tensor(codes), torch.as_tensor(absmax)
    ref_codes, ref_absmax = _nf4_reference(w, levels, 64)
    expect(tuple(absmax.shape) == (6,), name, f"expected one scale per block of 64: shape (6,), got "
           f"{tuple(absmax.shape)}" + (": one scale for the whole tensor?" if absmax.numel() == 1 else ""))
    if not close(absmax.float(), ref_absmax):
        if close(absmax.float(), torch.full((6,), float(w.abs().max()))):
            raise CheckFailed(f"{name}: every block has the same scale, the tensor's absmax: compute one absmax "
                              "per block (blocks.abs().amax(dim=1))")
        if close(absmax.float(), w.reshape(6, 64).amax(dim=1)):
            raise CheckFailed(f"{name}: the scale is the block's max, not its absmax: take .abs() first, or the "
                              "most negative values fall outside [-1, 1]")
        raise CheckFailed(f"{name}: the scales should be each block's absmax (max |w| over the block)")
    expect(tuple(codes.shape) == (6, 64), name, f"codes should be (n_blocks, block_size) = (6, 64), got "
           f"{tuple(codes.shape)}")
    wrong = (codes.long() != ref_codes).float().mean().item()
    expect(wrong == 0, name, f"{wrong:.0%} of the codes differ from the nearest NF4 level: take "
           "(x[..., None] - levels).abs().argmin(-1) of the block-normalised values")
    passed(name, "per-block absmax scales and nearest-level codes match the reference")


# ------------------------------------------------------------------------------- exercise 3


def sft_labels(fn: Callable) -> None:
    """Exercise 3: `fn(input_ids, prompt_lengths, attention_mask)` returns labels: input_ids with -100 on each
    row's first prompt_lengths[i] tokens and wherever attention_mask is 0 (right padding)."""
    import torch

    name = "sft_labels"
    # hand-worked: prompt of 3 tokens, answer of 2, then 2 pads
    ids = torch.tensor([[1, 5, 6, 7, 8, 0, 0]])
    out = call(name, fn, ids, torch.tensor([3]), torch.tensor([[1, 1, 1, 1, 1, 0, 0]]))
    want = [[-100, -100, -100, 7, 8, -100, -100]]
    got = torch.as_tensor(out).tolist()
    if got != want:
        hints = {
            str([[1, 5, 6, -100, -100, 0, 0]]): "the answer is masked and the prompt kept: it is the other way round",
            str([[1, 5, 6, -100, -100, -100, -100]]): "the answer is masked and the prompt kept: it is the other way "
                                                      "round",
            str([[-100, -100, 6, 7, 8, -100, -100]]): "off by one: the last prompt token is kept (mask "
                                                      "positions 0 .. prompt_length - 1)",
            str([[-100, -100, -100, -100, 8, -100, -100]]): "off by one: the first answer token is masked",
            str([[-100, -100, -100, 7, 8, 0, 0]]): "padding is not masked: set -100 where attention_mask is 0",
        }
        raise CheckFailed(f"{name}: hand-worked case [bos, p, p, a, a, pad, pad] with prompt length 3: expected "
                          f"{want[0]}, got {got[0] if got else got}. " + hints.get(str(got), ""))
    g = generator(0)
    B, T = 5, 12
    ids = torch.randint(1, 50, (B, T), generator=g)
    lengths = torch.randint(5, T + 1, (B,), generator=g)
    lengths[0] = T
    prompt = torch.tensor([2, 3, 4, 1, 6])
    mask = (torch.arange(T)[None, :] < lengths[:, None]).long()
    labels = torch.as_tensor(call(name, fn, ids.clone(), prompt.clone(), mask.clone()))
    ref = ids.clone()
    ref[torch.arange(T)[None, :] < prompt[:, None]] = -100
    ref[mask == 0] = -100
    expect(tuple(labels.shape) == (B, T), name, f"labels should have the shape of input_ids {(B, T)}")
    expect(torch.equal(labels.long(), ref), name,
           "each row needs its own prompt length: -100 on positions < prompt_lengths[i] and on padding")
    passed(name, "prompt and padding -> -100, answer tokens kept")


# ------------------------------------------------------------------------------- exercise 4


def _dpo(pc, pr, rc, rr, beta):
    import torch.nn.functional as F

    return -F.logsigmoid(beta * ((pc - rc) - (pr - rr))).mean()


def dpo_loss(fn: Callable) -> None:
    """Exercise 4: `fn(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta)` (sequence log-probs,
    shape (B,)) returns the mean of -log sigmoid(beta * ((pc - rc) - (pr - rr)))."""
    import torch
    import torch.nn.functional as F

    name = "dpo_loss"
    # hand-worked: the policy moved +1 on chosen and -1 on rejected relative to the reference; beta 0.5
    one = torch.tensor([-3.0]), torch.tensor([-5.0]), torch.tensor([-4.0]), torch.tensor([-4.0])
    got = call(name, fn, *one, 0.5)
    want = torch.tensor(-F.logsigmoid(torch.tensor(1.0)).item())  # 0.5 * (1 - (-1)) = 1 -> 0.3133
    got_t = torch.as_tensor(got).detach()
    expect(got_t.numel() == 1, name, f"return one number (the mean over the batch), got shape {tuple(got_t.shape)}")
    g = generator(0)
    pc, pr, rc, rr = (-torch.rand(8, generator=g) * 20 for _ in range(4))
    beta = 0.2
    args = (pc.clone().requires_grad_(), pr.clone(), rc.clone(), rr.clone(), beta)
    out = call(name, fn, *args)
    out_t = torch.as_tensor(out)
    wrong = {
        "beta is missing: the log-ratio margin must be multiplied by beta": _dpo(pc, pr, rc, rr, 1.0),
        "the reference log-probs are ignored: use (policy - reference) on each side": _dpo(pc, pr, 0 * rc, 0 * rr, beta),
        "the sign is flipped: the loss should fall as chosen gains on rejected (-logsigmoid(+margin))":
            -F.logsigmoid(-beta * ((pc - rc) - (pr - rr))).mean(),
        "probabilities instead of log-probs: the inputs already are log-probs, do not exp() them":
            -F.logsigmoid(beta * ((pc.exp() - rc.exp()) - (pr.exp() - rr.exp()))).mean(),
        "the sum over the batch instead of the mean": -F.logsigmoid(beta * ((pc - rc) - (pr - rr))).sum(),
    }
    compare(name, out_t.detach().reshape(()), _dpo(pc, pr, rc, rr, beta), wrong,
              "expected mean(-logsigmoid(beta * ((pc - rc) - (pr - rr))))")
    expect(close(got_t.reshape(()), want), name, f"hand-worked case: margin 0.5 * ((-3 + 4) - (-5 + 4)) = 1, loss "
           f"-log sigmoid(1) = 0.3133; got {float(got_t.reshape(())):.4f}")
    expect(out_t.requires_grad, name, "the loss is detached from the policy log-probs: no gradient would flow")
    passed(name, "matches -log σ(β·[(log πc - log πref,c) - (log πr - log πref,r)]), hand case 0.3133")
