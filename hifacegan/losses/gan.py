"""The adversarial terms of the paper's recipe: LSGAN and discriminator feature matching.

The discriminator returns, for each scale, every layer's output (the last is the patch logits), so one forward
pass serves both the least-squares GAN loss and feature matching.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

Features = list[list[torch.Tensor]]


def _logits(scale: list[torch.Tensor]) -> torch.Tensor:
    return scale[-1].float()


def lsgan_generator_loss(fake: Features) -> torch.Tensor:
    """LSGAN for the generator: ``MSE(D(fake), 1)``, averaged over the discriminator's scales."""
    losses = [F.mse_loss(_logits(s), torch.ones_like(_logits(s))) for s in fake]
    return torch.stack(losses).mean()


def lsgan_discriminator_loss(fake: Features, real: Features) -> tuple[torch.Tensor, torch.Tensor]:
    """LSGAN for the discriminator: ``MSE(D(fake), 0)`` and ``MSE(D(real), 1)``, each averaged over scales.

    Returned separately so training logs show which side the discriminator is winning; the loss to minimise is
    their sum.
    """
    fake_loss = torch.stack([F.mse_loss(_logits(s), torch.zeros_like(_logits(s))) for s in fake]).mean()
    real_loss = torch.stack([F.mse_loss(_logits(s), torch.ones_like(_logits(s))) for s in real]).mean()
    return fake_loss, real_loss


def feature_matching_loss(fake: Features, real: Features) -> torch.Tensor:
    """L1 between the discriminator's intermediate features of fake and real, all layers but the logits.

    Summed over layers and divided by the number of scales (pix2pixHD's ``lambda / num_D``; the caller applies
    ``lambda``). ``real`` is a fixed target: its graph is cut here.
    """
    if len(fake) != len(real):
        raise ValueError(
            f"feature matching needs as many scales for fake ({len(fake)}) as for real ({len(real)})"
        )
    total = fake[0][0].new_zeros((), dtype=torch.float32)
    for fake_scale, real_scale in zip(fake, real, strict=True):
        for f, r in zip(fake_scale[:-1], real_scale[:-1], strict=True):
            total = total + F.l1_loss(f.float(), r.detach().float())
    return total / len(fake)


def split_batch(features: Features, n_fake: int) -> tuple[Features, Features]:
    """Split discriminator outputs computed on ``cat([fake, real])`` into the fake and the real halves."""
    fake = [[t[:n_fake] for t in scale] for scale in features]
    real = [[t[n_fake:] for t in scale] for scale in features]
    return fake, real
