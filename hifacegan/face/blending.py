"""Paste renovated faces back: inverse warp, feathered mask, only inside each face's own window.

Seams come from hard mask edges and from masks that do not reach exactly zero; the mask here is a product of two
smooth 1-D ramps that is exactly 0 at the crop border and 1 inside. Everything is computed on the bounding window
of the face's inverse warp, so a 50 MP photo is never converted to float, and pixels outside the mask keep their
exact original values (including alpha, which is never touched).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import cv2
import numpy as np

from hifacegan.face.alignment import crop_window, invert_affine, shift_affine, warp

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _ramp(n: int, zero: float, full: float) -> np.ndarray:
    """1-D smoothstep: 0 within ``zero`` px of either end, 1 beyond ``full`` px, smooth in between."""
    x = np.arange(n, dtype=np.float64) + 0.5
    d = np.minimum(x, n - x)
    t = np.clip((d - zero) / max(full - zero, 1e-6), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


@lru_cache(maxsize=8)
def feather_mask(size: int, inset: float = 0.03, feather: float = 0.14) -> np.ndarray:
    """The crop-space blending mask: 0 at the border, rising smoothly over ``feather`` x size to 1 (float32)."""
    ramp = _ramp(size, inset * size, (inset + feather) * size)
    mask = np.outer(ramp, ramp).astype(np.float32)
    mask.setflags(write=False)
    return mask


def dtype_max(dtype: np.dtype) -> float:
    """The value of full white: 255, 65535, or 1.0 for float images."""
    dtype = np.dtype(dtype)
    if dtype == np.uint8:
        return 255.0
    if dtype == np.uint16:
        return 65535.0
    if dtype.kind == "f":
        return 1.0
    raise TypeError(f"unsupported pixel type {dtype}; use uint8, uint16 or float32")


def colour_view(window: np.ndarray) -> np.ndarray:
    """The colour channels of a (H, W, C) window: gray (C 1-2) or RGB (C 3-4); alpha is never blended."""
    channels = window.shape[2]
    return window[..., :1] if channels in (1, 2) else window[..., :3]


def to_rgb_float(pixels: np.ndarray) -> np.ndarray:
    """(H, W, C) colour channels (any supported dtype) as float32 RGB in [0, 1]."""
    colour = colour_view(pixels).astype(np.float32) / dtype_max(pixels.dtype)
    if colour.shape[2] == 1:
        colour = np.repeat(colour, 3, axis=2)
    return colour


def paste_face(
    photo: np.ndarray,
    face_rgb: np.ndarray,
    matrix: np.ndarray,
    mask: np.ndarray | None = None,
    region: np.ndarray | None = None,
    *,
    opacity: float | np.ndarray = 1.0,
    base: Callable[[np.ndarray], np.ndarray] | None = None,
    canvas: tuple[np.ndarray, int, int] | None = None,
) -> tuple[int, int, int, int] | None:
    """Blend ``face_rgb`` (size x size x 3 float in [0, 1], aligned by ``matrix`` photo->crop) into ``photo`` in place.

    ``photo`` is (H, W, C) of uint8/uint16/float32; ``mask`` is the crop-space blend mask (default: feathered
    rectangle); ``region`` an optional (H, W) uint8 selection (0..255) the blend is multiplied by. Returns the
    window that was written, or None when the face lies outside the photo or the region.

    ``opacity`` (a number, or a size x size map in crop space like ``mask``): how much of the face is laid over
    ``base``. Large faces (hifacegan.face.detail) blend ``opacity`` of the face over ``base`` of the photo's own window
    (float RGB in [0, 1] in, the same out; e.g. its noise removed), computed in photo pixels: only the smooth,
    enlarged face is resampled, never the photo's detail.

    ``canvas``: ``(pixels, x, y)``, a copy of the photo's pixels whose top-left is photo pixel (x, y) (a preview's
    window): the face is blended exactly as into ``photo`` (same window, same arithmetic, read from ``photo``), but
    only the part of it inside ``pixels`` is written, there; ``photo`` is left unchanged.
    """
    size = face_rgb.shape[0]
    if mask is None:
        mask = feather_mask(size)
    x0, y0, x1, y1 = crop_window(matrix, size, photo.shape[:2])
    if x1 <= x0 or y1 <= y0:
        return None
    to_window = invert_affine(shift_affine(matrix, x0, y0))
    dsize = (x1 - x0, y1 - y0)
    weights = warp(np.ascontiguousarray(mask, dtype=np.float32), to_window, dsize, border=cv2.BORDER_CONSTANT)
    if region is not None:
        weights = weights * (region[y0:y1, x0:x1].astype(np.float32) / 255.0)
    np.clip(weights, 0.0, 1.0, out=weights)
    inside = weights > 0
    if not inside.any():
        return None
    warped = np.clip(warp(face_rgb, to_window, dsize, border=cv2.BORDER_REPLICATE), 0.0, 1.0)

    window = photo[y0:y1, x0:x1]
    colour = colour_view(window)
    peak = dtype_max(photo.dtype)
    original = colour.astype(np.float32) / peak
    if colour.shape[2] == 1:
        face = (warped @ LUMA)[..., None]
    elif _is_gray(colour):
        face = np.repeat((warped @ LUMA)[..., None], 3, axis=2)
    else:
        face = warped
    if isinstance(opacity, np.ndarray):
        opacity_map = np.ascontiguousarray(opacity, dtype=np.float32)
        opacity = np.clip(warp(opacity_map, to_window, dsize, border=cv2.BORDER_CONSTANT), 0.0, 1.0)[
            ..., None
        ]
    if base is not None or not np.isscalar(opacity) or opacity != 1.0:
        under = original if base is None else _apply_rgb(base, original)
        face = under + opacity * (face - under)
    blended = original + weights[..., None] * (face - original)
    if photo.dtype.kind == "f":
        result = blended.astype(photo.dtype)
    else:
        result = np.clip(np.rint(blended * peak), 0, peak).astype(photo.dtype)
    if canvas is None:
        colour[...] = np.where(inside[..., None], result, colour)
        return x0, y0, x1, y1
    pixels, cx, cy = canvas
    ch, cw = pixels.shape[:2]
    ox0, oy0, ox1, oy1 = max(x0, cx), max(y0, cy), min(x1, cx + cw), min(y1, cy + ch)
    if ox1 > ox0 and oy1 > oy0:
        face_part = (slice(oy0 - y0, oy1 - y0), slice(ox0 - x0, ox1 - x0))
        target = colour_view(pixels[oy0 - cy : oy1 - cy, ox0 - cx : ox1 - cx])
        target[...] = np.where(inside[face_part][..., None], result[face_part], target)
    return x0, y0, x1, y1


def _apply_rgb(function: Callable[[np.ndarray], np.ndarray], pixels: np.ndarray) -> np.ndarray:
    """``function`` of RGB float pixels, applied to a grey (H, W, 1) window through an RGB copy of it."""
    if pixels.shape[2] == 3:
        return function(pixels)
    return function(np.repeat(pixels, 3, axis=2)) @ LUMA[:, None]


def _is_gray(colour: np.ndarray) -> bool:
    """True when an RGB window holds a grayscale picture (all channels equal): it must stay exactly gray."""
    return bool(
        np.array_equal(colour[..., 0], colour[..., 1]) and np.array_equal(colour[..., 0], colour[..., 2])
    )
