"""The projected discriminator: frozen ImageNet backbone, trainable heads only, augmentation only in training."""

from __future__ import annotations

import torch

from hifacegan.losses import lsgan_discriminator_loss, split_batch
from hifacegan.models import build_discriminator
from hifacegan.models.projected import diff_augment


def test_only_the_heads_learn_and_the_backbone_keeps_imagenet_statistics():
    torch.manual_seed(0)
    d = build_discriminator("projected-mobilenet")
    backbone_before = {k: v.clone() for k, v in d.backbone.state_dict().items()}
    projection_before = [p.weight.clone() for p in d.projections]
    trainable = [p for p in d.parameters() if p.requires_grad]
    assert all(not p.requires_grad for p in d.backbone.parameters())
    optimiser = torch.optim.Adam(trainable, lr=1e-2)
    d.train()
    assert not any(m.training for m in d.backbone.modules())
    degraded, real = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    fake = real.flip(-1) * 0.5
    for _ in range(3):
        features = d(torch.cat([degraded, degraded]), torch.cat([fake, real]))
        fake_f, real_f = split_batch(features, 2)
        loss = sum(lsgan_discriminator_loss(fake_f, real_f))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    for key, value in d.backbone.state_dict().items():
        assert torch.equal(value, backbone_before[key]), key
    for conv, before in zip(d.projections, projection_before, strict=True):
        assert torch.equal(conv.weight, before)
    assert len(features) == d.num_D == 5  # three projected levels and the PatchGAN's two scales


def test_the_generator_gets_gradients_through_the_frozen_backbone():
    d = build_discriminator("projected-mobilenet").eval()
    image = torch.rand(1, 3, 64, 64, requires_grad=True)
    features = d(torch.rand(1, 3, 64, 64), image)
    sum(scale[-1].mean() for scale in features[:3]).backward()
    assert image.grad is not None and image.grad.abs().sum() > 0


def test_the_random_projections_are_fixed_by_the_seed():
    a, b = build_discriminator("projected-mobilenet"), build_discriminator("projected-mobilenet")
    c = build_discriminator("projected-mobilenet", seed=1)
    assert torch.equal(a.projections[0].weight, b.projections[0].weight)
    assert not torch.equal(a.projections[0].weight, c.projections[0].weight)


def test_diff_augment_moves_and_cuts_but_keeps_shape_and_gradients():
    images = torch.rand(4, 6, 32, 32, requires_grad=True)
    out = diff_augment(images, torch.Generator().manual_seed(0))
    assert out.shape == images.shape
    assert not torch.equal(out, images)
    assert (out == 0).float().mean() > 0.1  # the cutout (a quarter of the area) and the translation's border
    out.sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0


def test_evaluation_mode_does_not_augment():
    d = build_discriminator("projected-mobilenet").eval()
    x, y = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64)
    first = d(x, y)
    second = d(x, y)
    assert all(torch.equal(a[-1], b[-1]) for a, b in zip(first, second, strict=True))
