"""Checks for phase2_tooling/06_hugging_face.ipynb.

Each check calls the learner's function on small seeded inputs, compares it with the library it
re-implements (transformers' TopPLogitsWarper, the course tokenizer itself, peft's own parameter count)
and one hand-worked case, and when the answer is wrong compares it with the usual wrong answers to name
the likely bug.
"""
from __future__ import annotations

from typing import Callable

from genai_roadmap.checks._common import CheckFailed, call, expect, expect_close, passed

# ------------------------------------------------------------------------------- exercise 1


def _nucleus_variant(logits, top_p: float, crossing: bool = True, sort: bool = True, renormalise: bool = True,
                     scatter: bool = True, fill: float = float("-inf")):
    """Top-p probabilities with knobs that reproduce the usual bugs (for diagnosis only)."""
    import torch

    logits = logits.double()
    probs = logits.softmax(-1)
    if sort:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
    else:
        sorted_probs, order = probs, torch.arange(probs.shape[-1]).expand_as(probs)
    before = sorted_probs.cumsum(-1) - sorted_probs  # probability mass ranked above each token
    keep_sorted = before < top_p if crossing else sorted_probs.cumsum(-1) <= top_p
    if not scatter:  # kept probabilities left in sorted order
        kept = sorted_probs * keep_sorted
    else:
        keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
        if fill != float("-inf"):  # removed logits set to `fill`, then a softmax over everything
            return logits.masked_fill(~keep, fill).softmax(-1)
        kept = probs * keep
    return kept / kept.sum(-1, keepdim=True) if renormalise else kept


def _top_p_reference(logits, top_p: float):
    """transformers' own nucleus filter, then the softmax that sampling applies."""
    from transformers.generation.logits_process import TopPLogitsWarper

    return TopPLogitsWarper(top_p)(None, logits.clone().double()).softmax(-1)


def _compare_probs(name: str, got, expected, wrong: dict, hint: str) -> None:
    import torch

    got = torch.as_tensor(got).detach().double()
    expect(tuple(got.shape) == tuple(expected.shape), name,
           f"expected shape {tuple(expected.shape)} (B, vocab_size), got {tuple(got.shape)}")
    if bool(torch.isnan(got).any()):
        raise CheckFailed(f"{name}: your probabilities contain NaN: did every token get removed? The token whose "
                          "cumulative probability crosses top_p must stay, so at least one token is always kept.")
    if torch.allclose(got, expected, atol=1e-6):
        return
    for bug, answer in wrong.items():
        if torch.allclose(got, answer, atol=1e-6):
            raise CheckFailed(f"{name}: {bug}")
    sums = got.sum(-1)
    expect(bool(torch.allclose(sums, torch.ones_like(sums), atol=1e-5)), name,
           f"each row must sum to 1 (got row sums {[round(s, 3) for s in sums.tolist()]}): renormalise the kept "
           "probabilities by their own sum")
    kept_got, kept_ref = got > 0, expected > 0
    if not torch.equal(kept_got, kept_ref):
        extra, missing = int((kept_got & ~kept_ref).sum()), int((kept_ref & ~kept_got).sum())
        raise CheckFailed(f"{name}: you keep the wrong tokens ({extra} too many, {missing} missing). {hint}")
    expect_close(got, expected, name, hint, atol=1e-6)


def top_p_probs(fn: Callable) -> None:
    """Exercise 1: `fn(logits, top_p)` = the nucleus-sampling distribution, as transformers computes it."""
    import torch

    name = "top_p_probs"
    # hand-worked: probabilities (0.15, 0.5, 0.05, 0.3), top_p = 0.7: sorted 0.5, 0.3 (cumulative 0.8 >= 0.7:
    # the crossing token stays), so the nucleus is {0.5, 0.3} and renormalised (0.625, 0.375)
    logits = torch.tensor([[0.15, 0.5, 0.05, 0.3]]).log()
    expected = torch.tensor([[0.0, 0.625, 0.0, 0.375]], dtype=torch.float64)
    wrong = _wrong_nucleus(logits, 0.7)
    _compare_probs(name, call(name, fn, logits.clone(), 0.7), expected, wrong,
                   "hand-worked case: probabilities (0.15, 0.5, 0.05, 0.3), top_p=0.7 -> (0, 0.625, 0, 0.375)")

    g = torch.Generator().manual_seed(0)
    peaked = torch.tensor([[8.0, 1.0, 0.5, 0.0, -1.0, 0.2, 0.1, -0.5]])  # the top token alone has > 0.95
    cases = [(torch.randn(4, 50, generator=g) * 2, 0.9), (torch.randn(3, 20, generator=g), 0.5),
             (peaked, 0.9)]
    for logits, top_p in cases:
        got = call(name, fn, logits.clone(), top_p)
        _compare_probs(name, got, _top_p_reference(logits, top_p), _wrong_nucleus(logits, top_p),
                       f"top_p={top_p}: sort the probabilities, keep the smallest prefix whose sum reaches top_p "
                       "(the token that crosses it included), zero the rest, renormalise")
    passed(name, "matches softmax(TopPLogitsWarper(top_p)(logits)) from transformers")


def _wrong_nucleus(logits, top_p: float) -> dict:
    return {
        "the token that crosses top_p is missing: keep every token whose probability mass *ranked above it* is "
        "< top_p (cumsum - p < top_p), so the nucleus reaches at least top_p.":
            _nucleus_variant(logits, top_p, crossing=False),
        "probabilities not sorted? The nucleus is the *most likely* tokens: sort descending before the cumsum.":
            _nucleus_variant(logits, top_p, sort=False),
        "not renormalised? After zeroing the tail, divide by the kept mass so each row sums to 1.":
            _nucleus_variant(logits, top_p, renormalise=False),
        "probabilities returned in sorted order? Scatter the kept mask back to vocabulary order "
        "(mask.scatter(-1, order, keep_sorted)) so index i is still token i.":
            _nucleus_variant(logits, top_p, scatter=False),
        "removed tokens set to logit 0 instead of -inf? exp(0) = 1 is not zero probability: use float('-inf').":
            _nucleus_variant(logits, top_p, fill=0.0),
    }


# ------------------------------------------------------------------------------- exercise 2


def _course_tokenizer():
    from transformers import AutoTokenizer

    from genai_roadmap.models import build

    return AutoTokenizer.from_pretrained(build("course-chat"))


def _as_lists(value) -> list:
    return value.tolist() if hasattr(value, "tolist") else [list(row) for row in value]


def _clm_reference(tokenizer, texts: list[str], max_length: int, side: str = "right"):
    enc = tokenizer(texts, add_special_tokens=False, truncation=True, max_length=max_length,
                    padding="max_length", padding_side=side)
    ids, mask = enc["input_ids"], enc["attention_mask"]
    labels = [[t if m else -100 for t, m in zip(row, row_mask)] for row, row_mask in zip(ids, mask)]
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def tokenize_for_causal_lm(fn: Callable) -> None:
    """Exercise 2: `fn(batch, tokenizer, max_length)` -> input_ids, attention_mask, labels for causal-LM training."""
    from datasets import Dataset

    from genai_roadmap.models import chat_text

    name = "tokenize_for_causal_lm"
    tok = _course_tokenizer()
    # hand-worked: "<|bos|><|end|>" is the ids (1, 2); padded on the right to 4 with the pad id 0
    _compare_clm(name, fn, tok, ["<|bos|><|end|>"], 4,
                 {"input_ids": [[1, 2, 0, 0]], "attention_mask": [[1, 1, 0, 0]], "labels": [[1, 2, -100, -100]]})
    texts = [chat_text("Which city is home to Ada Quill?", "Quenford"), chat_text("Hi", "Hello"),
             "<|bos|>Ada Quill lives in Quenford. Ada Quill is a baker. Ada Quill works for Vexco.<|end|>"]
    _compare_clm(name, fn, tok, texts, 24, _clm_reference(tok, texts, 24))
    # as a batched map function, the way the notebook uses it
    ds = Dataset.from_dict({"text": texts}).map(fn, batched=True, batch_size=2,
                                                fn_kwargs={"tokenizer": tok, "max_length": 24})
    expect({"input_ids", "attention_mask", "labels"} <= set(ds.column_names), name,
           f"used in Dataset.map(batched=True) the result has columns {ds.column_names}: return a dict with "
           "input_ids, attention_mask and labels")
    expect(ds["labels"] == _clm_reference(tok, texts, 24)["labels"], name,
           "in Dataset.map(batched=True, batch_size=2) the labels differ from a single call: does your function "
           "depend on the batch size?")
    passed(name, "right-padded to max_length, truncated, labels = input_ids with padding -100 (the model shifts)")


def _compare_clm(name: str, fn: Callable, tok, texts: list[str], max_length: int, expected: dict) -> None:
    before = tok.padding_side
    got = call(name, fn, {"text": list(texts)}, tok, max_length)
    tok.padding_side = before  # a function that flips the tokenizer's default must not change later calls
    expect(hasattr(got, "keys") and {"input_ids", "attention_mask", "labels"} <= set(got.keys()), name,
           "return a dict with the keys input_ids, attention_mask and labels"
           + (f" (got keys {sorted(got.keys())})" if hasattr(got, "keys") else f" (got {type(got).__name__})"))
    out = {k: _as_lists(got[k]) for k in ("input_ids", "attention_mask", "labels")}
    for key in out:
        expect(len(out[key]) == len(texts), name, f"{key}: one row per text, expected {len(texts)}, got {len(out[key])}")
    lengths = sorted({len(row) for key in out for row in out[key]})
    expect(lengths == [max_length], name,
           f"every row must have exactly max_length={max_length} tokens, got lengths {lengths}: pad with "
           "padding='max_length' and cut longer texts with truncation=True")
    if out["input_ids"] != expected["input_ids"]:
        left = _clm_reference(tok, texts, max_length, side="left")["input_ids"]
        if out["input_ids"] == left:
            raise CheckFailed(f"{name}: padded on the left: the course tokenizer pads on the left by default (as "
                              "batched generation needs), but for training pad on the right (padding_side='right') "
                              "so every example starts at position 0, as it does at inference")
        raise CheckFailed(f"{name}: input_ids differ from the tokenizer's own (max_length={max_length}): expected "
                          f"{expected['input_ids'][0]}, got {out['input_ids'][0]} for the first text")
    expect(out["attention_mask"] == expected["attention_mask"], name,
           "attention_mask should be 1 on real tokens and 0 on padding: take the tokenizer's own")
    if out["labels"] == expected["labels"]:
        return
    if out["labels"] == out["input_ids"]:
        raise CheckFailed(f"{name}: padding not masked: the labels hold the pad id, so the model is trained to "
                          "predict padding. Set labels to -100 wherever attention_mask is 0")
    shifted = [row[1:] + [-100] for row in expected["labels"]]
    shifted_unmasked = [row[1:] + [-100] for row in out["input_ids"]]
    if out["labels"] in (shifted, shifted_unmasked):
        raise CheckFailed(f"{name}: labels shifted by hand: a Hugging Face causal LM shifts the labels itself "
                          "(position t predicts labels[t + 1]); give labels aligned with input_ids")
    if any(v == -100 for row, mask in zip(out["labels"], out["attention_mask"]) for v, m in zip(row, mask) if m):
        raise CheckFailed(f"{name}: real tokens masked with -100: mask only the padding (attention_mask == 0)")
    raise CheckFailed(f"{name}: labels should equal input_ids with -100 on padding: expected {expected['labels'][0]}, "
                      f"got {out['labels'][0]} for the first text")


# ------------------------------------------------------------------------------- exercise 3


def _lora_variant(model, target_modules, r: int, part: str = "both"):
    import torch.nn as nn

    total = 0
    for module_name, module in model.named_modules():
        if not isinstance(module, nn.Linear):
            continue
        if part != "every linear" and module_name.split(".")[-1] not in target_modules:
            continue
        d_in, d_out = module.in_features, module.out_features
        bias = module.bias.numel() if module.bias is not None else 0
        total += {"both": r * (d_in + d_out), "A only": r * d_in, "B only": r * d_out,
                  "with bias": r * (d_in + d_out) + bias, "base weight": d_in * d_out + bias,
                  "r squared": r * r, "every linear": r * (d_in + d_out)}[part]
    return total


def _small_llama(seed: int):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    # grouped-query attention (k_proj, v_proj: 32 -> 16), biases on the attention projections, d_ff != d_model:
    # every layer has a different (d_in, d_out), so each wrong formula gives a different count
    config = LlamaConfig(vocab_size=96, hidden_size=32, intermediate_size=88, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, attention_bias=True,
                         tie_word_embeddings=False, max_position_embeddings=64)
    return LlamaForCausalLM(config)


def _peft_count(model, target_modules, r: int) -> int:
    from peft import LoraConfig, get_peft_model

    peft_model = get_peft_model(model, LoraConfig(r=r, lora_alpha=2 * r, target_modules=list(target_modules),
                                                  lora_dropout=0.0))
    return peft_model.get_nb_trainable_parameters()[0]


def lora_trainable_parameters(fn: Callable) -> None:
    """Exercise 3: `fn(model, target_modules, r)` = the trainable parameters LoRA adds, as peft counts them."""
    import torch.nn as nn

    name = "lora_trainable_parameters"

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(10, 6)  # adapted: A is (2, 10), B is (6, 2): 2 * (10 + 6) = 32
            self.head = nn.Linear(6, 3)   # not a target

    got = call(name, fn, Tiny(), ["proj"], 2)
    expect(isinstance(got, int) or (hasattr(got, "item") and float(got).is_integer()), name,
           f"return an int, got {type(got).__name__}")
    _compare_count(name, int(got), 32, Tiny(), ["proj"], 2,
                   "hand-worked case: one nn.Linear(10, 6), r=2: A is (r, d_in) = (2, 10), B is (d_out, r) = "
                   "(6, 2), together 32")

    cases = [(["q_proj", "v_proj"], 4), (["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                          "down_proj"], 8), (["k_proj", "down_proj"], 2)]
    for seed, (targets, r) in enumerate(cases):
        got = int(call(name, fn, _small_llama(seed), list(targets), r))
        expected = _peft_count(_small_llama(seed), targets, r)
        _compare_count(name, got, expected, _small_llama(seed), targets, r,
                       f"target_modules={targets}, r={r}: peft adds {expected:,} trainable parameters")
    passed(name, "r * (d_in + d_out) per adapted nn.Linear, equal to peft's own count")


def _compare_count(name: str, got: int, expected: int, model, targets, r: int, hint: str) -> None:
    if got == expected:
        return
    bugs = {
        "A only": "only A counted? LoRA adds two matrices per layer: A (r x d_in) and B (d_out x r).",
        "B only": "only B counted? LoRA adds two matrices per layer: A (r x d_in) and B (d_out x r).",
        "with bias": "the layer's bias counted? It belongs to the frozen base layer; LoRA adds only A and B.",
        "base weight": "counted the frozen layer's own weights (d_in x d_out): LoRA adds r * (d_in + d_out).",
        "r squared": "r * r per layer? A is r x d_in and B is d_out x r: r * (d_in + d_out).",
        "every linear": "every nn.Linear counted? Only the modules whose name (its last part, e.g. "
                        "'q_proj') is in target_modules get adapters.",
    }
    for part, message in bugs.items():
        if got == _lora_variant(model, targets, r, part) and got != expected:
            raise CheckFailed(f"{name}: {message} (expected {expected:,}, got {got:,})")
    raise CheckFailed(f"{name}: expected {expected:,}, got {got:,}. {hint}")

