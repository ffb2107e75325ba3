"""Noise-adaptive non-local means in front of a generator: the classical step that takes the heaviest noise.

Why a lite generator has one: the paper's full degradation adds Gaussian, Laplace or Poisson noise of strength
20-40 at a random point of the chain; when it comes last the noise survives at full strength. A CPU-sized network
trained on a CPU's budget removes it badly: on the quarter of faces-val with the noisiest inputs the classical
NLM baseline beat the network by about 1 dB, while the network won everywhere else. Measured on 100 faces each
(``docs/benchmarks.md``), putting a *mild* NLM (``h = 0.5 sigma``) in front of the unchanged network raised its
PSNR by 0.6 dB on faces-val and 0.4 dB on CelebA, 1.5-2.3 dB on the noisiest quarter, and it costs about 20 ms
a face on a CPU. The network is then fine-tuned on the filtered inputs (``hifacegan-lite-128-nlm``). Mild,
because the network still sees (and restores) what the filter leaves; the classical baseline filters harder.

The noise level is estimated per image with Immerkaer's Laplacian-difference estimator ("Fast noise variance
estimation", CVIU 1996); OpenCV's ``fastNlMeansDenoisingColored`` (7x7 patches, 21x21 search) does the rest.
It is not differentiable and runs on the CPU in uint8, like any photo filter: generators call it on their input,
which never needs a gradient.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

_LAPLACE_DIFF = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float64)

#: Below this estimated sigma (0-255 scale) an image is left alone: the estimator reads texture as noise there.
MIN_SIGMA = 2.0

#: Filter strengths, as multiples of the estimated sigma, by prefilter name.
PREFILTERS = {"nlm": 0.5}


def estimate_noise_sigma(image: np.ndarray) -> float:
    """Immerkaer's estimate of white-noise sigma (0-255 scale), per RGB channel, averaged over the channels."""
    height, width = image.shape[:2]
    if height < 3 or width < 3:
        return 0.0
    sigmas = []
    for channel in range(image.shape[2]):
        plane = image[..., channel].astype(np.float64)
        response = cv2.filter2D(plane, -1, _LAPLACE_DIFF, borderType=cv2.BORDER_REFLECT)[1:-1, 1:-1]
        sigmas.append(np.sqrt(np.pi / 2) * np.abs(response).sum() / (6.0 * (width - 2) * (height - 2)))
    return float(np.mean(sigmas))


def nlm_denoise(image: np.ndarray, strength: float) -> np.ndarray:
    """Non-local means at ``h = strength * sigma`` (sigma estimated on ``image``); a uint8 RGB image in and out.

    Returns ``image`` itself when it looks clean (sigma under :data:`MIN_SIGMA`).
    """
    sigma = estimate_noise_sigma(image)
    if sigma < MIN_SIGMA:
        return image
    h = float(strength * sigma)
    return cv2.fastNlMeansDenoisingColored(np.ascontiguousarray(image), None, h, h, 7, 21)


def prefilter_strength(name: str) -> float:
    """The strength of the prefilter ``name``, or a clear error naming the ones there are."""
    try:
        return PREFILTERS[name]
    except KeyError:
        raise ValueError(f"unknown prefilter {name!r}; choose one of: {', '.join(PREFILTERS)}") from None


def prefilter_batch(x: torch.Tensor, name: str) -> torch.Tensor:
    """Apply the prefilter ``name`` to a ``(N, 3, H, W)`` batch in [0, 1]; same device and dtype back.

    The filter works on 8-bit copies; what it changes is added to the input as a difference, so faces from 16-bit
    or float photos keep their precision (and faces that look clean come back untouched). OpenCV is held to
    torch's thread count, so ``--threads`` and the server's "all cores but one" still hold.
    """
    strength = prefilter_strength(name)
    quantised = (
        (x.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    )
    cv_threads = cv2.getNumThreads()
    cv2.setNumThreads(torch.get_num_threads())
    try:
        filtered = np.stack([nlm_denoise(image, strength) for image in quantised])
    finally:
        cv2.setNumThreads(cv_threads)
    change = filtered.astype(np.float32) - quantised.astype(np.float32)
    if not change.any():
        return x
    delta = torch.from_numpy(change).permute(0, 3, 1, 2).to(device=x.device, dtype=torch.float32)
    return (x.detach().float() + delta / 255.0).clamp(0, 1).to(x.dtype)
