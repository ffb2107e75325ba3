"""Render the degraded crops of an eval report at points of the fidelity slider, for make_grid.py's columns.

    .venv/bin/hifacegan eval --data ../shared/data/faces-val --task full --size 128 --seed 0 --limit 6 \
        --weights hifacegan-lite-fidelity --save-images --out runs/grid
    .venv/bin/python docs/results/render_fidelity.py runs/grid --fidelity 1 0.5 0
    .venv/bin/python docs/results/make_grid.py runs/grid docs/results/faces-val-grid.png \
        --methods degraded-input fidelity-1 fidelity-0.5 fidelity-0 clean

Each crop goes through the weights' network as the pipeline's slider makes it (hifacegan.pipeline.networks: the
parameters of the perceptual and fidelity ends interpolated), and is written to REPORT/images/fidelity-F/.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from hifacegan.pipeline.networks import load_face_network


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "report", type=Path, help="an eval --save-images folder (its images/degraded-input is read)"
    )
    ap.add_argument("--fidelity", type=float, nargs="+", required=True, help="slider values, 0 to 1")
    ap.add_argument("--weights", default="hifacegan-lite-fidelity")
    args = ap.parse_args()
    device = torch.device("cpu")
    network = load_face_network(args.weights, device, torch.float32)
    sources = sorted((args.report / "images" / "degraded-input").glob("*.png"))
    if not sources:
        raise SystemExit(
            f"no degraded crops under {args.report}/images/degraded-input: run eval with --save-images"
        )
    crops = [np.asarray(Image.open(p).convert("RGB"), dtype=np.float32) / 255.0 for p in sources]
    if any(c.shape[:2] != (network.size, network.size) for c in crops):
        raise SystemExit(f"the crops are not {network.size} px, the network's size")
    for fidelity in args.fidelity:
        out = args.report / "images" / f"fidelity-{fidelity:g}"
        out.mkdir(parents=True, exist_ok=True)
        for path, image in zip(sources, network.run(crops, fidelity, device, torch.float32), strict=True):
            pixels = np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(out / path.name)
        print(f"wrote {len(sources)} crops to {out}")


if __name__ == "__main__":
    main()
