"""Mean PSNR of one set of weights with and without the NLM prefilter, by quarter of input quality.

The measurement behind ``hifacegan-lite-128-nlm`` (docs/benchmarks.md): the same tensors run as the residual network
on the degraded face, and on the face after the mild noise-adaptive NLM of ``hifacegan.models.prefilter``; the NLM
alone is shown too. Inputs are those of ``hifacegan eval --task full --size 128 --seed 0``; "noisiest quarter" is
the quarter of faces whose degraded input has the lowest PSNR.

    .venv/bin/python docs/results/probe_prefilter.py hifacegan-lite-fidelity --data ../shared/data/faces-val
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from hifacegan.data.files import image_key, list_images, read_rgb8
from hifacegan.degradations import degrade, fit_to_size, rng_for
from hifacegan.metrics import psnr as metric_psnr
from hifacegan.metrics import to_batch
from hifacegan.models import build_generator
from hifacegan.models.prefilter import PREFILTERS, nlm_denoise
from hifacegan.weights import load_weights


def psnr(image: np.ndarray, clean: np.ndarray) -> float:
    """The report's PSNR (``hifacegan.metrics``) of two uint8 images."""
    return float(metric_psnr(to_batch(image), to_batch(clean))[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("weights", help="weights name or .safetensors path")
    ap.add_argument("--data", type=Path, default=Path("../shared/data/faces-val"))
    ap.add_argument("--count", type=int, default=100, help="first N faces of --data")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    loaded = load_weights(args.weights)
    config = {**loaded.generator.config}
    networks = {}
    for prefilter in (None, "nlm"):
        network = build_generator(**{**config, "prefilter": prefilter}).eval()
        network.load_state_dict(loaded.generator.state_dict())
        networks["network" if prefilter is None else "NLM -> network"] = network

    def run(network: torch.nn.Module, image: np.ndarray) -> np.ndarray:
        x = to_batch(image)
        with torch.inference_mode():
            y = ((network(x) + 1) / 2).clamp(0, 1)[0].permute(1, 2, 0).numpy()
        return np.round(y * 255).astype(np.uint8)

    rows: dict[str, list[float]] = {"degraded input": [], "NLM alone": [], **{name: [] for name in networks}}
    for path in list_images(args.data)[: args.count]:
        clean = fit_to_size(read_rgb8(path)[0], 128)
        degraded = degrade(clean, "full", rng=rng_for(0, image_key(path, args.data)))
        rows["degraded input"].append(psnr(degraded, clean))
        rows["NLM alone"].append(psnr(nlm_denoise(degraded, PREFILTERS["nlm"]), clean))
        for name, network in networks.items():
            rows[name].append(psnr(run(network, degraded), clean))
    order = np.argsort(rows["degraded input"])
    quarter = max(1, len(order) // 4)
    print(
        f"{loaded.card.name} ({config.get('prefilter') or 'no prefilter'} in training), first {len(order)} "
        f"faces of {args.data}, PSNR dB"
    )
    print(f"{'':16s} {'mean':>6s} {'noisiest 1/4':>13s} {'cleanest 1/4':>13s}")
    for name, values in rows.items():
        v = np.asarray(values)
        print(
            f"{name:16s} {v.mean():6.2f} {v[order[:quarter]].mean():13.2f} {v[order[-quarter:]].mean():13.2f}"
        )


if __name__ == "__main__":
    main()
