"""The metrics against independent implementations and reference values, on real images."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.linalg
import torch
from conftest import require, require_module

from hifacegan.metrics import (
    LPIPS,
    FaceAnalyzer,
    FaceMeasure,
    InceptionFeatures,
    MetricUnavailable,
    fed,
    fid_from_features,
    frechet_distance,
    gaussian_stats,
    lle,
    ms_ssim,
    ms_ssim_weights_for,
    niqe,
    psnr,
    ssim,
    to_batch,
)

skimage_data = require_module("skimage.data")
skimage_metrics = require_module("skimage.metrics")


def _celeba(shared_data: Path, count: int) -> np.ndarray:
    folder = shared_data / "faces-eval" / "celeba-test-128"
    files = sorted(folder.glob("*.png"))[:count]
    require(len(files) == count, f"{folder} should hold at least {count} PNG faces")
    return np.stack([cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in files])


@pytest.fixture(scope="module")
def faces_and_noisy(shared_data: Path) -> tuple[np.ndarray, np.ndarray]:
    clean = _celeba(shared_data, 4)
    rng = np.random.default_rng(0)
    noisy = np.clip(clean + rng.normal(0, 15, clean.shape), 0, 255).astype(np.uint8)
    return clean, noisy


def test_psnr_matches_scikit_image(faces_and_noisy: tuple[np.ndarray, np.ndarray]) -> None:
    clean, noisy = faces_and_noisy
    ours = psnr(to_batch(noisy), to_batch(clean)).numpy()
    theirs = [
        skimage_metrics.peak_signal_noise_ratio(c, n, data_range=255)
        for c, n in zip(clean, noisy, strict=True)
    ]
    np.testing.assert_allclose(ours, theirs, atol=1e-4)
    assert psnr(to_batch(clean), to_batch(clean)).isinf().all()


def test_ssim_matches_scikit_image_gaussian_rgb(faces_and_noisy: tuple[np.ndarray, np.ndarray]) -> None:
    clean, noisy = faces_and_noisy
    ours = ssim(to_batch(noisy), to_batch(clean)).numpy()
    theirs = [
        skimage_metrics.structural_similarity(
            c / 255.0,
            n / 255.0,
            data_range=1.0,
            channel_axis=-1,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
        for c, n in zip(clean, noisy, strict=True)
    ]
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
    assert ssim(to_batch(clean), to_batch(clean)).numpy() == pytest.approx(1.0, abs=1e-6)


def test_ms_ssim_matches_torchmetrics(faces_and_noisy: tuple[np.ndarray, np.ndarray]) -> None:
    tm = require_module("torchmetrics.functional.image")
    clean, noisy = faces_and_noisy
    pred, target = to_batch(noisy).double(), to_batch(clean).double()

    def theirs(betas: tuple[float, ...]) -> np.ndarray:
        return tm.multiscale_structural_similarity_index_measure(
            pred, target, data_range=1.0, kernel_size=11, sigma=1.5, betas=betas, reduction="none"
        ).numpy()

    # The contrast-structure chain of the fine scales is the same computation: equal to float precision.
    fine_only = (0.2, 0.3, 0.5, 0.0)
    np.testing.assert_allclose(ms_ssim(pred, target, weights=fine_only).numpy(), theirs(fine_only), atol=1e-6)
    # torchmetrics averages its coarsest-scale SSIM over a reflect-padded border (its crop skips that term);
    # we keep the valid region at every scale like Wang et al.'s reference, so the full score differs slightly.
    weights = ms_ssim_weights_for(128, 128)
    assert len(weights) == 4 and sum(weights) == pytest.approx(1.0)
    np.testing.assert_allclose(ms_ssim(pred, target).numpy(), theirs(weights), atol=1e-3)


def test_ms_ssim_uses_five_scales_from_176_px_and_refuses_tiny_images() -> None:
    assert len(ms_ssim_weights_for(176, 176)) == 5
    assert len(ms_ssim_weights_for(175, 175)) == 4
    tiny = torch.rand(1, 3, 8, 8)
    with pytest.raises(ValueError, match="smaller than"):
        ms_ssim(tiny, tiny)


def test_niqe_of_astronaut_matches_basicsr_reference() -> None:
    astronaut = skimage_data.astronaut()
    assert astronaut.shape == (512, 512, 3)
    assert niqe(astronaut) == pytest.approx(3.0649, abs=5e-4)
    # MATLAB's double arithmetic: within 2% of the single-precision reference, not equal to it.
    double = niqe(astronaut, precision="float64")
    assert double == pytest.approx(3.1005, abs=5e-4)


def test_niqe_rises_with_blur_and_noise_and_refuses_small_images() -> None:
    astronaut = skimage_data.astronaut()
    blurred = cv2.GaussianBlur(astronaut, (0, 0), 3)
    noisy = np.clip(astronaut + np.random.default_rng(1).normal(0, 25, astronaut.shape), 0, 255).astype(
        np.uint8
    )
    assert niqe(blurred) > niqe(astronaut) + 2
    assert niqe(noisy) > niqe(astronaut) + 2
    with pytest.raises(ValueError, match="96x96"):
        niqe(astronaut[:90, :90])


def test_frechet_distance_of_known_gaussians() -> None:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(500, 8))
    assert fid_from_features(features, features) == pytest.approx(0.0, abs=1e-6)
    mu, cov = np.zeros(3), np.eye(3)
    # Same covariance, means 2 apart along one axis: |d|^2 = 4 exactly.
    assert frechet_distance(mu, cov, mu + [2, 0, 0], cov) == pytest.approx(4.0, abs=1e-9)
    # Isotropic variances 1 and 4: per dimension 1 + 4 - 2*2 = 1.
    assert frechet_distance(mu, cov, mu, 4 * cov) == pytest.approx(3.0, abs=1e-9)
    # Fewer images than dimensions (the usual case for small eval sets): the exact low-rank route must agree
    # with the covariance route and with scipy's general matrix square root.
    a, b = rng.normal(size=(30, 40)), rng.normal(size=(20, 40)) * 1.3 + 0.2
    mu_a, cov_a = gaussian_stats(a)
    mu_b, cov_b = gaussian_stats(b)
    expected = float(
        (mu_a - mu_b) @ (mu_a - mu_b)
        + np.trace(cov_a + cov_b - 2 * np.real(scipy.linalg.sqrtm(cov_a @ cov_b)))
    )
    assert fid_from_features(a, b) == pytest.approx(expected, rel=1e-6)
    assert frechet_distance(mu_a, cov_a, mu_b, cov_b) == pytest.approx(expected, rel=1e-6)


@pytest.mark.slow
def test_fid_of_a_set_with_itself_is_zero_and_rises_with_degradation(shared_data: Path) -> None:
    clean = _celeba(shared_data, 16)
    extractor = InceptionFeatures(batch_size=8)
    reference = extractor(to_batch(clean))
    assert reference.shape == (16, 2048)

    def blurred(sigma: float) -> np.ndarray:
        return np.stack([cv2.GaussianBlur(img, (0, 0), sigma) for img in clean])

    mild = fid_from_features(reference, extractor(to_batch(blurred(0.8))))
    strong = fid_from_features(reference, extractor(to_batch(blurred(2.5))))
    assert abs(fid_from_features(reference, reference)) < 1e-3
    assert 0 < mild < strong


def test_fed_of_mirror_is_small_and_of_another_person_large(shared_data: Path) -> None:
    analyzer = FaceAnalyzer()
    astronaut = skimage_data.astronaut()
    face = analyzer.measure(astronaut)
    mirrored = analyzer.measure(np.ascontiguousarray(astronaut[:, ::-1]))
    other = analyzer.measure(_celeba(shared_data, 1)[0])
    assert face is not None and mirrored is not None and other is not None
    assert face.landmarks.shape == (68, 2) and face.embedding.shape == (128,)
    assert fed(face, mirrored) < 0.4
    assert fed(face, other) > 0.6


def test_no_face_in_a_blank_image_is_reported_as_none() -> None:
    assert FaceAnalyzer().measure(np.full((128, 128, 3), 120, np.uint8)) is None


def test_face_analyzer_refuses_images_that_are_not_uint8_rgb() -> None:
    analyzer = FaceAnalyzer()
    for bad in (np.zeros((128, 128, 3), np.float32), np.zeros((128, 128), np.uint8)):
        with pytest.raises(ValueError, match="expected a uint8 RGB image"):
            analyzer.detect(bad)
        with pytest.raises(ValueError, match="expected a uint8 RGB image"):
            analyzer.measure_at(bad, (10, 10, 100, 100))


def test_lle_is_in_pixels_of_a_512_px_image() -> None:
    base = np.zeros((68, 2))
    a = FaceMeasure((0, 0, 1, 1), base, np.zeros(128))
    b = FaceMeasure((0, 0, 1, 1), base + [3.0, 4.0], np.zeros(128))
    assert lle(a, b, image_width=512) == pytest.approx(5.0)
    assert lle(a, b, image_width=128) == pytest.approx(20.0)


def test_lpips_without_alexnet_is_unavailable_with_the_reason(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("HIFACEGAN_ALEXNET", raising=False)
    with pytest.raises(MetricUnavailable, match="alexnet-owt-7be5be79.pth"):
        LPIPS()
    with pytest.raises(MetricUnavailable, match="not found"):
        LPIPS(tmp_path / "missing.pth")


def test_lpips_loads_a_torchvision_alexnet_file_into_every_layer(tmp_path: Path) -> None:
    # No real ImageNet AlexNet is available offline; a torchvision AlexNet state_dict file checks the loading
    # (every conv of every slice must come from the file), not the learned values.
    torchvision = require_module("torchvision")
    torch.manual_seed(0)
    alexnet = torchvision.models.alexnet(weights=None)
    path = tmp_path / "alexnet-owt-7be5be79.pth"
    torch.save(alexnet.state_dict(), path)
    metric = LPIPS(path)
    torch.testing.assert_close(getattr(metric.model.net.slice5, "10").weight, alexnet.features[10].weight)
    torch.testing.assert_close(getattr(metric.model.net.slice1, "0").bias, alexnet.features[0].bias)
    x = torch.rand(2, 3, 64, 64)
    assert metric(x, x).abs().max() < 1e-6
    assert (metric(x, torch.rand(2, 3, 64, 64)) > 0).all()
