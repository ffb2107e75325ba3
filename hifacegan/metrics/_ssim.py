"""SSIM and MS-SSIM (Wang et al. 2004; Wang, Simoncelli and Bovik 2003) on RGB images.

Definitions used throughout the project (and by the paper's evaluation):
- Gaussian window 11x11, sigma 1.5, normalised to sum 1; statistics over the *valid* region only (no padding),
  so a border of 5 pixels never enters the mean.
- ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2`` with ``L = data_range`` (1 for images in ``[0, 1]``); population
  (biased) local variances, as in the paper's reference code and scikit-image's ``use_sample_covariance=False``.
- Colour: each RGB channel is scored on its own and the maps are averaged over channels and pixels.
- MS-SSIM: the 5 standard exponents (0.0448, 0.2856, 0.3001, 0.2363, 0.1333), 2x2 average pooling between
  scales, contrast-structure terms at the fine scales and full SSIM at the coarsest; negative terms are clamped
  to 0 before the fractional powers (torchmetrics' ``normalize="relu"``). An image too small for 5 scales with
  an 11-pixel window (under 176 px) uses the scales that fit, exponents renormalised to sum 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hifacegan.metrics._tensors import check_pair

MS_SSIM_WEIGHTS: tuple[float, ...] = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def gaussian_window(size: int = 11, sigma: float = 1.5, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Separable 1-D Gaussian taps, normalised to sum 1."""
    coords = torch.arange(size, dtype=dtype) - (size - 1) / 2
    taps = torch.exp(-(coords**2) / (2 * sigma**2))
    return taps / taps.sum()


def _filter(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Valid-region separable Gaussian filter applied to each channel on its own."""
    channels = x.shape[1]
    horizontal = taps.view(1, 1, 1, -1).repeat(channels, 1, 1, 1)
    vertical = taps.view(1, 1, -1, 1).repeat(channels, 1, 1, 1)
    return F.conv2d(F.conv2d(x, horizontal, groups=channels), vertical, groups=channels)


def _ssim_and_cs(
    pred: torch.Tensor, target: torch.Tensor, data_range: float, taps: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    mu_x = _filter(pred, taps)
    mu_y = _filter(target, taps)
    var_x = _filter(pred * pred, taps) - mu_x**2
    var_y = _filter(target * target, taps) - mu_y**2
    cov_xy = _filter(pred * target, taps) - mu_x * mu_y
    cs_map = (2 * cov_xy + c2) / (var_x + var_y + c2)
    luminance = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
    return (luminance * cs_map).flatten(1).mean(1), cs_map.flatten(1).mean(1)


def _check_size(pred: torch.Tensor, window_size: int) -> None:
    if min(pred.shape[-2:]) < window_size:
        raise ValueError(
            f"images of {tuple(pred.shape[-2:])} px are smaller than the {window_size} px SSIM window"
        )


def ssim(
    pred: torch.Tensor,
    target: torch.Tensor,
    data_range: float = 1.0,
    window_size: int = 11,
    sigma: float = 1.5,
) -> torch.Tensor:
    """Mean SSIM of each image pair (definition in the module docstring).

    Shape: ``(N, C, H, W)`` in ``[0, data_range]`` -> ``(N,)``. Computed in float64 so it matches
    scikit-image to ~1e-7.
    """
    check_pair(pred, target)
    _check_size(pred, window_size)
    taps = gaussian_window(window_size, sigma).to(pred.device)
    value, _ = _ssim_and_cs(pred.double(), target.double(), data_range, taps)
    return value.float()


def ms_ssim_scales(height: int, width: int, window_size: int = 11, max_scales: int = 5) -> int:
    """How many scales fit: the coarsest must still hold one full window after the 2x poolings."""
    scales = 0
    size = min(height, width)
    while scales < max_scales and size >= window_size:
        scales += 1
        size //= 2
    return scales


def ms_ssim(
    pred: torch.Tensor,
    target: torch.Tensor,
    data_range: float = 1.0,
    window_size: int = 11,
    sigma: float = 1.5,
    weights: tuple[float, ...] = MS_SSIM_WEIGHTS,
) -> torch.Tensor:
    """Multi-scale SSIM of each image pair (definition in the module docstring).

    Returns the exponents actually used via :func:`ms_ssim_weights_for` when the image is too small for all.
    Shape: ``(N, C, H, W)`` in ``[0, data_range]`` -> ``(N,)``.
    """
    check_pair(pred, target)
    used = ms_ssim_weights_for(pred.shape[-2], pred.shape[-1], window_size, weights)
    taps = gaussian_window(window_size, sigma).to(pred.device)
    x, y = pred.double(), target.double()
    terms = []
    for scale in range(len(used)):
        full, cs = _ssim_and_cs(x, y, data_range, taps)
        terms.append((full if scale == len(used) - 1 else cs).clamp_min(0.0))
        if scale < len(used) - 1:
            x = F.avg_pool2d(x, 2)
            y = F.avg_pool2d(y, 2)
    stacked = torch.stack(terms, dim=1)
    exponents = torch.tensor(used, dtype=stacked.dtype, device=stacked.device)
    return stacked.pow(exponents).prod(dim=1).float()


def ms_ssim_weights_for(
    height: int, width: int, window_size: int = 11, weights: tuple[float, ...] = MS_SSIM_WEIGHTS
) -> tuple[float, ...]:
    """The MS-SSIM exponents used for an image of this size: all of them, or the first ones renormalised."""
    scales = ms_ssim_scales(height, width, window_size, len(weights))
    if scales == 0:
        raise ValueError(f"images of {height}x{width} px are smaller than the {window_size} px SSIM window")
    if scales == len(weights):
        return tuple(weights)
    total = sum(weights[:scales])
    return tuple(w / total for w in weights[:scales])
