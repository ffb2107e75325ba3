"""The fidelity slider: blend the perceptual (0) and the L1-tuned fidelity (1) networks by their parameters.

Both weights are fine-tuned from one another, so their parameters live in the same basin and a linear blend is a
working network in between (network interpolation, as in ESRGAN's DNI). Spectral norm is folded into the plain
weights first: its normalisation is not linear in the parameters, so blending the effective weights is the
faithful interpolation. Blended networks are cached per value (a few at a time).
"""

from __future__ import annotations

import copy
from collections import OrderedDict

import torch
from torch import nn
from torch.nn.utils.spectral_norm import SpectralNorm

#: From the middle of the slider down to its perceptual end (0), a renovated face also takes more of the network's
#: face: at 0 its share grows by this part of what its degradation left to the photo (:func:`slider_share`). The two
#: networks alone differ too little to be seen once blended at a mildly degraded face's share (0.5 grey levels in
#: the demo photos' face boxes); from the middle up nothing but the network moves, so the default (0.5) and the
#: fidelity end keep the share the face's degradation sets.
PERCEPTUAL_SHARE = 1.0


def slider_share(degradation: float, fidelity: float) -> float:
    """The share of the network's face a face takes at ``fidelity``: its ``degradation`` (0..1) from 0.5 up,
    growing toward ``degradation + (1 - degradation) * PERCEPTUAL_SHARE`` at 0. A face measured as sharp and clean
    (degradation 0) keeps every pixel wherever the slider is."""
    if degradation <= 0.0:
        return 0.0
    lean = min(max((0.5 - fidelity) / 0.5, 0.0), 1.0)
    return float(degradation + (1.0 - degradation) * PERCEPTUAL_SHARE * lean)


def fold_spectral_norm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every spectral-norm hook removed and its eval-mode weight made a plain parameter."""
    model = copy.deepcopy(model)
    for module in model.modules():
        for hook in list(module._forward_pre_hooks.values()):
            if isinstance(hook, SpectralNorm):
                torch.nn.utils.remove_spectral_norm(module, name=getattr(hook, "name", "weight"))
    return model.eval().requires_grad_(False)


def interpolate_state(
    a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], t: float
) -> dict[str, torch.Tensor]:
    """(1 - t) * a + t * b for floating tensors; other tensors (counters) are taken from ``a``."""
    if a.keys() != b.keys():
        raise ValueError("the fidelity partner has different parameters: they are not two ends of one slider")
    out = {}
    for key, value in a.items():
        other = b[key]
        if value.shape != other.shape:
            raise ValueError(
                f"fidelity partner mismatch at {key}: {tuple(value.shape)} vs {tuple(other.shape)}"
            )
        out[key] = torch.lerp(value, other.to(value.dtype), t) if value.is_floating_point() else value
    return out


class FidelityBlender:
    """Networks along the perceptual (0) .. fidelity (1) slider, on ``device`` in ``dtype``, cached per value."""

    def __init__(
        self,
        perceptual: nn.Module,
        fidelity: nn.Module | None,
        device: torch.device,
        dtype: torch.dtype,
        cache_size: int = 3,
        step: float = 0.01,
    ) -> None:
        self.base = fold_spectral_norm(perceptual).cpu().float()
        self.ends = {0.0: self.base.state_dict()}
        if fidelity is not None:
            self.ends[1.0] = fold_spectral_norm(fidelity).cpu().float().state_dict()
        self.device, self.dtype = device, dtype
        self.cache: OrderedDict[tuple[float, torch.dtype], nn.Module] = OrderedDict()
        self.cache_size, self.step = cache_size, step

    @property
    def has_slider(self) -> bool:
        return 1.0 in self.ends

    def key(self, fidelity: float) -> float:
        if not self.has_slider:
            return 0.0
        return round(round(min(max(fidelity, 0.0), 1.0) / self.step) * self.step, 6)

    def network(self, fidelity: float, dtype: torch.dtype | None = None) -> nn.Module:
        """The network at ``fidelity`` on the device, in ``dtype`` (default: the blender's)."""
        dtype = dtype or self.dtype
        key = self.key(fidelity)
        if (key, dtype) in self.cache:
            self.cache.move_to_end((key, dtype))
            return self.cache[(key, dtype)]
        if key in (0.0, 1.0):
            state = self.ends[key]
        else:
            state = interpolate_state(self.ends[0.0], self.ends[1.0], key)
        model = copy.deepcopy(self.base)
        # Copy in place: load_state_dict would trip over spectral norm's leftover load hook in some torch versions.
        with torch.no_grad():
            for name, tensor in model.state_dict().items():
                tensor.copy_(state[name])
        model = model.to(self.device, dtype).eval()
        self.cache[(key, dtype)] = model
        while len(self.cache) > self.cache_size:
            self.cache.popitem(last=False)
        return model
