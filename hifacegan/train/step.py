"""One optimisation step of the paper's recipe: generator and discriminator updated from a single forward pass.

The discriminator runs once per step on ``cat([fake, real])``. The generator's loss is back-propagated into the
generator's parameters only, and the discriminator's loss into the discriminator's only (``backward(inputs=...)``),
which gives exactly the gradients of the usual two-pass formulation (pix2pixHD / SPADE: ``D(fake.detach())``)
without running the discriminator twice.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from hifacegan.losses import (
    PerceptualLoss,
    feature_matching_loss,
    l1_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    split_batch,
)
from hifacegan.models import build_discriminator, build_generator
from hifacegan.train.config import TrainConfig
from hifacegan.train.distributed import DistInfo


def to_image(raw: torch.Tensor) -> torch.Tensor:
    """Our weights' output convention ("symmetric"): image = (y + 1) / 2."""
    return (raw + 1.0) * 0.5


def _adam(params: list[nn.Parameter], lr: float, config: TrainConfig) -> torch.optim.Adam:
    """Adam with the paper's betas; the fused kernel (half the optimiser time on CPU) where torch has one."""
    betas = (float(config.beta1), float(config.beta2))  # torch refuses an int beside a float
    try:
        return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)
    except (RuntimeError, ValueError):
        return torch.optim.Adam(params, lr=lr, betas=betas)


class TrainingStep:
    """Networks, optimisers and losses of a run; :meth:`__call__` performs one step on a batch.

    Args:
        config: the run's settings (losses, learning rates, networks).
        dist: rank, world size and device; with several ranks both networks are wrapped in DDP.
        perceptual: a ready perceptual loss to share (tests build it once), or None to build one.
    """

    def __init__(self, config: TrainConfig, dist: DistInfo, perceptual: PerceptualLoss | None = None) -> None:
        self.config = config
        self.device = dist.device
        on_cuda = self.device.type == "cuda"
        self.channels_last = on_cuda if config.channels_last is None else bool(config.channels_last)
        self.amp = bool(config.amp and on_cuda)
        self.generator = build_generator(config.generator, **config.generator_overrides).to(self.device)
        self.discriminator = build_discriminator(config.discriminator).to(self.device) if config.gan else None
        if config.lambda_perceptual > 0:
            self.perceptual = (
                perceptual if perceptual is not None else PerceptualLoss(config.perceptual, config.vgg19_path)
            )
            self.perceptual = self.perceptual.to(self.device)
        else:
            self.perceptual = None
        if self.channels_last:
            for module in (self.generator, self.discriminator, self.perceptual):
                if module is not None:
                    module.to(memory_format=torch.channels_last)
        self.g_params = [p for p in self.generator.parameters() if p.requires_grad]
        self.opt_g = _adam(self.g_params, config.lr_g, config)
        self.opt_d = None
        self.d_params: list[nn.Parameter] = []
        if self.discriminator is not None:
            self.d_params = [p for p in self.discriminator.parameters() if p.requires_grad]
            self.opt_d = _adam(self.d_params, config.lr_d, config)
        self.dist = dist
        self._g = self._wrap(self.generator)
        self._d = self._wrap(self.discriminator) if self.discriminator is not None else None

    def _wrap(self, module: nn.Module) -> nn.Module:
        if not self.dist.enabled:
            return module
        # The release-compatible configs keep parameters their forward never uses (legacy keys).
        unused = bool(getattr(module, "config", {}).get("legacy_keys", False))
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=device_ids, find_unused_parameters=unused)

    def set_lr(self, lr_g: float, lr_d: float) -> None:
        for group in self.opt_g.param_groups:
            group["lr"] = lr_g
        if self.opt_d is not None:
            for group in self.opt_d.param_groups:
                group["lr"] = lr_d

    def train(self) -> None:
        self.generator.train()
        if self.discriminator is not None:
            self.discriminator.train()

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def prepare(self, batch: torch.Tensor) -> torch.Tensor:
        batch = batch.to(self.device, non_blocking=True)
        return batch.contiguous(memory_format=torch.channels_last) if self.channels_last else batch

    def __call__(self, lq: torch.Tensor, gt: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """One step on a batch (both in [0, 1]); returns the detached loss terms and the output images."""
        config = self.config
        lq, gt = self.prepare(lq), self.prepare(gt)
        terms: dict[str, torch.Tensor] = {}
        g_loss: list[torch.Tensor] = []
        d_loss = None
        with self._autocast():
            fake = to_image(self._g(lq))
            # Logged always (the reconstruction error); differentiated only when it is a loss term.
            l1 = l1_loss(fake if config.fidelity else fake.detach(), gt)
            terms["l1"] = l1
            if config.fidelity:
                g_loss.append(config.lambda_l1 * l1)
            if self.perceptual is not None:
                perceptual = self.perceptual(fake, gt)
                terms["perceptual"] = perceptual
                g_loss.append(config.lambda_perceptual * perceptual)
            if self._d is not None:
                n = lq.shape[0]
                features = self._d(torch.cat([lq, lq]), torch.cat([fake, gt]))
                fake_f, real_f = split_batch(features, n)
                gan = lsgan_generator_loss(fake_f)
                fm = feature_matching_loss(fake_f, real_f)
                d_fake, d_real = lsgan_discriminator_loss(fake_f, real_f)
                terms.update(gan=gan, fm=fm, d_fake=d_fake, d_real=d_real)
                g_loss += [config.lambda_gan * gan, config.lambda_fm * fm]
                d_loss = d_fake + d_real
        g_total = torch.stack(g_loss).sum()
        terms["g_total"] = g_total
        self.opt_g.zero_grad(set_to_none=True)
        g_total.backward(inputs=self.g_params, retain_graph=d_loss is not None)
        if d_loss is not None:
            assert self.opt_d is not None
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward(inputs=self.d_params)
        self.opt_g.step()
        if self.opt_d is not None:
            self.opt_d.step()
        return {k: v.detach().float() for k, v in terms.items()}, fake.detach()

    # -- checkpoint state -------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "generator": self.generator.state_dict(),
            "generator_config": dict(self.generator.config),
            "discriminator": self.discriminator.state_dict() if self.discriminator is not None else None,
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict() if self.opt_d is not None else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.load_state_dict(state["generator"])
        self.opt_g.load_state_dict(state["opt_g"])
        if self.discriminator is not None:
            if state.get("discriminator") is None:
                raise ValueError(
                    "this checkpoint has no discriminator (it was trained without the adversarial terms); "
                    "resume it with --no-gan, or start a GAN run from it with --init-from"
                )
            self.discriminator.load_state_dict(state["discriminator"])
            assert self.opt_d is not None
            self.opt_d.load_state_dict(state["opt_d"])
