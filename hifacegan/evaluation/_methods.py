"""The methods a report compares: the degraded input itself, the classical baseline, and each weights file."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from hifacegan.evaluation._baseline import classical_restore

DEGRADED = "degraded input"
BASELINE = "classical (NLM + bicubic)"


@dataclass
class MethodOutput:
    """Restored uint8 RGB images (one per input, same order) and notes for the report."""

    name: str
    images: list[np.ndarray]
    notes: list[str] = field(default_factory=list)


def run_degraded(degraded: Sequence[np.ndarray]) -> MethodOutput:
    return MethodOutput(DEGRADED, list(degraded))


def run_baseline(degraded: Sequence[np.ndarray], progress: bool = True) -> MethodOutput:
    images = [
        classical_restore(img) for img in tqdm(degraded, desc=BASELINE, disable=not progress, leave=False)
    ]
    return MethodOutput(BASELINE, images)


def run_weights(
    spec: str,
    degraded: Sequence[np.ndarray],
    device: torch.device,
    batch_size: int = 8,
    progress: bool = True,
    precision: str = "auto",
    damage: str = "off",
) -> MethodOutput:
    """Run one weights file's generator on the aligned crops, batched, no detection (they already are faces).

    The crops' size must be a multiple of 32 (the generator's contract); the network's raw output becomes an
    image by the weights' own convention (``card.to_image``), then 8-bit like any saved result. As in the
    pipeline, scratches and dust can first be found and filled on each crop (``damage``: ``faces``; ``off``,
    the default, as the pipeline's) while a damage detector is installed.
    """
    from hifacegan.devices import inference_dtype
    from hifacegan.weights import load_weights

    loaded = load_weights(spec, device=device)
    card = loaded.card
    dtype = inference_dtype(device, precision, card.config)
    height, width = degraded[0].shape[:2]
    if height % 32 or width % 32:
        raise ValueError(
            f"weights {spec}: images of {width}x{height} px; the generator needs multiples of 32 (--size)"
        )
    notes = []
    if card.size and int(card.size) != width:
        notes.append(f"{card.name} was trained at {card.size} px and is evaluated at {width} px")
    generator = loaded.generator.to(dtype)
    degraded = _without_damage(degraded, damage, notes)
    outputs: list[np.ndarray] = []
    starts = range(0, len(degraded), batch_size)
    with torch.inference_mode():
        for start in tqdm(starts, desc=f"weights {card.name}", disable=not progress, leave=False):
            batch = np.stack(degraded[start : start + batch_size])
            x = torch.from_numpy(batch).to(device).permute(0, 3, 1, 2).float().div_(255.0)
            image = card.to_image(generator(x.to(dtype)).float())
            out = image.mul(255.0).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
            outputs.extend(list(out))
    return MethodOutput(f"{card.name}", outputs, notes)


def _without_damage(crops: Sequence[np.ndarray], damage: str, notes: list[str]) -> Sequence[np.ndarray]:
    """The crops with the damage the installed detector finds filled (hifacegan.damage), as the pipeline does."""
    from hifacegan.damage.detector import detector_for
    from hifacegan.damage.removal import fill

    scope, detector = detector_for(damage)
    if scope == "off" or detector is None:
        return crops
    cleaned = [fill(crop, detector(crop)) for crop in crops]
    changed = sum(not np.array_equal(a, b) for a, b in zip(crops, cleaned, strict=True))
    notes.append(f"damage found and filled on {changed} of {len(crops)} crops ({detector.card.name})")
    return cleaned
