"""The checks of 13_multimodal pass correct answers and catch the stub and plausible bugs."""
import math
import re

import pytest
import torch
import torch.nn.functional as F

from genai_roadmap.checks import CheckFailed
from genai_roadmap.checks import multimodal as check


def stub(*args, **kwargs):
    raise NotImplementedError


# ------------------------------------------------------------------ clip_loss
def make_clip(normalize=True, scale="divide", directions="both", labels="arange"):
    def clip_loss(image_emb, text_emb, temperature):
        if normalize:
            image_emb, text_emb = F.normalize(image_emb, dim=-1), F.normalize(text_emb, dim=-1)
        sims = image_emb @ text_emb.T
        logits = sims / temperature if scale == "divide" else sims * temperature
        target = torch.arange(len(logits)) if labels == "arange" else torch.arange(len(logits)).flip(0)
        i2t, t2i = F.cross_entropy(logits, target), F.cross_entropy(logits.T, target)
        return {"both": (i2t + t2i) / 2, "image": i2t, "sum": i2t + t2i}[directions]

    return clip_loss


# ------------------------------------------------------------------ zero_shot_classify
def zero_shot(image_emb, class_emb):
    return (F.normalize(image_emb, dim=-1) @ F.normalize(class_emb, dim=-1).T).argmax(dim=1)


def zero_shot_dot(image_emb, class_emb):
    return (image_emb @ class_emb.T).argmax(dim=1)


def zero_shot_wrong_dim(image_emb, class_emb):
    return (F.normalize(image_emb, dim=-1) @ F.normalize(class_emb, dim=-1).T).argmax(dim=0)


def zero_shot_scores(image_emb, class_emb):
    return F.normalize(image_emb, dim=-1) @ F.normalize(class_emb, dim=-1).T


# ------------------------------------------------------------------ q_sample
def make_q_sample(cumulative=True, sqrt=True, offset=0):
    def q_sample(x0, t, noise, betas):
        alphas = 1 - betas
        abar = torch.cumprod(alphas, 0) if cumulative else alphas
        if offset == -1:
            abar = torch.cat([torch.ones(1), abar[:-1]])
        a = abar[t].view(-1, *([1] * (x0.dim() - 1)))
        return (a.sqrt() * x0 + (1 - a).sqrt() * noise) if sqrt else (a * x0 + (1 - a) * noise)

    return q_sample


def q_sample_swapped(x0, t, noise, betas):
    a = torch.cumprod(1 - betas, 0)[t].view(-1, *([1] * (x0.dim() - 1)))
    return (1 - a).sqrt() * x0 + a.sqrt() * noise


# ------------------------------------------------------------------ mel_filterbank
def make_mel(log="log10", spacing="mel", normalize=True, full_bins=False, transpose=False):
    def hz_to_mel(f):
        return 2595 * (math.log10(1 + f / 700) if log == "log10" else math.log(1 + f / 700))

    def mel_to_hz(m):
        return 700 * (10 ** (m / 2595) - 1)  # the "ln" bug: natural log one way, 10 ** the other

    def mel_filterbank(n_mels, n_fft, sample_rate, f_min=0.0, f_max=None):
        f_max = sample_rate / 2 if f_max is None else f_max
        if spacing == "mel":
            m = torch.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2)
            f = torch.tensor([mel_to_hz(v) for v in m.tolist()])
        else:
            f = torch.linspace(f_min, f_max, n_mels + 2)
        freqs = torch.arange(n_fft // 2 + 1) * (sample_rate if not full_bins else 2 * sample_rate) / n_fft
        fb = torch.zeros(n_mels, n_fft // 2 + 1)
        for i in range(n_mels):
            up = (freqs - f[i]) / (f[i + 1] - f[i])
            down = (f[i + 2] - freqs) / (f[i + 2] - f[i + 1])
            fb[i] = torch.clamp(torch.minimum(up, down), min=0)
            if normalize:
                fb[i] *= 2 / (f[i + 2] - f[i])
        return fb.T if transpose else fb

    return mel_filterbank


CASES = {
    "clip_loss": (make_clip(), {
        "one direction": (make_clip(directions="image"), "one direction"),
        "summed": (make_clip(directions="sum"), "summed"),
        "not normalized": (make_clip(normalize=False), "not L2-normalized"),
        "temperature multiplied": (make_clip(scale="multiply"), "multiplied by the temperature"),
        "labels wrong": (make_clip(labels="flipped"), "values differ"),
    }),
    "zero_shot_classify": (zero_shot, {
        "dot product": (zero_shot_dot, "raw dot products"),
        "wrong dim": (zero_shot_wrong_dim, "shape"),
        "scores returned": (zero_shot_scores, "shape"),
    }),
    "q_sample": (make_q_sample(), {
        "alpha not alpha-bar": (make_q_sample(cumulative=False), "cumulative product"),
        "no sqrt": (make_q_sample(sqrt=False), "square roots missing"),
        "off by one": (make_q_sample(offset=-1), "off by one"),
        "swapped": (q_sample_swapped, "swapped"),
    }),
    "mel_filterbank": (make_mel(), {
        "natural log": (make_mel(log="ln"), "do not invert each other"),
        "linear in Hz": (make_mel(spacing="hz"), "evenly in Hz"),
        "not normalized": (make_mel(normalize=False), "not area-normalized"),
        "bins wrong": (make_mel(full_bins=True), "bin frequencies"),
        "transposed": (make_mel(transpose=True), "transposed"),
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


def test_clip_reference_equals_the_textbook_formula():
    # -1/2B * sum_i [log softmax_j(s_ij / tau)_i + log softmax_j(s_ji / tau)_i], written out by hand
    g = torch.Generator().manual_seed(5)
    a, b = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    s = F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T / 0.2
    by_hand = -(s.diag() - s.logsumexp(1)).mean() / 2 - (s.diag() - s.logsumexp(0)).mean() / 2
    torch.testing.assert_close(check.clip_loss_reference(a, b, 0.2), by_hand)


def test_mel_reference_peaks_and_bands():
    fb = check.mel_filterbank_reference(20, 512, 8000, 0.0, 4000.0)
    assert fb.shape == (20, 257) and bool((fb >= 0).all())
    peaks = fb.argmax(1)
    assert bool((peaks[1:] >= peaks[:-1]).all()), "filter centres increase with frequency"
    widths = (fb > 0).sum(1)
    assert widths[-1] > widths[0], "mel bands widen with frequency"
    # the first edge is f_min and the last f_max: no energy outside [f_min, f_max]
    fb2 = check.mel_filterbank_reference(10, 512, 8000, 300.0, 2000.0)
    freqs = torch.arange(257) * 8000 / 512
    assert float(fb2[:, (freqs < 300) | (freqs > 2000)].abs().sum()) == 0.0


def test_q_sample_reference_keeps_unit_variance():
    betas = torch.linspace(1e-4, 0.05, 50)
    x0, noise = torch.randn(20000, 1), torch.randn(20000, 1)
    xt = check.q_sample_reference(x0, torch.full((20000,), 30), noise, betas)
    assert abs(float(xt.std()) - 1.0) < 0.03, "variance preserving: unit-variance x0 stays unit-variance"
