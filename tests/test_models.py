"""Networks: manifest compatibility with the released checkpoints, shapes, release-equivalent inference, gradients."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import SHARED, require
from torch import nn

from hifacegan.models import build_discriminator, build_generator, generator_kwargs, list_generators
from hifacegan.models.blocks import LIP, ParamFreeNorm

REFERENCE = SHARED / "reference"
MANIFESTS = {
    "hifacegan-512": "official_G_hifacegan_ngf64.json",
    "hifacegan-512-ngf48": "official_G_hifacegan_ngf48.json",
    "lipspade-512": "official_G_lipspade_ngf48_released.json",
    "spade-512": "official_G_spade_ngf48.json",
}
# Parameters that exist in the release's state_dict but that its forward pass never uses.
UNUSED = ("fc.", "to_rgbs.0.", "to_rgbs.1.", "to_rgbs.2.")


def _manifest(name: str) -> dict[str, list[int]]:
    path = REFERENCE / name
    require(path.is_file(), f"reference manifest {path} is missing")
    return json.loads(path.read_text())


def _random_state(manifest: dict[str, list[int]]) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    state = {}
    for key, shape in manifest.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7)
        else:
            state[key] = torch.randn(shape, generator=g)
    return state


@pytest.mark.parametrize("config", sorted(MANIFESTS))
def test_generator_state_dict_matches_release_manifest(config):
    manifest = _manifest(MANIFESTS[config])
    model = build_generator(config)
    mine = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert mine == manifest
    model.load_state_dict(_random_state(manifest), strict=True)


def test_discriminator_matches_release_manifest():
    manifest = _manifest("official_D_multiscale.json")
    model = build_discriminator("multiscale")
    assert {k: list(v.shape) for k, v in model.state_dict().items()} == manifest
    model.load_state_dict(_random_state(manifest), strict=True)


def test_registry_lists_required_names_and_rejects_unknown():
    names = list_generators()
    for required in [
        "hifacegan-512",
        "hifacegan-512-ngf48",
        "lipspade-512",
        "spade-512",
        "hifacegan-lite-128",
        "hifacegan-lite-256",
        "hifacegan-lite-128-residual",
        "hifacegan-lite-128-nlm",
    ]:
        assert required in names
    with pytest.raises(ValueError, match="unknown generator config 'nope'.*hifacegan-512"):
        build_generator("nope")
    with pytest.raises(ValueError, match="unknown discriminator"):
        build_discriminator("nope")


def test_overrides_and_config_round_trip():
    g = build_generator("hifacegan-lite-128", ngf=8, size=None)
    assert g.config["ngf"] == 8 and g.config["size"] == 128
    rebuilt = build_generator(**g.config)
    assert rebuilt.state_dict().keys() == g.state_dict().keys()
    # What a name resolves to, without building it, is what the built network records (which adds the
    # constructor's defaults).
    for name, overrides in (
        ("hifacegan-lite-128", {"ngf": 8, "size": None}),
        ("hifacegan-lite-128-residual", {}),
    ):
        kwargs = generator_kwargs(name, **overrides)
        assert kwargs.items() <= build_generator(name, **overrides).config.items()
    assert generator_kwargs("hifacegan-lite-128-residual")["residual"] is True


@pytest.mark.parametrize("hw", [(128, 128), (160, 160), (128, 192), (256, 256)])
def test_hifacegan_family_runs_at_multiples_of_32(hw):
    torch.manual_seed(0)
    g = build_generator("hifacegan-lite-128", ngf=4).eval()
    with torch.inference_mode():
        y = g(torch.rand(2, 3, *hw))
    assert y.shape == (2, 3, *hw)
    assert torch.isfinite(y).all() and y.abs().max() <= 1


def test_residual_generator_starts_at_the_identity_and_learns_a_correction():
    torch.manual_seed(0)
    g = build_generator("hifacegan-lite-128-residual", ngf=4)
    plain = build_generator("hifacegan-lite-128", ngf=4)
    assert g.state_dict().keys() == plain.state_dict().keys()  # same weights file layout, one more skip
    x = torch.rand(2, 3, 128, 128)
    # Starts as the identity in the symmetric convention, so the input's colours survive from step one ...
    torch.testing.assert_close(g(x), x * 2 - 1)
    # ... and gradients reach the whole network through the zero-initialised last convolution.
    optimiser = torch.optim.Adam(g.parameters(), lr=1e-3)
    target = (x * 2 - 1).flip(-1)
    for _ in range(2):
        optimiser.zero_grad()
        (g(x) - target).abs().mean().backward()
        optimiser.step()
    assert g.encoder.head[0].weight.grad.abs().sum() > 0
    assert not torch.allclose(g(x), x * 2 - 1)
    with pytest.raises(ValueError, match="residual"):
        build_generator("hifacegan-512", residual=True)


def test_prefiltered_generator_is_the_residual_network_run_on_the_denoised_input(shared_data) -> None:
    """The nlm config shares every tensor with the residual one and feeds it (and its skip) the filtered face."""
    from hifacegan.data.files import read_rgb8
    from hifacegan.degradations import degrade, fit_to_size
    from hifacegan.models.prefilter import nlm_denoise, prefilter_batch

    torch.manual_seed(0)
    residual = build_generator("hifacegan-lite-128-residual", ngf=4).eval()
    filtered = build_generator("hifacegan-lite-128-nlm", ngf=4).eval()
    assert filtered.config["prefilter"] == "nlm" and residual.config["prefilter"] is None
    torch.nn.init.normal_(residual.to_rgbs[3].weight, std=0.05)  # not the identity, so the test can fail
    filtered.load_state_dict(residual.state_dict(), strict=True)

    clean = fit_to_size(read_rgb8(sorted((shared_data / "faces-val").iterdir())[0])[0], 128)
    noisy = degrade(clean, "denoise", seed=3)
    batch = torch.from_numpy(np.stack([noisy, clean])).permute(0, 3, 1, 2).float() / 255
    denoised = np.stack([nlm_denoise(noisy, 0.5), nlm_denoise(clean, 0.5)])
    expected_input = torch.from_numpy(denoised).permute(0, 3, 1, 2).float() / 255
    torch.testing.assert_close(prefilter_batch(batch, "nlm"), expected_input)
    # The noisy face really changes; the clean one is left (almost) alone.
    assert (expected_input[0] - batch[0]).abs().mean() > 0.02
    assert (expected_input[1] - batch[1]).abs().mean() < 0.01
    with torch.inference_mode():
        torch.testing.assert_close(filtered(batch), residual(expected_input))
        assert not torch.allclose(filtered(batch), residual(batch))
        half = filtered.to(torch.bfloat16)(batch.to(torch.bfloat16))
    assert half.dtype == torch.bfloat16
    # A face from a 16-bit photo keeps what lies between the 8-bit levels: the filter's change is added to it.
    fine = (batch + 0.3 / 255).clamp(0, 1)
    shifted = prefilter_batch(fine, "nlm") - prefilter_batch(batch, "nlm")
    inside = (
        (batch > 1 / 255) & (batch < 254 / 255) & (expected_input > 1 / 255) & (expected_input < 254 / 255)
    )
    torch.testing.assert_close(
        shifted[inside], torch.full_like(shifted[inside], 0.3 / 255), atol=1e-6, rtol=0
    )
    with pytest.raises(ValueError, match="unknown prefilter 'median'.*nlm"):
        build_generator("hifacegan-lite-128-residual", prefilter="median")


@pytest.mark.parametrize("hw", [(100, 128), (96, 96), (128, 130)])
def test_unsupported_sizes_get_a_clear_error(hw):
    g = build_generator("hifacegan-lite-128", ngf=4).eval()
    with pytest.raises(ValueError, match="multiples of 32"):
        g(torch.rand(1, 3, *hw))


def _native_forward(name: str, **overrides) -> None:
    g = build_generator(name, **overrides).eval()
    size = g.config["size"]
    with torch.inference_mode():
        y = g(torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0)))
    assert y.shape == (1, 3, size, size) and torch.isfinite(y).all(), name


# Every registered name, at its native size (timm's tests/test_models.py runs every name). The 512 px
# configs at full width take 5-30 s each on a CPU: they run in the slow tier, and at ngf 4 in the fast one.
@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.slow) if generator_kwargs(n)["size"] >= 512 else n
        for n in list_generators()
    ],
)
def test_every_registered_generator_runs_at_its_native_size(name):
    _native_forward(name)


@pytest.mark.parametrize("name", list_generators())
def test_every_registered_generator_runs_at_its_native_size_narrow(name):
    _native_forward(name, ngf=4)


@pytest.mark.parametrize("config", sorted(MANIFESTS))
def test_official_configs_forward_at_small_size(config):
    g = build_generator(config).eval()
    with torch.inference_mode():
        y = g(torch.rand(1, 3, 128, 128))
    assert y.shape == (1, 3, 128, 128) and torch.isfinite(y).all()


def test_param_free_norm_equals_release_train_mode_batch_norm_at_batch_1():
    x = torch.randn(1, 8, 16, 16) * 3 + 1
    bn = nn.BatchNorm2d(8, affine=False).train()
    assert torch.allclose(ParamFreeNorm(8)(x), bn(x), atol=1e-5)


def test_batched_inference_equals_one_face_at_a_time():
    torch.manual_seed(1)
    g = build_generator("hifacegan-lite-128", ngf=4).eval()
    x = torch.rand(3, 3, 128, 128)
    with torch.inference_mode():
        batched = g(x)
        single = torch.cat([g(x[i : i + 1]) for i in range(3)])
    assert torch.allclose(batched, single, atol=1e-5)


def test_eval_mode_uses_the_stored_spectral_norm_vectors():
    g = build_generator("hifacegan-lite-128", ngf=4).eval()
    conv = g.head_0.conv_0
    u_before = conv.weight_u.clone()
    with torch.inference_mode():
        g(torch.rand(1, 3, 128, 128))
    assert torch.equal(conv.weight_u, u_before)
    w = conv.weight_orig.flatten(1)
    sigma = torch.dot(conv.weight_u, w @ conv.weight_v)
    assert torch.allclose(conv.weight, conv.weight_orig / sigma, atol=1e-6)


def test_lip_is_a_weighted_average_that_prefers_salient_pixels():
    lip = LIP(1)
    with torch.no_grad():
        lip.logit[0].weight.fill_(1.0)
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, 1, 1] = 5.0
    y = lip(x)
    assert y.shape == (1, 1, 2, 2)
    # a plain 3x3 average would give 5/9; importance pooling lets the bright pixel dominate its window
    assert y[0, 0, 0, 0] > 5.0 / 9 * 2
    assert lip(torch.full((1, 1, 4, 4), 2.0)).allclose(torch.full((1, 1, 2, 2), 2.0))


def test_gradients_reach_every_trainable_parameter_of_a_lite_generator():
    g = build_generator("hifacegan-lite-128", ngf=4).train()
    g(torch.rand(2, 3, 128, 128)).square().mean().backward()
    missing = [
        n for n, p in g.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum())
    ]
    assert missing == []


def test_gradients_reach_every_used_parameter_of_the_official_layout():
    g = build_generator("spade-512", ngf=4).train()
    g(torch.rand(1, 3, 128, 128)).square().mean().backward()
    missing = [n for n, p in g.named_parameters() if p.grad is None and not n.startswith(UNUSED)]
    assert missing == []


def test_discriminator_returns_features_per_scale_and_gets_gradients():
    d = build_discriminator("multiscale-lite", ndf=8)
    lq, img = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64, requires_grad=True)
    out = d(lq, img)
    assert len(out) == 2 and all(len(scale) == 5 for scale in out)
    assert out[0][-1].shape[1] == 1 and out[1][-1].shape[-1] < out[0][-1].shape[-1]
    sum(scale[-1].mean() for scale in out).backward()
    assert img.grad is not None and all(p.grad is not None for p in d.parameters())
