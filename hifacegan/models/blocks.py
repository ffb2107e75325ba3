"""Building blocks shared by every generator: SPADE, its residual block, and local importance pooling (LIP).

Module and parameter names follow the released checkpoints' state_dict keys so that the official weights load
strictly (see ``../shared/reference``); the code itself is written from the paper and the SPADE paper.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm


class ParamFreeNorm(nn.Module):
    """Instance normalisation without affine parameters, stored like the release's batch norm.

    The release normalises with ``BatchNorm2d(affine=False)`` left in *train* mode even at inference, with batch 1:
    that is exactly instance normalisation. We compute instance normalisation for every batch size, so batched
    inference over many faces gives each face the same result as on its own. The running-stat buffers exist only so
    released state_dicts load strictly; they are never read.
    """

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.instance_norm(x, eps=self.eps)


class SPADE(nn.Module):
    """Spatially-adaptive normalisation: ``norm(x) * gamma(g) + beta(g)``.

    The release multiplies by ``gamma`` (not ``1 + gamma``); we keep that so its weights mean the same thing here.
    The guidance ``g`` is resized to ``x`` by nearest neighbour when their sizes differ.
    """

    def __init__(self, norm_nc: int, label_nc: int, kernel_size: int = 3) -> None:
        super().__init__()
        nhidden = 128 if norm_nc > 128 else norm_nc
        pad = kernel_size // 2
        self.param_free_norm = ParamFreeNorm(norm_nc)
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_nc, nhidden, kernel_size, padding=pad), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(nhidden, norm_nc, kernel_size, padding=pad, bias=False)
        self.mlp_beta = nn.Conv2d(nhidden, norm_nc, kernel_size, padding=pad, bias=False)

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        if g.shape[-2:] != x.shape[-2:]:
            g = F.interpolate(g, size=x.shape[-2:], mode="nearest")
        actv = self.mlp_shared(g)
        return self.param_free_norm(x) * self.mlp_gamma(actv) + self.mlp_beta(actv)


class SPADEResnetBlock(nn.Module):
    """Residual block with SPADE before each convolution and a learned 1x1 shortcut when channels change."""

    def __init__(self, fin: int, fout: int, label_nc: int) -> None:
        super().__init__()
        fmid = min(fin, fout)
        self.learned_shortcut = fin != fout
        self.conv_0 = spectral_norm(nn.Conv2d(fin, fmid, 3, padding=1))
        self.conv_1 = spectral_norm(nn.Conv2d(fmid, fout, 3, padding=1))
        self.norm_0 = SPADE(fin, label_nc)
        self.norm_1 = SPADE(fmid, label_nc)
        if self.learned_shortcut:
            self.conv_s = spectral_norm(nn.Conv2d(fin, fout, 1, bias=False))
            self.norm_s = SPADE(fin, label_nc)

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        x_s = self.conv_s(self.norm_s(x, g)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, g), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, g), 0.2))
        return x_s + dx


class LIP(nn.Module):
    """Local importance pooling: a 2x downsampling whose weights are predicted from the content.

    Where the logits are large (salient detail), a pixel dominates its 3x3 neighbourhood; flat or noisy areas are
    averaged away. This is the paper's "collaborative suppression" of degradation.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.logit = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.InstanceNorm2d(channels, affine=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Importance exp(12 * sigmoid(logit)), divided by its maximum e^12: the ratio below is unchanged, and the
        # weights stay in (e^-12, 1], so half precision (max 65504 < e^12) cannot overflow.
        weight = torch.exp(12.0 * (torch.sigmoid(self.logit(x)) - 1.0))
        num = F.avg_pool2d(x * weight, 3, stride=2, padding=1)
        den = F.avg_pool2d(weight, 3, stride=2, padding=1)
        return num / den
