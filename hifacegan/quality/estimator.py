"""Judging a face's quality with a trained network: the chance that its pixels were degraded, and the share of
the network's face that chance would ask for (``hifacegan quality score``, docs/results/probe_quality.py).

The pipeline does not use it yet: trained on studio portraits it took a fifth of clean ffhq faces for degraded,
and trained on web faces as well it took the CodeFormer demo photos' soft faces for clean (docs/benchmarks.md).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from hifacegan.quality.network import QualityNet, build_quality_net, central
from hifacegan.weights.format import WeightsError, read_weights

ROLE = "face-quality"
#: The chance of degradation at or under which a face counts as clean by this measure, and at or over which it
#: counts as degraded; linear in between (docs/benchmarks.md, "Small faces": set on held-out portraits).
CLEAN_CHANCE = 0.8
DEGRADED_CHANCE = 0.95
MIN_SIDE = 8
#: The face sizes (detection box, longer side, photo pixels) the network was trained on; outside them it gives no
#: verdict (hifacegan.face.detail measures such faces by their edges, noise and NIQE alone).
FACE_SIDES = (24, 320)


def judges(face: np.ndarray) -> bool:
    """Whether the network's verdict on ``face`` (its detection box, (H, W, C)) counts: a size it was trained on."""
    return max(face.shape[:2]) <= FACE_SIDES[1] and min(face.shape[:2]) >= MIN_SIDE


def quality_path(spec: str | os.PathLike[str]) -> Path:
    """The ``.safetensors`` file of a trained face-quality network (a run folder's export); WeightsError otherwise.
    None is embedded yet: docs/benchmarks.md ("Small faces: a learned measure, not yet") says why."""
    path = Path(spec).expanduser()
    if path.is_dir():
        path = path / "face-quality.safetensors"
    if path.suffix == ".safetensors" and path.is_file():
        return path
    raise WeightsError(
        f"no face-quality network at {str(spec)!r}: give the face-quality.safetensors a run exported "
        "(hifacegan quality train --out RUN), or its run folder"
    )


class FaceQuality:
    """``FaceQuality()(face)`` -> the chance (0..1) that a face (float RGB in [0, 1], its detection box in the
    photo's own pixels) was blurred, resampled or compressed. Runs on the CPU: one small face costs a few ms."""

    def __init__(self, weights: str | os.PathLike[str]) -> None:
        state, card = read_weights(quality_path(weights))
        if card.role != ROLE:
            raise WeightsError(f"{weights} holds {card.role or 'other'} weights, not a face-quality network")
        self.network: QualityNet = build_quality_net(card.config)
        self.network.load_state_dict({k: v.float() for k, v in state.items()})
        self.network.eval().requires_grad_(False)
        self.card = card

    @torch.inference_mode()
    def __call__(self, face: np.ndarray) -> float:
        face = central(face)
        if min(face.shape[:2]) < MIN_SIDE:
            return 1.0
        tensor = torch.from_numpy(np.ascontiguousarray(face.transpose(2, 0, 1), dtype=np.float32))[None]
        return float(torch.sigmoid(self.network(tensor))[0])


def learned_degradation(chance: float) -> float:
    """0 (clean) to 1 (degraded) from the network's chance (CLEAN_CHANCE .. DEGRADED_CHANCE, linear)."""
    return float(np.clip((chance - CLEAN_CHANCE) / (DEGRADED_CHANCE - CLEAN_CHANCE), 0.0, 1.0))
