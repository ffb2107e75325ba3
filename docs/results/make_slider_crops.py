"""100% crops of one web-degraded large face at points of the fidelity slider: degraded | 1 | 0.5 | 0 | clean.

    .venv/bin/python docs/results/make_slider_crops.py ../shared/data/faces-hires/3dsk-1024/female_agata.jpg \
        docs/results/slider-256-rung.png

The photo is shrunk to long side 512 (a face of about 250 px, on the 256 px rung) and degraded with the web task
(seed 0); each column is the face's box at 100% through the default pipeline (grain removed, so that only the
slider differs). London and 3DSK portraits are CC BY (read their licences in ../shared/data/faces-hires), and
training faces of the 256 px rung: the picture shows what the slider does, not how well unseen faces are restored
(the FFHQ rows in docs/benchmarks.md say that). Measured on female_agata (3DSK): |fidelity 1 - 0| 0.34 levels.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from hifacegan.data.files import read_rgb8
from hifacegan.degradations import degrade, rng_for
from hifacegan.evaluation.pipeline_eval import fit_long_side
from hifacegan.pipeline import Renovator


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("photo", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--fidelity", type=float, nargs="+", default=[1.0, 0.5, 0.0])
    args = ap.parse_args()
    clean = fit_long_side(read_rgb8(args.photo)[0], 512)
    web = degrade(clean, "web", rng=rng_for(0, args.photo.stem))
    renovator = Renovator("default", "cpu", parsing="off", grain="remove", threads=1)
    results = [renovator(web, fidelity=f) for f in args.fidelity]
    face = max((f for f in results[0].faces if f.renovated), key=lambda f: f.box[2] - f.box[0])
    x0, y0, x1, y1 = (int(round(v)) for v in face.box)
    columns = [("degraded (web)", web)] + [
        (f"fidelity {f:g}", r.image) for f, r in zip(args.fidelity, results, strict=True)
    ]
    columns.append(("clean", clean))
    width, height = x1 - x0, y1 - y0
    sheet = Image.new("RGB", (width * len(columns), height + 18), "white")
    draw = ImageDraw.Draw(sheet)
    for k, (label, image) in enumerate(columns):
        sheet.paste(Image.fromarray(np.ascontiguousarray(image[y0:y1, x0:x1, :3])), (k * width, 18))
        draw.text((k * width + 4, 3), label, fill="black")
    sheet.save(args.out)
    ends = np.abs(results[0].image[y0:y1, x0:x1].astype(float) - results[-1].image[y0:y1, x0:x1]).mean()
    print(
        f"{args.out}: face {width}x{height} px on {face.path['weights']}; |fidelity 1 - 0| = {ends:.2f} levels"
    )


if __name__ == "__main__":
    main()
