"""Conditional multiscale PatchGAN discriminator (pix2pixHD / SPADE style), as the paper trains with.

Each scale sees ``concat(degraded, image)``; the second scale sees both 2x average-pooled. Every layer's output is
returned so the generator can be trained with feature matching.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm


class NLayerDiscriminator(nn.Module):
    """PatchGAN: 4x4 convolutions, spectral norm and instance norm on the middle layers, LeakyReLU(0.2)."""

    def __init__(self, in_channels: int = 6, ndf: int = 64, n_layers: int = 4) -> None:
        super().__init__()
        pad = math.ceil((4 - 1) / 2)
        self.n_layers = n_layers
        self.model0 = nn.Sequential(nn.Conv2d(in_channels, ndf, 4, stride=2, padding=pad), nn.LeakyReLU(0.2))
        nf = ndf
        for n in range(1, n_layers):
            nf_prev, nf = nf, min(nf * 2, 512)
            stride = 1 if n == n_layers - 1 else 2
            conv = spectral_norm(nn.Conv2d(nf_prev, nf, 4, stride=stride, padding=pad, bias=False))
            block = nn.Sequential(nn.Sequential(conv, nn.InstanceNorm2d(nf)), nn.LeakyReLU(0.2))
            setattr(self, f"model{n}", block)
        setattr(self, f"model{n_layers}", nn.Sequential(nn.Conv2d(nf, 1, 4, stride=1, padding=pad)))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for n in range(self.n_layers + 1):
            x = getattr(self, f"model{n}")(x)
            feats.append(x)
        return feats


class MultiscaleDiscriminator(nn.Module):
    """``num_D`` PatchGANs on successively 2x average-pooled inputs; conditional on the degraded image."""

    def __init__(self, ndf: int = 64, n_layers: int = 4, num_D: int = 2, in_channels: int = 6) -> None:
        super().__init__()
        self.config = {"ndf": ndf, "n_layers": n_layers, "num_D": num_D, "in_channels": in_channels}
        for i in range(num_D):
            self.add_module(f"discriminator_{i}", NLayerDiscriminator(in_channels, ndf, n_layers))
        self.num_D = num_D
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_normal_(m.weight_orig if hasattr(m, "weight_orig") else m.weight, gain=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, degraded: torch.Tensor, image: torch.Tensor) -> list[list[torch.Tensor]]:
        """Return, for each scale, the list of every layer's output (the last one is the patch logits)."""
        x = torch.cat([degraded, image], dim=1)
        results = []
        for i in range(self.num_D):
            results.append(getattr(self, f"discriminator_{i}")(x))
            if i + 1 < self.num_D:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
        return results
