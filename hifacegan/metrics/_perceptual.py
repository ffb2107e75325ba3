"""LPIPS (Zhang et al. 2018): AlexNet features with the package ``lpips``'s v0.1 linear heads.

The heads ship inside the ``lpips`` wheel; AlexNet's ImageNet weights do not, and torchvision downloads them
from download.pytorch.org. So LPIPS runs only when ``alexnet-owt-7be5be79.pth`` is in torchvision's cache
(``$TORCH_HOME/hub/checkpoints``) or given as a path; otherwise :func:`load_lpips` raises
:class:`MetricUnavailable` with that reason and reports print it. Never substituted by another backbone.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from hifacegan.metrics._errors import MetricUnavailable

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
ALEXNET_URL = f"https://download.pytorch.org/models/{ALEXNET_FILE}"
ALEXNET_ENV = "HIFACEGAN_ALEXNET"
# lpips's alexnet wrapper: slice k holds torchvision's alexnet.features[first:last], named by index.
_SLICES = ((1, 0, 2), (2, 2, 5), (3, 5, 8), (4, 8, 10), (5, 10, 12))


def find_alexnet_weights(path: str | Path | None = None) -> Path:
    """The AlexNet weights to use: ``path``, ``$HIFACEGAN_ALEXNET``, or torchvision's cache."""
    candidates = [Path(p) for p in (path, os.environ.get(ALEXNET_ENV)) if p]
    candidates.append(Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_FILE)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    if path is not None:
        raise MetricUnavailable(f"LPIPS: AlexNet weights not found at {path}")
    raise MetricUnavailable(
        f"LPIPS needs AlexNet's ImageNet weights ({ALEXNET_FILE}), which no package ships: download {ALEXNET_URL} "
        f"into {candidates[-1].parent} or pass its path (--alexnet-weights or ${ALEXNET_ENV})"
    )


def _lpips_state(alexnet_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torchvision ``alexnet`` keys (``features.3.weight``) -> lpips' (``net.slice2.3.weight``)."""
    state = {}
    for slice_no, first, last in _SLICES:
        for index in range(first, last):
            for name in ("weight", "bias"):
                key = f"features.{index}.{name}"
                if key in alexnet_state:
                    state[f"net.slice{slice_no}.{index}.{name}"] = alexnet_state[key]
    if len(state) != 10:
        raise MetricUnavailable(
            f"LPIPS: the AlexNet file holds {len(state)}/10 conv tensors; is it torchvision's alexnet?"
        )
    return state


class LPIPS:
    """LPIPS distance of image pairs, AlexNet v0.1. Load once, call many times.

    Args:
        alexnet_weights: torchvision's ``alexnet-owt-7be5be79.pth``; default: found by :func:`find_alexnet_weights`.
        device: where the network runs.
    """

    def __init__(self, alexnet_weights: str | Path | None = None, device: str | torch.device = "cpu"):
        weights = find_alexnet_weights(alexnet_weights)
        try:
            import lpips
        except ImportError as exc:
            raise MetricUnavailable("LPIPS needs the 'lpips' package: pip install lpips==0.1.4") from exc
        model = lpips.LPIPS(pretrained=True, net="alex", version="0.1", pnet_rand=True, verbose=False)
        alexnet_state = torch.load(weights, map_location="cpu", weights_only=True)
        missing = model.load_state_dict(_lpips_state(alexnet_state), strict=False)
        if any(key.startswith("net.") for key in missing.missing_keys):
            raise MetricUnavailable(f"LPIPS: {weights} left AlexNet layers unset: {missing.missing_keys}")
        self.weights = weights
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()

    @torch.inference_mode()
    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Shape: ``(N, 3, H, W)`` in [0, 1] -> ``(N,)``; 0 for identical images, larger is more different."""
        if pred.shape != target.shape or pred.ndim != 4:
            raise ValueError(
                f"expected two (N, 3, H, W) tensors of one shape, got {pred.shape} and {target.shape}"
            )
        out = self.model(pred.to(self.device), target.to(self.device), normalize=True)
        return out.reshape(len(pred)).float().cpu()
