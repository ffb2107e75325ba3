"""Finding damage: the trained detector, loaded from its weights file and run on a face crop or a whole photo.

The embedded detector lives apart from the face networks' weights (``hifacegan/damage/weights/``), so that
``hifacegan weights list`` and the pipeline's choice of face network never mistake it for one.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import cv2
import numpy as np
import torch

from hifacegan.damage.network import DamageUNet, build_detector, fuse_batch_norms
from hifacegan.weights.card import ModelCard
from hifacegan.weights.format import WeightsError, read_weights

log = logging.getLogger(__name__)

EMBEDDED_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_DETECTOR = "damage-unet"
ROLE = "damage-detector"
THRESHOLD = 0.5
TILE = 512  # whole photos are run in tiles of this side (with a margin), so memory stays flat
MARGIN = 32
# Two looks at a face's window (docs/benchmarks.md, "Removing damage"; docs/results/probe_damage_scale.py): the
# window shrunk to this long side (the scale of the whole face, fast), then the photo's own resolution only where
# that look saw something. A mark is kept where both agree, the shrunk look at this share of the threshold: hair,
# pores and eyelashes that look like strokes at one scale seldom do at both, while scratches and dust do.
COARSE_SIDE = 256
COARSE_AGREEMENT = 0.5
# The full-resolution look runs only around the coarse marks: each group of them (marks within 2 * MARGIN of one
# another) is cut with MARGIN px of context, and a large group in tiles of this side (margin included). Tiles laid
# over the whole window ran 8 of a 1024 px portrait's 12 tiles for marks on 1% of it (docs/benchmarks.md).
FOCUS_TILE = 256


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
        # Batch norms folded and channels last: a quarter less time on a CPU, the same chances to 1e-5.
        fuse_batch_norms(self.network.eval().requires_grad_(False))
        self.network.to(self.device, memory_format=torch.channels_last)
        self.threshold = float(card.metrics.get("threshold", THRESHOLD)) if card.metrics else THRESHOLD

    @torch.inference_mode()
    def probability(
        self, image: np.ndarray, where: np.ndarray | None = None, tile_side: int = TILE
    ) -> np.ndarray:
        """The chance of damage at every pixel of ``image`` (uint8 RGB, any size), in tiles of ``tile_side`` px
        (margin included) for large images; with ``where`` (bool, H x W), only the tiles holding one of its pixels
        are run and the rest read 0."""
        height, width = image.shape[:2]
        out = np.zeros((height, width), np.float32)
        step = tile_side - 2 * MARGIN
        for top in range(0, height, step):
            for left in range(0, width, step):
                if where is not None and not where[top : top + step, left : left + step].any():
                    continue
                y0, x0 = max(0, top - MARGIN), max(0, left - MARGIN)
                y1, x1 = min(height, top + step + MARGIN), min(width, left + step + MARGIN)
                tile = torch.from_numpy(np.ascontiguousarray(image[y0:y1, x0:x1].transpose(2, 0, 1)))
                tile = tile.to(self.device, torch.float32).div_(255.0)[None]
                tile = tile.contiguous(memory_format=torch.channels_last)
                chance = torch.sigmoid(self.network(tile))[0, 0].cpu().numpy()
                keep_h, keep_w = min(step, height - top), min(step, width - left)
                out[top : top + keep_h, left : left + keep_w] = chance[
                    top - y0 : top - y0 + keep_h, left - x0 : left - x0 + keep_w
                ]
        return out

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """The damage mask of ``image``: bool (H, W), True where the detector's chance is over its threshold."""
        return self.probability(image) >= self.threshold

    def coarse_probability(self, image: np.ndarray, side: int = COARSE_SIDE) -> np.ndarray:
        """The chances over ``image`` shrunk to at most ``side`` px on its long side, enlarged back to its size."""
        height, width = image.shape[:2]
        if max(height, width) <= side:
            return self.probability(image)
        scale = side / max(height, width)
        small_size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = cv2.resize(image, small_size, interpolation=cv2.INTER_AREA)
        return cv2.resize(self.probability(small), (width, height), interpolation=cv2.INTER_LINEAR)

    def face_mask(self, window: np.ndarray) -> np.ndarray:
        """The damage mask of a face's window, seen twice: whole at :data:`COARSE_SIDE` px, then at its own
        resolution only in the tiles where the first look marked something; True where both agree."""
        if max(window.shape[:2]) <= COARSE_SIDE:
            return self(window)
        candidates = self.coarse_probability(window) >= self.threshold * COARSE_AGREEMENT
        if not candidates.any():
            return candidates
        return candidates & (self.probability_near(window, candidates) >= self.threshold)

    def probability_near(self, image: np.ndarray, marks: np.ndarray) -> np.ndarray:
        """The chances at ``image``'s own resolution at every pixel of ``marks`` (bool, H x W), 0 elsewhere.

        Each group of marks is looked at in its own crop with :data:`MARGIN` px of context around every mark (the
        same context a tile's margin gives), so the cost follows the marks, not the image."""
        out = np.zeros(image.shape[:2], np.float32)
        reach = np.ones((2 * MARGIN + 1, 2 * MARGIN + 1), np.uint8)
        grown = cv2.dilate(marks.astype(np.uint8), reach)
        count, labels, boxes, _ = cv2.connectedComponentsWithStats(grown, connectivity=8)
        # Crops start on the network's pooling grid, as the whole image's tiles do: off it, chances change.
        grid = 2**self.network.depth
        for label in range(1, count):
            left, top, width, height = (int(v) for v in boxes[label, :4])
            rows = slice(top - top % grid, top + height)
            cols = slice(left - left % grid, left + width)
            own = (labels[rows, cols] == label) & marks[rows, cols]
            chance = self.probability(image[rows, cols], where=own, tile_side=FOCUS_TILE)
            out[rows, cols][own] = chance[own]
        return out


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
