"""Removing damage: find it around each face, fill it from its surroundings, and touch no other pixel.

Damage is filled at the photo's own resolution with OpenCV's Navier-Stokes inpainting (it carries the image's
level lines into the hole, as fluid flow would), inside the detector's mask grown by one pixel to catch a stroke's
soft rim. ``docs/benchmarks.md`` ("Removing damage") has the measurements that chose it over Telea's fast marching
and the radius. Every pixel outside the grown mask keeps its value exactly,
so a sharp face keeps its detail, and the face's renovation (if it looks degraded) runs on the cleaned pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from hifacegan.damage.detector import DamageDetector
from hifacegan.face.blending import colour_view, to_rgb_float

GROW = 1  # pixels added around the detector's mask: the soft rim of a stroke is filled with it
RADIUS = 3  # the inpainting's neighbourhood, in pixels
FACE_MARGIN = 0.25  # the box searched around a face, grown by this share of its size on each side
METHODS = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}
# Damage is thin: a scratch is 1-8 px wide in a 512 px photo (a face window of 250-500 px), dust a few pixels. A marked
# region wider than this share of its window's short side (at least MIN_WIDTH px) is a mouth, an eye or a white
# collar the detector mistook, and is never filled: a wrong fill there would cost the face its features.
MAX_WIDTH_SHARE = 0.05
MIN_WIDTH = 6.0
# A window whose marked share (after the width filter) is under this is left as it is: a few stray marks on a
# clean face are the detector's errors, and filling them would change a clean portrait for nothing.
# docs/results/probe_damage_scale.py set it with the detector's two looks (docs/benchmarks.md, "Removing damage"):
# at 0.3% 2 of 101 clean FFHQ windows at 1024 px are filled, and 98 of 101 with drawn damage at 512 px.
MIN_SHARE = 0.003


@dataclass
class DamageFound:
    """The damage found in one window of a photo: ``box`` (x0, y0, x1, y1) and its mask there."""

    box: tuple[int, int, int, int]
    mask: np.ndarray  # bool, the window's shape
    within: np.ndarray | None = None  # bool, the selection over the window: nothing outside it is filled

    @property
    def area(self) -> int:
        """Damaged pixels."""
        return int(self.mask.sum())

    @property
    def share(self) -> float:
        """The damaged share of the window."""
        return float(self.mask.mean()) if self.mask.size else 0.0


def as_rgb8(pixels: np.ndarray) -> np.ndarray:
    """A window of a photo of any of the pipeline's layouts and depths, as the detector's uint8 RGB (the blending's
    own reading of colour channels and full white, :func:`~hifacegan.face.blending.to_rgb_float`)."""
    window = pixels if pixels.ndim == 3 else pixels[..., None]
    return np.clip(np.rint(to_rgb_float(window) * 255.0), 0, 255).astype(np.uint8)


def face_window(box: tuple[float, float, float, float], shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """A face's box grown by ``FACE_MARGIN`` on each side, in whole pixels inside the photo."""
    x0, y0, x1, y1 = box
    grow_x, grow_y = (x1 - x0) * FACE_MARGIN, (y1 - y0) * FACE_MARGIN
    height, width = shape
    left, top = max(0, int(np.floor(x0 - grow_x))), max(0, int(np.floor(y0 - grow_y)))
    right, bottom = min(width, int(np.ceil(x1 + grow_x))), min(height, int(np.ceil(y1 + grow_y)))
    return left, top, max(left, right), max(top, bottom)


def thin_parts(mask: np.ndarray, max_width: float) -> np.ndarray:
    """``mask`` without its connected regions wider than ``max_width`` px at their widest (twice the largest
    distance from a region's pixel to its edge): strokes and specks stay, blobs go."""
    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return mask
    distance = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 3)
    widest = np.zeros(count, np.float32)
    np.maximum.at(widest, labels.ravel(), distance.ravel())
    keep = 2 * widest <= max_width
    keep[0] = False
    return keep[labels]


def keep_damage(mask: np.ndarray, gate: float = MIN_SHARE) -> np.ndarray:
    """The detector's ``mask`` of a window less what cannot be damage: regions too wide (:func:`thin_parts`, at
    :data:`MAX_WIDTH_SHARE` of the window's short side), and everything when under ``gate`` of the window."""
    mask = thin_parts(mask, max(MIN_WIDTH, MAX_WIDTH_SHARE * min(mask.shape[:2])))
    return np.zeros_like(mask) if mask.mean() < gate else mask


def find_damage(
    photo: np.ndarray, window: tuple[int, int, int, int], detector: DamageDetector, face: bool = True
) -> DamageFound:
    """The detector's mask over ``window`` of ``photo`` (H, W) or (H, W, C) of any of the pipeline's depths, less
    the regions too wide to be damage (:func:`thin_parts`); empty when under :data:`MIN_SHARE` of the window.
    A ``face`` window is seen at two scales (:meth:`DamageDetector.face_mask`); another (a whole photo) at its
    own resolution only, since shrunk whole its faces would be too small to judge."""
    x0, y0, x1, y1 = window
    pixels = photo[y0:y1, x0:x1]
    if pixels.size == 0:
        return DamageFound(window, np.zeros(pixels.shape[:2], bool))
    rgb = as_rgb8(pixels)
    return DamageFound(window, keep_damage(detector.face_mask(rgb) if face else detector(rgb)))


def fill(
    pixels: np.ndarray, mask: np.ndarray, method: str = "ns", within: np.ndarray | None = None
) -> np.ndarray:
    """``pixels`` with ``mask`` (grown by ``GROW``, kept ``within`` a selection) filled from around it; every
    other pixel kept exactly."""
    if not mask.any():
        return pixels
    grown = cv2.dilate(mask.astype(np.uint8), np.ones((2 * GROW + 1, 2 * GROW + 1), np.uint8))
    if within is not None:
        grown &= within.astype(np.uint8)
    flag = METHODS[method]
    squeeze = pixels.ndim == 2
    work = pixels[..., None] if squeeze else pixels
    colour = colour_view(work).shape[2]  # alpha is never filled
    source = np.ascontiguousarray(work[..., :colour])
    if work.dtype == np.uint8:
        filled = cv2.inpaint(source, grown, RADIUS, flag).reshape(source.shape)
    else:  # 16-bit or float: one channel at a time, in float32 (what OpenCV fills beyond 8 bits)
        planes = [
            cv2.inpaint(np.ascontiguousarray(source[..., c], np.float32), grown, RADIUS, flag)
            for c in range(colour)
        ]
        filled = np.stack(planes, axis=2)
        if work.dtype != np.float32:
            filled = np.clip(np.rint(filled), 0, np.iinfo(work.dtype).max)
        filled = filled.astype(work.dtype)
    out = work.copy()
    out[..., :colour] = np.where(grown.astype(bool)[..., None], filled, source)
    return out[..., 0] if squeeze else out


def remove_damage(photo: np.ndarray, found: DamageFound, method: str = "ns") -> None:
    """Fill the damage ``found`` in ``photo`` in place; nothing outside its grown mask changes."""
    if found.area == 0:
        return
    x0, y0, x1, y1 = found.box
    photo[y0:y1, x0:x1] = fill(photo[y0:y1, x0:x1], found.mask, method, found.within)


DAMAGE_CHOICES = ("faces", "photo", "off")


def clean_photo(
    photo: np.ndarray,
    boxes: list[tuple[float, float, float, float]],
    detector: DamageDetector,
    scope: str = "faces",
    region: np.ndarray | None = None,
) -> list[DamageFound]:
    """Find and fill damage in ``photo`` in place: around each face's box (``faces``) or everywhere (``photo``).

    Returns what was found around each box, in order (for ``photo`` too, so every face can report its share).
    Within a selection (``region``, (H, W), non-zero where selected) only the selected pixels are filled.
    """
    selected = None if region is None else np.asarray(region) > 0
    if scope not in DAMAGE_CHOICES:
        raise ValueError(f"damage={scope!r}: choose one of {', '.join(DAMAGE_CHOICES)}")
    shape = photo.shape[:2]
    windows = [face_window(box, shape) for box in boxes]
    if scope == "off":
        return [DamageFound(w, np.zeros((w[3] - w[1], w[2] - w[0]), bool)) for w in windows]
    if scope == "photo":
        whole = find_damage(photo, (0, 0, shape[1], shape[0]), detector, face=False)
        if selected is not None:
            whole.mask &= selected
            whole.within = selected
        found = [DamageFound(w, whole.mask[w[1] : w[3], w[0] : w[2]].copy()) for w in windows]
        remove_damage(photo, whole)
        return found
    found = []
    for window in windows:
        x0, y0, x1, y1 = window
        damage = find_damage(photo, window, detector)
        if selected is not None:
            damage.within = selected[y0:y1, x0:x1]
            damage.mask &= damage.within
        found.append(damage)
    for damage in found:  # after every search: a fill never changes what a neighbouring face's search sees
        remove_damage(photo, damage)
    return found
