"""The released checkpoints' generator ("lipspade"): a LIP encoder makes only the bottleneck.

Every SPADE block is guided by the raw degraded image rather than by a feature pyramid, which is cheaper in
parameters but spends most of its compute in full-resolution SPADE MLPs. Kept for loading the official weights.
"""

from __future__ import annotations

import torch
from torch import nn

from hifacegan.models._trunk import SPADEDecoder, check_input, init_weights
from hifacegan.models.blocks import LIP


class LIPEncoder(nn.Module):
    """conv-IN-ReLU, then five (LIP, conv, IN, ReLU) stages down to 1/32 with 16 ngf channels (no final ReLU)."""

    def __init__(self, ngf: int) -> None:
        super().__init__()
        chans = [ngf]
        for _ in range(5):
            chans.append(min(2 * chans[-1], 16 * ngf))
        layers: list[nn.Module] = [
            nn.Conv2d(3, ngf, 3, padding=1, bias=False),
            nn.InstanceNorm2d(ngf),
            nn.ReLU(),
        ]
        for i in range(5):
            layers += [
                LIP(chans[i]),
                nn.Conv2d(chans[i], chans[i + 1], 3, padding=1),
                nn.InstanceNorm2d(chans[i + 1]),
            ]
            if i < 4:
                layers.append(nn.ReLU())
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class LIPSPADEGenerator(SPADEDecoder):
    """Bottleneck from a LIP encoder; every block guided by the input image. Output ``tanh``."""

    arch = "lipspade"

    def __init__(self, ngf: int = 48, size: int = 512, legacy_keys: bool = True) -> None:
        super().__init__()
        self.config = {"arch": self.arch, "ngf": ngf, "size": size, "legacy_keys": legacy_keys}
        self.lip_encoder = LIPEncoder(ngf)
        self.build_decoder(ngf, [3] * 7, legacy_rgb_heads=legacy_keys)
        if legacy_keys:
            self.fc = nn.Conv2d(
                3, 16 * ngf, 3, padding=1
            )  # in the release's state_dict, unused by its forward
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x)
        return self.decode(self.lip_encoder(x), [x] * 7)
