"""The pixel term of the paper's fidelity variant (its "L1" models in Table 2, never released by the authors)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def l1_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error between two images in the same range (here [0, 1]), computed in float32."""
    if output.shape != target.shape:
        raise ValueError(f"L1 needs images of one shape, got {tuple(output.shape)} and {tuple(target.shape)}")
    return F.l1_loss(output.float(), target.float())
