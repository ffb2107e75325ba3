"""Similarity estimation, aligned crops and shrinking warps."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hifacegan.face.alignment import (
    align_face,
    crop_window,
    estimate_similarity,
    ffhq_template,
    transform_points,
    warp,
)


@settings(max_examples=50, deadline=None)
@given(
    angle=st.floats(-np.pi, np.pi),
    scale=st.floats(0.05, 20.0),
    tx=st.floats(-500, 500),
    ty=st.floats(-500, 500),
)
def test_similarity_is_recovered_exactly(angle, scale, tx, ty):
    src = ffhq_template(512)
    c, s = np.cos(angle) * scale, np.sin(angle) * scale
    truth = np.array([[c, -s, tx], [s, c, ty]])
    dst = transform_points(truth, src)
    assert np.allclose(estimate_similarity(src, dst), truth, atol=1e-6 * max(1.0, scale, abs(tx), abs(ty)))


def test_mirrored_points_do_not_produce_a_reflection():
    src = ffhq_template(128)
    dst = src.copy()
    dst[:, 0] = 128 - dst[:, 0]
    matrix = estimate_similarity(src, dst)
    assert np.linalg.det(matrix[:, :2]) > 0


def test_aligned_crop_puts_landmarks_on_the_template():
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (400, 600, 3), dtype=np.uint8)
    template = ffhq_template(128)
    truth = np.array([[0.4, -0.1, 0.0], [0.1, 0.4, 0.0]])
    truth[:, 2] = [-40, -60]
    landmarks = transform_points(np.linalg.inv(np.vstack([truth, [0, 0, 1]]))[:2], template)
    crop, matrix = align_face(photo, landmarks, template, 128)
    assert crop.shape == (128, 128, 3) and crop.dtype == np.uint8
    assert np.allclose(transform_points(matrix, landmarks), template, atol=1e-6)


def test_uint16_crops_stay_uint16():
    photo = np.full((300, 300, 3), 40000, np.uint16)
    template = ffhq_template(64)
    crop, _ = align_face(photo, template * 2 + 50, template, 64)
    assert crop.dtype == np.uint16 and int(crop.min()) == 40000 == int(crop.max())


def test_shrinking_warp_does_not_alias():
    # a one-pixel checkerboard shrunk 8x must average to gray, not beat into stripes
    board = (np.indices((512, 512)).sum(0) % 2 * 255).astype(np.uint8)
    matrix = np.array([[1 / 8, 0, 0], [0, 1 / 8, 0]], dtype=np.float64)
    small = warp(board, matrix, (64, 64))
    assert abs(float(small.mean()) - 127.5) < 2 and float(small.std()) < 3


def test_crop_window_is_clipped_to_the_photo():
    matrix = np.array([[1.0, 0, 50], [0, 1.0, 50]])  # the crop starts 50 px before the photo's corner
    x0, y0, x1, y1 = crop_window(matrix, 128, (100, 100))
    assert (x0, y0) == (0, 0) and (x1, y1) == (81, 81)
