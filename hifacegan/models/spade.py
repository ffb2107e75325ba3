"""Plain SPADE: the bottleneck is a convolution of the input downsampled 32x; every block sees the input image."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hifacegan.models._trunk import SIZE_MULTIPLE, SPADEDecoder, check_input, init_weights


class SPADEGenerator(SPADEDecoder):
    """SPADE (Park et al. 2019) as a restoration network, as in the release's ``spade`` option. Output ``tanh``."""

    arch = "spade"

    def __init__(self, ngf: int = 48, size: int = 512, legacy_keys: bool = True) -> None:
        super().__init__()
        self.config = {"arch": self.arch, "ngf": ngf, "size": size, "legacy_keys": legacy_keys}
        self.fc = nn.Conv2d(3, 16 * ngf, 3, padding=1)
        self.build_decoder(ngf, [3] * 7, legacy_rgb_heads=legacy_keys)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x)
        h, w = x.shape[-2:]
        small = F.interpolate(x, size=(h // SIZE_MULTIPLE, w // SIZE_MULTIPLE), mode="nearest")
        return self.decode(self.fc(small), [x] * 7)
