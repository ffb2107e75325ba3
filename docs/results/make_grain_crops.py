"""Grain kept and removed, at 200%: an old print's look (grey, slightly soft, film grain) on CC BY portraits.

Each row: the grainy input | renovated with ``--grain keep`` (the default) | with ``--grain remove``. The prints are
made from ``faces-hires/london-1024`` portraits (CC BY, committable with the attribution in the README): grey, shrunk
to ``--long-side``, blurred by ``--blur`` px, then film grain of ``--grain-level`` (the level
hifacegan.face.grain measures, 0-255) and ``--grain-width`` px is drawn over them (hifacegan.face.grain.synthesize,
seeded per file). The real grainy prints the issue names (``historic_FatMenClub``, ``old-photos``) are research-only:
``docs/results/probe_grain.py`` measures them and writes crops to look at, never to commit.

    .venv/bin/python docs/results/make_grain_crops.py ../shared/data/faces-hires/london-1024/neutral_00[1-3]_03.jpg \
        --out docs/results/grain-london.png
"""

from __future__ import annotations

import argparse
import zlib
from pathlib import Path

import cv2
import numpy as np
from make_contact_sheet import padded_window, tile  # beside this script
from PIL import Image

from hifacegan.devices import configure_cpu_threads
from hifacegan.evaluation._files import read_rgb
from hifacegan.evaluation.pipeline_eval import fit_long_side
from hifacegan.face.grain import Grain, channel_levels, flat_pixels, synthesize
from hifacegan.pipeline import Renovator


def old_print(path: Path, args: argparse.Namespace) -> np.ndarray:
    """A grey, soft, grainy print of the portrait at ``path`` (uint8 RGB)."""
    grey = cv2.cvtColor(fit_long_side(read_rgb(path), args.long_side), cv2.COLOR_RGB2GRAY)
    soft = cv2.GaussianBlur(grey.astype(np.float32) / 255.0, (0, 0), args.blur)
    grain = Grain(np.full(3, args.grain_level), args.grain_width, np.ones((3, 3)))
    noise = synthesize(grain, soft.shape, seed=zlib.crc32(path.name.encode()))[..., 0]
    return np.repeat(np.clip(np.rint((soft + noise) * 255.0), 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def level(image: np.ndarray, box: tuple[int, int, int, int]) -> float:
    x0, y0, x1, y1 = box
    face = image[y0:y1, x0:x1].astype(np.float32) / 255.0
    return float(np.mean(channel_levels(face, flat_pixels(face))))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("portraits", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--long-side", type=int, default=384)
    parser.add_argument("--blur", type=float, default=2.2)
    parser.add_argument("--grain-level", type=float, default=3.0)
    parser.add_argument("--grain-width", type=float, default=0.8)
    parser.add_argument("--zoom", type=float, default=2.0)
    args = parser.parse_args()
    configure_cpu_threads(1)
    keep, remove = Renovator("default", "cpu", grain="keep"), Renovator("default", "cpu", grain="remove")
    rows = []
    for path in args.portraits:
        photo = old_print(path, args)
        kept, smooth = keep(photo, faces="largest"), remove(photo, faces="largest")
        face = next(f for f in kept.faces if f.renovated)
        box = tuple(int(round(v)) for v in face.box)
        window = padded_window(face.box, photo.shape)
        height = round((window[3] - window[1]) * args.zoom)
        rows.append([tile(img, window, height) for img in (photo, kept.image, smooth.image)])
        print(
            f"{path.name}: degradation {face.path['degradation']:.2f}; grain level in the face box: input "
            f"{level(photo, box):.2f}, keep {level(kept.image, box):.2f}, remove {level(smooth.image, box):.2f}"
        )
    width = max(sum(t.width for t in row) + 8 * (len(row) - 1) for row in rows)
    sheet = Image.new("RGB", (width, sum(row[0].height for row in rows) + 8 * (len(rows) - 1)), "white")
    y = 0
    for row in rows:
        x = 0
        for t in row:
            sheet.paste(t, (x, y))
            x += t.width + 8
        y += row[0].height + 8
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, optimize=True)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
