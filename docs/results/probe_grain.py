"""Probe: do renovated faces of grainy old photos keep their texture and grain? (issue #34, "grain and texture")

For ``historic_FatMenClub`` and the 20 largest faces of ``../shared/data/old-photos``: each face is cut from its photo
with a margin, renovated with ``--grain keep`` and ``--grain remove`` (default weights, fidelity 0.5, CPU), and its
detection box is measured before and after:

- high-frequency energy: the mean square of Immerkaer's high-pass over the box (texture and grain together); the
  issue asks at least 0.8 of the input's;
- grain level: Immerkaer's level over the box's flat pixels (chosen on the input); the issue asks within 20%.

Writes a table (stdout) and, with ``--crops DIR``, 200% before/keep/remove crops of each face for a look (the photos
are research-only: never commit those crops). The face list is cached in ``~/.cache/renovate-faces/probe-grain``.

    .venv/bin/python docs/results/probe_grain.py --crops /tmp/grain-crops
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from hifacegan.devices import configure_cpu_threads
from hifacegan.face.detection import FaceDetector
from hifacegan.face.grain import channel_levels, flat_pixels, high_pass
from hifacegan.imageio import read_photo
from hifacegan.pipeline import Renovator

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
CACHE = Path.home() / ".cache" / "renovate-faces" / "probe-grain"
MARGIN = 0.8  # of the face box on each side


def largest_faces(count: int) -> list[dict]:
    """The ``count`` largest detected faces of old-photos (cached), plus every face of FatMenClub over 60 px."""
    cache = CACHE / "faces.json"
    if cache.exists():
        return json.loads(cache.read_text())
    detector = FaceDetector("auto", device="cpu")
    faces = []
    for path in sorted((SHARED / "old-photos").glob("*.jpg")):
        for d in detector(read_photo(path).pixels):
            faces.append({"photo": str(path), "box": [float(v) for v in d.box], "size": float(d.size)})
    faces = sorted(faces, key=lambda f: -f["size"])[:count]
    fat = SHARED / "photos" / "historic_FatMenClub.jpg"
    for d in detector(read_photo(fat).pixels):
        if d.size >= 60:
            faces.append({"photo": str(fat), "box": [float(v) for v in d.box], "size": float(d.size)})
    CACHE.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(faces, indent=1))
    return faces


def cut(photo: np.ndarray, box: list[float]) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The face with a margin, and its box in the cut."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    cx0, cy0 = max(0, int(x0 - MARGIN * w)), max(0, int(y0 - MARGIN * h))
    cx1, cy1 = min(photo.shape[1], int(x1 + MARGIN * w)), min(photo.shape[0], int(y1 + MARGIN * h))
    inner = (int(x0) - cx0, int(y0) - cy0, int(x1) - cx0, int(y1) - cy0)
    return photo[cy0:cy1, cx0:cx1].copy(), inner


def measures(before: np.ndarray, after: np.ndarray, box: tuple[int, int, int, int]) -> tuple[float, float]:
    """(high-frequency energy ratio, grain level ratio) of the box, after over before."""
    x0, y0, x1, y1 = box
    b = before[y0:y1, x0:x1].astype(np.float32) / 255.0
    a = after[y0:y1, x0:x1].astype(np.float32) / 255.0
    energy = [float(np.mean(high_pass(img.mean(axis=2))[2:-2, 2:-2] ** 2)) for img in (b, a)]
    flat = flat_pixels(b)
    levels = [float(np.mean(channel_levels(img, flat))) for img in (b, a)]
    return energy[1] / max(energy[0], 1e-12), levels[1] / max(levels[0], 1e-6)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument(
        "--crops", type=Path, help="write 200%% before | keep | remove crops here (never commit)"
    )
    args = parser.parse_args()
    configure_cpu_threads(1)
    renovators = {g: Renovator("default", "cpu", grain=g) for g in ("keep", "remove")}
    rows = []
    for k, face in enumerate(largest_faces(args.count)):
        photo = read_photo(face["photo"]).pixels
        if photo.ndim == 2:
            photo = np.repeat(photo[..., None], 3, axis=2)
        crop, box = cut(photo[..., :3], face["box"])
        outs, verdict = {}, ""
        for name, renovator in renovators.items():
            result = renovator(crop, faces="largest")
            outs[name] = result.image
            verdict = ",".join(f"{f.path['degradation']:.2f}" for f in result.faces if f.renovated) or "kept"
        keep, remove = measures(crop, outs["keep"], box), measures(crop, outs["remove"], box)
        rows.append((Path(face["photo"]).stem, face["size"], verdict, *keep, *remove))
        print(
            f"{rows[-1][0]:32s} {face['size']:5.0f}px d={verdict:10s} keep: energy {keep[0]:.2f} grain "
            f"{keep[1]:.2f} | remove: energy {remove[0]:.2f} grain {remove[1]:.2f}",
            flush=True,
        )
        if args.crops:
            args.crops.mkdir(parents=True, exist_ok=True)
            x0, y0, x1, y1 = box
            tiles = [img[y0:y1, x0:x1] for img in (crop, outs["keep"], outs["remove"])]
            strip = np.concatenate(
                [cv2.resize(t, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST) for t in tiles], 1
            )
            cv2.imwrite(
                str(args.crops / f"{k:02d}-{rows[-1][0]}.png"), cv2.cvtColor(strip, cv2.COLOR_RGB2BGR)
            )
    table = np.array([r[3:] for r in rows])
    print(
        f"\n{len(rows)} faces; keep: energy min {table[:, 0].min():.2f} median {np.median(table[:, 0]):.2f}, "
        f"grain {table[:, 1].min():.2f}-{table[:, 1].max():.2f}; remove: energy min {table[:, 2].min():.2f} "
        f"median {np.median(table[:, 2]):.2f}, grain {table[:, 3].min():.2f}-{table[:, 3].max():.2f}"
    )


if __name__ == "__main__":
    main()
