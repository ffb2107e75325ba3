"""NIQE, the "completely blind" image quality score (Mittal, Soundararajan and Bovik, IEEE SPL 2013).

Lower is better. Implemented from the paper and the behaviour of the authors' MATLAB ``niqe.m``, with its
pristine model (``data/niqe_pris_params.npz``, see ``data/README.md``):

1. Grey input as given; RGB input becomes the ITU-R BT.601 luma of MATLAB's ``rgb2ycbcr``
   (``16 + 65.481 R + 128.553 G + 24.966 B`` for RGB in [0, 1]), rounded to integers like MATLAB's uint8.
2. The image is cropped (top-left kept) to whole 96x96 blocks.
3. At two scales (full, then MATLAB ``imresize(im, 0.5)``: bicubic, antialiased, mirrored borders), the
   MSCN coefficients ``(I - mu) / (sigma + 1)`` use the 7x7 Gaussian (sigma 7/6) with replicated borders.
4. Per block (96 px, then 48 px): an asymmetric generalised Gaussian fit (moment matching over shapes
   0.2:0.001:10) of the coefficients gives (shape, mean of the two scales); the same fit of the products
   with the right, lower, lower-right and lower-left neighbours (circular shifts, like ``circshift``) gives
   (shape, mean, left scale, right scale) each: 18 features a scale, 36 a block.
5. A Gaussian fitted to the blocks' features (``nanmean``; covariance of the NaN-free rows) is compared with
   the pristine one: ``sqrt((mu_p - mu)^T pinv((cov_p + cov) / 2) (mu_p - mu))``.

An image holding a single block has no covariance of its own; it is taken as zero (the one observation's
spread), so the score is the distance to the pristine model under its own covariance halved.

Precision: ``precision="float32"`` (the default) keeps the image, its luma, the filtering, the resize and the
block statistics in single precision, which is how BasicSR's widely quoted ``calculate_niqe`` computes them;
it reproduces that reference (scikit-image's ``astronaut``: 3.0650 here, 3.0649 there). ``"float64"`` is
MATLAB's double arithmetic (astronaut: 3.1005). Near-flat regions make the local variance a difference of
large numbers, so the two differ by about 1%; compare scores only at one precision.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
from scipy.ndimage import correlate
from scipy.special import gamma

BLOCK = 96
_PARAMS = Path(__file__).with_name("data") / "niqe_pris_params.npz"
_SHAPES = np.arange(0.2, 10.0005, 0.001)
_SHAPE_RATIOS = gamma(2.0 / _SHAPES) ** 2 / (gamma(1.0 / _SHAPES) * gamma(3.0 / _SHAPES))


@lru_cache(maxsize=1)
def pristine_model() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mu 36, cov 36x36, 7x7 window) of MATLAB's pristine NIQE model."""
    with np.load(_PARAMS) as data:
        return (
            data["mu_pris_param"].reshape(-1).astype(np.float64),
            data["cov_pris_param"].astype(np.float64),
            data["gaussian_window"].astype(np.float64),
        )


Precision = Literal["float32", "float64"]


def rgb_to_y_bt601(image: np.ndarray, precision: Precision = "float64") -> np.ndarray:
    """Luma of MATLAB's ``rgb2ycbcr`` for uint8 RGB, in [16, 235] (not yet rounded)."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB image (H, W, 3), got {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"expected uint8 RGB, got {image.dtype}")
    dtype = np.dtype(precision)
    rgb = image.astype(dtype) / dtype.type(255.0)
    luma = (rgb @ np.array([65.481, 128.553, 24.966]) + 16.0) / 255.0
    return luma.astype(dtype) * dtype.type(255.0)


def _cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    ax2, ax3 = ax**2, ax**3
    near = (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))
    return near + far


def _resize_matrix(in_length: int, scale: float) -> np.ndarray:
    """Dense (out, in) matrix of MATLAB ``imresize``'s antialiased bicubic weights along one axis."""
    out_length = int(np.ceil(in_length * scale))
    width = 4.0 / scale if scale < 1 else 4.0
    x = np.arange(1, out_length + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = int(np.ceil(width)) + 2
    indices = left[:, None] + np.arange(taps)[None, :]
    distance = u[:, None] - indices
    weights = scale * _cubic(scale * distance) if scale < 1 else _cubic(distance)
    weights /= weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_length), np.arange(in_length - 1, -1, -1)])
    columns = mirror[(indices.astype(np.int64) - 1) % len(mirror)]
    matrix = np.zeros((out_length, in_length))
    np.add.at(matrix, (np.repeat(np.arange(out_length), taps), columns.reshape(-1)), weights.reshape(-1))
    return matrix


def imresize_half(image: np.ndarray) -> np.ndarray:
    """MATLAB ``imresize(image, 0.5)`` for a float image (bicubic, antialiased, no rounding), in its dtype."""
    rows = _resize_matrix(image.shape[0], 0.5).astype(image.dtype)
    cols = _resize_matrix(image.shape[1], 0.5).astype(image.dtype)
    return (rows @ image) @ cols.T


def _aggd_fit(values: np.ndarray) -> tuple[float, float, float]:
    """Asymmetric generalised Gaussian (shape, left scale, right scale) by moment matching."""
    left = values[values < 0]
    right = values[values > 0]
    left_std = np.sqrt(np.mean(left**2)) if left.size else np.nan
    right_std = np.sqrt(np.mean(right**2)) if right.size else np.nan
    gamma_hat = left_std / right_std
    r_hat = np.mean(np.abs(values)) ** 2 / np.mean(values**2)
    r_hat_norm = r_hat * (gamma_hat**3 + 1) * (gamma_hat + 1) / (gamma_hat**2 + 1) ** 2
    shape = float(_SHAPES[np.argmin((_SHAPE_RATIOS - r_hat_norm) ** 2)])
    factor = np.sqrt(gamma(1 / shape) / gamma(3 / shape))
    return shape, float(left_std * factor), float(right_std * factor)


def _block_features(block: np.ndarray) -> list[float]:
    shape, left, right = _aggd_fit(block.reshape(-1))
    features = [shape, (left + right) / 2]
    for shift in ((0, 1), (1, 0), (1, 1), (1, -1)):
        pair = block * np.roll(block, shift, axis=(0, 1))
        shape, left, right = _aggd_fit(pair.reshape(-1))
        mean = (right - left) * gamma(2 / shape) / gamma(1 / shape)
        features.extend([shape, mean, left, right])
    return features


def _mscn(image: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Mean-subtracted contrast-normalised coefficients; scipy keeps the image's dtype in its output."""
    mu = correlate(image, window, mode="nearest")
    sigma = np.sqrt(np.abs(correlate(image * image, window, mode="nearest") - mu * mu))
    return (image - mu) / (sigma + 1)


def niqe_features(image: np.ndarray, precision: Precision = "float32") -> np.ndarray:
    """The (blocks, 36) NIQE features of one image (RGB uint8, or grey luma in [0, 255])."""
    dtype = np.dtype(precision)
    if image.ndim == 3:
        grey = np.round(rgb_to_y_bt601(image, precision))
    elif image.ndim == 2:
        grey = image.astype(dtype)
    else:
        raise ValueError(f"expected (H, W) or (H, W, 3), got {image.shape}")
    rows, cols = grey.shape[0] // BLOCK, grey.shape[1] // BLOCK
    if rows == 0 or cols == 0:
        raise ValueError(f"NIQE needs at least {BLOCK}x{BLOCK} px, got {grey.shape[1]}x{grey.shape[0]}")
    grey = grey[: rows * BLOCK, : cols * BLOCK]
    _, _, window = pristine_model()
    per_scale = []
    for scale in (1, 2):
        mscn = _mscn(grey, window)
        size = BLOCK // scale
        feats = [
            _block_features(mscn[r * size : (r + 1) * size, c * size : (c + 1) * size])
            for c in range(cols)
            for r in range(rows)
        ]
        per_scale.append(np.asarray(feats))
        grey = imresize_half(grey / dtype.type(255.0)) * dtype.type(255.0)
    return np.concatenate(per_scale, axis=1).astype(np.float64)


def niqe_from_features(features: np.ndarray) -> float:
    """NIQE distance of a Gaussian fitted to ``features`` (blocks, 36) from the pristine model."""
    mu_p, cov_p, _ = pristine_model()
    mu = np.nanmean(features, axis=0)
    complete = features[~np.isnan(features).any(axis=1)]
    cov = np.cov(complete, rowvar=False) if len(complete) > 1 else np.zeros_like(cov_p)
    diff = mu_p - mu
    return float(np.sqrt(diff @ np.linalg.pinv((cov_p + cov) / 2) @ diff))


def niqe(image: np.ndarray, precision: Precision = "float32") -> float:
    """NIQE of one image: uint8 RGB (scored on its BT.601 luma) or a grey (H, W) array in [0, 255].

    Lower is better; real photographs typically score 3-8 at 512 px. No border is cropped.
    """
    return niqe_from_features(niqe_features(image, precision))
