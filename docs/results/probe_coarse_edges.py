"""Probe: does a face's edges measure, shrunk to a common scale, tell a soft grainy face from a sharp one? (#34)

The edges measure (mean |Laplacian| over mean gradient, hifacegan.face.detail.edges_and_gradient) of the largest
face's detection box, at its own size and shrunk (area) to 100 and 80 px on its long side
(hifacegan.face.detail.COARSE_SIDE). ``--side N --count K``: the first K ``faces-hires/ffhq-1024`` portraits at long
side N, clean and through the ``web`` and ``full`` tasks (seed 0), as 0th / 5th / 50th / 95th percentiles.
``--demo``: every face over 110 px of the restoration demo photos (``codeformer_*``, ``gfpgan_*``).

    .venv/bin/python docs/results/probe_coarse_edges.py --side 256 --count 101
    .venv/bin/python docs/results/probe_coarse_edges.py --demo
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from hifacegan.degradations import degrade, fit_long_side, rng_for
from hifacegan.devices import configure_cpu_threads
from hifacegan.evaluation._files import read_rgb
from hifacegan.face import detail
from hifacegan.face.detection import FaceDetector

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "faces-hires" / "ffhq-1024"
PHOTOS = DATA.parents[1] / "photos"
SIDES = (None, 100, 80)  # own size, then shrunk


def edges_at(grey: np.ndarray, side: int | None) -> float:
    if side is not None and max(grey.shape) > side:
        grey = fit_long_side(grey, side, least=3)
    return detail.edges_and_gradient(grey)[0]


def face_rows(image: np.ndarray, detector: FaceDetector) -> list[tuple[int, ...]]:
    """(box side, edges at each of SIDES) for every face found in ``image``."""
    rows = []
    for face in detector(image):
        x0, y0, x1, y1 = face.pixel_box(image.shape)
        grey = cv2.cvtColor(image[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY).astype(np.float32)
        rows.append((max(x1 - x0, y1 - y0), *(edges_at(grey, side) for side in SIDES)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--side", type=int, default=256)
    parser.add_argument("--count", type=int, default=101)
    parser.add_argument("--demo", action="store_true")
    args = parser.parse_args()
    configure_cpu_threads(1)
    detector = FaceDetector()
    if args.demo:
        for path in sorted([*PHOTOS.glob("codeformer_*"), *PHOTOS.glob("gfpgan_*")]):
            for box, *edges in face_rows(read_rgb(path), detector):
                if box > 110:
                    print(f"{path.stem:24s} box {box:4d}  " + "  ".join(f"{e:.3f}" for e in edges))
        return
    found: dict[str, list] = {"clean": [], "web": [], "full": []}
    for path in sorted(DATA.glob("*.jpg"))[: args.count]:
        clean = fit_long_side(read_rgb(path), args.side)
        for task, rows in found.items():
            image = clean if task == "clean" else degrade(clean, task, rng=rng_for(0, path.stem))
            faces = face_rows(image, detector)
            if faces:
                rows.append(max(faces))
    for task, rows in found.items():
        table = np.array(rows)
        cells = [f"box {np.median(table[:, 0]):.0f}"]
        for column, side in enumerate(SIDES, start=1):
            low, p5, mid, p95 = np.percentile(table[:, column], [0, 5, 50, 95])
            cells.append(f"{side or 'own'}: {low:.3f} {p5:.3f} / {mid:.3f} / {p95:.3f}")
        print(f"{task:5s} {args.side}  " + "  ".join(cells))


if __name__ == "__main__":
    main()
