"""The course's generated multimodal data: coloured shapes as small images, notes and chords as audio.

Nothing is downloaded: every image and clip is rendered from a seed, so a notebook gets the same data
on every run. Used by phase3_architecture/13_multimodal.ipynb.

    >>> images, labels = shapes_dataset(4, seed=0)
    >>> images.shape, labels.shape          # (n, 3, size, size) RGB in [0, 1]; (n, 3) = colour, shape, position
    (torch.Size([4, 3, 16, 16]), torch.Size([4, 3]))
    >>> caption(*labels[0].tolist())
    'a yellow square on the right'
"""
from __future__ import annotations

import math

COLOURS = ("red", "green", "blue", "yellow")
COLOUR_RGB = {"red": (0.9, 0.15, 0.1), "green": (0.15, 0.8, 0.2), "blue": (0.15, 0.3, 0.95),
              "yellow": (0.95, 0.85, 0.1)}
SHAPES = ("circle", "square", "triangle", "cross")
POSITIONS = ("left", "right")
SAMPLE_RATE = 8000  # Hz: enough for notes up to ~1 kHz and their first harmonics
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
CHORD_INTERVALS = {"major": (0, 4, 7), "minor": (0, 3, 7)}  # semitones above the root


def caption(colour: int, shape: int, position: int) -> str:
    """The caption of an image from its label indices: caption(0, 0, 0) == 'a red circle on the left'."""
    return f"a {COLOURS[colour]} {SHAPES[shape]} on the {POSITIONS[position]}"


def shape_mask(shape: str, cx: float, cy: float, radius: float, size: int = 16):
    """A (size, size) float mask in {0, 1} of `shape` centred at (cx, cy) (pixels, x to the right, y down)."""
    import torch

    y, x = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                          indexing="ij")
    dx, dy = x - cx, y - cy
    if shape == "circle":
        m = dx**2 + dy**2 <= radius**2
    elif shape == "square":
        m = (dx.abs() <= 0.8 * radius) & (dy.abs() <= 0.8 * radius)
    elif shape == "triangle":  # pointing up: the half-width grows from 0 at the apex to `radius` at the base
        m = (dy >= -radius) & (dy <= 0.8 * radius) & (dx.abs() <= (dy + radius) / 1.8)
    elif shape == "cross":
        m = ((dx.abs() <= 0.9) & (dy.abs() <= radius)) | ((dy.abs() <= 0.9) & (dx.abs() <= radius))
    else:
        raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")
    return m.float()


def render_shape(colour: int, shape: int, position: int, rng=None, size: int = 16, noise: float = 0.04):
    """One (3, size, size) RGB image in [0, 1]: a coloured shape on the left or right of a dark background.

    `rng` (a numpy Generator) jitters the centre by up to 1 pixel, the radius and the colour, and adds
    pixel noise; rng=None renders the clean, centred template.
    """
    import numpy as np
    import torch

    jitter = (lambda lo, hi: rng.uniform(lo, hi)) if rng is not None else (lambda lo, hi: 0.0)
    cx = size * (0.28 if position == 0 else 0.72) + jitter(-1.0, 1.0)
    cy = size * 0.5 + jitter(-1.5, 1.5)
    radius = size * 0.2 + jitter(-0.4, 0.4)
    mask = shape_mask(SHAPES[shape], cx, cy, radius, size)
    rgb = torch.tensor(COLOUR_RGB[COLOURS[colour]]) + torch.tensor([jitter(-0.08, 0.08) for _ in range(3)])
    image = 0.08 + mask[None] * (rgb[:, None, None] - 0.08)  # (3, size, size)
    if rng is not None and noise > 0:
        image = image + torch.from_numpy(rng.normal(0.0, noise, image.shape).astype(np.float32))
    return image.clamp(0, 1)


def shapes_dataset(n: int, seed: int = 0, combos=None, size: int = 16):
    """`n` random images and their labels.

    combos: optional list of allowed (colour, shape) index pairs (to hold some combinations out).
    Returns images (n, 3, size, size) float32 in [0, 1] and labels (n, 3) int64: colour, shape, position.
    """
    import numpy as np
    import torch

    rng = np.random.default_rng(seed)
    combos = list(combos) if combos is not None else [(c, s) for c in range(len(COLOURS)) for s in range(len(SHAPES))]
    labels = []
    for _ in range(n):
        colour, shape = combos[rng.integers(len(combos))]
        labels.append((colour, shape, int(rng.integers(len(POSITIONS)))))
    images = torch.stack([render_shape(c, s, p, rng, size) for c, s, p in labels])
    return images, torch.tensor(labels, dtype=torch.long)


def note_frequency(midi: int) -> float:
    """Equal temperament: MIDI note 69 is A4 = 440 Hz, and each semitone multiplies by 2**(1/12)."""
    return 440.0 * 2 ** ((midi - 69) / 12)


def render_notes(midis, duration: float = 0.5, rng=None, sample_rate: int = SAMPLE_RATE, noise: float = 0.02,
                 harmonics=(1.0, 0.5, 0.25)):
    """A mono waveform (float32 tensor, duration * sample_rate samples) of the notes played together.

    Each note has three harmonics, random phases and a short fade in and out; `rng` (a numpy Generator)
    also varies the loudness and adds white noise. rng=None gives a clean clip with zero phases.
    """
    import numpy as np
    import torch

    t = np.arange(int(duration * sample_rate)) / sample_rate
    wave = np.zeros_like(t)
    for midi in midis:
        f0 = note_frequency(int(midi))
        for k, amp in enumerate(harmonics, start=1):
            if k * f0 < sample_rate / 2:
                phase = rng.uniform(0, 2 * math.pi) if rng is not None else 0.0
                wave += amp * np.sin(2 * math.pi * k * f0 * t + phase)
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.02)  # 20 ms fade in and out, no clicks
    wave = wave * fade / max(len(midis), 1)
    if rng is not None:
        wave = wave * rng.uniform(0.5, 1.0) + rng.normal(0.0, noise, t.shape)
    return torch.from_numpy(wave.astype(np.float32))


def chord_dataset(n: int, seed: int = 0, duration: float = 0.5, low: int = 55, high: int = 67):
    """`n` random major or minor triads with roots from MIDI `low` to `high` - 1 (G3 to F#4 by default).

    Returns waveforms (n, duration * SAMPLE_RATE) float32, quality (n,) int64 (0 major, 1 minor) and
    root (n,) int64 (the MIDI note).
    """
    import numpy as np
    import torch

    rng = np.random.default_rng(seed)
    qualities = list(CHORD_INTERVALS)
    waves, quality, root = [], [], []
    for _ in range(n):
        q, r = int(rng.integers(2)), int(rng.integers(low, high))
        waves.append(render_notes([r + i for i in CHORD_INTERVALS[qualities[q]]], duration, rng))
        quality.append(q)
        root.append(r)
    return torch.stack(waves), torch.tensor(quality), torch.tensor(root)
