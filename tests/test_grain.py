"""The photo's grain is measured and put back over pasted faces (hifacegan.face.grain, issue #34)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from hifacegan.face.blending import feather_mask, paste_face
from hifacegan.face.grain import Grain, channel_levels, flat_pixels, grain_width, measure_grain, synthesize


def _grainy(shape=(160, 160), level=4.0, width=0.0, grey=True, seed=1) -> np.ndarray:
    """A smooth gradient (float RGB) with grain of Immerkaer ``level`` (0-255)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    base = np.stack(
        [0.4 + 0.2 * x / shape[1], 0.45 + 0.1 * y / shape[0], 0.5 * np.ones(shape, np.float32)], -1
    )
    grain = Grain(np.full(3, level), width, np.ones((3, 3)) if grey else np.eye(3))
    return base + synthesize(grain, shape, seed=int(rng.integers(1 << 30)))


def test_measures_level_colour_and_size_of_grain():
    face = np.zeros((160, 160), np.float32)
    grey = measure_grain(_grainy(level=4.0, grey=True), face)
    assert grey is not None
    assert grey.level == pytest.approx(4.0, rel=0.15)
    assert grey.correlation[0, 1] > 0.95 and grey.width < 0.3
    colour = measure_grain(_grainy(level=4.0, grey=False), face)
    assert abs(colour.correlation[0, 1]) < 0.15
    clumped = measure_grain(_grainy(level=4.0, width=1.3), face)
    assert clumped.width == pytest.approx(1.3, abs=0.35)
    assert (
        grain_width(0.46) < 0.1 and grain_width(1.0) > 1.0
    )  # white grain keeps under half through a 2x shrink


def test_clean_pixels_have_no_grain_and_heavy_noise_is_not_grain():
    face = np.zeros((160, 160), np.float32)
    assert measure_grain(_grainy(level=0.0), face) is None
    assert measure_grain(_grainy(level=20.0), face) is None  # the paper's noise: damage to remove, not grain
    assert measure_grain(_grainy(level=9.0), face).level < 0.6 * 9.0  # between: partly


def _paste(photo: np.ndarray, grain: bool) -> np.ndarray:
    """A smooth 96 px 'face' pasted at full opacity into the middle of ``photo`` (uint8)."""
    out = photo.copy()
    face = np.full((96, 96, 3), 0.55, np.float32)
    matrix = np.array([[1.0, 0.0, -32.0], [0.0, 1.0, -32.0]])
    paste_face(out, face, matrix, feather_mask(96), grain=grain)
    return out


def test_paste_puts_the_photos_grain_back_over_the_face():
    photo = np.clip(np.rint(_grainy(level=4.0) * 255), 0, 255).astype(np.uint8)
    smooth, kept = _paste(photo, grain=False), _paste(photo, grain=True)
    box = (slice(56, 104), slice(56, 104))  # inside the face's full-opacity part
    levels = [
        float(np.mean(channel_levels(img[box].astype(np.float32) / 255, flat_pixels(img[box] / 255.0))))
        for img in (photo, smooth, kept)
    ]
    assert levels[1] < 0.3 * levels[0]  # the pasted face is smooth
    assert levels[2] == pytest.approx(levels[0], rel=0.2)  # and gets the photo's grain back
    assert np.array_equal(kept, _paste(photo, grain=True))  # the same bytes every time
    assert np.array_equal(kept[:20], photo[:20])  # outside the face nothing changes


def test_grey_photo_gets_grey_grain_and_a_clean_one_none():
    photo = np.clip(np.rint(_grainy(level=5.0) * 255), 0, 255).astype(np.uint8)
    photo[..., 1] = photo[..., 0]
    photo[..., 2] = photo[..., 0]
    kept = _paste(photo, grain=True)
    assert np.array_equal(kept[..., 0], kept[..., 1]) and np.array_equal(kept[..., 0], kept[..., 2])
    clean = cv2.GaussianBlur(photo, (0, 0), 3)
    assert np.array_equal(_paste(clean, grain=True), _paste(clean, grain=False))
