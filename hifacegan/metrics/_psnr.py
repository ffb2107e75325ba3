"""Peak signal-to-noise ratio on RGB images."""

from __future__ import annotations

import torch

from hifacegan.metrics._tensors import check_pair


def psnr(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """PSNR of each image pair, in dB: ``10 log10(data_range^2 / MSE)``.

    The MSE is the mean over all pixels *and* the three RGB channels of one image (the paper's RGB PSNR,
    not the Y-channel variant super-resolution papers use). Identical images give ``inf``.

    Shape: ``pred``, ``target`` ``(N, C, H, W)`` in ``[0, data_range]`` -> ``(N,)``.
    """
    check_pair(pred, target)
    mse = (pred.double() - target.double()).pow(2).flatten(1).mean(1)
    return (10.0 * torch.log10(data_range**2 / mse)).float()
