"""The paper's degradation tasks: each samples its parameters, then applies the operations in ``_ops``.

Recipes follow the authors' corrected supplementary script (see docs/hifacegan-facts.md, "Degradations"); they
are stated for 512x512 faces. At another width W, blur kernel sizes, blur sigmas and the mosaic block scale by
W / 512, while resampling factors, noise levels (0-255 scale) and JPEG qualities stay as given: those are already
independent of resolution.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from hifacegan.degradations import _ops
from hifacegan.degradations._damage import damage_with_mask
from hifacegan.degradations._seeding import resolve_rng
from hifacegan.degradations._web import web

REFERENCE_WIDTH = 512

Params = dict[str, Any]
Apply = Callable[[np.ndarray, np.random.Generator], tuple[np.ndarray, Params]]


@dataclass(frozen=True)
class Task:
    """A named degradation: ``apply(image, rng) -> (degraded, params)`` plus a one-line summary for ``--help``."""

    name: str
    summary: str
    apply: Apply


def _scale(image: np.ndarray) -> float:
    return image.shape[1] / REFERENCE_WIDTH


def sr4x(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    """4x super-resolution input: area-downscale by 4, bicubic back. Deterministic (draws nothing)."""
    return _ops.resample_down_up(image, 4.0), {"op": "resample", "factor": 4.0}


def sr4x8x(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    """Unknown-scale super-resolution input: area-downscale by a factor drawn from U[4, 8], bicubic back."""
    factor = float(rng.uniform(4.0, 8.0))
    return _ops.resample_down_up(image, factor), {"op": "resample", "factor": factor}


def denoise(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    """Noisy input, one of three noise models chosen with equal chance, drawn per pixel and channel.

    Gaussian sigma ~ U[20, 40]; Laplace scale ~ U[20, 40]; signed Poisson lambda ~ U[15, 30] (0-255 scale,
    independent of resolution).
    """
    kind = ("gaussian", "laplace", "poisson")[int(rng.integers(3))]
    if kind == "gaussian":
        sigma = float(rng.uniform(20.0, 40.0))
        return _ops.add_gaussian_noise(image, sigma, rng), {"op": "noise", "kind": kind, "sigma": sigma}
    if kind == "laplace":
        scale = float(rng.uniform(20.0, 40.0))
        return _ops.add_laplace_noise(image, scale, rng), {"op": "noise", "kind": kind, "scale": scale}
    lam = float(rng.uniform(15.0, 30.0))
    return _ops.add_signed_poisson_noise(image, lam, rng), {"op": "noise", "kind": kind, "lambda": lam}


def deblur(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    """Blurred input, motion or Gaussian with equal chance.

    Motion: a line kernel of length U[10, 20] px at a uniformly random angle in [0, 180) degrees. Gaussian: sigma
    U[3, 8] px. Both lengths are for 512 px wide images and scale with width / 512.
    """
    scale = _scale(image)
    if rng.integers(2) == 0:
        length = float(rng.uniform(10.0, 20.0)) * scale
        angle = float(rng.uniform(0.0, 180.0))
        out = _ops.motion_blur(image, length, angle)
        return out, {"op": "blur", "kind": "motion", "length": length, "angle": angle}
    sigma = float(rng.uniform(3.0, 8.0)) * scale
    return _ops.gaussian_blur(image, sigma), {"op": "blur", "kind": "gaussian", "sigma": sigma}


def jpeg(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    """JPEG artefacts: one encode/decode at an integer quality drawn from U[17, 51] (both ends included)."""
    quality = int(rng.integers(17, 52))
    return _ops.jpeg_compress(image, quality), {"op": "jpeg", "quality": quality}


def mosaic16x(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    """16x hallucination input: every 16x16 block (at 512 px; 4x4 at 128) becomes its mean colour.

    Deterministic (draws nothing). The block is round(16 * width / 512), at least 1 pixel.
    """
    block = max(1, round(16 * _scale(image)))
    return _ops.mosaic(image, block), {"op": "mosaic", "block": block}


_FULL_STEPS: dict[str, Apply] = {"deblur": deblur, "denoise": denoise, "jpeg": jpeg, "sr4x8x": sr4x8x}


def full(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    """Face renovation: deblur, denoise, jpeg and sr4x8x all applied, in an order shuffled per image.

    Each step samples its own parameters as its task does; the output of every step is a uint8 image, as it
    would be if the photo had been saved in between.
    """
    names = list(_FULL_STEPS)
    order = [names[i] for i in rng.permutation(len(names))]
    steps = []
    for name in order:
        image, params = _FULL_STEPS[name](image, rng)
        steps.append({"task": name, **params})
    return image, {"op": "sequence", "order": order, "steps": steps}


# The damage mask travels in the params under this key and is taken out before params reach a caller (they stay
# JSON-serialisable); ``degrade_with_mask`` hands it over.
_MASK_KEY = "_mask"


def damage(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    """Old-print damage alone: fading and a colour cast, scratches and cracks, dust and fibres (see ``_damage``)."""
    out, mask, params = damage_with_mask(image, rng)
    return out, {**params, _MASK_KEY: mask}


def old(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    """An old print: the paper's full renovation task, then damage over it (the mask is the damage's)."""
    degraded, first = full(image, rng)
    out, mask, params = damage_with_mask(degraded, rng)
    return out, {"op": "sequence", "order": ["full", "damage"], "steps": [first, params], _MASK_KEY: mask}


TASKS: MappingProxyType[str, Task] = MappingProxyType(
    {
        task.name: task
        for task in (
            Task("sr4x", "4x area-downscale, bicubic back (super-resolution)", sr4x),
            Task("sr4x8x", "random 4x-8x area-downscale, bicubic back", sr4x8x),
            Task("denoise", "Gaussian, Laplace or signed Poisson noise, sigma ~20-40", denoise),
            Task("deblur", "motion blur (any angle) or Gaussian blur", deblur),
            Task("jpeg", "JPEG compression, quality 17-51", jpeg),
            Task("mosaic16x", "16x16 blocks replaced by their mean colour (hallucination)", mosaic16x),
            Task("full", "face renovation: deblur, denoise, jpeg, sr4x8x in a random order", full),
            Task(
                "web",
                "a web or phone photo: mild blur, 1.5-4x resize, JPEG 30-75, maybe halos and noise",
                web,
            ),
            Task(
                "damage", "an old print's scratches, cracks, dust and fibres, maybe fading (--masks)", damage
            ),
            Task("old", "the full task, then damage over it (--masks)", old),
        )
    }
)

# Names the authors' release and paper use for the same tasks.
ALIASES: MappingProxyType[str, str] = MappingProxyType(
    {"down": "sr4x", "16x": "mosaic16x", "face_renov": "full", "renovation": "full"}
)


def list_tasks() -> list[str]:
    """The registered task names: the paper's, then ours (aliases such as ``face_renov`` not included)."""
    return list(TASKS)


def draws_damage(task: str) -> bool:
    """Whether ``task`` draws damage, and so has a mask (``damage``, ``old``)."""
    return get_task(task).name in ("damage", "old")


def get_task(name: str) -> Task:
    """The task called ``name`` (or one of its aliases); ValueError naming the valid tasks otherwise."""
    key = ALIASES.get(name, name) if isinstance(name, str) else name
    try:
        return TASKS[key]
    except (KeyError, TypeError):
        raise ValueError(f"unknown degradation task {name!r}; valid tasks: {', '.join(TASKS)}") from None


def check_image(image: object) -> np.ndarray:
    """Raise a ValueError that says how to fix it unless ``image`` is a uint8 RGB array (H, W, 3)."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"expected a numpy uint8 RGB array of shape (H, W, 3), got {type(image).__name__}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"expected a uint8 RGB array of shape (H, W, 3), got {image.dtype} with shape {image.shape}; "
            "convert first (e.g. hifacegan.data.files.to_rgb8, or drop alpha / stack grayscale to 3 channels)"
        )
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"cannot degrade an empty image of shape {image.shape}")
    return image


def degrade_with_params(
    image: np.ndarray,
    task: str,
    seed: int | None = None,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, Params]:
    """Like :func:`degrade`, and also return the sampled parameters (for logs, reports and tests).

    The parameters are a JSON-serialisable dict: ``{"task": name, "op": ..., ...}``; for ``full`` it holds the
    shuffled ``order`` and one entry per step.
    """
    out, _, params = degrade_with_mask(image, task, seed=seed, rng=rng)
    return out, params


def degrade_with_mask(
    image: np.ndarray,
    task: str,
    seed: int | None = None,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray, Params]:
    """Like :func:`degrade_with_params`, and also the damage mask: bool (H, W), True where damage was drawn.

    Tasks that draw no damage (the paper's, ``web``) give an all-False mask: none of their pixels is damaged in
    the sense of the ``damage`` task, so a detector trained on both learns to mark nothing there.
    """
    spec = get_task(task)
    image = check_image(image)
    generator = resolve_rng(seed, rng)
    out, params = spec.apply(np.ascontiguousarray(image), generator)
    mask = params.pop(_MASK_KEY, None)
    if mask is None:
        mask = np.zeros(image.shape[:2], bool)
    return np.ascontiguousarray(out, dtype=np.uint8), mask, {"task": spec.name, **params}


def degrade(
    image: np.ndarray,
    task: str,
    seed: int | None = None,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Degrade a clean face with one of the paper's tasks (see :data:`TASKS`).

    Args:
        image: uint8 RGB array (H, W, 3); not modified. Recipes are defined at 512 px wide and scale with width.
        task: a name from :func:`list_tasks` (``sr4x``, ``sr4x8x``, ``denoise``, ``deblur``, ``jpeg``,
            ``mosaic16x``, ``full``) or an alias (``down``, ``16x``, ``face_renov``).
        seed: makes the result reproducible: the same seed and input give the same bytes.
        rng: draw from this generator instead (advancing it); for many images from one stream.

    Returns:
        A new uint8 RGB array with the input's shape.

    Examples:
        >>> import numpy as np
        >>> face = np.full((64, 64, 3), 128, np.uint8)
        >>> bool((degrade(face, "denoise", seed=1) == degrade(face, "denoise", seed=1)).all())
        True
        >>> degrade(face, "full", seed=0).shape
        (64, 64, 3)
    """
    return degrade_with_params(image, task, seed=seed, rng=rng)[0]
