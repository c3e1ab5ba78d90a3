"""The checks of 06_hugging_face pass correct answers and catch the stub and plausible bugs."""
import re

import pytest
import torch
import torch.nn as nn

from genai_roadmap.checks import CheckFailed
from genai_roadmap.checks import hugging_face as check


def stub(*args, **kwargs):
    raise NotImplementedError


# ------------------------------------------------------------------ top_p_probs
def make_top_p(crossing=True, sort=True, renormalise=True, scatter=True, fill=float("-inf")):
    def top_p_probs(logits, top_p):
        probs = logits.softmax(-1)
        if sort:
            sorted_probs, order = probs.sort(dim=-1, descending=True)
        else:
            sorted_probs, order = probs, torch.arange(probs.shape[-1]).expand_as(probs)
        if crossing:
            keep_sorted = sorted_probs.cumsum(-1) - sorted_probs < top_p
        else:
            keep_sorted = sorted_probs.cumsum(-1) <= top_p
        if not scatter:
            kept = sorted_probs * keep_sorted
            return kept / kept.sum(-1, keepdim=True)
        keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
        if fill != float("-inf"):
            return logits.masked_fill(~keep, fill).softmax(-1)
        kept = probs * keep
        return kept / kept.sum(-1, keepdim=True) if renormalise else kept

    return top_p_probs


def top_p_via_transformers(logits, top_p):
    from transformers.generation.logits_process import TopPLogitsWarper

    return TopPLogitsWarper(top_p)(None, logits).softmax(-1)


def top_p_top_k_instead(logits, top_p):
    k = 2
    kth = logits.topk(k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf")).softmax(-1)


# ------------------------------------------------------------------ tokenize_for_causal_lm
def make_clm(side="right", mask_labels=True, shift=False, truncate=True, pad=True, special=False, mask_all=False):
    def tokenize_for_causal_lm(batch, tokenizer, max_length):
        enc = tokenizer(batch["text"], add_special_tokens=special, truncation=truncate, max_length=max_length,
                        padding="max_length" if pad else "longest", padding_side=side)
        labels = []
        for ids, mask in zip(enc["input_ids"], enc["attention_mask"]):
            row = [t if (m or not mask_labels) else -100 for t, m in zip(ids, mask)]
            if mask_all:
                row = [-100] + row[1:]
            labels.append(row[1:] + [-100] if shift else row)
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": labels}

    return tokenize_for_causal_lm


def clm_returning_tensors(batch, tokenizer, max_length):
    enc = tokenizer(batch["text"], add_special_tokens=False, truncation=True, max_length=max_length,
                    padding="max_length", padding_side="right", return_tensors="pt")
    labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": labels}


def clm_flipping_the_tokenizer(batch, tokenizer, max_length):
    tokenizer.padding_side = "right"  # a side effect the check undoes
    enc = tokenizer(batch["text"], add_special_tokens=False, truncation=True, max_length=max_length,
                    padding="max_length")
    enc["labels"] = [[t if m else -100 for t, m in zip(ids, mask)]
                     for ids, mask in zip(enc["input_ids"], enc["attention_mask"])]
    return enc


# ------------------------------------------------------------------ lora_trainable_parameters
def make_lora_count(part="both"):
    def lora_trainable_parameters(model, target_modules, r):
        total = 0
        for name, module in model.named_modules():
            if not isinstance(module, nn.Linear):
                continue
            if part != "every linear" and name.split(".")[-1] not in target_modules:
                continue
            d_in, d_out = module.in_features, module.out_features
            bias = module.bias.numel() if module.bias is not None else 0
            total += {"both": r * (d_in + d_out), "A only": r * d_in, "B only": r * d_out,
                      "with bias": r * (d_in + d_out) + bias, "base weight": d_in * d_out + bias,
                      "every linear": r * (d_in + d_out), "2r": 2 * r * (d_in + d_out)}[part]
        return total

    return lora_trainable_parameters


def lora_count_via_parameters(model, target_modules, r):
    # a different correct route: A and B shapes from each weight
    total = 0
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and name.split(".")[-1] in target_modules:
            d_out, d_in = module.weight.shape
            total += torch.zeros(r, d_in).numel() + torch.zeros(d_out, r).numel()
    return total


CASES = {
    "top_p_probs": (make_top_p(), {
        "crossing token excluded": (make_top_p(crossing=False), "crosses top_p is missing"),
        "not sorted": (make_top_p(sort=False), "not sorted"),
        "not renormalised": (make_top_p(renormalise=False), "not renormalised"),
        "sorted order returned": (make_top_p(scatter=False), "sorted order"),
        "fill with zero": (make_top_p(fill=0.0), "logit 0"),
        "top-k instead": (top_p_top_k_instead, "wrong tokens"),
    }),
    "tokenize_for_causal_lm": (make_clm(), {
        "labels not masked": (make_clm(mask_labels=False), "padding not masked"),
        "labels shifted": (make_clm(shift=True), "shifted by hand"),
        "left padding": (make_clm(side="left"), "padded on the left"),
        "no truncation": (make_clm(truncate=False), "max_length"),
        "pad to longest": (make_clm(pad=False), "max_length"),
        "first token masked": (make_clm(mask_all=True), "real tokens masked"),
    }),
    "lora_trainable_parameters": (make_lora_count(), {
        "A only": (make_lora_count("A only"), "only A counted"),
        "B only": (make_lora_count("B only"), "only B counted"),
        "bias counted": (make_lora_count("with bias"), "bias"),
        "base weight": (make_lora_count("base weight"), "frozen layer's own weights"),
        "every linear": (make_lora_count("every linear"), "every nn.Linear"),
        "twice": (make_lora_count("2r"), "expected"),
    }),
}


@pytest.mark.parametrize("name", CASES)
def test_correct_passes(name, capsys):
    getattr(check, name)(CASES[name][0])
    assert f"✓ {name} passed" in capsys.readouterr().out


@pytest.mark.parametrize("name", CASES)
def test_stub_fails(name):
    with pytest.raises(CheckFailed, match="not implemented yet"):
        getattr(check, name)(stub)


@pytest.mark.parametrize("name,bug", [(n, b) for n, (_, bugs) in CASES.items() for b in bugs])
def test_bug_fails_with_named_cause(name, bug):
    fn, message = CASES[name][1][bug]
    with pytest.raises(CheckFailed, match=re.escape(message)):
        getattr(check, name)(fn)


@pytest.mark.parametrize("fn", [top_p_via_transformers], ids=["transformers"])
def test_top_p_accepts_transformers_own(fn):
    check.top_p_probs(fn)


@pytest.mark.parametrize("fn", [clm_returning_tensors, clm_flipping_the_tokenizer], ids=["tensors", "side effect"])
def test_tokenize_accepts_other_correct_routes(fn):
    check.tokenize_for_causal_lm(fn)


def test_tokenize_check_restores_the_tokenizer_default():
    tok = check._course_tokenizer()
    assert tok.padding_side == "left"  # the course tokenizer pads left, for batched generation


def test_add_special_tokens_is_harmless_with_the_course_tokenizer():
    # the course tokenizer adds no BOS of its own (the texts carry <|bos|>), so either setting passes
    check.tokenize_for_causal_lm(make_clm(special=True))


def test_lora_accepts_another_correct_route():
    check.lora_trainable_parameters(lora_count_via_parameters)


def test_lora_reference_is_peft():
    model = check._small_llama(0)
    ours = make_lora_count()(model, ["q_proj", "v_proj"], 4)
    assert ours == check._peft_count(check._small_llama(0), ["q_proj", "v_proj"], 4)
