"""The paper's eight metrics as pure functions (plus the networks some of them need, loaded once).

Full-reference, on uint8-derived RGB tensors ``(N, 3, H, W)`` in [0, 1]: :func:`psnr`, :func:`ssim`,
:func:`ms_ssim`, :class:`LPIPS`. Set-level: FID via :class:`InceptionFeatures` and :func:`fid_from_features`.
Per face, with dlib: :class:`FaceAnalyzer`, :func:`fed`, :func:`lle`. No-reference: :func:`niqe`.
A metric that cannot run here raises :class:`MetricUnavailable` with the reason (never a silent stand-in).
"""

from hifacegan.metrics._errors import MetricUnavailable
from hifacegan.metrics._fid import InceptionFeatures, fid_from_features, frechet_distance, gaussian_stats
from hifacegan.metrics._identity import FaceAnalyzer, FaceMeasure, fed, lle
from hifacegan.metrics._niqe import niqe, niqe_features, niqe_from_features, rgb_to_y_bt601
from hifacegan.metrics._perceptual import LPIPS, find_alexnet_weights
from hifacegan.metrics._psnr import psnr
from hifacegan.metrics._ssim import MS_SSIM_WEIGHTS, ms_ssim, ms_ssim_weights_for, ssim
from hifacegan.metrics._tensors import to_batch

__all__ = [
    "LPIPS",
    "MS_SSIM_WEIGHTS",
    "FaceAnalyzer",
    "FaceMeasure",
    "InceptionFeatures",
    "MetricUnavailable",
    "fed",
    "fid_from_features",
    "find_alexnet_weights",
    "frechet_distance",
    "gaussian_stats",
    "lle",
    "ms_ssim",
    "ms_ssim_weights_for",
    "niqe",
    "niqe_features",
    "niqe_from_features",
    "psnr",
    "rgb_to_y_bt601",
    "ssim",
    "to_batch",
]
