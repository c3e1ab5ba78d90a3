"""The checks of 11_fine_tuning pass correct answers and catch the stub and plausible bugs."""
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from genai_roadmap.checks import CheckFailed
from genai_roadmap.checks import fine_tuning as check


def stub(*args, **kwargs):
    raise NotImplementedError


# ------------------------------------------------------------------ lora_parameters
def lora(base, r, alpha, zero_b=True, scale=None, transpose=False, freeze=True):
    if freeze:
        base.requires_grad_(False)
    d_in, d_out = base.in_features, base.out_features
    A = torch.randn(r, d_in) / math.sqrt(d_in)
    B = torch.zeros(d_out, r) if zero_b else torch.randn(d_out, r)
    if transpose:
        A, B = A.T.contiguous(), B.T.contiguous()
    return nn.Parameter(A), nn.Parameter(B), alpha / r if scale is None else scale(alpha, r)


def test_lora_parameters_correct(capsys):
    check.lora_parameters(lora)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("bad, message", [
    (stub, "not implemented"),
    (lambda b, r, a: lora(b, r, a, zero_b=False), "zero-initialised"),
    (lambda b, r, a: lora(b, r, a, scale=lambda alpha, r: 1.0), "scaling is 1"),
    (lambda b, r, a: lora(b, r, a, scale=lambda alpha, r: r / alpha), "r / alpha"),
    (lambda b, r, a: lora(b, r, a, scale=lambda alpha, r: alpha), "alpha alone"),
    (lambda b, r, a: lora(b, r, a, transpose=True), "transposed"),
    (lambda b, r, a: lora(b, r, a, freeze=False), "not frozen"),
])
def test_lora_parameters_bugs(bad, message):
    with pytest.raises(CheckFailed, match=message):
        check.lora_parameters(bad)


# ------------------------------------------------------------------ nf4_quantize
def nf4(w, levels, block_size=64):
    blocks = w.reshape(-1, block_size)
    absmax = blocks.abs().amax(dim=1)
    codes = ((blocks / absmax[:, None])[..., None] - levels).abs().argmin(-1)
    return codes.to(torch.uint8), absmax


def nf4_per_tensor(w, levels, block_size=64):
    blocks = w.reshape(-1, block_size)
    absmax = blocks.abs().max().expand(blocks.shape[0])
    return ((blocks / absmax[:, None])[..., None] - levels).abs().argmin(-1), absmax


def nf4_not_abs(w, levels, block_size=64):
    blocks = w.reshape(-1, block_size)
    absmax = blocks.amax(dim=1)
    return ((blocks / absmax[:, None])[..., None] - levels).abs().argmin(-1), absmax


def nf4_searchsorted(w, levels, block_size=64):  # "nearest" = the level just above: not the argmin
    blocks = w.reshape(-1, block_size)
    absmax = blocks.abs().amax(dim=1)
    return torch.searchsorted(levels, (blocks / absmax[:, None]).contiguous()).clamp(max=15), absmax


def nf4_linear_grid(w, levels, block_size=64):  # rounds on a uniform grid instead of the NF4 levels
    blocks = w.reshape(-1, block_size)
    absmax = blocks.abs().amax(dim=1)
    return ((blocks / absmax[:, None]) * 7.5 + 7.5).round().long(), absmax


def test_nf4_correct(capsys):
    check.nf4_quantize(nf4)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("bad, message", [
    (stub, "not implemented"),
    (nf4_per_tensor, "absmax"),
    (nf4_not_abs, "absmax"),
    (nf4_searchsorted, "argmin"),
    (nf4_linear_grid, "argmin"),
])
def test_nf4_bugs(bad, message):
    with pytest.raises(CheckFailed, match=message):
        check.nf4_quantize(bad)


# ------------------------------------------------------------------ sft_labels
def labels_ok(input_ids, prompt_lengths, attention_mask):
    labels = input_ids.clone()
    positions = torch.arange(input_ids.shape[1])[None, :]
    labels[positions < prompt_lengths[:, None]] = -100
    labels[attention_mask == 0] = -100
    return labels


def labels_answer_masked(input_ids, prompt_lengths, attention_mask):
    labels = input_ids.clone()
    positions = torch.arange(input_ids.shape[1])[None, :]
    labels[positions >= prompt_lengths[:, None]] = -100
    return labels


def labels_off_by_one(input_ids, prompt_lengths, attention_mask):
    labels = input_ids.clone()
    positions = torch.arange(input_ids.shape[1])[None, :]
    labels[positions < prompt_lengths[:, None] - 1] = -100
    labels[attention_mask == 0] = -100
    return labels


def labels_pad_kept(input_ids, prompt_lengths, attention_mask):
    labels = input_ids.clone()
    positions = torch.arange(input_ids.shape[1])[None, :]
    labels[positions < prompt_lengths[:, None]] = -100
    return labels


def labels_first_length_only(input_ids, prompt_lengths, attention_mask):
    labels = input_ids.clone()
    labels[:, : int(prompt_lengths[0])] = -100
    labels[attention_mask == 0] = -100
    return labels


def test_sft_labels_correct(capsys):
    check.sft_labels(labels_ok)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("bad, message", [
    (stub, "not implemented"),
    (labels_answer_masked, "other way round"),
    (labels_off_by_one, "off by one"),
    (labels_pad_kept, "padding is not masked"),
    (labels_first_length_only, "own prompt length"),
])
def test_sft_labels_bugs(bad, message):
    with pytest.raises(CheckFailed, match=message):
        check.sft_labels(bad)


# ------------------------------------------------------------------ dpo_loss
def dpo(pc, pr, rc, rr, beta):
    return -F.logsigmoid(beta * ((pc - rc) - (pr - rr))).mean()


def test_dpo_correct(capsys):
    check.dpo_loss(dpo)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("bad, message", [
    (stub, "not implemented"),
    (lambda pc, pr, rc, rr, beta: dpo(pc, pr, rc, rr, 1.0), "beta is missing"),
    (lambda pc, pr, rc, rr, beta: -F.logsigmoid(beta * (pc - pr)).mean(), "reference"),
    (lambda pc, pr, rc, rr, beta: -F.logsigmoid(-beta * ((pc - rc) - (pr - rr))).mean(), "sign"),
    (lambda pc, pr, rc, rr, beta: dpo(pc.exp(), pr.exp(), rc.exp(), rr.exp(), beta), "probabilities"),
    (lambda pc, pr, rc, rr, beta: dpo(pc, pr, rc, rr, beta).detach(), "detached"),
])
def test_dpo_bugs(bad, message):
    with pytest.raises(CheckFailed, match=message):
        check.dpo_loss(bad)
