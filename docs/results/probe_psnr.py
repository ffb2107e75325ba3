"""Mean PSNR of a training checkpoint on the first N faces of faces-val, against its degraded input.

A quick probe while a run is going (seconds, one thread), with the inputs `hifacegan eval --task TASK --size 128
--seed 0` uses (``--task``, default full); `hifacegan eval` is the real measurement. A ``.safetensors`` file (the
embedded weights, say) is read as weights, for the same figures before training.

    .venv/bin/python docs/results/probe_psnr.py runs/lite-fidelity/checkpoints/last.pt \
        --config hifacegan-lite-128-nlm --count 48
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from hifacegan.data.files import image_key, list_images, read_rgb8
from hifacegan.degradations import degrade, fit_to_size, rng_for
from hifacegan.models import build_generator
from hifacegan.train.checkpoint import load_checkpoint
from hifacegan.weights import load_weights


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a - b) ** 2)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--config", required=True, help="the run's generator config")
    ap.add_argument("--data", type=Path, default=Path("../shared/data/faces-val"))
    ap.add_argument("--count", type=int, default=48)
    ap.add_argument("--task", default="full", help="degradation task of the inputs (default: full)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.checkpoint.suffix == ".safetensors":
        generator, step = load_weights(args.checkpoint).generator.eval(), "weights"
    else:
        payload = load_checkpoint(args.checkpoint)
        generator, step = build_generator(args.config).eval(), f"step {payload['step']}"
        generator.load_state_dict(payload["generator"])
    inputs, outputs = [], []
    with torch.inference_mode():
        for path in list_images(args.data)[: args.count]:
            clean = fit_to_size(read_rgb8(path)[0], 128)
            degraded = degrade(clean, args.task, rng=rng_for(0, image_key(path, args.data)))
            x = torch.from_numpy(degraded).permute(2, 0, 1)[None].float() / 255
            y = ((generator(x) + 1) / 2).clamp(0, 1)[0].permute(1, 2, 0).numpy()
            target = clean / 255.0
            inputs.append(psnr(degraded / 255.0, target))
            outputs.append(psnr(np.round(y * 255) / 255, target))
    print(
        f"{step}, task {args.task}: input {np.mean(inputs):.2f} dB, output {np.mean(outputs):.2f} dB "
        f"(first {len(outputs)} faces of {args.data})"
    )


if __name__ == "__main__":
    main()
