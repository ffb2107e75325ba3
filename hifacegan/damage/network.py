"""The damage detector's network: a small U-Net that marks scratches, cracks, dust and fibres pixel by pixel.

Damage is thin (1-8 px) and its look depends on what lies beside it (a white crack on a cheek, a dark fibre on a
collar), so the network needs both full-resolution detail and some context: a U-Net's skip connections keep the
first, its 8x-downsampled bottleneck sees the second (a receptive field of about 100 px). It is fully
convolutional, so one trained on 128 px crops runs on a face crop or a whole photo of any size. At width 16 it holds
0.49 M parameters (1 MB in half precision): the issue allows 5 MB, and a CPU runs it on a 512 px face in ~60 ms.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.fusion import fuse_conv_bn_eval


def _block(inputs: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inputs, outputs, 3, padding=1, bias=False),
        nn.BatchNorm2d(outputs),
        nn.ReLU(inplace=True),
        nn.Conv2d(outputs, outputs, 3, padding=1, bias=False),
        nn.BatchNorm2d(outputs),
        nn.ReLU(inplace=True),
    )


class DamageUNet(nn.Module):
    """``forward(image)`` -> damage logits (N, 1, H, W) for an RGB image in [0, 1] of any size (N, 3, H, W)."""

    def __init__(self, width: int = 16, depth: int = 3) -> None:
        super().__init__()
        self.depth = depth
        channels = [width * 2**level for level in range(depth + 1)]
        self.down = nn.ModuleList([_block(3, channels[0])])
        self.down.extend(_block(channels[i], channels[i + 1]) for i in range(depth))
        self.up = nn.ModuleList(
            _block(channels[i + 1] + channels[i], channels[i]) for i in reversed(range(depth))
        )
        self.head = nn.Conv2d(channels[0], 1, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2:]
        multiple = 2**self.depth
        pad_h, pad_w = (-height) % multiple, (-width) % multiple
        x = F.pad(image - 0.5, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else image - 0.5
        skips = []
        for level, block in enumerate(self.down):
            x = block(x if level == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        skips.pop()
        for block in self.up:
            skip = skips.pop()
            x = block(torch.cat([F.interpolate(x, size=skip.shape[-2:], mode="nearest"), skip], dim=1))
        return self.head(x)[..., :height, :width]


def fuse_batch_norms(network: DamageUNet) -> DamageUNet:
    """``network`` (in eval mode) with each batch norm folded into the convolution before it, in place: the same
    function for inference with a third fewer layers and passes over memory. For inference only: the fused
    network has no batch norms left to train."""
    for blocks in (network.down, network.up):
        for index, block in enumerate(blocks):
            fused: list[nn.Module] = []
            for layer in block:
                if isinstance(layer, nn.BatchNorm2d) and fused and isinstance(fused[-1], nn.Conv2d):
                    fused[-1] = fuse_conv_bn_eval(fused[-1], layer)
                else:
                    fused.append(layer)
            blocks[index] = nn.Sequential(*fused)
    return network


@dataclass(frozen=True)
class DetectorConfig:
    name: str
    width: int
    depth: int
    description: str


DETECTOR_CONFIGS: dict[str, DetectorConfig] = {
    config.name: config
    for config in (
        DetectorConfig("damage-unet-16", 16, 3, "U-Net, width 16, 3 downsamplings (0.49 M parameters)"),
        DetectorConfig(
            "damage-unet-8", 8, 3, "U-Net, width 8, 3 downsamplings, for tests (0.12 M parameters)"
        ),
    )
}


def build_detector(name: str = "damage-unet-16") -> DamageUNet:
    """The detector network of a registered config; ValueError naming the valid ones otherwise."""
    try:
        config = DETECTOR_CONFIGS[name]
    except KeyError:
        raise ValueError(
            f"unknown damage detector config {name!r}; valid: {', '.join(DETECTOR_CONFIGS)}"
        ) from None
    return DamageUNet(config.width, config.depth)
