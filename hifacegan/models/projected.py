"""Projected discriminator: small trainable heads on frozen, randomly projected ImageNet features.

Why: a PatchGAN learned from scratch needs many thousands of steps before its features say anything about texture,
and a CPU budget gives it a few thousand samples. Projected GAN (Sauer et al., NeurIPS 2021) and Vision-aided GAN
(Kumari et al., CVPR 2022) showed that a discriminator reading a frozen pretrained network's features converges
an order of magnitude faster with little data. Here the frozen network is torchvision's ImageNet MobileNetV2 (the
one we have offline), read at strides 4, 8 and 16. Each level goes through a fixed random 1x1 projection (Projected
GAN's cross-channel mixing: it spreads the pretrained features so the heads cannot latch onto a few channels) and
a coarser level is mixed into the finer ones (cross-scale mixing). The heads are spectral-normalised convolutions
ending in patch logits.

Beside the projected heads sits the paper's conditional multiscale PatchGAN at half width, so the generator keeps
the paper's feature-matching signal on the degraded/output pair. Training batches are augmented differentiably
(random translation and cutout, as DiffAugment) before the discriminator sees them, which keeps a fast-learning
discriminator from memorising the training faces.

The output has the multiscale discriminator's shape: for each scale, every layer's output with the logits last.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

from hifacegan.models.discriminator import MultiscaleDiscriminator
from hifacegan.models.imagenet import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    MOBILENET_CHANNELS,
    mobilenet_v2_stages,
    require_mobilenet_v2_weights,
)

#: Backbone stages read by the heads (indices into MobileNetV2's strides 2, 4, 8, 16, 32).
LEVELS = (1, 2, 3)


def _head(in_channels: int, ndf: int, downsamples: int) -> nn.ModuleList:
    """Spectral-normalised 4x4 convolutions halving the resolution ``downsamples`` times, then patch logits."""
    layers = []
    channels = in_channels
    for i in range(downsamples):
        out = min(ndf * 2**i, 256)
        layers.append(
            nn.Sequential(spectral_norm(nn.Conv2d(channels, out, 4, stride=2, padding=1)), nn.LeakyReLU(0.2))
        )
        channels = out
    layers.append(
        nn.Sequential(spectral_norm(nn.Conv2d(channels, channels, 3, padding=1)), nn.LeakyReLU(0.2))
    )
    layers.append(nn.Sequential(spectral_norm(nn.Conv2d(channels, 1, 3, padding=1))))
    return nn.ModuleList(layers)


def diff_augment(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random translation by up to 1/8 of the side (zero padded) and one cutout of half the side per image.

    Differentiable in the images; the same function is applied to fakes and reals, so the discriminator cannot
    tell them apart by the augmentation.
    """
    n, _, h, w = images.shape
    device = images.device
    shift = torch.randint(-(h // 8), h // 8 + 1, (n, 2), generator=generator).to(device)
    ys = torch.arange(h, device=device).view(1, h, 1) - shift[:, 0].view(n, 1, 1)
    xs = torch.arange(w, device=device).view(1, 1, w) - shift[:, 1].view(n, 1, 1)
    inside = ((ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)).unsqueeze(1).to(images.dtype)
    index = (ys.clamp(0, h - 1) * w + xs.clamp(0, w - 1)).view(n, 1, h * w).expand(-1, images.shape[1], -1)
    moved = images.flatten(2).gather(2, index).view_as(images) * inside
    centre = torch.randint(0, h, (n, 2), generator=generator).to(device)
    cy = torch.arange(h, device=device).view(1, h, 1)
    cx = torch.arange(w, device=device).view(1, 1, w)
    hole = ((cy - centre[:, 0].view(n, 1, 1)).abs() < h // 4) & (
        (cx - centre[:, 1].view(n, 1, 1)).abs() < w // 4
    )
    return moved * (~hole).unsqueeze(1).to(images.dtype)


class ProjectedDiscriminator(nn.Module):
    """Heads on frozen random projections of MobileNetV2 features, beside a half-width conditional PatchGAN.

    Args:
        ndf: width of the first layer of each projected head.
        projection: channels of each level after the fixed random 1x1 projection.
        patch_ndf: width of the conditional PatchGAN beside the heads (0 leaves it out).
        augment: apply :func:`diff_augment` while training.
        seed: seed of the fixed random projections (recorded in ``config``; part of the state_dict too).
    """

    def __init__(
        self, ndf: int = 64, projection: int = 64, patch_ndf: int = 32, augment: bool = True, seed: int = 0
    ) -> None:
        super().__init__()
        self.config = {
            "ndf": ndf,
            "projection": projection,
            "patch_ndf": patch_ndf,
            "augment": augment,
            "seed": seed,
        }
        self.augment = augment
        self.backbone = mobilenet_v2_stages(require_mobilenet_v2_weights(), count=max(LEVELS) + 1)
        self.backbone.requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        rng = torch.Generator().manual_seed(seed)
        self.projections = nn.ModuleList()
        for level in LEVELS:
            conv = nn.Conv2d(MOBILENET_CHANNELS[level], projection, 1, bias=False)
            bound = (6.0 / MOBILENET_CHANNELS[level]) ** 0.5  # kaiming-uniform: variance kept through the mix
            with torch.no_grad():
                conv.weight.copy_((torch.rand(conv.weight.shape, generator=rng) * 2 - 1) * bound)
            conv.requires_grad_(False)
            self.projections.append(conv)
        # The coarsest level reads its 8x8 (at 128 px) as it is; each finer one halves twice more.
        self.heads = nn.ModuleList(_head(projection, ndf, len(LEVELS) - 1 - i) for i in range(len(LEVELS)))
        self.patch = MultiscaleDiscriminator(ndf=patch_ndf, n_layers=4, num_D=2) if patch_ndf > 0 else None
        self.num_D = len(LEVELS) + (self.patch.num_D if self.patch is not None else 0)

    def train(self, mode: bool = True) -> ProjectedDiscriminator:
        super().train(mode)
        self.backbone.eval()  # BatchNorm keeps ImageNet statistics
        return self

    def _projected(self, image: torch.Tensor) -> list[torch.Tensor]:
        x = (image - self.mean) / self.std
        levels = []
        for index, stage in enumerate(self.backbone):
            x = stage(x)
            if index in LEVELS:
                levels.append(self.projections[LEVELS.index(index)](x))
        # Cross-scale mixing: each level also sees the coarser ones, upsampled.
        mixed = [levels[-1]]
        for feature in reversed(levels[:-1]):
            mixed.insert(0, feature + F.interpolate(mixed[0], size=feature.shape[-2:], mode="bilinear"))
        return mixed

    def forward(self, degraded: torch.Tensor, image: torch.Tensor) -> list[list[torch.Tensor]]:
        """For each scale (projected levels, then the PatchGAN's), every layer's output; the logits last."""
        if self.augment and self.training:
            both = diff_augment(torch.cat([degraded, image], dim=1))
            degraded, image = both[:, :3], both[:, 3:]
        results = []
        for feature, head in zip(self._projected(image), self.heads, strict=True):
            outputs = []
            for layer in head:
                feature = layer(feature)
                outputs.append(feature)
            results.append(outputs)
        if self.patch is not None:
            results += self.patch(degraded, image)
        return results
