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
    grain: bool = False,
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

    ``grain``: put fresh grain matched to the photo's own over the part of the face the paste replaced
    (hifacegan.face.grain), so that a renovated face keeps the photo's look instead of coming back smooth.
    """
    size = face_rgb.shape[0]
    x0, y0, x1, y1 = crop_window(matrix, size, photo.shape[:2])
    if x1 <= x0 or y1 <= y0:
        return None
    to_window = invert_affine(shift_affine(matrix, x0, y0))
    dsize = (x1 - x0, y1 - y0)
    weights = _window_weights(
        feather_mask(size) if mask is None else mask, to_window, dsize, region, (x0, y0)
    )
    inside = weights > 0
    if not inside.any():
        return None
    warped = np.clip(warp(face_rgb, to_window, dsize, border=cv2.BORDER_REPLICATE), 0.0, 1.0)
    colour = colour_view(photo[y0:y1, x0:x1])
    peak = dtype_max(photo.dtype)
    original = colour.astype(np.float32) / peak
    face = _in_window_colours(warped, colour)
    if isinstance(opacity, np.ndarray):
        opacity_map = np.ascontiguousarray(opacity, dtype=np.float32)
        opacity = np.clip(warp(opacity_map, to_window, dsize, border=cv2.BORDER_CONSTANT), 0.0, 1.0)[
            ..., None
        ]
    blended = _composite(original, face, weights, opacity, base, grain, (x0, y0))
    if photo.dtype.kind == "f":
        result = blended.astype(photo.dtype)
    else:
        result = np.clip(np.rint(blended * peak), 0, peak).astype(photo.dtype)
    _write(colour, result, inside, (x0, y0), canvas)
    return x0, y0, x1, y1


def _composite(
    original: np.ndarray,
    face: np.ndarray,
    weights: np.ndarray,
    opacity: float | np.ndarray,
    base: Callable[[np.ndarray], np.ndarray] | None,
    grain: bool,
    origin: tuple[int, int],
) -> np.ndarray:
    """The window's new pixels (float): ``opacity`` of the face over ``base`` of the photo (or the photo itself),
    laid over the photo by ``weights``, with the photo's grain put back where the paste replaced it."""
    under, network_face = original, face
    if base is not None or not np.isscalar(opacity) or opacity != 1.0:
        under = original if base is None else _apply_rgb(base, original)
        face = under + opacity * (face - under)
    blended = original + weights[..., None] * (face - original)
    if grain:
        # the share of the photo's own pixels (and grain) each pixel keeps: under a denoised base, only outside
        # the blend; over the photo itself, also what the opacity leaves of it
        laid = weights[..., None] * (opacity if under is original else 1.0)
        blended = blended + _grain(original, network_face, weights, 1.0 - laid, origin)
    return blended


def _window_weights(
    mask: np.ndarray,
    to_window: np.ndarray,
    dsize: tuple[int, int],
    region: np.ndarray | None,
    origin: tuple[int, int],
) -> np.ndarray:
    """The crop-space blend ``mask`` warped into the face's window (of ``dsize`` at ``origin``), times the
    selection ``region`` there, within 0..1."""
    weights = warp(np.ascontiguousarray(mask, dtype=np.float32), to_window, dsize, border=cv2.BORDER_CONSTANT)
    if region is not None:
        x0, y0 = origin
        weights = weights * (region[y0 : y0 + dsize[1], x0 : x0 + dsize[0]].astype(np.float32) / 255.0)
    np.clip(weights, 0.0, 1.0, out=weights)
    return weights


def _in_window_colours(warped: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """The warped RGB face in the window's colours: grey (its luma) for a grey window, or for an RGB window that
    holds a grey picture (it must stay exactly grey)."""
    if colour.shape[2] == 1:
        return (warped @ LUMA)[..., None]
    if _is_gray(colour):
        return np.repeat((warped @ LUMA)[..., None], 3, axis=2)
    return warped


def _write(
    colour: np.ndarray,
    result: np.ndarray,
    inside: np.ndarray,
    origin: tuple[int, int],
    canvas: tuple[np.ndarray, int, int] | None,
) -> None:
    """Write ``result`` where the face lies (``inside``): into the photo's window ``colour`` (at ``origin``), or,
    with a ``canvas`` (pixels, x, y), only into the part of the canvas the window overlaps."""
    if canvas is None:
        colour[...] = np.where(inside[..., None], result, colour)
        return
    x0, y0 = origin
    x1, y1 = x0 + colour.shape[1], y0 + colour.shape[0]
    pixels, cx, cy = canvas
    ch, cw = pixels.shape[:2]
    ox0, oy0, ox1, oy1 = max(x0, cx), max(y0, cy), min(x1, cx + cw), min(y1, cy + ch)
    if ox1 > ox0 and oy1 > oy0:
        face_part = (slice(oy0 - y0, oy1 - y0), slice(ox0 - x0, ox1 - x0))
        target = colour_view(pixels[oy0 - cy : oy1 - cy, ox0 - cx : ox1 - cx])
        target[...] = np.where(inside[face_part][..., None], result[face_part], target)


def _grain(
    original: np.ndarray,
    network_face: np.ndarray,
    weights: np.ndarray,
    kept: np.ndarray,
    origin: tuple[int, int],
) -> np.ndarray:
    """Grain to add to a window (hifacegan.face.grain.grain_to_restore), grey where the window is grey; 0 when
    the photo has none to match. Seeded by the window's position: the same photo gives the same bytes."""
    from hifacegan.face.grain import grain_to_restore

    channels = original.shape[2]

    def rgb(window: np.ndarray) -> np.ndarray:
        return window if channels == 3 else np.repeat(window, 3, axis=2)

    kept_share = np.broadcast_to(kept[..., 0], weights.shape)
    added = grain_to_restore(
        rgb(original), rgb(network_face), weights, kept_share, seed=origin[0] * 100_003 + origin[1]
    )
    if added is None:
        return np.zeros_like(original)
    if channels == 1:
        return added[..., :1]
    if _is_gray(original):
        return np.repeat(added[..., :1], 3, axis=2)
    return added


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
