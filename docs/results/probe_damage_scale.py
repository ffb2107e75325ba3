"""At what scale to run the damage detector: its errors on clean faces, its hits on drawn damage, and its time.

    .venv/bin/python docs/results/probe_damage_scale.py ../shared/data/faces-hires/ffhq-1024 --out scale.json

For the largest face of each photo, the window the pipeline searches (``face_window``) is run through the
detector in several ways:

- ``full``: at the photo's own resolution (the pipeline until now);
- ``cap N``: shrunk so its long side is at most N px, the chances enlarged back and cut at the threshold;
- ``A & N`` (A ``full`` or ``cap M``): A's mask, kept only where the ``cap N`` chances reach half the threshold: a
  mark must be seen at both scales (the smaller pass costs little beside the larger one);
- ``two looks``: what the pipeline runs (``DamageDetector.face_mask``): ``full & 256``, its full-resolution look
  run only in the tiles where the 256 px look marked something.

Every variant then goes through the pipeline's own filters (``keep_damage``: width, the ``MIN_SHARE`` gate). Rows: the
clean photos at long side 1024 and 512 (what each marks: median and worst share of the face box, windows over
the gate), the same photos at 512 with the ``damage`` task (seed 0, as ``hifacegan eval``): pixel precision,
recall and F1 against the drawn mask in the window, and the detector's time per window on one thread.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from hifacegan.damage import DamageDetector
from hifacegan.damage.detector import COARSE_AGREEMENT
from hifacegan.damage.removal import MIN_SHARE, as_rgb8, face_window, keep_damage
from hifacegan.data.files import list_images, read_rgb8
from hifacegan.degradations import degrade_with_mask, rng_for
from hifacegan.evaluation.pipeline_eval import fit_long_side
from hifacegan.face.detection import FaceDetector


def variants(
    window: np.ndarray, detector: DamageDetector, caps: list[int], gate: float = MIN_SHARE
) -> dict[str, tuple[np.ndarray, float]]:
    """Each variant's filtered mask over ``window`` and the detector's seconds for it."""
    threshold = detector.threshold
    chances, seconds = {}, {}
    for cap in [None, *caps]:
        name = "full" if cap is None else f"cap {cap}"
        start = time.perf_counter()
        chances[name] = (
            detector.probability(window) if cap is None else detector.coarse_probability(window, cap)
        )
        seconds[name] = time.perf_counter() - start
    raw = {name: chance >= threshold for name, chance in chances.items()}
    names = list(chances)
    for fine_index, fine in enumerate(names):
        for coarse in names[fine_index + 1 :]:
            name = f"{fine} & {coarse.split()[-1]}"
            raw[name] = raw[fine] & (chances[coarse] >= threshold * COARSE_AGREEMENT)
            seconds[name] = seconds[fine] + seconds[coarse]
    start = time.perf_counter()
    raw["two looks"] = detector.face_mask(window)  # what the pipeline runs: full & 256, in focus tiles
    seconds["two looks"] = time.perf_counter() - start
    return {name: (keep_damage(mask, gate), seconds[name]) for name, mask in raw.items()}


def largest_face_window(
    image: np.ndarray, faces: FaceDetector
) -> tuple[tuple[int, int, int, int], tuple] | None:
    found = faces(image)
    if not found:
        return None
    face = max(found, key=lambda f: f.size)
    return face_window(tuple(face.box), image.shape[:2]), tuple(face.box)


def box_share(mask: np.ndarray, window: tuple[int, int, int, int], box: tuple) -> float:
    x0, y0 = window[:2]
    bx0, by0, bx1, by1 = (int(round(v)) for v in box)
    inside = mask[max(0, by0 - y0) : by1 - y0, max(0, bx0 - x0) : bx1 - x0]
    return float(inside.mean()) if inside.size else 0.0


def summarise_clean(rows: list[dict], name: str) -> dict:
    shares = np.array([r[name]["share"] for r in rows])
    return {
        "median_share": float(np.median(shares)),
        "worst_share": float(shares.max()),
        "windows_filled": int(sum(r[name]["pixels"] > 0 for r in rows)),
        "seconds_median": float(np.median([r[name]["seconds"] for r in rows])),
    }


def summarise_damage(rows: list[dict], name: str) -> dict:
    hit = sum(r[name]["hit"] for r in rows)
    marked = sum(r[name]["pixels"] for r in rows)
    caught = sum(r[name]["caught"] for r in rows)
    drawn = sum(r["drawn"] for r in rows)
    precision, recall = hit / max(marked, 1), caught / max(drawn, 1)
    return {
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / max(precision + recall, 1e-9),
        "seconds_median": float(np.median([r[name]["seconds"] for r in rows])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folder", type=Path)
    parser.add_argument("--caps", type=int, nargs="+", default=[512, 384, 256])
    parser.add_argument("--weights", default="damage-unet")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument(
        "--gate",
        type=float,
        default=MIN_SHARE,
        help="share of the window marked below which nothing is filled",
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    detector, faces = DamageDetector(args.weights), FaceDetector("auto")
    results: dict[str, dict] = {}
    paths = list_images(args.folder, what="photo folder")[: args.limit]
    for label, side, task in (
        ("clean 1024", 1024, None),
        ("clean 512", 512, None),
        ("damage 512", 512, "damage"),
    ):
        rows = []
        for path in paths:
            clean = fit_long_side(read_rgb8(path)[0], side)
            image, drawn = clean, None
            if task:
                name = str(path.relative_to(args.folder))
                image, drawn, _ = degrade_with_mask(clean, task, rng=rng_for(0, name))
            located = largest_face_window(image, faces)
            if located is None:
                continue
            window, box = located
            x0, y0, x1, y1 = window
            row: dict = {"file": path.name}
            if drawn is not None:
                row["drawn"] = int(drawn[y0:y1, x0:x1].sum())
            for name, (mask, seconds) in variants(
                as_rgb8(image[y0:y1, x0:x1]), detector, args.caps, args.gate
            ).items():
                entry = {"share": box_share(mask, window, box), "pixels": int(mask.sum()), "seconds": seconds}
                if drawn is not None:
                    # A pixel of either mask counts as matched within one pixel of the other.
                    truth = drawn[y0:y1, x0:x1]
                    near_truth = cv2.dilate(truth.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
                    near_mask = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
                    entry["hit"] = int((mask & near_truth).sum())
                    entry["caught"] = int((truth & near_mask).sum())
                row[name] = entry
            rows.append(row)
        names = [k for k in rows[0] if k not in ("file", "drawn")]
        summary = {n: (summarise_damage if task else summarise_clean)(rows, n) for n in names}
        results[label] = {"summary": summary, "rows": rows}
        print(label, f"({len(rows)} faces)")
        for n, s in summary.items():
            print(f"  {n:10s} " + "  ".join(f"{k} {v:.4f}" for k, v in s.items()))
    args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
