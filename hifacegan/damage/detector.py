"""Finding damage: the trained detector, loaded from its weights file and run on a face crop or a whole photo.

The embedded detector lives apart from the face networks' weights (``hifacegan/damage/weights/``), so that
``hifacegan weights list`` and the pipeline's choice of face network never mistake it for one.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch

from hifacegan.damage.network import DamageUNet, build_detector
from hifacegan.weights.card import ModelCard
from hifacegan.weights.format import WeightsError, read_weights

log = logging.getLogger(__name__)

EMBEDDED_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_DETECTOR = "damage-unet"
ROLE = "damage-detector"
THRESHOLD = 0.5
TILE = 512  # whole photos are run in tiles of this side (with a margin), so memory stays flat
MARGIN = 32


def detector_path(spec: str | os.PathLike[str] = DEFAULT_DETECTOR) -> Path:
    """The file of a detector: a path, or the name of an embedded one; WeightsError says what exists."""
    path = Path(spec).expanduser()
    if path.suffix == ".safetensors" and path.is_file():
        return path
    embedded = EMBEDDED_DIR / f"{spec}.safetensors"
    if embedded.is_file():
        return embedded
    known = sorted(p.stem for p in EMBEDDED_DIR.glob("*.safetensors"))
    raise WeightsError(
        f"no damage detector {str(spec)!r}: give a .safetensors file or one of the embedded ({', '.join(known) or 'none'})"
    )


class DamageDetector:
    """``DamageDetector()(image)`` -> the chance of damage per pixel (H, W) float32 for a uint8 RGB image."""

    def __init__(
        self, weights: str | os.PathLike[str] = DEFAULT_DETECTOR, device: str | torch.device = "cpu"
    ) -> None:
        path = detector_path(weights)
        state, card = read_weights(path)
        if card.role != ROLE:
            raise WeightsError(f"{path} holds {card.role or 'face'} weights, not a damage detector")
        self.card: ModelCard = card
        self.network: DamageUNet = build_detector(card.config)
        self.network.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
        self.device = torch.device(device)
        self.network.eval().requires_grad_(False).to(self.device)
        self.threshold = float(card.metrics.get("threshold", THRESHOLD)) if card.metrics else THRESHOLD

    @torch.inference_mode()
    def probability(self, image: np.ndarray) -> np.ndarray:
        """The chance of damage at every pixel of ``image`` (uint8 RGB, any size), in tiles for large images."""
        height, width = image.shape[:2]
        out = np.zeros((height, width), np.float32)
        step = TILE - 2 * MARGIN
        for top in range(0, height, step):
            for left in range(0, width, step):
                y0, x0 = max(0, top - MARGIN), max(0, left - MARGIN)
                y1, x1 = min(height, top + step + MARGIN), min(width, left + step + MARGIN)
                tile = torch.from_numpy(np.ascontiguousarray(image[y0:y1, x0:x1].transpose(2, 0, 1)))
                tile = tile.to(self.device, torch.float32).div_(255.0)[None]
                chance = torch.sigmoid(self.network(tile))[0, 0].cpu().numpy()
                keep_h, keep_w = min(step, height - top), min(step, width - left)
                out[top : top + keep_h, left : left + keep_w] = chance[
                    top - y0 : top - y0 + keep_h, left - x0 : left - x0 + keep_w
                ]
        return out

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """The damage mask of ``image``: bool (H, W), True where the detector's chance is over its threshold."""
        return self.probability(image) >= self.threshold


def detector_for(choice: str, device: str | torch.device = "cpu") -> tuple[str, DamageDetector | None]:
    """The pipeline's damage step: its scope (``faces``, ``photo`` or ``off``) and its detector, loaded whenever
    its weights are installed (so that a single call can turn the step on); none while they are not (the step is
    then skipped, with a line in the log)."""
    from hifacegan.damage.removal import DAMAGE_CHOICES

    if choice not in DAMAGE_CHOICES:
        raise ValueError(f"damage={choice!r}: choose one of {', '.join(DAMAGE_CHOICES)}")
    try:
        detector_path()
    except WeightsError:
        log.warning("no damage detector installed: scratches and dust are left as they are")
        return choice, None
    return choice, DamageDetector(device=device)
