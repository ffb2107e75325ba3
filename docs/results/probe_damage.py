"""What the damage detector marks around the largest face of each photo: the probe behind the damage gate.

    .venv/bin/python docs/results/probe_damage.py ../shared/data/faces-hires --long-side 1024 512 \
        --weights ~/runs/damage/damage-unet.safetensors --out probe-clean.json
    .venv/bin/python docs/results/probe_damage.py ../shared/data/photos --out probe-photos.json

For each photo and long side: the share of the face's box the detector marks (after the thin-parts filter the
pipeline applies), the marked pixels in the whole window searched, and the largest marked region. Prints the
median and the worst, and how many faces any gate in --gates would leave untouched.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from hifacegan.damage import DamageDetector
from hifacegan.damage.removal import as_rgb8, face_window, keep_damage
from hifacegan.data.files import list_images, read_rgb8
from hifacegan.evaluation.pipeline_eval import fit_long_side
from hifacegan.face.detection import FaceDetector


def probe(image: np.ndarray, detector: DamageDetector, faces: FaceDetector) -> dict | None:
    found = faces(image)
    if not found:
        return None
    face = max(found, key=lambda f: f.size)
    x0, y0, x1, y1 = face_window(tuple(face.box), image.shape[:2])
    window = as_rgb8(image[y0:y1, x0:x1])
    mask = keep_damage(detector(window), gate=0.0)  # every mark the width filter keeps, under the gate too
    bx0, by0, bx1, by1 = (int(round(v)) for v in face.box)
    box = mask[max(0, by0 - y0) : by1 - y0, max(0, bx0 - x0) : bx1 - x0]
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    largest = int(stats[1:, cv2.CC_STAT_AREA].max()) if count > 1 else 0
    return {
        "face": round(float(face.size), 1),
        "box_share": float(box.mean()) if box.size else 0.0,
        "window_pixels": int(mask.sum()),
        "largest_region": largest,
        "regions": count - 1,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folder", type=Path)
    parser.add_argument("--long-side", type=int, nargs="*", default=[])
    parser.add_argument("--weights", default="damage-unet")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    detector, faces = DamageDetector(args.weights), FaceDetector("auto")
    results = {}
    for side in args.long_side or [None]:
        rows = {}
        for path in list_images(args.folder, what="photo folder")[: args.limit]:
            image = read_rgb8(path)[0]
            image = fit_long_side(image, side) if side else image
            row = probe(image, detector, faces)
            if row is not None:
                rows[str(path.relative_to(args.folder))] = row
        shares = np.array([r["box_share"] for r in rows.values()])
        touched = sum(r["window_pixels"] > 0 for r in rows.values())
        print(
            f"long side {side or 'as is'}: {len(rows)} faces, box share median {np.median(shares):.4%}, "
            f"max {shares.max():.4%}, over 3%: {(shares > 0.03).sum()}, any pixel marked: {touched}"
        )
        results[str(side or "as-is")] = rows
    args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
