"""The SPADE decoder trunk shared by the three generators (hifacegan, lipspade, spade).

From the bottleneck at 1/32 of the input size: ``head_0``; nearest 2x up; ``G_middle_0``, ``G_middle_1``; then four
(2x up, SPADE block) stages halving the channels, 16ngf -> 8 -> 4 -> 2 -> ngf; LeakyReLU, 3x3 conv to RGB, tanh.
Each generator only decides what the bottleneck is and which guidance map each block sees.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hifacegan.models.blocks import SPADEResnetBlock

#: Input sizes must be a multiple of this (five 2x poolings down to the bottleneck).
SIZE_MULTIPLE = 32


def check_input(x: torch.Tensor, min_size: int = 64) -> None:
    """Fail with a sentence a user can act on, rather than a shape error deep inside a convolution."""
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"expected a (N, 3, H, W) RGB batch, got shape {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if h % SIZE_MULTIPLE or w % SIZE_MULTIPLE or min(h, w) < min_size:
        raise ValueError(
            f"input size {h}x{w} is not supported: height and width must be multiples of {SIZE_MULTIPLE} "
            f"and at least {min_size} (resize or pad the face crop)"
        )


class SPADEDecoder(nn.Module):
    """Base class of the generators: 7 SPADE residual blocks, each modulated by its own guidance map.

    The blocks are attributes of the generator itself (not of a sub-module) because that is where the released
    state_dicts have them (``head_0.*``, ``ups.0.*``, ``to_rgbs.3.*``).
    """

    def build_decoder(
        self, ngf: int, label_nc: list[int], legacy_rgb_heads: bool = True, max_mult: int = 16
    ) -> None:
        """``label_nc`` lists the guidance channels for head_0, the two middles, then ups.0..3.

        ``legacy_rgb_heads`` keeps the release's unused ``to_rgbs.0-2`` convolutions so its checkpoints load
        strictly; our own lite configs drop them. ``max_mult`` caps the width at ``max_mult * ngf`` channels
        (the paper: 16); lite configs cap it lower, which removes most parameters of the low-resolution blocks
        while costing almost nothing in compute, which is spent at high resolution.
        """
        nf = min(16, max_mult) * ngf
        self.head_0 = SPADEResnetBlock(nf, nf, label_nc[0])
        self.G_middle_0 = SPADEResnetBlock(nf, nf, label_nc[1])
        self.G_middle_1 = SPADEResnetBlock(nf, nf, label_nc[2])
        chans = [min(m, max_mult) * ngf for m in (16, 8, 4, 2, 1)]
        self.ups = nn.ModuleList(SPADEResnetBlock(chans[i], chans[i + 1], label_nc[3 + i]) for i in range(4))
        if legacy_rgb_heads:
            self.to_rgbs = nn.ModuleList(nn.Conv2d(chans[i + 1], 3, 3, padding=1) for i in range(4))
        else:
            # Same key as the release's final head ("to_rgbs.3"), so the code path is shared.
            self.to_rgbs = nn.ModuleList(
                [nn.Identity(), nn.Identity(), nn.Identity(), nn.Conv2d(ngf, 3, 3, padding=1)]
            )

    def decode(self, x: torch.Tensor, guides: list[torch.Tensor], final_tanh: bool = True) -> torch.Tensor:
        """``guides``: seven maps for head_0, G_middle_0, G_middle_1, ups.0..3 (resized to fit when needed).

        ``final_tanh=False`` returns the last convolution's raw output, for residual generators.
        """
        x = self.head_0(x, guides[0])
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = self.G_middle_0(x, guides[1])
        x = self.G_middle_1(x, guides[2])
        for i, block in enumerate(self.ups):
            x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = block(x, guides[3 + i])
        out = self.to_rgbs[3](F.leaky_relu(x, 0.2))
        return torch.tanh(out) if final_tanh else out


def init_weights(module: nn.Module, gain: float = 0.02) -> None:
    """The release's initialisation: xavier-normal convolutions (gain 0.02), zero biases, unit norm scales."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            weight = m.weight_orig if hasattr(m, "weight_orig") else m.weight
            nn.init.xavier_normal_(weight, gain=gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.InstanceNorm2d) and m.affine:
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
