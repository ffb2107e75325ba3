"""Compose the comparison picture of docs/results from `hifacegan eval --save-images` folders.

    .venv/bin/python docs/results/make_grid.py REPORT_DIR OUT.png --methods degraded-input hifacegan-lite-fidelity \
        hifacegan-lite-perceptual clean --count 6
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("report", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument(
        "--methods", nargs="+", required=True, help="folders under REPORT/images, one column each"
    )
    ap.add_argument("--count", type=int, default=6, help="rows (faces)")
    ap.add_argument("--scale", type=int, default=2, help="nearest-neighbour zoom, so pixels stay visible")
    args = ap.parse_args()
    folders = [args.report / "images" / m for m in args.methods]
    names = sorted(p.name for p in folders[0].glob("*.png"))[: args.count]
    first = Image.open(folders[0] / names[0])
    w, h = first.width * args.scale, first.height * args.scale
    label = 16
    grid = Image.new("RGB", (w * len(folders), label + h * len(names)), "white")
    draw = ImageDraw.Draw(grid)
    for col, (method, folder) in enumerate(zip(args.methods, folders, strict=True)):
        draw.text((col * w + 4, 2), method, fill="black")
        for row, name in enumerate(names):
            tile = Image.open(folder / name).convert("RGB").resize((w, h), Image.NEAREST)
            grid.paste(tile, (col * w, label + row * h))
    grid.save(args.out)
    print(f"wrote {args.out} ({len(names)} faces x {len(folders)} columns)")


if __name__ == "__main__":
    main()
