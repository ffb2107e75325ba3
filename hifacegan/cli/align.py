"""``hifacegan align``: cut training faces out of portraits, aligned the way the pipeline will align them.

Weights learn the framing of their training faces, and the pipeline aligns every face of a photo to the template
in the weights' model card. Training a network of another size on new portraits (the 1024 px faces-hires set, a
studio's own archive) therefore needs the portraits cut to *that* template first: this command detects the
largest face of each image with the project's detector and writes its aligned crop.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hifacegan.cli._args import at_least

_DESCRIPTION = """\
Detect the largest face of every image in IN_DIR and write it to OUT_DIR aligned to a model card's 5-point
template, scaled to --size: the training faces for weights of that size that the pipeline will align photos to
in the same way. Each output keeps its input's relative path with a .png extension; images without a face are
listed and skipped. The crop is area-resampled from the photo, so it keeps all the detail the photo has at that size.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "align",
        help="cut aligned training faces out of portraits",
        description=_DESCRIPTION,
        epilog="example: hifacegan align --size 256 --template hifacegan-lite-fidelity portraits/ faces-256/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "in_dir", metavar="IN_DIR", type=Path, help="folder of portraits (searched recursively)"
    )
    parser.add_argument("out_dir", metavar="OUT_DIR", type=Path, help="folder for the aligned faces")
    parser.add_argument("--size", type=at_least(64, "size"), required=True, help="side of the aligned faces")
    parser.add_argument(
        "--template",
        default="hifacegan-lite-fidelity",
        help="weights (name or path) whose card's template the faces follow, scaled to --size "
        "(default: hifacegan-lite-fidelity)",
    )
    parser.add_argument("--limit", type=at_least(1, "limit"), help="only the first N images (sorted by path)")
    return parser


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from hifacegan.data.files import ImageReadError, list_images, read_rgb8, write_png_atomic
    from hifacegan.face.alignment import align_face
    from hifacegan.face.detection import FaceDetector
    from hifacegan.weights import WeightsError, card_of

    try:
        card = card_of(args.template)
    except WeightsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    template = np.asarray(card.template, dtype=np.float64) * (args.size / float(card.size))
    files = list_images(args.in_dir, what="portrait folder", exclude=args.out_dir)
    if args.limit:
        files = files[: args.limit]
    detector = FaceDetector("auto")
    written, missing = 0, []
    for number, path in enumerate(files, 1):
        relative = path.relative_to(args.in_dir.expanduser())
        try:
            image, _ = read_rgb8(path)
        except ImageReadError as exc:
            missing.append(f"{relative}: {exc.reason}")
            continue
        faces = detector(image)
        if not faces:
            missing.append(f"{relative}: no face found")
            continue
        largest = max(faces, key=lambda face: face.size)
        crop, _ = align_face(image, largest.landmarks_array(), template, args.size)
        write_png_atomic(args.out_dir / relative.with_suffix(".png"), crop)
        written += 1
        print(f"\r{number}/{len(files)} aligned", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    for line in missing:
        print(f"skipped {line}", file=sys.stderr)
    print(f"{written} faces written to {args.out_dir} at {args.size} px ({len(missing)} skipped)")
    return 0 if written else 1
