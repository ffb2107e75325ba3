"""A contact sheet of real faces: the largest face of each photo, before and renovated by one or more weights.

    .venv/bin/python docs/results/make_contact_sheet.py ../shared/data/photos OUT.png \
        --weights hifacegan-lite-perceptual runs/perc/hifacegan-lite-perceptual.safetensors --fidelity 0 --count 12

Each row holds two faces; each face is shown as input | weights 1 | weights 2 ..., cut at the face box plus a
fifth of its size and scaled to --height px (nearest-neighbour when enlarging, so the network's pixels stay
visible). The photos are research-only: the sheet is for looking, the repository keeps only what their licences
allow.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from hifacegan.imageio import read_photo
from hifacegan.pipeline import Renovator

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff"}


def padded_window(box: tuple[float, ...], shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    pad = 0.2 * max(x1 - x0, y1 - y0)
    return (
        max(0, int(x0 - pad)),
        max(0, int(y0 - pad)),
        min(shape[1], int(x1 + pad)),
        min(shape[0], int(y1 + pad)),
    )


def tile(pixels: np.ndarray, window: tuple[int, int, int, int], height: int) -> Image.Image:
    x0, y0, x1, y1 = window
    crop = Image.fromarray(np.ascontiguousarray(pixels[y0:y1, x0:x1, :3]))
    width = max(1, round(crop.width * height / crop.height))
    resample = Image.NEAREST if height > crop.height else Image.LANCZOS
    return crop.resize((width, height), resample)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("photos", type=Path, help="folder of photos (sorted by name)")
    ap.add_argument("out", type=Path)
    ap.add_argument(
        "--weights", nargs="+", required=True, help="weights names or .safetensors paths, one column each"
    )
    ap.add_argument("--fidelity", type=float, default=0.0)
    ap.add_argument("--count", type=int, default=12, help="faces (the largest of each photo)")
    ap.add_argument("--height", type=int, default=160, help="height of each face in the sheet, px")
    ap.add_argument("--min-face", type=int, default=48, help="skip photos whose largest face is smaller, px")
    args = ap.parse_args()

    renovators = [Renovator(spec, device="cpu", threads=1) for spec in args.weights]
    rows: list[list[Image.Image]] = []
    names: list[str] = []
    for path in sorted(p for p in args.photos.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES):
        if len(rows) >= args.count:
            break
        pixels = read_photo(path).pixels
        if pixels.dtype != np.uint8 or pixels.ndim != 3:
            continue
        faces = renovators[0].detector(pixels)
        if not faces:
            continue
        largest = max(faces, key=lambda f: f.size)
        if largest.size < args.min_face:
            continue
        window = padded_window(largest.box, pixels.shape)
        tiles = [tile(pixels, window, args.height)]
        for renovator in renovators:
            result = renovator(pixels, fidelity=args.fidelity, faces="largest")
            tiles.append(tile(result.image, window, args.height))
        rows.append(tiles)
        names.append(path.stem)
        print(f"{path.name}: face {largest.size:.0f} px")
    if not rows:
        raise SystemExit(f"no face of {args.min_face} px or more in {args.photos}")

    gap, label = 6, 14
    face_widths = [sum(t.width for t in tiles) + gap * (len(tiles) - 1) for tiles in rows]
    cell = max(face_widths)
    columns = 2
    sheet_rows = (len(rows) + columns - 1) // columns
    sheet = Image.new(
        "RGB", (columns * cell + (columns + 1) * 3 * gap, sheet_rows * (args.height + label + gap)), "white"
    )
    draw = ImageDraw.Draw(sheet)
    for i, (tiles, name) in enumerate(zip(rows, names, strict=True)):
        x = 3 * gap + (i % columns) * (cell + 3 * gap)
        y = (i // columns) * (args.height + label + gap)
        draw.text((x, y), f"{name}: input | " + " | ".join(Path(w).stem for w in args.weights), fill="black")
        for face_tile in tiles:
            sheet.paste(face_tile, (x, y + label))
            x += face_tile.width + gap
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out)
    print(f"wrote {args.out} ({sheet.width}x{sheet.height}, {len(rows)} faces)")


if __name__ == "__main__":
    main()
