"""The face-quality network: one logit per face, that its pixels were blurred, resampled or compressed.

The hand-made measures of a small face (hifacegan.face.detail.PixelMeasures: edges, noise, JPEG blocks) cannot tell
a crisp 40 px face from a soft JPEG one: the blurred, blocky faces of the CodeFormer demo photos read as clean by
every one of them (docs/benchmarks.md, "Small faces"). This network looks at the same pixels and learns the
difference from faces made to look like web photos. It sees local texture only (a receptive field of about 20 px,
averaged and maxed over the face), so it judges a face of any size by its pixels, not by who it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

#: A face larger than this is judged on its central square of this side (its eyes, nose and mouth): the network's
#: evidence is local texture, and the cost stays that of a 160 px face whatever the face's size.
MAX_SIDE = 160


def central(face: np.ndarray, side: int = MAX_SIDE) -> np.ndarray:
    """The central ``side`` x ``side`` part of a face (H, W, ...) larger than that, else the face itself."""
    height, width = face.shape[:2]
    top, left = max(0, (height - side) // 2), max(0, (width - side) // 2)
    return face[top : top + min(side, height), left : left + min(side, width)]


def _conv(inputs: int, outputs: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inputs, outputs, 3, stride=stride, padding=1), nn.ReLU(inplace=True))


class QualityNet(nn.Module):
    """``forward(image)`` -> logits (N,) that each RGB face (N, 3, H, W) in [0, 1], H and W >= 8, is degraded."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _conv(3, width),
            _conv(width, width),
            _conv(width, 2 * width, stride=2),
            _conv(2 * width, 2 * width),
            _conv(2 * width, 4 * width, stride=2),
            _conv(4 * width, 4 * width),
        )
        self.head = nn.Linear(8 * width, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        features = self.features(image - 0.5)
        pooled = torch.cat([features.mean(dim=(2, 3)), features.amax(dim=(2, 3))], dim=1)
        return self.head(pooled).squeeze(1)


@dataclass(frozen=True)
class QualityConfig:
    name: str
    width: int
    description: str


QUALITY_CONFIGS: dict[str, QualityConfig] = {
    config.name: config
    for config in (
        QualityConfig(
            "face-quality-16", 16, "6 convolutions, width 16-64, mean and max pooled (72 k parameters)"
        ),
        QualityConfig("face-quality-4", 4, "the same at width 4, for tests (5 k parameters)"),
    )
}


def build_quality_net(name: str = "face-quality-16") -> QualityNet:
    """The network of a registered config; ValueError naming the valid ones otherwise."""
    try:
        config = QUALITY_CONFIGS[name]
    except KeyError:
        raise ValueError(
            f"unknown face-quality config {name!r}; valid: {', '.join(QUALITY_CONFIGS)}"
        ) from None
    return QualityNet(config.width)
