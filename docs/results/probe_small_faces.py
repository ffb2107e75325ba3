"""Probe: can the small-face measures tell a clean 40 px face from a web or full-task one? (issue #34)

For the first 60 ``faces-hires/ffhq-1024`` portraits at a long side (``--side``, 64: face boxes of about 37 px),
clean and degraded with the ``web`` and ``full`` tasks (seed 0), the largest face's
:class:`~hifacegan.face.detail.PixelMeasures` (edges, noise sigma, JPEG blocks, colour edges) are printed as
5th/50th/95th percentiles, with the share of faces the gate keeps whole (degradation 0) and takes mostly (0.5 or
more), under today's thresholds and raised noise and block thresholds, each with and without the colour measure.
``--demo`` does the same for every face of the restoration demo photos (``codeformer_*``, ``gfpgan_*``).

    .venv/bin/python docs/results/probe_small_faces.py --side 64
    .venv/bin/python docs/results/probe_small_faces.py --demo
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from hifacegan.degradations import degrade, rng_for
from hifacegan.devices import configure_cpu_threads
from hifacegan.evaluation._files import read_rgb
from hifacegan.evaluation.pipeline_eval import fit_long_side
from hifacegan.face import detail
from hifacegan.face.blending import to_rgb_float
from hifacegan.face.detection import FaceDetector

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "faces-hires" / "ffhq-1024"
PHOTOS = DATA.parents[1] / "photos"
TASKS = ("clean", "web", "full")
THRESHOLDS = (  # (noise sigma ramp, blocks ramp): today's, then raised
    (detail.SMALL_NOISY_SIGMA, detail.SMALL_BLOCKY),
    ((5.0, 8.0), (1.25, 1.45)),
    ((5.5, 8.0), (1.3, 1.5)),
)


def ramp(value: float, clean: float, degraded: float) -> float:
    return float(np.clip((value - clean) / (degraded - clean), 0.0, 1.0))


def degradation(m: detail.PixelMeasures, noisy: tuple, blocky: tuple, colour: bool) -> float:
    """The small-face gate's degradation with the given noise and block ramps, with or without the colour measure."""
    found = max(ramp(m.edges, *detail.SMALL_SHARP_EDGES), ramp(m.sigma, *noisy), ramp(m.blocks, *blocky))
    return max(found, m.colour_blur) if colour else found


def synthetic_rows(
    side: int, count: int, detector: FaceDetector
) -> list[tuple[str, int, detail.PixelMeasures]]:
    rows = []
    for path in sorted(DATA.glob("*.jpg"))[:count]:
        clean = fit_long_side(read_rgb(path), side)
        found = detector(clean)
        if not found:
            continue
        x0, y0, x1, y1 = max(found, key=lambda d: d.size).pixel_box(clean.shape)
        for task in TASKS:
            image = clean if task == "clean" else degrade(clean, task, rng=rng_for(0, path.stem))
            rows.append((task, x1 - x0, detail.PixelMeasures.of(to_rgb_float(image[y0:y1, x0:x1]), (x0, y0))))
    return rows


def demo_rows(detector: FaceDetector) -> list[tuple[str, int, detail.PixelMeasures]]:
    rows = []
    for path in sorted([*PHOTOS.glob("codeformer_*"), *PHOTOS.glob("gfpgan_*")]):
        photo = read_rgb(path)
        for face in detector(photo):
            x0, y0, x1, y1 = face.pixel_box(photo.shape)
            rows.append(
                (path.stem, x1 - x0, detail.PixelMeasures.of(to_rgb_float(photo[y0:y1, x0:x1]), (x0, y0)))
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--side", type=int, default=64)
    parser.add_argument("--count", type=int, default=60)
    parser.add_argument("--demo", action="store_true", help="the demo photos' faces, one line each")
    args = parser.parse_args()
    configure_cpu_threads(1)
    detector = FaceDetector("auto", device="cpu")
    if args.demo:
        for name, box, m in demo_rows(detector):
            ramps = [f"{degradation(m, n, b, c):.2f}" for n, b in THRESHOLDS for c in (False, True)]
            print(f"{name} {box} px: edges {m.edges:.3f} sigma {m.sigma:.2f} blocks {m.blocks:.3f} "
                  f"colour edges {m.chroma:.3f} (share {m.colour:.2f}); degradation " + " ".join(ramps))  # fmt: skip
        return
    rows = synthetic_rows(args.side, args.count, detector)
    for task in TASKS:
        r = np.array([(box, m.edges, m.sigma, m.blocks, m.chroma) for t, box, m in rows if t == task])
        spread = ["/".join(f"{v:.2f}" for v in np.percentile(r[:, c], [5, 50, 95])) for c in (1, 2, 3, 4)]
        print(f"{args.side} px, {task}: {len(r)} faces, box {r[:, 0].mean():.0f} px, edges {spread[0]}, "
              f"sigma {spread[1]}, blocks {spread[2]}, colour edges {spread[3]}")  # fmt: skip
    for noisy, blocky in THRESHOLDS:
        for colour in (False, True):
            shares = []
            for task in TASKS:
                d = np.array([degradation(m, noisy, blocky, colour) for t, _, m in rows if t == task])
                shares.append(f"{task} kept {np.mean(d == 0):.2f}, taken {np.mean(d >= 0.5):.2f}")
            print(f"noise {noisy}, blocks {blocky}, colour {'on' if colour else 'off'}: " + "; ".join(shares))


if __name__ == "__main__":
    main()
