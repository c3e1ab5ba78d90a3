"""Checks for phase3_architecture/13_multimodal.ipynb.

Each check calls the learner's function on small seeded inputs, compares it with a short reference
below (torch's cross-entropy for the CLIP loss, the DDPM paper's formula, librosa's mel filterbank
formula with htk=True) and one hand-worked case, and on a wrong answer compares it with the usual
wrong answers to name the likely bug.
"""
from __future__ import annotations

import math
from typing import Callable

from genai_roadmap.checks._common import CheckFailed, call, compare, expect, expect_close, generator, passed

# ----------------------------------------------------------------------------------------- helpers


# ------------------------------------------------------------------------------- exercise 1


def clip_loss_reference(image_emb, text_emb, temperature, directions: str = "both", normalize: bool = True,
                        scale: str = "divide", labels: str = "diagonal"):
    """The symmetric contrastive (InfoNCE) loss of CLIP; the knobs reproduce the usual bugs.

    Taught in phase3_architecture/13_multimodal.ipynb.
    """
    import torch
    import torch.nn.functional as F

    if normalize:
        image_emb, text_emb = F.normalize(image_emb, dim=-1), F.normalize(text_emb, dim=-1)
    sims = image_emb @ text_emb.T  # (B, B): image i against caption j
    logits = sims / temperature if scale == "divide" else sims * temperature
    B = logits.shape[0]
    target = torch.arange(B) if labels == "diagonal" else torch.zeros(B, dtype=torch.long)
    i2t, t2i = F.cross_entropy(logits, target), F.cross_entropy(logits.T, target)
    return {"both": (i2t + t2i) / 2, "image": i2t, "text": t2i, "sum": i2t + t2i}[directions]


def _clip_wrong(*args) -> dict:
    return {
        "only one direction? CLIP averages image->text and text->image: "
        "(cross_entropy(logits, labels) + cross_entropy(logits.T, labels)) / 2.":
            clip_loss_reference(*args, directions="image"),
        "only the text->image direction? Average it with image->text.":
            clip_loss_reference(*args, directions="text"),
        "the two directions summed, not averaged? Divide by 2.": clip_loss_reference(*args, directions="sum"),
        "embeddings not L2-normalized? CLIP compares directions: F.normalize(x, dim=-1) both sides first.":
            clip_loss_reference(*args, normalize=False),
        "similarities multiplied by the temperature? Divide: logits = sims / temperature "
        "(a small temperature sharpens the softmax).": clip_loss_reference(*args, scale="multiply"),
        "wrong labels? Image i's caption is caption i: labels = torch.arange(B).":
            clip_loss_reference(*args, labels="zeros"),
    }


def clip_loss(fn: Callable) -> None:
    """Exercise 1: `fn(image_emb, text_emb, temperature)` is CLIP's symmetric InfoNCE loss, a scalar."""
    import torch

    name = "clip_loss"
    # hand-worked: two perfectly matched, orthogonal pairs at temperature 1: each row's softmax is
    # (e, 1) / (e + 1), so both directions give -log(e / (e + 1)) = log(1 + 1/e)
    eye = torch.eye(2)
    got = call(name, fn, eye, 3 * eye, 1.0)
    got_t = torch.as_tensor(got)
    expect(got_t.numel() == 1, name, f"return one number (a 0-d tensor), got shape {tuple(got_t.shape)}; "
           "average the cross-entropy over the batch")
    compare(name, got_t.reshape(()), torch.tensor(math.log(1 + 1 / math.e)), _clip_wrong(eye, 3 * eye, 1.0),
             "hand-worked case: two orthogonal matched pairs at temperature 1 give log(1 + 1/e) = 0.3133")

    g = generator(0)
    B, d = 6, 8
    image_emb = torch.randn(B, d, generator=g) * 2
    text_emb = image_emb + torch.randn(B, d, generator=g)  # matched pairs are similar, but not exactly
    text_emb[:, 0] *= 3                                     # norms differ, so normalizing matters
    for temperature in (0.07, 0.5):
        args = (image_emb, text_emb, temperature)
        expected = clip_loss_reference(*args)
        wrong = _clip_wrong(*args)
        compare(name, torch.as_tensor(call(name, fn, *args)).reshape(()), expected, wrong,
                 "normalize, logits = img @ txt.T / temperature, labels arange(B), average both directions",
                 atol=1e-4)
    passed(name, "symmetric InfoNCE over normalized embeddings matches the reference at two temperatures")


# ------------------------------------------------------------------------------- exercise 2


def zero_shot_classify(fn: Callable) -> None:
    """Exercise 2: `fn(image_emb, class_text_emb)` is the index of the most cosine-similar class, (N,) long."""
    import torch
    import torch.nn.functional as F

    name = "zero_shot_classify"
    # hand-worked: the class [10, 1] has the larger dot product with [1, 0] but the smaller cosine
    images = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    classes = torch.tensor([[10.0, 1.0], [0.1, 0.0], [0.0, 0.1], [1.0, 1.2]])
    got = torch.as_tensor(call(name, fn, images, classes))
    expect(tuple(got.shape) == (3,), name, f"return one class index per image, shape (3,), got {tuple(got.shape)}"
           "; take the argmax over the classes (dim=1) of the (N, C) similarity matrix")
    expect(not got.is_floating_point(), name, "return integer class indices (argmax), not similarities")
    dots = (images @ classes.T).argmax(1)
    if torch.equal(got, dots):
        raise CheckFailed(f"{name}: ranking by raw dot products? Cosine similarity needs both sides "
                          "L2-normalized (a long text vector would win everything)")
    expect(got.tolist() == [1, 2, 3], name, f"hand-worked case: expected [1, 2, 3], got {got.tolist()}")

    g = generator(1)
    N, C, d = 7, 4, 5
    image_emb = torch.randn(N, d, generator=g) * torch.rand(N, 1, generator=g) * 5
    class_emb = torch.randn(C, d, generator=g) * torch.rand(C, 1, generator=g) * 5
    expected = (F.normalize(image_emb, dim=-1) @ F.normalize(class_emb, dim=-1).T).argmax(1)
    got = torch.as_tensor(call(name, fn, image_emb, class_emb))
    expect(tuple(got.shape) == (N,), name, f"expected shape ({N},), one class per image, got {tuple(got.shape)}"
           + ("; argmax over the classes (dim=1), not the images" if tuple(got.shape) == (C,) else ""))
    if not torch.equal(got.long(), expected):
        if torch.equal(got.long(), (image_emb @ class_emb.T).argmax(1)):
            raise CheckFailed(f"{name}: ranking by raw dot products? Normalize both sides (cosine similarity)")
        raise CheckFailed(f"{name}: expected {expected.tolist()}, got {got.tolist()}")
    passed(name, "picks the class caption with the highest cosine similarity")


# ------------------------------------------------------------------------------- exercise 3


def q_sample_reference(x0, t, noise, betas, use: str = "alpha_bar", sqrt: bool = True, shift: int = 0,
                       swap: bool = False):
    """DDPM's forward noising x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise; knobs reproduce the usual bugs.

    t is 0-based: abar_t = prod_{s <= t} (1 - beta_s). Taught in phase3_architecture/13_multimodal.ipynb.
    """
    import torch

    alphas = 1 - betas
    abar = torch.cumprod(alphas, 0) if use == "alpha_bar" else alphas
    if shift:  # off by one: abar of the step before (1 before the first step) or after
        abar = torch.cat([torch.ones(1, dtype=abar.dtype), abar[:-1]]) if shift < 0 else \
            torch.cat([abar[1:], abar[-1:]])
    a = abar[t].view(-1, *([1] * (x0.dim() - 1)))  # (B, 1, ...) broadcasts over the image
    keep, add = (a.sqrt(), (1 - a).sqrt()) if sqrt else (a, 1 - a)
    if swap:
        keep, add = add, keep
    return keep * x0 + add * noise


def _q_wrong(*args) -> dict:
    return {
        "used alpha_t = 1 - beta_t instead of the cumulative product alpha_bar_t = prod_{s<=t} alpha_s?":
            q_sample_reference(*args, use="alpha"),
        "square roots missing? x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) noise.":
            q_sample_reference(*args, sqrt=False),
        "off by one in t? With 0-based t, alpha_bar_t = cumprod(1 - betas)[t] includes step t itself.":
            q_sample_reference(*args, shift=-1),
        "off by one in t (one step too far)? alpha_bar_t = cumprod(1 - betas)[t].":
            q_sample_reference(*args, shift=1),
        "x0 and noise swapped? The signal keeps sqrt(alpha_bar_t), the noise gets sqrt(1 - alpha_bar_t).":
            q_sample_reference(*args, swap=True),
    }


def q_sample(fn: Callable) -> None:
    """Exercise 3: `fn(x0, t, noise, betas)` is sqrt(abar_t) x0 + sqrt(1 - abar_t) noise."""
    import torch

    name = "q_sample"
    # hand-worked: betas (0.5, 0.2): abar_1 = 0.5 * 0.8 = 0.4, so x_1 = sqrt(0.4) x0 + sqrt(0.6) noise
    x0, noise = torch.ones(1, 2), torch.tensor([[0.0, 2.0]])
    hand = (x0, torch.tensor([1]), noise, torch.tensor([0.5, 0.2]))
    compare(name, call(name, fn, *hand), torch.tensor([[math.sqrt(0.4), math.sqrt(0.4) + 2 * math.sqrt(0.6)]]),
             _q_wrong(*hand), "hand-worked case: betas (0.5, 0.2), t=1: alpha_bar = 0.4, "
             "x_t = sqrt(0.4) x0 + sqrt(0.6) noise")

    g = generator(2)
    T = 10
    betas = torch.linspace(0.05, 0.4, T)
    x0 = torch.randn(5, 1, 4, 4, generator=g)  # (B, C, H, W)
    noise = torch.randn(5, 1, 4, 4, generator=g)
    t = torch.tensor([0, 3, 9, 5, 1])
    args = (x0, t, noise, betas)
    wrong = _q_wrong(*args)
    compare(name, call(name, fn, *args), q_sample_reference(*args), wrong,
             "alpha_bar = torch.cumprod(1 - betas, 0); a = alpha_bar[t].view(-1, 1, 1, 1)")
    passed(name, "x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) noise, per example t, any image shape")


# ------------------------------------------------------------------------------- exercise 4


def mel_filterbank_reference(n_mels: int, n_fft: int, sample_rate: int, f_min: float = 0.0,
                             f_max: float | None = None, mel: str = "htk", spacing: str = "mel",
                             normalize: bool = True, bins: str = "half"):
    """Triangular mel filters (n_mels, n_fft // 2 + 1), as librosa.filters.mel(htk=True) (area-normalized).

    The knobs reproduce the usual bugs. Taught in phase3_architecture/13_multimodal.ipynb.
    """
    import torch

    f_max = sample_rate / 2 if f_max is None else f_max
    log = math.log10 if mel == "htk" else math.log  # "ln": the natural log with log10's 2595, not inverted

    def hz_to_mel(f):
        return 2595.0 * log(1.0 + f / 700.0)

    def mel_to_hz(m):
        return 700.0 * (10 ** (m / 2595.0) - 1.0)

    n_points = n_mels + 2  # n_mels triangles need n_mels + 2 edges
    if spacing == "mel":
        mels = torch.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_points, dtype=torch.float64)
        hz = torch.tensor([mel_to_hz(m) for m in mels.tolist()], dtype=torch.float64)
    else:
        hz = torch.linspace(f_min, f_max, n_points, dtype=torch.float64)
    top = sample_rate / 2 if bins == "half" else sample_rate
    freqs = torch.linspace(0, top, n_fft // 2 + 1, dtype=torch.float64)  # (n_freqs,): bin k is k * sr / n_fft
    left, centre, right = hz[:-2, None], hz[1:-1, None], hz[2:, None]  # (n_mels, 1) each
    up = (freqs - left) / (centre - left)
    down = (right - freqs) / (right - centre)
    fb = torch.clamp(torch.minimum(up, down), min=0.0)  # (n_mels, n_freqs)
    if normalize:  # Slaney-style: every triangle has the same area, so wide high bands are not louder
        fb = fb * (2.0 / (right - left))
    return fb.float()


def mel_filterbank(fn: Callable) -> None:
    """Exercise 4: `fn(n_mels, n_fft, sample_rate, f_min, f_max)` is librosa's htk mel filterbank, area-normalized."""
    import torch

    name = "mel_filterbank"
    for n_mels, n_fft, sr, f_min, f_max in ((10, 64, 8000, 0.0, 4000.0), (16, 256, 16000, 50.0, 6000.0)):
        args = (n_mels, n_fft, sr, f_min, f_max)
        got = torch.as_tensor(call(name, fn, *args))
        n_freqs = n_fft // 2 + 1
        if tuple(got.shape) == (n_freqs, n_mels) and n_freqs != n_mels:
            raise CheckFailed(f"{name}: transposed? Return (n_mels, n_fft // 2 + 1) = {(n_mels, n_freqs)}, one row "
                              "per filter, so that fb @ power_spectrum gives the mel energies")
        expected = mel_filterbank_reference(*args)
        wrong = {
            "filters not area-normalized? Multiply filter m by 2 / (f[m+2] - f[m]), its width in Hz (Slaney norm).":
                mel_filterbank_reference(*args, normalize=False),
            "Hz -> mel and mel -> Hz do not invert each other (natural log one way, 10 ** the other?) "
            "HTK: mel = 2595 * log10(1 + f / 700), f = 700 * (10 ** (mel / 2595) - 1).":
                mel_filterbank_reference(*args, mel="ln"),
            "band edges spaced evenly in Hz? Space n_mels + 2 points evenly on the mel scale, then convert to Hz.":
                mel_filterbank_reference(*args, spacing="hz"),
            "bin frequencies wrong? FFT bin k is at k * sample_rate / n_fft, from 0 to sample_rate / 2.":
                mel_filterbank_reference(*args, bins="full"),
        }
        compare(name, got, expected, wrong, "n_mels + 2 edges evenly spaced in mel; triangle m rises from "
                 "f[m] to f[m+1] and falls to f[m+2]; scale by 2 / (f[m+2] - f[m])", atol=1e-6)
    # hand-worked: each area-normalized triangle integrates to about 1 over frequency (Hz)
    fb = torch.as_tensor(call(name, fn, 8, 4096, 16000, 0.0, 8000.0)).double()
    area = fb.sum(1) * 16000 / 4096
    expect_close(area, torch.ones(8, dtype=torch.float64), name,
                 "each filter's area (sum x bin width) should be about 1 after the 2 / width normalization",
                 atol=0.05)
    passed(name, "matches librosa.filters.mel(htk=True)'s formula: mel-spaced, triangular, area-normalized")
