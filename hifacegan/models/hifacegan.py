"""The paper's generator: a content-adaptive suppression pyramid that guides SPADE replenishment at every scale.

HiFaceGAN (Yang et al., ACM MM 2020), Sec. 3: the *suppression* module is a pyramid of LIP poolings that keeps
salient facial detail and suppresses degradation; its features, from coarse to fine, modulate the *replenishment*
decoder through SPADE at the matching scale. The two are nested: each decoder stage sees the pyramid level of its
own resolution.
"""

from __future__ import annotations

import torch
from torch import nn

from hifacegan.models._trunk import SPADEDecoder, check_input, init_weights
from hifacegan.models.blocks import LIP
from hifacegan.models.prefilter import prefilter_batch, prefilter_strength


class SuppressionPyramid(nn.Module):
    """Five LIP stages from the input size down to 1/32; returns the features from coarse to fine.

    Channels at 1/32 .. 1/1: 16, 16, 8, 4, 2, 1 times ``ngf`` (each stage doubles, capped at 16 ngf).
    """

    def __init__(self, ngf: int, max_mult: int = 16) -> None:
        super().__init__()
        self.head = nn.Sequential(
            nn.Conv2d(3, ngf, 3, padding=1, bias=False), nn.InstanceNorm2d(ngf), nn.ReLU()
        )
        chans = [ngf]
        for _ in range(5):
            chans.append(min(2 * chans[-1], max_mult * ngf))
        for i in range(5):
            last = i == 4
            layers: list[nn.Module] = [LIP(chans[i]), nn.Conv2d(chans[i], chans[i + 1], 3, padding=1)]
            layers.append(nn.InstanceNorm2d(chans[i + 1]))
            if not last:
                layers.append(nn.ReLU())
            setattr(self, f"encoder_{i}", nn.Sequential(*layers))
        self.channels = chans

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = [self.head(x)]
        for i in range(5):
            feats.append(getattr(self, f"encoder_{i}")(feats[-1]))
        return feats[::-1]  # [F/32, F/16, F/8, F/4, F/2, F/1]


class HiFaceGANGenerator(SPADEDecoder):
    """Nested collaborative suppression and replenishment (CSR) generator.

    Guidance: the coarsest pyramid level for ``head_0`` and both middle blocks, then the level of each decoder
    stage's own resolution. Input ``(N, 3, H, W)`` in [0, 1], H and W multiples of 32; output ``tanh``.

    ``residual=True`` (our lite configs, not the paper) adds the input to the output: ``(2x - 1) + conv(...)``,
    unbounded, so consumers clamp. Why: every level of the suppression pyramid is instance-normalised, starting
    with the first 3x3 convolution of the RGB input, so the decoder never sees the input's absolute colour and
    brightness and has to guess them; with a CPU's training budget it guesses an average skin tone, which costs
    more PSNR than the restored detail gains. With the skip the network only predicts the correction, the
    degraded input's colours come through, and the last convolution starts at zero so training starts at the
    identity.

    ``prefilter="nlm"`` (our lite configs, not the paper) runs a mild noise-adaptive non-local means on the input
    first (:mod:`hifacegan.models.prefilter` says why); the network, and its skip, see the filtered image.
    """

    arch = "hifacegan"

    def __init__(
        self,
        ngf: int = 64,
        size: int = 512,
        legacy_keys: bool = True,
        max_mult: int = 16,
        residual: bool = False,
        prefilter: str | None = None,
    ) -> None:
        super().__init__()
        if residual and legacy_keys:
            raise ValueError("residual=True changes what the output means; it is for our own configs only")
        if prefilter is not None:
            prefilter_strength(prefilter)  # an unknown name fails here, not at the first forward
        self.config = {
            "arch": self.arch,
            "ngf": ngf,
            "size": size,
            "legacy_keys": legacy_keys,
            "max_mult": max_mult,
            "residual": residual,
            "prefilter": prefilter,
        }
        self.residual = residual
        self.prefilter = prefilter
        self.encoder = SuppressionPyramid(ngf, max_mult)
        c = self.encoder.channels[::-1]  # coarse to fine: 16, 16, 8, 4, 2, 1 (x ngf)
        self.build_decoder(
            ngf, [c[0], c[1], c[1], c[2], c[3], c[4], c[5]], legacy_rgb_heads=legacy_keys, max_mult=max_mult
        )
        if legacy_keys:
            # Present in the release's state_dict, never used by its forward pass.
            self.fc = nn.Conv2d(3, min(16, max_mult) * ngf, 3, padding=1)
        init_weights(self)
        if residual:
            nn.init.zeros_(self.to_rgbs[3].weight)
            nn.init.zeros_(self.to_rgbs[3].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, min_size=128)
        if self.prefilter is not None:
            x = prefilter_batch(x, self.prefilter)
        f = self.encoder(x)
        # The bottleneck is the coarsest level (1/32); head_0 runs there with it, the middles at 1/16 with the
        # 1/16 level, and each later block with the level of its own resolution.
        guides = [f[0], f[1], f[1], f[2], f[3], f[4], f[5]]
        if self.residual:
            return x.mul(2.0).sub(1.0) + self.decode(f[0], guides, final_tanh=False)
        return self.decode(f[0], guides)
