"""Colour matching: renovated faces keep the original's tone and colour; monochrome stays monochrome."""

from __future__ import annotations

import cv2
import numpy as np

from hifacegan.face.colour import is_monochrome, match_colour


def _face(seed=0, size=128):
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.random((size, size, 3)).astype(np.float32), (0, 0), 6)
    base = (base - base.min()) / (base.max() - base.min())
    return 0.2 + 0.6 * base


def test_colour_shift_of_the_network_is_removed_but_detail_kept():
    original = _face()
    detail = (np.random.default_rng(1).random((128, 128, 1)).astype(np.float32) - 0.5) * 0.2
    renovated = np.clip(
        original * np.array([0.7, 1.1, 0.8], np.float32) + detail, 0, 1
    )  # green cast + detail
    matched = match_colour(renovated, original)
    assert np.abs(matched.mean((0, 1)) - original.mean((0, 1))).max() < 0.01
    high = matched - cv2.GaussianBlur(matched, (0, 0), 4)
    assert high.std() > 0.5 * (detail - cv2.GaussianBlur(detail, (0, 0), 4)[..., None]).std()


def test_gray_face_stays_gray():
    gray = np.repeat(_face()[..., :1], 3, axis=2)
    assert is_monochrome(gray)
    colourful = _face(seed=5)
    matched = match_colour(colourful, gray)
    assert np.abs(matched[..., 0] - matched[..., 1]).max() < 0.01
    assert np.abs(matched[..., 0] - matched[..., 2]).max() < 0.01


def test_sepia_face_keeps_its_tint():
    luma = _face()[..., :1]
    sepia = np.clip(luma * np.array([1.07, 0.74, 0.43], np.float32) + 0.1, 0, 1)
    assert is_monochrome(sepia)
    matched = match_colour(_face(seed=9), sepia)
    ratio = matched.mean((0, 1)) / sepia.mean((0, 1))
    assert np.abs(ratio - 1).max() < 0.03


def test_colour_photos_are_not_monochrome():
    assert not is_monochrome(_face(seed=2))
