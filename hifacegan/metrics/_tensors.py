"""Conversions shared by the metrics: uint8 HWC arrays in, float NCHW tensors in [0, 1] out."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def to_batch(images: Sequence[np.ndarray] | np.ndarray, device: str | torch.device = "cpu") -> torch.Tensor:
    """Stack uint8 RGB images of one size into a float ``(N, 3, H, W)`` tensor in ``[0, 1]``.

    uint8 in keeps every metric on the same 8-bit values a saved PNG holds, so scores never depend on
    whether an image went through a file.
    """
    array = np.asarray(images) if not isinstance(images, np.ndarray) else images
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[-1] != 3:
        raise ValueError(f"expected RGB images shaped (N, H, W, 3) or (H, W, 3), got {array.shape}")
    if array.dtype != np.uint8:
        raise ValueError(
            f"expected uint8 images, got {array.dtype}: convert with (x * 255).round().astype(np.uint8)"
        )
    tensor = torch.from_numpy(np.ascontiguousarray(array)).to(device)
    return tensor.permute(0, 3, 1, 2).float().div_(255.0)


def check_pair(pred: torch.Tensor, target: torch.Tensor) -> None:
    """Refuse mismatched or non-image tensors before a metric quietly broadcasts them."""
    if pred.ndim != 4 or target.ndim != 4:
        raise ValueError(f"expected (N, C, H, W) tensors, got {tuple(pred.shape)} and {tuple(target.shape)}")
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
