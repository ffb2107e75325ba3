"""Paste-back: seamless masks, untouched pixels outside them, alpha and depth kept, gray stays gray."""

from __future__ import annotations

import numpy as np
import pytest

from hifacegan.face.alignment import align_face, crop_window, ffhq_template
from hifacegan.face.blending import feather_mask, paste_face, to_rgb_float

SIZE = 128


def test_feather_mask_is_zero_at_the_border_one_inside_and_smooth():
    mask = feather_mask(SIZE)
    assert mask[0].max() == 0 and mask[:, -1].max() == 0
    assert mask[SIZE // 2, SIZE // 2] == 1.0
    assert np.abs(np.diff(mask, axis=0)).max() < 0.1  # no step anywhere: no seam


def _setup(dtype, channels):
    rng = np.random.default_rng(0)
    peak = {np.uint8: 255, np.uint16: 65535}[dtype]
    photo = rng.integers(0, peak, (300, 400, channels), dtype=np.int64).astype(dtype)
    template = ffhq_template(SIZE)
    landmarks = template * 0.8 + np.array([120.0, 60.0])
    crop, matrix = align_face(photo, landmarks, template, SIZE)
    return photo, matrix


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_only_pixels_under_the_mask_change_and_alpha_never(dtype):
    photo, matrix = _setup(dtype, 4)
    before = photo.copy()
    white = np.ones((SIZE, SIZE, 3), np.float32)
    window = paste_face(photo, white, matrix)
    x0, y0, x1, y1 = window
    assert window == crop_window(matrix, SIZE, photo.shape[:2])
    changed = np.argwhere((photo != before).any(axis=2))
    assert len(changed) > 1000
    assert changed[:, 0].min() >= y0 and changed[:, 0].max() < y1
    assert changed[:, 1].min() >= x0 and changed[:, 1].max() < x1
    assert np.array_equal(photo[..., 3], before[..., 3])
    assert photo.dtype == dtype
    centre = tuple(np.round(np.array([x0 + x1, y0 + y1]) / 2).astype(int))
    assert (photo[centre[1], centre[0], :3] == np.iinfo(dtype).max).all()


def test_pasting_the_unchanged_crop_back_is_nearly_invisible():
    rng = np.random.default_rng(3)
    import cv2

    photo = cv2.GaussianBlur(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8), (0, 0), 4)
    template = ffhq_template(256)
    crop, matrix = align_face(photo, template * 0.5 + np.array([100.0, 50.0]), template, 256)
    before = photo.copy()
    paste_face(photo, to_rgb_float(crop), matrix)
    assert np.abs(photo.astype(int) - before).max() <= 3


def test_gray_rgb_photos_stay_exactly_gray():
    photo, matrix = _setup(np.uint8, 3)
    photo[..., 1] = photo[..., 0]
    photo[..., 2] = photo[..., 0]
    colourful = np.zeros((SIZE, SIZE, 3), np.float32)
    colourful[..., 0] = 1.0  # pure red must not leak into a black-and-white photo
    paste_face(photo, colourful, matrix)
    assert np.array_equal(photo[..., 0], photo[..., 1]) and np.array_equal(photo[..., 0], photo[..., 2])


def test_single_channel_photo_gets_luminance():
    photo, matrix = _setup(np.uint8, 1)
    paste_face(photo, np.ones((SIZE, SIZE, 3), np.float32), matrix)
    assert photo.shape[2] == 1 and photo.max() == 255


def test_region_limits_the_blend():
    photo, matrix = _setup(np.uint8, 3)
    before = photo.copy()
    region = np.zeros(photo.shape[:2], np.uint8)
    region[:, :200] = 255
    paste_face(photo, np.ones((SIZE, SIZE, 3), np.float32), matrix, region=region)
    assert np.array_equal(photo[:, 200:], before[:, 200:])
    assert not np.array_equal(photo[:, :200], before[:, :200])


def test_face_outside_the_photo_pastes_nothing():
    photo = np.zeros((50, 50, 3), np.uint8)
    matrix = np.array([[1.0, 0, 500.0], [0, 1.0, 500.0]])
    assert paste_face(photo, np.ones((SIZE, SIZE, 3), np.float32), matrix) is None
    assert photo.max() == 0
