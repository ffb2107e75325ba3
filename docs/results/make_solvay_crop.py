"""Compose the README's Solvay 1927 before/after picture from `make demo`'s output.

    make demo
    .venv/bin/python docs/results/make_solvay_crop.py out/solvay_conference_1927_renovated.png \
        docs/results/solvay-before-after.png

The crop (Einstein, Dirac, Compton and Richardson) is a fixed box of the example photo, zoomed 2x with
nearest-neighbour so that the pixels the network wrote stay visible. Give several renovations to set them side by
side after the original (docs/results/solvay-small-faces.png: small faces cut with context, then on the weights'
own template):

    .venv/bin/python docs/results/make_solvay_crop.py context.png out/solvay_conference_1927_renovated.png \
        docs/results/solvay-small-faces.png --scale 4
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

ORIGINAL = Path(__file__).resolve().parents[2] / "examples" / "solvay_conference_1927.png"
BOX = (560, 150, 820, 300)  # left, top, right, bottom in the example photo


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "renovated", type=Path, nargs="+", help="make demo's output (the whole photo); one or more"
    )
    ap.add_argument("out", type=Path)
    ap.add_argument("--scale", type=int, default=2)
    args = ap.parse_args()
    before = Image.open(ORIGINAL).convert("RGB")
    afters = [Image.open(path).convert("RGB") for path in args.renovated]
    for path, after in zip(args.renovated, afters, strict=True):
        if before.size != after.size:
            raise SystemExit(f"{path} is {after.size}, the example photo {before.size}: not its renovation")
    w, h = (BOX[2] - BOX[0]) * args.scale, (BOX[3] - BOX[1]) * args.scale
    gap = 12
    columns = [before, *afters]
    canvas = Image.new("RGB", (len(columns) * (w + gap) - gap, h), "white")
    for i, image in enumerate(columns):
        crop = image.crop(BOX).resize((w, h), Image.NEAREST)
        canvas.paste(crop, (i * (w + gap), 0))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    canvas.save(tmp, format="PNG", optimize=True)
    tmp.replace(args.out)
    print(f"wrote {args.out} ({canvas.width}x{canvas.height})")


if __name__ == "__main__":
    main()
