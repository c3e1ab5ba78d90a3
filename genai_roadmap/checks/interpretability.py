"""Checks for phase5_frontier/22_interpretability.ipynb.

Each check runs the learner's function on small seeded inputs, compares it with the reference below (torch's
RMSNorm, a hand-built attention pattern, the textbook formulas) and one hand-worked case, and when the answer
is wrong compares it with the usual wrong answers to name the likely bug.
"""
from __future__ import annotations

from typing import Callable

from genai_roadmap.checks._common import (
    CheckFailed,
    call,
    close,
    expect,
    expect_shape,
    expect_tensor,
    generator,
    name_the_bug,
    passed,
)


# ------------------------------------------------------------------------------- exercise 1
def reference_logit_lens(hidden, norm, W_U):
    """Decode every layer's residual stream with the model's own head: logits = norm(hidden) @ W_U.T."""
    return norm(hidden) @ W_U.T


def logit_lens(fn: Callable) -> None:
    """Exercise 1: `fn(hidden, norm, W_U)` -> logits (n_layers + 1, T, vocab_size)."""
    import torch

    name = "logit_lens"
    g = generator(22)
    n_layers, T, d_model, vocab_size = 3, 5, 16, 40
    hidden = torch.randn(n_layers + 1, T, d_model, generator=g) * torch.linspace(1, 30, n_layers + 1)[:, None, None]
    norm = torch.nn.RMSNorm(d_model, eps=1e-6)
    with torch.no_grad():
        norm.weight.copy_(0.5 + torch.rand(d_model, generator=g))  # not all ones: skipping it is visible
    W_U = torch.randn(vocab_size, d_model, generator=g) / d_model ** 0.5
    with torch.no_grad():
        got = expect_tensor(name, call(name, fn, hidden.clone(), norm, W_U.clone()), "the logits")
        want = reference_logit_lens(hidden, norm, W_U)
        expect_shape(got, want.shape, name, "the logits")
        if close(got, want, atol=1e-4):
            top = want[-1].argmax(-1)
            expect(torch.equal(got[-1].argmax(-1), top), name, "the top token of the last layer differs")
            passed(name, f"norm then unembed at every layer, shape {tuple(got.shape)}")
            return
        wrong = {
            "the final norm is missing: the model applies model.model.norm before lm_head, so must the lens "
            "(without it, early layers with a small or large residual norm decode to the wrong scale)":
                hidden @ W_U.T,
            "those are probabilities: return the logits (no softmax)": torch.softmax(want, -1),
            "those are log-probabilities: return the logits (no log_softmax)": torch.log_softmax(want, -1),
            "a plain unit-RMS normalisation without the norm's learned weight: call the model's norm module":
                torch.nn.functional.rms_norm(hidden, (d_model,), eps=1e-6) @ W_U.T,
            "normalised over the wrong axis: RMSNorm normalises each position's d_model vector (the last axis)":
                (hidden / hidden.pow(2).mean(0, keepdim=True).add(1e-6).sqrt() * norm.weight) @ W_U.T,
        }
        name_the_bug(name, got, wrong, 1e-4)
    raise CheckFailed(f"{name}: the logits differ from norm(hidden) @ W_U.T; apply the final norm to every layer's "
                      "hidden state, then multiply by the unembedding (lm_head.weight) transposed")


# ------------------------------------------------------------------------------- exercise 2
def reference_induction_score(attn, seq_len):
    """Mean attention, over the batch and the second repeat of [bos, x, x], from each token to the token right
    after its earlier occurrence: destination i = 1 + seq_len + k attends to source i - seq_len + 1."""
    import torch

    dest = torch.arange(1 + seq_len, 1 + 2 * seq_len)
    return attn[:, :, dest, dest - seq_len + 1].mean(dim=(0, 2))


def _pattern(B, n_heads, seq_len, g):
    """Random causal attention with one head of each kind planted: induction, duplicate-token, previous-token."""
    import torch

    S = 1 + 2 * seq_len
    scores = torch.randn(B, n_heads, S, S, generator=g)
    i = torch.arange(S)
    second = i >= 1 + seq_len
    for h, offset in ((0, seq_len - 1), (1, seq_len), (2, 1)):  # induction, duplicate, previous token
        rows = i[second] if h < 2 else i[1:]
        scores[:, h, rows, rows - offset] += 6.0
    causal = torch.ones(S, S, dtype=torch.bool).tril()
    return torch.softmax(scores.masked_fill(~causal, float("-inf")), dim=-1)


def induction_score(fn: Callable) -> None:
    """Exercise 2: `fn(attn, seq_len)` -> (n_heads,) induction score per head."""
    import torch

    name = "induction_score"
    B, n_heads, seq_len = 3, 5, 7
    attn = _pattern(B, n_heads, seq_len, generator(2))
    got = expect_tensor(name, call(name, fn, attn.clone(), seq_len), "the scores")
    want = reference_induction_score(attn, seq_len)
    expect_shape(got, want.shape, name, "the scores (one per head, averaged over the batch and positions)")
    if not close(got, want, atol=1e-5):
        S = 1 + 2 * seq_len
        dest = torch.arange(1 + seq_len, S)
        all_rows = torch.arange(seq_len, S)  # includes the position of the last token of the first repeat
        wrong = {
            "that is the duplicate-token score (attention to the earlier copy of the same token): an induction head "
            "looks one further, at the token that came *after* it (source = i - seq_len + 1)":
                attn[:, :, dest, dest - seq_len].mean((0, 2)),
            "that is the previous-token score (source = i - 1): the induction head attends to the token after the "
            "earlier occurrence, source = i - seq_len + 1": attn[:, :, dest, dest - 1].mean((0, 2)),
            "off by one: the second repeat starts at position 1 + seq_len, since position 0 is bos (the first "
            "repeat occupies positions 1..seq_len)":
                attn[:, :, all_rows[:-1], all_rows[:-1] - seq_len + 1].mean((0, 2)),
            "summed instead of averaged over the destination positions": attn[:, :, dest, dest - seq_len + 1]
                .mean(0).sum(-1),
        }
        name_the_bug(name, got, wrong, 1e-5)
        raise CheckFailed(f"{name}: expected {[round(v, 3) for v in want.tolist()]}, got "
                          f"{[round(v, 3) for v in got.tolist()]}: average attn[:, h, i, i - seq_len + 1] over the "
                          "batch and over i = 1 + seq_len ... 2 * seq_len")
    expect(int(got.argmax()) == 0, name, "the planted induction head (head 0) should score highest")
    uniform = torch.full((1, 1, 1 + 2 * 3, 1 + 2 * 3), 0.0)
    uniform[0, 0] = torch.ones(7, 7).tril() / torch.arange(1, 8)[:, None]
    hand = call(name, fn, uniform, 3)
    expect(close(expect_tensor(name, hand, "the scores"), torch.tensor([(1 / 5 + 1 / 6 + 1 / 7) / 3]), atol=1e-6), name,
           "on uniform causal attention over [bos, a, b, c, a, b, c] the score is the mean of 1/5, 1/6, 1/7")
    passed(name, f"planted induction head scores {got[0]:.2f}, duplicate-token head {got[1]:.2f}, "
                 f"previous-token head {got[2]:.2f}")


# ------------------------------------------------------------------------------- exercise 3
def reference_logit_diff_recovered(patched, clean, corrupted, answer, wrong):
    """(LD_patched - LD_corrupted) / (LD_clean - LD_corrupted), LD = logit[answer] - logit[wrong].

    `patched` is (N, vocab) (one row per patched run), `clean` and `corrupted` are (vocab,): 1 where the patch
    restores the clean answer's lead, 0 where it changes nothing."""
    def ld(logits):
        return logits[..., answer] - logits[..., wrong]

    return (ld(patched) - ld(corrupted)) / (ld(clean) - ld(corrupted))


def logit_diff_recovered(fn: Callable) -> None:
    """Exercise 3: `fn(patched, clean, corrupted, answer, wrong)` -> (N,) fraction of the logit difference restored."""
    import torch

    name = "logit_diff_recovered"
    g = generator(3)
    vocab, answer, wrong = 30, 4, 11
    clean, corrupted = torch.randn(vocab, generator=g), torch.randn(vocab, generator=g)
    clean[answer], clean[wrong] = 5.0, 1.0      # clean run: answer ahead by 4
    corrupted[answer], corrupted[wrong] = 0.5, 3.5  # corrupted run: wrong ahead by 3
    t = torch.tensor([0.0, 1.0, 0.5, 0.25, -0.2])  # how much each patched run restores
    patched = torch.randn(len(t), vocab, generator=g) + 2.0
    patched[:, answer] = corrupted[answer] + t * (clean[answer] - corrupted[answer])
    patched[:, wrong] = corrupted[wrong] + t * (clean[wrong] - corrupted[wrong])
    patched[:, [answer, wrong]] += torch.randn(len(t), 1, generator=g)  # a shift common to both: LD unchanged
    got = expect_tensor(name, call(name, fn, patched.clone(), clean.clone(), corrupted.clone(), answer, wrong),
                  "the recovered fractions")
    want = reference_logit_diff_recovered(patched, clean, corrupted, answer, wrong)
    expect_shape(got, want.shape, name, "the result (one fraction per patched run)")
    if close(got, want, atol=1e-5):
        passed(name, "0 for no effect, 1 for a full restore, "
                     f"{[round(v, 2) for v in got.tolist()]} on the hand-built runs")
        return

    def ld(x):
        return x[..., answer] - x[..., wrong]

    p = torch.softmax(patched, -1)
    pc, px = torch.softmax(clean, -1), torch.softmax(corrupted, -1)
    bad = {
        "not normalised: divide by LD_clean - LD_corrupted so that a full restore scores 1":
            ld(patched) - ld(corrupted),
        "divided by LD_clean only: subtract the corrupted baseline from both, (LD_patched - LD_corr) / "
        "(LD_clean - LD_corr)": ld(patched) / ld(clean),
        "that is the fraction *still missing* (1 - recovered): an effective patch must score near 1":
            1 - want,
        "that uses probabilities, not logits: the logit difference is logits[answer] - logits[wrong]":
            ((p[:, answer] - p[:, wrong]) - (px[answer] - px[wrong])) / ((pc[answer] - pc[wrong]) - (px[answer] - px[wrong])),
        "only the answer's logit: the metric is the *difference* logit[answer] - logit[wrong], which cancels "
        "shifts common to all tokens": (patched[:, answer] - corrupted[answer]) / (clean[answer] - corrupted[answer]),
    }
    for bug, answer_ in bad.items():
        if close(got, answer_, atol=1e-5):
            raise CheckFailed(f"{name}: {bug}")
    raise CheckFailed(f"{name}: expected {[round(v, 3) for v in want.tolist()]}, got "
                      f"{[round(v, 3) for v in got.tolist()]}: (LD_patched - LD_corrupted) / (LD_clean - LD_corrupted)")


# ------------------------------------------------------------------------------- exercise 4
def reference_sae_forward(x, W_enc, b_enc, W_dec, b_dec, k):
    """A top-k sparse autoencoder (Gao et al. 2024): f = TopK(ReLU((x - b_dec) @ W_enc + b_enc)), x_hat = f @ W_dec + b_dec."""
    import torch

    pre = torch.relu((x - b_dec) @ W_enc + b_enc)
    values, indices = pre.topk(k, dim=-1)
    f = torch.zeros_like(pre).scatter(-1, indices, values)
    return f @ W_dec + b_dec, f


def _topk(pre, k):
    import torch

    values, indices = pre.topk(k, dim=-1)
    return torch.zeros_like(pre).scatter(-1, indices, values)


def sae_forward(fn: Callable) -> None:
    """Exercise 4: `fn(x, W_enc, b_enc, W_dec, b_dec, k)` -> (x_hat (N, d_model), f (N, d_sae))."""
    import torch

    name = "sae_forward"
    g = generator(4)
    N, d_model, d_sae, k = 12, 8, 32, 4
    x = torch.randn(N, d_model, generator=g) + 3.0
    W_enc = torch.randn(d_model, d_sae, generator=g) / d_model ** 0.5
    b_enc = torch.randn(d_sae, generator=g) * 0.1 - 0.2
    b_enc[: 3 * d_sae // 4] -= 6.0  # most units are off: some rows have fewer than k positive pre-activations
    W_dec = torch.randn(d_sae, d_model, generator=g) / d_sae ** 0.5
    b_dec = torch.full((d_model,), 3.0) + 0.1 * torch.randn(d_model, generator=g)
    out = call(name, fn, x.clone(), W_enc.clone(), b_enc.clone(), W_dec.clone(), b_dec.clone(), k)
    expect(isinstance(out, (tuple, list)) and len(out) == 2, name,
           f"return the pair (x_hat, f), got {type(out).__name__}")
    x_hat, f = (expect_tensor(name, t, w) for t, w in zip(out, ("x_hat", "f")))
    want_x, want_f = reference_sae_forward(x, W_enc, b_enc, W_dec, b_dec, k)
    expect_shape(f, want_f.shape, name, "f (one activation per feature)")
    expect_shape(x_hat, want_x.shape, name, "x_hat")
    if close(f, want_f, atol=1e-5) and close(x_hat, want_x, atol=1e-4):
        l0 = (f > 0).sum(-1).float().mean()
        passed(name, f"top-{k} of ReLU, L0 {l0:.2f} (rows with fewer than {k} positive pre-activations keep fewer)")
        return
    if close(f, want_f, atol=1e-5):
        if close(x_hat, want_f @ W_dec, atol=1e-4):
            raise CheckFailed(f"{name}: the decoder bias is missing from x_hat = f @ W_dec + b_dec")
        raise CheckFailed(f"{name}: f is right but x_hat differs from f @ W_dec + b_dec")
    pre = (x - b_dec) @ W_enc + b_enc
    wrong_f = {
        "the decoder bias is not subtracted before encoding: f = TopK(ReLU((x - b_dec) @ W_enc + b_enc))":
            _topk(torch.relu(x @ W_enc + b_enc), k),
        "no ReLU: top-k of the raw pre-activations keeps negative values in rows with fewer than k positive ones":
            _topk(pre, k),
        "top-k by absolute value: the large negative pre-activations are not features that fire; ReLU first":
            torch.zeros_like(pre).scatter(-1, pre.abs().topk(k, -1).indices, torch.relu(pre).gather(
                -1, pre.abs().topk(k, -1).indices)),
        "no top-k: keep only the k largest activations per row (ReLU alone is dense)": torch.relu(pre),
        "top-k over the wrong axis: keep the k largest features of each row (dim=-1), not of each feature":
            torch.zeros_like(pre).scatter(0, torch.relu(pre).topk(k, dim=0).indices,
                                          torch.relu(pre).topk(k, dim=0).values),
    }
    for bug, answer in wrong_f.items():
        if close(f, answer, atol=1e-5):
            raise CheckFailed(f"{name}: {bug}")
    raise CheckFailed(f"{name}: f differs from TopK(ReLU((x - b_dec) @ W_enc + b_enc)): keep the k largest ReLU "
                      "activations of each row and zero the rest")
