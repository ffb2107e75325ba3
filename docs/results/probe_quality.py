"""Probe: what a face-quality network says of clean and web faces at every size (issue #34), and so whether and
where its thresholds (hifacegan.quality.estimator CLEAN_CHANCE, DEGRADED_CHANCE) could lie.

Portraits at long sides 64-1024 (faces of about 20-600 px), clean and with the ``web`` task (seed 0); the largest
face's detection box goes to the network, as the pipeline sends it. ``--set heldout``: the London and 3DSK
portraits the training held out (every fifth), where the thresholds are set; ``--set ffhq``: ffhq-1024, never
trained on, where they are checked. Prints per long side the 5th/50th/95th percentiles of the chance for clean and
web faces, the share of clean faces over CLEAN_CHANCE (taken, in part) and of web faces over it.

    .venv/bin/python docs/results/probe_quality.py --set heldout --weights ~/runs/face-quality \
        --out ~/looks/quality-heldout.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from hifacegan.data.files import read_rgb8
from hifacegan.degradations import degrade, rng_for
from hifacegan.evaluation.pipeline_eval import fit_long_side
from hifacegan.face.detection import FaceDetector
from hifacegan.quality import FaceQuality
from hifacegan.quality.data import split_files
from hifacegan.quality.estimator import CLEAN_CHANCE

HIRES = Path(__file__).resolve().parents[3] / "shared" / "data" / "faces-hires"
SIDES = (64, 96, 128, 192, 256, 384, 512, 1024)


def portraits(which: str, limit: int | None) -> list[Path]:
    if which == "ffhq":
        files = sorted((HIRES / "ffhq-1024").glob("*.jpg"))
    else:
        files = split_files([str(HIRES / "london-1024"), str(HIRES / "3dsk-1024")])[1]
    return files[:limit]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--set", choices=("heldout", "ffhq"), default="heldout")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--weights", required=True, help="a trained network (its .safetensors or run folder)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    quality, detector = FaceQuality(args.weights), FaceDetector()
    rows = []
    for path in portraits(args.set, args.limit):
        image = read_rgb8(path)[0]
        for side in SIDES:
            clean = fit_long_side(image, side)
            faces = detector(clean)
            if not faces:
                continue
            x0, y0, x1, y1 = max(faces, key=lambda f: f.size).pixel_box(clean.shape)
            web = degrade(clean, "web", rng=rng_for(0, path.stem))
            chances = [quality(im[y0:y1, x0:x1].astype(np.float32) / 255.0) for im in (clean, web)]
            rows.append({"file": path.name, "side": side, "box": max(x1 - x0, y1 - y0),
                         "clean": round(chances[0], 4), "web": round(chances[1], 4)})  # fmt: skip
    summary = {}
    for side in SIDES:
        at = [r for r in rows if r["side"] == side]
        if not at:
            continue
        clean, web = (np.array([r[k] for r in at]) for k in ("clean", "web"))
        summary[side] = {
            "faces": len(at),
            "box_median": float(np.median([r["box"] for r in at])),
            "clean_p5_50_95": [round(float(v), 3) for v in np.percentile(clean, (5, 50, 95))],
            "web_p5_50_95": [round(float(v), 3) for v in np.percentile(web, (5, 50, 95))],
            "clean_over": round(float((clean > CLEAN_CHANCE).mean()), 3),
            "web_over": round(float((web > CLEAN_CHANCE).mean()), 3),
        }
        print(side, json.dumps(summary[side]))
    args.out.write_text(json.dumps({"summary": summary, "faces": rows}, indent=1))


if __name__ == "__main__":
    main()
