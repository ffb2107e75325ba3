"""Damage on faces at 200%: input | what the detector marks (red) | damage filled (the pipeline, damage faces) |
the pipeline with damage off, and the clean face when there is one. One row per face, the largest faces first.

    # real old prints (research-only: for looking, never committed)
    .venv/bin/python docs/results/make_damage_crops.py ../shared/data/photos/oldphotos_old_w_scratch_*.png \
        --out ~/looks/scratched.png
    # CC BY portraits with synthetic damage (committable, with the attribution in the README)
    .venv/bin/python docs/results/make_damage_crops.py ../shared/data/faces-hires/london-1024/neutral_0* \
        --synthetic damage --long-side 512 --count 3 --out docs/results/damage-london.png

Each face is cut at its box plus a fifth, shown at --zoom (nearest-neighbour, so pixels stay visible).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from make_contact_sheet import padded_window, tile  # beside this script
from PIL import Image

from hifacegan.damage.removal import clean_photo
from hifacegan.degradations import degrade_with_mask, rng_for
from hifacegan.evaluation.pipeline_eval import fit_long_side
from hifacegan.pipeline import Renovator


def marked(photo: np.ndarray, renovator: Renovator, box) -> np.ndarray:
    """``photo`` with the pixels the pipeline would fill around ``box`` painted red."""
    copy = photo.copy()
    (found,) = clean_photo(copy, [box], renovator.damage_detector, "faces")
    out = photo.copy()
    x0, y0, x1, y1 = found.box
    out[y0:y1, x0:x1][found.mask] = (255, 0, 0)
    return out


def rows_for(path: Path, args, on: Renovator, off: Renovator) -> list[list[Image.Image]]:
    from hifacegan.data.files import read_rgb8

    photo, _ = read_rgb8(path)
    clean = None
    if args.long_side:
        photo = fit_long_side(photo, args.long_side)
    if args.synthetic:
        clean = photo
        photo, _, _ = degrade_with_mask(clean, args.synthetic, rng=rng_for(args.seed, path.stem))
    renovated, kept = on(photo, fidelity=args.fidelity), off(photo, fidelity=args.fidelity)
    faces = sorted(renovated.faces, key=lambda f: -(f.box[2] - f.box[0]))[: args.per_photo]
    rows = []
    for face in faces:
        cut = padded_window(face.box, photo.shape)
        height = round((cut[3] - cut[1]) * args.zoom)
        images = [photo, marked(photo, on, face.box), renovated.image, kept.image] + (
            [clean] if clean is not None else []
        )
        rows.append([tile(image, cut, height) for image in images])
        print(
            f"{path.name}: face {[round(v) for v in face.box]}, damage {face.path and face.path.get('damage')}"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("photos", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--synthetic", default=None, help="degrade each (clean) photo with this task first")
    parser.add_argument(
        "--long-side", type=int, default=None, help="scale each photo to this long side first"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fidelity", type=float, default=1.0)
    parser.add_argument("--zoom", type=float, default=2.0)
    parser.add_argument("--count", type=int, default=12, help="photos at most")
    parser.add_argument("--per-photo", type=int, default=2, help="faces per photo at most")
    args = parser.parse_args()
    on = Renovator("default", "cpu", damage="faces")
    off = Renovator("default", "cpu", damage="off")
    rows = [row for path in args.photos[: args.count] for row in rows_for(path, args, on, off)]
    gap = 6
    width = max(sum(t.width for t in row) + gap * (len(row) - 1) for row in rows)
    height = sum(row[0].height for row in rows) + gap * (len(rows) - 1)
    sheet = Image.new("RGB", (width, height), "white")
    top = 0
    for row in rows:
        left = 0
        for image in row:
            sheet.paste(image, (left, top))
            left += image.width + gap
        top += row[0].height + gap
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out)
    print(f"{args.out}: {len(rows)} faces, columns input | marked | damage filled | damage off | clean")


if __name__ == "__main__":
    main()
