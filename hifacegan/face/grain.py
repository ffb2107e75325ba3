"""Keep a photo's grain: lay grain matched to the photo's own over the part of a face the network replaced.

The network's face carries no grain: on a grainy old print or a phone photo's sensor noise it comes back smooth,
pasted in, "waxy" (issue #34, ``historic_FatMenClub`` in real GIMP). Grain at the level the photo has around the face
is part of the photo's look, not damage. So where a face is renovated, grain is measured in the photo's own pixels
around it and fresh grain with the same statistics is added over the part of the face the paste replaced:

- **level**: the robust standard deviation of what a 2 px Gaussian blur removes, per channel, over the face's flat
  pixels (edges, eyes and hair excluded: they read as noise; the surroundings' when the face has too few), and
  only as far as it is grain rather than noise to remove (:data:`GRAIN_IS_TEXTURE`, :data:`GRAIN_IS_NOISE`);
- **size**: how much of the level survives a 2x area shrink (white grain keeps half, clumped film grain more),
  matched by Gaussian-filtered white noise of the width that keeps the same share (:func:`grain_width`);
- **colour**: the correlation of the three channels' high-pass responses (1 for the grey grain of a black-and-white
  print or a phone's luminance noise, about 0 for per-channel noise), reproduced through a Cholesky mix.

Only the grain the paste took away is put back: where the photo keeps a share ``r`` of its own pixels (the blend's
feathered edge, a partly degraded face at opacity under 1) it keeps ``r`` of its grain, and fresh grain of
``sqrt(1 - r^2)`` of the level is added, so the total matches the photo's; and the level is lowered by what the
network's face already has (it draws some texture of its own), so the face is never grainier than the photo. The grain is drawn from a generator seeded by the window's position: the same photo gives the same bytes
every time, in the preview too.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

#: ``--grain`` choices: ``keep`` puts the photo's grain back over renovated faces, ``remove`` leaves them smooth.
GRAIN_CHOICES = ("keep", "remove")
#: Grain is what a Gaussian blur of this sigma (px) takes out of the photo: film grain on scanned prints clumps
#: over 2-4 px (``historic_FatMenClub``), which Immerkaer's 3x3 estimate, made for per-pixel sensor noise, reads at a
#: fifth of its visible level.
GRAIN_SCALE = 2.0
#: Pixels flatter than this share of the window's pixels (by smoothed gradient) are where grain is measured.
FLAT_SHARE = 0.5
#: Under this many flat pixels no level is measured (returns no grain rather than a guess).
MIN_FLAT_PIXELS = 200
#: A level (0-255) under this is no grain worth adding: JPEG quantisation and the clean faces' skin read 1-2.
MIN_LEVEL = 1.0
#: Grain up to this level (0-255) is the photo's look and is put back whole; from it the share put back falls, to
#: none at GRAIN_IS_NOISE. Film grain on the scanned prints reads 2-3 (``historic_FatMenClub``), clean faces-hires
#: faces' skin 1.5-6 at long sides 256-1024, the web task's phone noise 1-4; the paper's tasks (noise sigma 20-40)
#: read 15 and more, and that is the damage the network was asked to remove (with it laid back, a 512 px face of
#: the full task came back further from the clean face than its degraded input).
GRAIN_IS_TEXTURE = 6.0
GRAIN_IS_NOISE = 12.0
#: Widths (Gaussian sigma, px) the grain's size is matched among: 0 is per-pixel white grain. Film grain on the
#: scans reads 0.6-1.3; wider "grain" is mostly enlarged JPEG colour noise, drawn at the widest here.
WIDTHS = (0.0, 0.4, 0.6, 0.8, 1.0, 1.3)


@dataclass(frozen=True)
class Grain:
    """A photo's grain: ``levels`` per RGB channel (:func:`channel_levels`, 0-255), ``width`` (the Gaussian sigma, px, of
    the filtered white noise that matches it) and ``correlation`` (3x3, between the channels)."""

    levels: np.ndarray
    width: float
    correlation: np.ndarray

    @property
    def level(self) -> float:
        """The grain's mean level over the channels (0-255)."""
        return float(np.mean(self.levels))


def high_pass(plane: np.ndarray) -> np.ndarray:
    """What a Gaussian blur of :data:`GRAIN_SCALE` takes out of a (H, W) float image: grain, texture and edges."""
    plane = plane.astype(np.float32)
    return plane - cv2.GaussianBlur(plane, (0, 0), GRAIN_SCALE, borderType=cv2.BORDER_REFLECT)


def robust_level(values: np.ndarray) -> float:
    """The standard deviation of ``values`` read from their median absolute deviation (a few strong edges left
    among the flat pixels do not count)."""
    if values.size == 0:
        return 0.0
    return float(1.4826 * np.median(np.abs(values - np.median(values))))


def flat_pixels(pixels: np.ndarray, where: np.ndarray | None = None) -> np.ndarray:
    """The flattest :data:`FLAT_SHARE` of ``pixels`` (float RGB in [0, 1]) within ``where`` (bool, or all), by the
    gradient of a lightly smoothed grey copy: skin, sky and paper rather than eyes, hair and edges."""
    grey = cv2.GaussianBlur(pixels.mean(axis=2, dtype=np.float32), (0, 0), 1.5)
    gradient = np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))
    inside = np.ones(grey.shape, bool) if where is None else where.copy()
    inside[:2], inside[-2:], inside[:, :2], inside[:, -2:] = False, False, False, False
    if inside.sum() < MIN_FLAT_PIXELS:
        return np.zeros(grey.shape, bool)
    return inside & (gradient <= np.quantile(gradient[inside], FLAT_SHARE))


def channel_levels(pixels: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """The grain level (0-255) of each channel of ``pixels`` (float RGB in [0, 1]) over the ``flat`` pixels: the
    robust standard deviation of its :func:`high_pass`."""
    return np.array([robust_level(high_pass(pixels[..., c])[flat]) * 255.0 for c in range(3)])


def measure_grain(pixels: np.ndarray, face: np.ndarray) -> Grain | None:
    """The grain of ``pixels`` (a window of the photo, float RGB in [0, 1]) where the face is (``face``: the share of
    each pixel the face covers, 0-1), as far as it is to be kept; None when too little of the window is flat, the
    grain is under MIN_LEVEL, or it is noise (GRAIN_IS_NOISE and over).

    Measured on the face's own flat pixels (skin, not eyes or hair): that is the grain the retoucher sees on the face
    and expects back; around it (its surroundings' flat pixels) only when the face has too few.
    """
    pixels = np.asarray(pixels, dtype=np.float32)
    where = flat_pixels(pixels, face > 0.7)
    if not where.any():
        where = flat_pixels(pixels, face < 0.3)
    if not where.any():
        return None
    levels = channel_levels(pixels, where)
    level = float(np.mean(levels))
    share = float(np.clip((GRAIN_IS_NOISE - level) / (GRAIN_IS_NOISE - GRAIN_IS_TEXTURE), 0.0, 1.0))
    if level < MIN_LEVEL or share == 0.0:
        return None
    shrunk = cv2.resize(pixels, (pixels.shape[1] // 2, pixels.shape[0] // 2), interpolation=cv2.INTER_AREA)
    kept = channel_levels(shrunk, cv2.resize(where.astype(np.uint8), shrunk.shape[1::-1]) > 0)
    responses = np.stack([high_pass(pixels[..., c])[where] for c in range(3)])
    correlation = np.nan_to_num(np.corrcoef(responses), nan=0.0)
    np.fill_diagonal(correlation, 1.0)
    return Grain(levels * share, grain_width(float(np.mean(kept)) / level), correlation)


@lru_cache(maxsize=1)
def _width_table() -> np.ndarray:
    """The share of its level (:func:`high_pass`) each width of grain, drawn as :func:`synthesize` draws it, keeps
    through a 2x area shrink; measured once on a fixed field (a property of the filters, not of a photo)."""
    white = np.random.default_rng(0).standard_normal((512, 512)).astype(np.float32)
    kept = []
    for width in WIDTHS:
        field = high_pass(_smoothed(white, width))
        small = cv2.resize(field, (256, 256), interpolation=cv2.INTER_AREA)
        kept.append(robust_level(high_pass(small)) / robust_level(high_pass(field)))
    return np.array(kept)


def grain_width(kept_share: float) -> float:
    """The width (px) of grain that keeps ``kept_share`` of its level through a 2x shrink (white grain: about 0.5)."""
    return float(np.interp(kept_share, _width_table(), WIDTHS))


def _smoothed(field: np.ndarray, width: float) -> np.ndarray:
    return field.copy() if width <= 0.05 else cv2.GaussianBlur(field, (0, 0), width)


def synthesize(grain: Grain, shape: tuple[int, int], seed: int) -> np.ndarray:
    """Fresh grain with ``grain``'s level, width and channel correlation, (H, W, 3) float in 0-1 units, mean 0.

    Drawn only in the band its level was measured in (the :func:`high_pass` of filtered white noise): wide grain
    drawn whole would add slow blotches of colour the measure never saw in the photo (on a JPEG web face whose
    enlarged colour noise read as 2.5 px grain, the face came back spotted)."""
    white = np.random.default_rng(seed).standard_normal((3, *shape)).astype(np.float32)
    fields = np.stack([high_pass(_smoothed(w, grain.width)) for w in white], axis=-1)
    fields /= max(robust_level(fields[..., 0]), 1e-6)  # unit level: the three are drawn alike
    mix = np.linalg.cholesky(grain.correlation + 1e-4 * np.eye(3))  # rows of unit length: the level is kept
    return (fields @ mix.T) * (grain.levels / 255.0).astype(np.float32)


def grain_to_restore(
    pixels: np.ndarray, network_face: np.ndarray, face: np.ndarray, kept: np.ndarray, seed: int
) -> np.ndarray | None:
    """What to add to a window whose face was pasted: fresh grain where the paste replaced the photo's pixels.

    ``pixels``: the window as it was and ``network_face`` the face laid over it, in the window (float RGB in
    [0, 1]); ``face``: the share of each pixel the face covers; ``kept``: the share of the photo's own pixels (and
    so of its grain) each pixel keeps. What the network drew itself counts: only the grain its face lacks is added,
    so the face does not come back grainier than the photo. None when there is no grain to match
    (:func:`measure_grain`).
    """
    pixels = np.asarray(pixels, dtype=np.float32)
    grain = measure_grain(pixels, face)
    if grain is None:
        return None
    network_face = np.asarray(network_face, dtype=np.float32)
    on_face = flat_pixels(network_face, face > 0.7)
    if on_face.any():
        has = channel_levels(network_face, on_face)
        lacking = np.sqrt(np.clip(1.0 - np.square(has / np.maximum(grain.levels, 1e-6)), 0.0, 1.0))
        grain = Grain(grain.levels * lacking, grain.width, grain.correlation)
    missing = np.sqrt(np.clip(1.0 - np.square(kept), 0.0, 1.0)).astype(np.float32)
    return synthesize(grain, pixels.shape[:2], seed) * missing[..., None]
