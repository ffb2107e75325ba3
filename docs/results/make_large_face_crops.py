"""The README's large-face pictures: 100% crops of a 1024 px portrait, clean and degraded at 512 px.

    .venv/bin/python docs/results/make_large_face_crops.py docs/results/large-face-crops.png \
        --mid docs/results/mid-face-crops.png

The portrait is from the London face set (DeBruine and Jones, 2017; CC BY 4.0) in ../shared/data/faces-hires.
Row 1, the clean 1024 px portrait: input | the embedded weights the old way (every face shrunk to the network's
128 px and pasted back enlarged) | the pipeline now. Row 2, the same portrait at 512 px degraded with
``hifacegan degrade``'s full task (seed 0): degraded input | classical baseline | the pipeline now | clean. Every
crop is at 100% (one photo pixel, one picture pixel), made with the project's own pipeline at fidelity 1.

``--mid``: faces of 130-320 px, what the degradation gate did before and does now, at 200% (nearest neighbour, so
the pixels stay visible). Another London portrait scaled to a long side of 384 px, where its face is about 155 px
and goes through the band merge. Row 1, clean: input | the gate before (noise and NIQE alone: NIQE reads a sharp
face this size as blurred, so it took 95% of the network's smoothed face) | now (its own edges say it is sharp:
every pixel kept). Row 2, the same portrait saved as JPEG by ``hifacegan degrade``'s jpeg task (seed 0): input |
before (71% of the network's face) | with JPEG blocks counted, as tried (the network's face whole) | now (blocks
do not count for large faces; its NIQE and edges give it 35% of the network's face) | clean.
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
MID_KEY = "london-1024/smiling_094_08"
MID_LONG_SIDE = 384
MID_ZOOM = 2


def _crop(image: np.ndarray, box: tuple[int, int, int, int], zoom: int = 1) -> Image.Image:
    crop = Image.fromarray(image[box[1] : box[3], box[0] : box[2]])
    return crop.resize((crop.width * zoom, crop.height * zoom), Image.NEAREST) if zoom != 1 else crop


def _row(crops: list[Image.Image]) -> Image.Image:
    width = sum(c.width for c in crops) + GAP * (len(crops) - 1)
    row = Image.new("RGB", (width, crops[0].height), "white")
    x = 0
    for crop in crops:
        row.paste(crop, (x, 0))
        x += crop.width + GAP
    return row


def _stack(rows: list[Image.Image], out: Path) -> None:
    width = max(row.width for row in rows)
    height = sum(row.height for row in rows) + GAP * 3 * (len(rows) - 1)
    canvas = Image.new("RGB", (width, height), "white")
    y = 0
    for row in rows:
        canvas.paste(row, (0, y))
        y += row.height + GAP * 3
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out, optimize=True)
    print(f"wrote {out} ({canvas.width}x{canvas.height})")


def large_face_picture(renovator, out: Path) -> None:
    from hifacegan.data.files import read_rgb8
    from hifacegan.degradations import degrade, rng_for
    from hifacegan.evaluation import classical_restore
    from hifacegan.evaluation.pipeline_eval import fit_long_side
    from hifacegan.face import detail

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
    _stack([top, bottom], out)


def mid_face_picture(renovator, out: Path) -> None:
    from hifacegan.data.files import read_rgb8
    from hifacegan.degradations import degrade, rng_for
    from hifacegan.evaluation.pipeline_eval import fit_long_side
    from hifacegan.face import detail
    from hifacegan.pipeline import renovator as renovator_module

    portrait = PORTRAIT.parents[1] / f"{MID_KEY}.jpg"
    clean = fit_long_side(read_rgb8(portrait)[0], MID_LONG_SIDE)
    blocky = degrade(clean, "jpeg", rng=rng_for(0, MID_KEY))
    gate = renovator_module.degradation
    gates = {
        "before": lambda sigma, denoised, *_: detail.degradation(sigma, denoised),
        "blocks counted": lambda sigma, denoised, pixels, size: max(
            gate(sigma, denoised, pixels, size), float(np.clip((pixels.blocks - 1.25) / 0.2, 0.0, 1.0))
        ),
        "now": gate,
    }
    images: dict[tuple[str, str], np.ndarray] = {}
    box = None
    for label, variant in gates.items():
        renovator_module.degradation = variant
        try:
            for kind, photo in (("clean", clean), ("jpeg", blocky)):
                result = renovator(photo, fidelity=1.0)
                face = max((f for f in result.faces if f.renovated), key=lambda f: f.box[2] - f.box[0])
                print(f"{kind}, {label}: degradation {face.path['degradation']}")
                images[kind, label] = result.image
                box = box or face.box
        finally:
            renovator_module.degradation = gate
    x0, y0, x1, y1 = (int(v) for v in box)
    margin = (x1 - x0) // 8
    window = (max(0, x0 - margin), max(0, y0 - margin), x1 + margin, y1 + margin)
    top = _row(
        [
            _crop(image, window, MID_ZOOM)
            for image in (clean, images["clean", "before"], images["clean", "now"])
        ]
    )
    jpeg = [blocky, images["jpeg", "before"], images["jpeg", "blocks counted"], images["jpeg", "now"], clean]
    bottom = _row([_crop(image, window, MID_ZOOM) for image in jpeg])
    _stack([top, bottom], out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path, help="the large-face picture (PNG)")
    ap.add_argument("--mid", type=Path, help="also the mid-size face picture (PNG)")
    args = ap.parse_args()

    from hifacegan.pipeline import Renovator

    renovator = Renovator("default")
    large_face_picture(renovator, args.out)
    if args.mid:
        mid_face_picture(renovator, args.mid)


if __name__ == "__main__":
    main()
