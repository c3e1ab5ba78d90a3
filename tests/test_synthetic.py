"""The generated multimodal data is deterministic by seed and shows what its labels say."""
import math

import pytest
import torch

from genai_roadmap import synthetic
from genai_roadmap.synthetic import COLOUR_RGB, COLOURS, SHAPES, caption, shapes_dataset


def test_shapes_dataset_is_seeded_shaped_and_in_range():
    a, la = shapes_dataset(20, seed=3)
    b, lb = shapes_dataset(20, seed=3)
    c, _ = shapes_dataset(20, seed=4)
    assert a.shape == (20, 3, 16, 16) and la.shape == (20, 3) and a.dtype == torch.float32
    assert torch.equal(a, b) and torch.equal(la, lb) and not torch.equal(a, c)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0


def test_combos_restrict_colour_shape_pairs():
    combos = [(0, 1), (2, 3)]
    _, labels = shapes_dataset(50, seed=0, combos=combos)
    assert {(c, s) for c, s, _ in labels.tolist()} <= set(combos)


def test_images_show_their_colour_and_position():
    images, labels = shapes_dataset(40, seed=1)
    for img, (c, _, p) in zip(images, labels.tolist()):
        lit = (img.max(0).values > 0.4)  # the shape's pixels, (16, 16)
        cols = lit.nonzero()[:, 1].float()
        assert (cols.mean() < 8) == (p == 0), "left shapes sit in the left half"
        mean_rgb = img[:, lit].mean(1)
        nearest = min(range(len(COLOURS)), key=lambda k: float((mean_rgb - torch.tensor(COLOUR_RGB[COLOURS[k]])).norm()))
        assert nearest == c


def test_shape_masks_differ_and_reject_unknown_shapes():
    masks = [synthetic.shape_mask(s, 7.5, 7.5, 4.0) for s in SHAPES]
    for i in range(len(masks)):
        assert masks[i].sum() > 5
        for j in range(i):
            assert not torch.equal(masks[i], masks[j])
    with pytest.raises(ValueError):
        synthetic.shape_mask("hexagon", 7.5, 7.5, 4.0)


def test_caption():
    assert caption(0, 0, 0) == "a red circle on the left"
    assert caption(3, 2, 1) == "a yellow triangle on the right"


def test_note_frequency_and_rendered_pitch():
    assert synthetic.note_frequency(69) == pytest.approx(440.0)
    assert synthetic.note_frequency(81) == pytest.approx(880.0)
    wave = synthetic.render_notes([69], duration=1.0, harmonics=(1.0,))
    spectrum = torch.fft.rfft(wave).abs()
    peak_hz = spectrum.argmax().item() * synthetic.SAMPLE_RATE / len(wave)
    assert abs(peak_hz - 440.0) <= 1.0


def test_chord_dataset_is_seeded_and_labelled():
    w1, q1, r1 = synthetic.chord_dataset(8, seed=2)
    w2, q2, r2 = synthetic.chord_dataset(8, seed=2)
    assert w1.shape == (8, int(0.5 * synthetic.SAMPLE_RATE))
    assert torch.equal(w1, w2) and torch.equal(q1, q2) and torch.equal(r1, r2)
    assert set(q1.tolist()) <= {0, 1} and bool(((r1 >= 55) & (r1 < 67)).all())


def test_chord_holds_its_third():
    # a clean C major has energy at E (329.6 Hz), C minor at E flat (311.1 Hz)
    for intervals, present, absent in (((0, 4, 7), 64, 63), ((0, 3, 7), 63, 64)):
        wave = synthetic.render_notes([60 + i for i in intervals], duration=1.0, harmonics=(1.0,))
        spectrum = torch.fft.rfft(wave).abs()

        def energy(midi):
            return float(spectrum[round(synthetic.note_frequency(midi))])

        assert energy(present) > 10 * energy(absent)
    assert math.isclose(synthetic.note_frequency(60), 261.6256, rel_tol=1e-5)
