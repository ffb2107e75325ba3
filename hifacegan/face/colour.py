"""Keep a renovated face's colour and tone those of the original photo.

Generators shift colour (purple lips, green patches in gray hair: the top colour complaint about face restorers).
The network is trusted for detail (high frequencies) only: in Lab, the renovated face's low-pass is replaced by
the original's. Faces without real colour (grayscale, sepia, tinted prints) take their chroma from the original
entirely, so they stay exactly as colourless as they were.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Hue spread (Lab a/b units) under which a face counts as monochrome (grayscale, sepia, cyanotype...).
MONOCHROME_CHROMA = 4.0


def _lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(rgb, dtype=np.float32), cv2.COLOR_RGB2Lab)


def _lowpass(image: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)


def is_monochrome(rgb: np.ndarray, threshold: float = MONOCHROME_CHROMA) -> bool:
    """True when the picture has no hue variation: gray, or one tint (sepia) whose strength follows the tone.

    In Lab, such pictures put every (a, b) near one line through the origin; the test is the 99th percentile of
    the distance to that line (or to the origin, for gray).
    """
    ab = _lab(rgb)[..., 1:].reshape(-1, 2).astype(np.float64)
    mean = ab.mean(axis=0)
    norm = float(np.hypot(*mean))
    if norm < 2.0:  # no dominant tint: gray when every pixel is near neutral
        distance = np.hypot(ab[:, 0], ab[:, 1])
    else:
        direction = mean / norm
        distance = np.abs(ab[:, 0] * direction[1] - ab[:, 1] * direction[0])
    return bool(np.percentile(distance, 99) < threshold)


def match_colour(renovated: np.ndarray, original: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """``renovated``'s detail on ``original``'s low-frequency tone and colour (both HxWx3 float RGB in [0, 1]).

    ``sigma`` (pixels) separates "tone" from "detail"; the default, size/32, is 16 px on a 512 crop.
    """
    if renovated.shape != original.shape:
        raise ValueError(f"shapes differ: {renovated.shape} vs {original.shape}")
    sigma = sigma or max(renovated.shape[0] / 32.0, 1.0)
    new, old = _lab(renovated), _lab(original)
    out = np.empty_like(new)
    out[..., 0] = new[..., 0] - _lowpass(new[..., 0], sigma) + _lowpass(old[..., 0], sigma)
    if is_monochrome(original):
        out[..., 1:] = _lowpass(old[..., 1:], sigma)
    else:
        out[..., 1:] = new[..., 1:] - _lowpass(new[..., 1:], sigma) + _lowpass(old[..., 1:], sigma)
    rgb = cv2.cvtColor(out, cv2.COLOR_Lab2RGB)
    return np.clip(rgb, 0.0, 1.0)
