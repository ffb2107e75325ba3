"""Deterministic image operations behind the degradation tasks.

Every function here takes its parameters explicitly and draws no randomness of its own, except the noise
functions, which take the generator they draw from. The recipes in ``_tasks.py`` sample the parameters; keeping
the two apart lets tests and evaluation re-run one operation with known settings.

All functions take and return uint8 RGB arrays of shape (H, W, 3) and never modify their input.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

# Reflect without repeating the edge pixel: the border neither darkens (zero padding) nor smears (replicate).
_BORDER = cv2.BORDER_REFLECT_101


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def resample_down_up(image: np.ndarray, factor: float) -> np.ndarray:
    """Lose detail like a low-resolution capture: area-downscale by ``factor``, bicubic back to the input size.

    Area averaging (not point sampling) is what a sensor with fewer, larger pixels records; bicubic is what the
    paper's super-resolution inputs were brought back with.
    """
    height, width = image.shape[:2]
    small = (max(1, round(width / factor)), max(1, round(height / factor)))
    down = cv2.resize(image, small, interpolation=cv2.INTER_AREA)
    return cv2.resize(down, (width, height), interpolation=cv2.INTER_CUBIC)


def add_gaussian_noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean Gaussian noise of standard deviation ``sigma`` (0-255 scale), drawn per pixel and channel."""
    noise = rng.standard_normal(image.shape, dtype=np.float32) * np.float32(sigma)
    return _to_uint8(image.astype(np.float32) + noise)


def _random_signs(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """+1 or -1 with equal chance, as float32: one random bit each (unpacked bytes, ~20x cheaper than integers)."""
    count = int(np.prod(shape))
    bits = np.unpackbits(np.frombuffer(rng.bytes((count + 7) // 8), dtype=np.uint8), count=count)
    return (bits.astype(np.float32) * 2.0 - 1.0).reshape(shape)


def add_laplace_noise(image: np.ndarray, scale: float, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean Laplace noise of scale ``scale`` (std = scale * sqrt 2): heavier tails than Gaussian noise.

    Drawn exactly as an exponential magnitude with a random sign (6x faster than ``Generator.laplace``).
    """
    magnitude = rng.standard_exponential(image.shape, dtype=np.float32) * np.float32(scale)
    return _to_uint8(image.astype(np.float32) + magnitude * _random_signs(image.shape, rng))


_POISSON_BITS = 20


def poisson_counts(lam: float, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Poisson(``lam``) counts by table lookup: 2^20 equally likely slots, each holding the count it stands for.

    Every probability is exact to within 2^-20 (~1e-6), far below anything visible, and it is ~7x faster than
    ``Generator.poisson`` (whose per-sample rejection sampler dominated the whole denoise task at 512 px).
    """
    counts = np.arange(int(lam + 12.0 * math.sqrt(lam) + 10.0))
    log_pmf = counts * math.log(lam) - lam - np.array([math.lgamma(k + 1.0) for k in counts])
    edges = np.rint(np.cumsum(np.exp(log_pmf)) * (1 << _POISSON_BITS)).astype(np.int64)
    edges[-1] = 1 << _POISSON_BITS  # the far tail (probability < 1e-20) joins the last count
    table = np.repeat(counts.astype(np.float32), np.diff(edges, prepend=0))
    return table[rng.integers(0, 1 << _POISSON_BITS, shape, dtype=np.uint32)]


def add_signed_poisson_noise(image: np.ndarray, lam: float, rng: np.random.Generator) -> np.ndarray:
    """Noise whose magnitude is Poisson(``lam``) with a random sign, per pixel and channel.

    Read as the paper's "signed Poisson": a Poisson count of mean ``lam`` (std ~ ``lam``) added or subtracted with
    equal chance, so its strength matches the Gaussian and Laplace settings. A centred Poisson (count - lam) would
    have a standard deviation of only sqrt(lam) ~ 4-5 and barely show.
    """
    noise = poisson_counts(lam, image.shape, rng) * _random_signs(image.shape, rng)
    return _to_uint8(image.astype(np.float32) + noise)


def motion_kernel(length: float, angle_degrees: float) -> np.ndarray:
    """A normalised line kernel ``length`` pixels long at ``angle_degrees`` (counter-clockwise from +x).

    The path a point travels (``length`` pixels, centred) is sampled densely and splatted bilinearly, so
    fractional lengths (blur sizes scaled to small images) and any angle give a smooth kernel rather than a jagged
    Bresenham line. Horizontally this is exactly the pixel-integrated box: length 4 -> [1, 2, 2, 2, 1] / 8.
    """
    if length <= 1.0:
        return np.ones((1, 1), np.float32)
    half = length / 2.0
    radius = math.ceil(half) + 1
    size = 2 * radius + 1
    steps = math.ceil(length) * 8
    t = -half + (np.arange(steps) + 0.5) * (length / steps)  # midpoints: equal weight per stretch of path
    theta = math.radians(angle_degrees)
    xs = radius + t * math.cos(theta)
    ys = radius - t * math.sin(theta)  # image rows grow downwards
    x0 = np.floor(xs).astype(int)
    y0 = np.floor(ys).astype(int)
    fx = xs - x0
    fy = ys - y0
    kernel = np.zeros((size, size), np.float64)
    for dy, dx, weight in (
        (0, 0, (1 - fx) * (1 - fy)),
        (0, 1, fx * (1 - fy)),
        (1, 0, (1 - fx) * fy),
        (1, 1, fx * fy),
    ):
        np.add.at(kernel, (y0 + dy, x0 + dx), weight)
    return (kernel / kernel.sum()).astype(np.float32)


def motion_blur(image: np.ndarray, length: float, angle_degrees: float) -> np.ndarray:
    """Blur along a straight line, as a camera or subject moving during the exposure does."""
    return cv2.filter2D(image, -1, motion_kernel(length, angle_degrees), borderType=_BORDER)


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Defocus-like blur; the kernel spans +-3 sigma (OpenCV's choice for 8-bit images)."""
    if sigma <= 0:
        return image.copy()
    return cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=_BORDER)


def jpeg_compress(image: np.ndarray, quality: int) -> np.ndarray:
    """Round-trip through a baseline JPEG at ``quality`` (libjpeg scale, 4:2:0 chroma): 8x8 block artefacts."""
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError(f"OpenCV could not JPEG-encode an image of shape {image.shape}")
    decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)


def mosaic(image: np.ndarray, block: int) -> np.ndarray:
    """Replace every ``block`` x ``block`` tile by its mean colour (edge tiles may be smaller).

    This is the paper's 16x "hallucination" input: only one colour per tile survives, so the face must be
    invented rather than restored.
    """
    block = max(1, int(block))
    height, width = image.shape[:2]
    if height % block == 0 and width % block == 0:
        # Whole tiles only (the usual case): area resampling by an integer factor is the tile mean, 10x faster.
        means = _to_uint8(
            cv2.resize(
                image.astype(np.float32), (width // block, height // block), interpolation=cv2.INTER_AREA
            )
        )
        return np.repeat(np.repeat(means, block, axis=0), block, axis=1)
    rows = np.arange(0, height, block)
    cols = np.arange(0, width, block)
    sums = np.add.reduceat(np.add.reduceat(image.astype(np.float64), rows, axis=0), cols, axis=1)
    counts = np.diff(np.append(rows, height))[:, None] * np.diff(np.append(cols, width))[None, :]
    means = _to_uint8(sums / counts[..., None])
    return np.repeat(np.repeat(means, block, axis=0)[:height], block, axis=1)[:, :width].copy()


def fit_long_side(image: np.ndarray, side: int, least: int = 1) -> np.ndarray:
    """``image`` scaled so that its longer side is ``side`` (area when shrinking, bicubic when enlarging), its
    shorter side never under ``least`` px: a photo brought to an evaluation size, a face box to a common scale."""
    height, width = image.shape[:2]
    scale = side / max(height, width)
    if scale == 1:
        return image
    size = (max(least, round(width * scale)), max(least, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)


def fit_to_size(image: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop to a square, then resize to ``size`` x ``size``: the model's input for an aligned face.

    Shrinking uses area averaging (no aliasing); enlarging uses bicubic (area interpolation is blocky upwards).
    """
    height, width = image.shape[:2]
    side = min(height, width)
    top = (height - side) // 2
    left = (width - side) // 2
    square = image[top : top + side, left : left + side]
    if side == size:
        return np.ascontiguousarray(square)
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
    return cv2.resize(square, (size, size), interpolation=interpolation)
