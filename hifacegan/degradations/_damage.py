"""The ``damage`` task: what time does to a print, drawn with the mask of every damaged pixel.

Scanned old prints carry damage that no blur, noise or compression model describes: cracks in the emulsion and
scratches (thin curves, light where the emulsion is gone, dark where dirt filled them, branching, with soft or torn
edges and uneven opacity), dust, specks and fibres. A detector learns where they are from the mask drawn here, and
the scores of removal read the error inside and outside it. Film grain is not damage (it is the photo's texture)
and is never drawn here.

Every ``damage`` image draws, in this order:

1. fading towards a paper tone, a third of the time (strength U[0.05, 0.35]), and a colour cast a third of the
   time (per-channel gains within 8%): global changes, outside the mask;
2. 1-4 scratches or cracks, each a smooth random walk of U[0.25, 1.1] of the width, 1-8 px thick at 512 px, light
   (9 in 10) or dark, opacity U[0.55, 1], with a branch a third of the time, and soft or torn edges;
3. 0-40 dust specks (radius 0.6-3 px at 512) and 0-4 fibres (short thin curls), light or dark.

Sizes scale with width / 512 like the paper's recipes. The mask marks pixels whose drawn opacity is at least
``MASK_OPACITY`` (0.15): fainter edges of a soft stroke change a pixel by under 15% of the way to the damage's
colour and are left out so that the mask is what a retoucher would paint over.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

REFERENCE_WIDTH = 512
MASK_OPACITY = 0.15
_SUPERSAMPLE = 4  # polylines are drawn at 4x with cv2.LINE_AA for sub-pixel thickness, then area-reduced


def _walk(
    start: np.ndarray, heading: float, length: float, rng: np.random.Generator, step: float
) -> np.ndarray:
    """Points of a smooth random walk: the heading turns a little at every step (a crack's meander)."""
    count = max(2, int(length / step))
    turns = np.cumsum(rng.normal(0.0, 0.18, count)) * 0.5 + heading
    offsets = np.stack([np.cos(turns), np.sin(turns)], axis=1) * step
    return np.vstack([start, start + np.cumsum(offsets, axis=0)])


def _stroke_alpha(
    shape: tuple[int, int], paths: list[np.ndarray], thickness: float, torn: bool, rng: np.random.Generator
) -> np.ndarray:
    """Coverage (0-1) of ``paths`` drawn ``thickness`` px thick, anti-aliased, with torn edges if asked."""
    height, width = shape
    canvas = np.zeros((height * _SUPERSAMPLE, width * _SUPERSAMPLE), np.uint8)
    line = max(1, round(thickness * _SUPERSAMPLE))
    for path in paths:
        points = np.rint(path * _SUPERSAMPLE).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(canvas, [points], False, 255, thickness=line, lineType=cv2.LINE_AA)
    alpha = cv2.resize(canvas, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    if torn:
        # Torn edges: coarse noise eats into the stroke's border, never its core.
        noise = cv2.resize(
            rng.random((max(1, height // 3), max(1, width // 3)), dtype=np.float32), (width, height)
        )
        core = cv2.erode((alpha > 0.9).astype(np.uint8), np.ones((2, 2), np.uint8)).astype(bool)
        alpha = np.where(core, alpha, alpha * np.clip(noise * 1.6, 0.0, 1.0))
    return alpha


def _scratch(
    image_shape: tuple[int, int], scale: float, rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, Any]]:
    """One scratch or crack: its coverage times its opacity, and what was drawn."""
    height, width = image_shape
    start = np.array([rng.uniform(0, width), rng.uniform(0, height)])
    heading = float(rng.uniform(0.0, 2.0 * math.pi))
    length = float(rng.uniform(0.25, 1.1)) * width
    step = max(1.0, 3.0 * scale)
    paths = [_walk(start, heading, length, rng, step)]
    branched = bool(rng.random() < 1 / 3)
    if branched:
        trunk = paths[0]
        fork = trunk[int(rng.integers(len(trunk) // 4, max(len(trunk) // 4 + 1, 3 * len(trunk) // 4)))]
        turn = float(rng.choice([-1.0, 1.0]) * rng.uniform(0.3, 1.0))
        paths.append(_walk(fork, heading + turn, length * float(rng.uniform(0.2, 0.6)), rng, step))
    # Log-uniform over 1-8 px: hairline cracks are commoner than wide scratches.
    thickness = max(0.6, math.exp(float(rng.uniform(0.0, math.log(8.0)))) * scale)
    torn = bool(rng.random() < 0.5)
    alpha = _stroke_alpha(image_shape, paths, thickness, torn, rng)
    if not torn:
        soft = float(rng.uniform(0.0, 0.8)) * max(scale, 0.25)
        if soft > 0.2:
            alpha = cv2.GaussianBlur(alpha, (0, 0), sigmaX=soft)
    opacity = float(rng.uniform(0.55, 1.0))
    info = {"kind": "scratch", "thickness": thickness, "branched": branched, "torn": torn, "opacity": opacity}
    return alpha * opacity, info


def _specks(image_shape: tuple[int, int], scale: float, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Dust: small round or oval specks of coverage 0.6-1, and how many were drawn."""
    height, width = image_shape
    count = int(rng.integers(0, 41))
    canvas = np.zeros((height * _SUPERSAMPLE, width * _SUPERSAMPLE), np.uint8)
    for _ in range(count):
        centre = (int(rng.uniform(0, width * _SUPERSAMPLE)), int(rng.uniform(0, height * _SUPERSAMPLE)))
        radius = float(rng.uniform(0.6, 3.0)) * scale * _SUPERSAMPLE
        axes = (max(1, round(radius)), max(1, round(radius * rng.uniform(0.5, 1.0))))
        level = int(rng.uniform(150, 255))
        cv2.ellipse(canvas, centre, axes, float(rng.uniform(0, 180)), 0, 360, level, -1, cv2.LINE_AA)
    alpha = cv2.resize(canvas, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    return alpha, count


def _fibres(image_shape: tuple[int, int], scale: float, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Fibres: short thin curls, a hair's width, and how many were drawn."""
    height, width = image_shape
    count = int(rng.integers(0, 5))
    paths = []
    for _ in range(count):
        start = np.array([rng.uniform(0, width), rng.uniform(0, height)])
        length = float(rng.uniform(8.0, 40.0)) * scale
        paths.append(_walk(start, float(rng.uniform(0, 2 * math.pi)), length, rng, max(0.7, 1.5 * scale)))
    if not paths:
        return np.zeros(image_shape, np.float32), 0
    return _stroke_alpha(image_shape, paths, max(0.6, 1.2 * scale), False, rng) * 0.9, count


def _age(image: np.ndarray, rng: np.random.Generator, params: dict[str, Any]) -> np.ndarray:
    """Fading towards a warm paper tone and a colour cast, each a third of the time (global, unmasked)."""
    out = image.astype(np.float32)
    if rng.random() < 1 / 3:
        strength = float(rng.uniform(0.05, 0.35))
        tone = np.array([rng.uniform(215, 245), rng.uniform(200, 235), rng.uniform(170, 215)], np.float32)
        out = out * (1.0 - strength) + tone * strength
        params["fade"] = {"strength": strength, "tone": [float(t) for t in tone]}
    if rng.random() < 1 / 3:
        gains = rng.uniform(0.92, 1.08, 3).astype(np.float32)
        out = out * gains
        params["cast"] = {"gains": [float(g) for g in gains]}
    return out


def _composite(out: np.ndarray, alpha: np.ndarray, light: bool, rng: np.random.Generator) -> np.ndarray:
    """Lay damage of coverage ``alpha`` over ``out`` in a light (emulsion gone) or dark (dirt) colour."""
    level = rng.uniform(215, 255) if light else rng.uniform(10, 70)
    colour = np.full(3, level, np.float32) + rng.uniform(-8, 8, 3).astype(np.float32)
    return out * (1.0 - alpha[..., None]) + colour * alpha[..., None]


def damage_with_mask(
    image: np.ndarray, rng: np.random.Generator, scale: float | None = None
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Age ``image`` and draw damage over it (module doc); returns (damaged, mask as bool (H, W), params).

    ``scale`` sets the damage's size (1: as on a 512 px wide face) apart from the image's width: the detector
    learns on small crops that stand for parts of larger faces. Default: width / 512, as the other tasks.
    """
    height, width = image.shape[:2]
    scale = width / REFERENCE_WIDTH if scale is None else float(scale)
    params: dict[str, Any] = {"op": "damage"}
    out = _age(image, rng, params)
    coverage = np.zeros((height, width), np.float32)
    strokes = []
    for _ in range(int(rng.integers(1, 5))):
        alpha, info = _scratch((height, width), scale, rng)
        info["light"] = bool(rng.random() < 0.9)
        out = _composite(out, alpha, info["light"], rng)
        coverage = np.maximum(coverage, alpha)
        strokes.append(info)
    params["scratches"] = strokes
    for kind, draw in (("specks", _specks), ("fibres", _fibres)):
        alpha, count = draw((height, width), scale, rng)
        light = bool(rng.random() < 0.6)
        if count:
            out = _composite(out, alpha, light, rng)
            coverage = np.maximum(coverage, alpha)
        params[kind] = {"count": count, "light": light}
    damaged = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    mask = coverage >= MASK_OPACITY
    params["mask_share"] = float(mask.mean())
    return damaged, mask, params
