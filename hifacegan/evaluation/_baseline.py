"""The classical (no learning) baseline of the report: noise-adaptive non-local means, then bicubic smoothing.

Per image: the noise level is estimated per RGB channel with Immerkaer's Laplacian-difference estimator
("Fast noise variance estimation", CVIU 1996); OpenCV's ``fastNlMeansDenoisingColored`` (7x7 patches,
21x21 search) removes noise of that strength (``h = hColor = 0.8 sigma``, skipped under sigma 2); then a
bicubic 2x down-and-up resample (area down, bicubic up) smooths JPEG blocks and mosaic edges. It is the kind
of filter chain a retoucher would try before a network, so a learned method must beat it to be worth running.
"""

from __future__ import annotations

import cv2
import numpy as np

from hifacegan.models.prefilter import estimate_noise_sigma, nlm_denoise

__all__ = ["classical_restore", "estimate_noise_sigma"]


def classical_restore(image: np.ndarray) -> np.ndarray:
    """Denoise then smooth one uint8 RGB image (module docstring); returns a new uint8 RGB array."""
    out = nlm_denoise(image, 0.8)
    height, width = out.shape[:2]
    small = cv2.resize(out, (max(1, width // 2), max(1, height // 2)), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
