"""The ``web`` task: what a face in a web or phone photo went through, mildly.

The paper's tasks are heavy (noise sigma 20-40, JPEG quality 17-51, 4-8x resampling, blur sigma 3-8 px at
512): a network and a gate tuned on them alone treat a photo that was merely resized, sharpened and saved as JPEG
as either sharp or hopeless. Real photos are mostly *mildly* degraded. Every ``web`` image draws, in this order:

1. mild blur (always): Gaussian sigma U[0.3, 1.5] px or, one time in four, motion blur of length U[2, 6] px;
2. a resize down by U[1.5, 4] with a randomly chosen kernel (area, bilinear, bicubic or Lanczos);
3. mild sensor noise, half the time: Gaussian, sigma U[1, 6], luminance only or per channel with equal chance;
4. the resize back up with a randomly chosen kernel (bilinear, bicubic or Lanczos);
5. unsharp-mask halos, a third of the time: amount U[0.3, 1.2] at radius sigma U[0.8, 2.0] px;
6. JPEG at quality U[30, 75] with 4:2:0 chroma (always: what web photos are saved as).

Lengths in pixels (blur, unsharp radius) are for 512 px wide images and scale with width / 512, like the paper's
recipes; factors, noise levels and qualities do not. ``docs/benchmarks.md`` ("The web task") says why the ranges
are what they are.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from hifacegan.degradations import _ops

REFERENCE_WIDTH = 512

DOWN_KERNELS = {
    "area": cv2.INTER_AREA,
    "bilinear": cv2.INTER_LINEAR,
    "bicubic": cv2.INTER_CUBIC,
    "lanczos": cv2.INTER_LANCZOS4,
}
UP_KERNELS = {"bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC, "lanczos": cv2.INTER_LANCZOS4}

FACTOR_RANGE = (1.5, 4.0)
GAUSSIAN_SIGMA_RANGE = (0.3, 1.5)
MOTION_LENGTH_RANGE = (2.0, 6.0)
MOTION_PROBABILITY = 0.25
NOISE_PROBABILITY = 0.5
NOISE_SIGMA_RANGE = (1.0, 6.0)
UNSHARP_PROBABILITY = 1 / 3
UNSHARP_AMOUNT_RANGE = (0.3, 1.2)
UNSHARP_SIGMA_RANGE = (0.8, 2.0)
QUALITY_RANGE = (30, 75)


def unsharp_mask(image: np.ndarray, amount: float, sigma: float) -> np.ndarray:
    """Sharpen as photo apps and web resizers do: add ``amount`` times (image - blurred), which rings at edges."""
    if amount <= 0 or sigma <= 0:
        return image.copy()
    source = image.astype(np.float32)
    blurred = cv2.GaussianBlur(source, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)
    return np.clip(np.rint(source + amount * (source - blurred)), 0, 255).astype(np.uint8)


def add_luma_noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise of ``sigma`` added equally to the three channels (grey grain, as phones leave it)."""
    noise = rng.standard_normal(image.shape[:2], dtype=np.float32)[..., None] * np.float32(sigma)
    return np.clip(np.rint(image.astype(np.float32) + noise), 0, 255).astype(np.uint8)


def web(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    """A web or phone photo's mild degradation: blur, resize down, noise, resize up, halos, JPEG (module doc)."""
    scale = image.shape[1] / REFERENCE_WIDTH
    params: dict[str, Any] = {"op": "web"}
    if rng.random() < MOTION_PROBABILITY:
        length = float(rng.uniform(*MOTION_LENGTH_RANGE)) * scale
        angle = float(rng.uniform(0.0, 180.0))
        out = _ops.motion_blur(image, length, angle)
        params["blur"] = {"kind": "motion", "length": length, "angle": angle}
    else:
        sigma = float(rng.uniform(*GAUSSIAN_SIGMA_RANGE)) * scale
        out = _ops.gaussian_blur(image, sigma)
        params["blur"] = {"kind": "gaussian", "sigma": sigma}
    factor = float(rng.uniform(*FACTOR_RANGE))
    down = list(DOWN_KERNELS)[int(rng.integers(len(DOWN_KERNELS)))]
    up = list(UP_KERNELS)[int(rng.integers(len(UP_KERNELS)))]
    height, width = image.shape[:2]
    small = (max(1, round(width / factor)), max(1, round(height / factor)))
    low = cv2.resize(out, small, interpolation=DOWN_KERNELS[down])
    params["resize"] = {"factor": factor, "down": down, "up": up}
    if rng.random() < NOISE_PROBABILITY:
        sigma = float(rng.uniform(*NOISE_SIGMA_RANGE))
        if rng.random() < 0.5:
            low = add_luma_noise(low, sigma, rng)
            params["noise"] = {"kind": "luma", "sigma": sigma}
        else:
            low = _ops.add_gaussian_noise(low, sigma, rng)
            params["noise"] = {"kind": "colour", "sigma": sigma}
    out = cv2.resize(low, (width, height), interpolation=UP_KERNELS[up])
    if rng.random() < UNSHARP_PROBABILITY:
        amount = float(rng.uniform(*UNSHARP_AMOUNT_RANGE))
        sigma = float(rng.uniform(*UNSHARP_SIGMA_RANGE)) * scale
        out = unsharp_mask(out, amount, sigma)
        params["unsharp"] = {"amount": amount, "sigma": sigma}
    quality = int(rng.integers(QUALITY_RANGE[0], QUALITY_RANGE[1] + 1))
    params["jpeg"] = {"quality": quality}
    return _ops.jpeg_compress(out, quality), params
