"""The README's large-face pictures: 100% crops of a 1024 px portrait, clean and degraded at 512 px.

    .venv/bin/python docs/results/make_large_face_crops.py docs/results/large-face-crops.png

The portrait is from the London face set (DeBruine and Jones, 2017; CC BY 4.0) in ../shared/data/faces-hires.
Row 1, the clean 1024 px portrait: input | the embedded weights the old way (every face shrunk to the network's
128 px and pasted back enlarged) | the pipeline now. Row 2, the same portrait at 512 px degraded with
``hifacegan degrade``'s full task (seed 0): degraded input | classical baseline | the pipeline now | clean. Every
crop is at 100% (one photo pixel, one picture pixel), made with the project's own pipeline at fidelity 1.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
PORTRAIT = REPO.parent / "shared" / "data" / "faces-hires" / "london-1024" / "neutral_021_03.jpg"
KEY = "london-1024/neutral_021_03"  # the name hifacegan degrade seeds this file's degradation with
CLEAN_BOX = (330, 300, 690, 560)  # left, top, right, bottom at 1024 px: eyes and nose
GAP = 8


def _crop(image: np.ndarray, box: tuple[int, int, int, int]) -> Image.Image:
    return Image.fromarray(image[box[1] : box[3], box[0] : box[2]])


def _row(crops: list[Image.Image]) -> Image.Image:
    width = sum(c.width for c in crops) + GAP * (len(crops) - 1)
    row = Image.new("RGB", (width, crops[0].height), "white")
    x = 0
    for crop in crops:
        row.paste(crop, (x, 0))
        x += crop.width + GAP
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    args = ap.parse_args()

    from hifacegan.data.files import read_rgb8
    from hifacegan.degradations import degrade, rng_for
    from hifacegan.evaluation import classical_restore
    from hifacegan.evaluation.pipeline_eval import fit_long_side
    from hifacegan.face import detail
    from hifacegan.pipeline import Renovator

    renovator = Renovator("default")
    clean = read_rgb8(PORTRAIT)[0]
    now = renovator(clean, fidelity=1.0).image
    merge_from = detail.DETAIL_MERGE_FROM
    detail.DETAIL_MERGE_FROM = float("inf")  # the old way: every face at the network's size
    try:
        old = renovator(clean, fidelity=1.0).image
    finally:
        detail.DETAIL_MERGE_FROM = merge_from
    top = _row([_crop(image, CLEAN_BOX) for image in (clean, old, now)])

    small = fit_long_side(clean, 512)
    degraded = degrade(small, "full", rng=rng_for(0, KEY))
    restored = renovator(degraded, fidelity=1.0).image
    box = tuple(v // 2 - 40 if i < 2 else v // 2 + 40 for i, v in enumerate(CLEAN_BOX))
    bottom = _row([_crop(image, box) for image in (degraded, classical_restore(degraded), restored, small)])

    width = max(top.width, bottom.width)
    canvas = Image.new("RGB", (width, top.height + GAP * 3 + bottom.height), "white")
    canvas.paste(top, (0, 0))
    canvas.paste(bottom, (0, top.height + GAP * 3))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(args.out, optimize=True)
    print(f"wrote {args.out} ({canvas.width}x{canvas.height})")


if __name__ == "__main__":
    main()
