"""``hifacegan damage``: train the damage detector, or show where it finds damage on a photo."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hifacegan.cli._args import at_least

_EPILOG = """\
examples:
  # train on clean portraits (backgrounds, hair and clothes included), scored on a held-out set as it goes
  hifacegan damage train --data ../shared/data/faces-train --data ../shared/data/faces-hires/london-1024 \\
      --held-out ../shared/data/faces-val --out ~/runs/damage --max-minutes 60 --threads 1
  hifacegan damage train --resume --out ~/runs/damage --max-minutes 30     # continue where it stopped
  # the mask the detector finds on a photo (white: damage), and the share of the photo it covers
  hifacegan damage detect old_print.jpg -o old_print-damage.png

Training draws crops of the clean images at random scales, gives some an ordinary degradation (web, JPEG,
film grain, the paper's full task: all of them not damage) and two in three synthetic damage with its mask.
The run folder gets checkpoints/last.pt, scalars.csv (held-out F1 as training goes) and damage-unet.safetensors.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "damage",
        help="train the scratch and dust detector, or find damage on a photo",
        description="The damage detector: a small U-Net that marks scratches, cracks, dust and fibres.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    train = sub.add_parser("train", help="train or continue a detector run")
    train.add_argument("--data", action="append", default=[], help="folder of clean images (repeat for more)")
    train.add_argument("--held-out", action="append", default=[], help="folder of clean images to score on")
    train.add_argument("--out", required=True, type=Path, help="run folder (checkpoints, scalars, weights)")
    train.add_argument("--resume", action="store_true", help="continue the run in --out")
    train.add_argument("--config", default="damage-unet-16", help="network config (default: damage-unet-16)")
    train.add_argument(
        "--steps", type=at_least(1), default=6000, help="schedule length in steps (default 6000)"
    )
    train.add_argument("--batch-size", type=at_least(1), default=16, help="crops per step (default 16)")
    train.add_argument("--max-minutes", type=float, default=None, help="stop after this many minutes")
    train.add_argument("--threads", type=at_least(1), default=None, help="torch threads (default: torch's)")
    train.add_argument("--seed", type=at_least(0), default=0, help="seed of the data and initialisation")
    detect = sub.add_parser("detect", help="write the damage mask of a photo")
    detect.add_argument("image", type=Path, help="a photo")
    detect.add_argument("-o", "--output", type=Path, required=True, help="mask PNG to write (255 = damage)")
    detect.add_argument(
        "--weights", default="damage-unet", help="detector weights (default: the embedded one)"
    )
    return parser


def run(args: argparse.Namespace) -> int:
    try:
        return _train(args) if args.action == "train" else _detect(args)
    except (OSError, ValueError) as error:
        print(f"hifacegan damage {args.action}: error: {error}", file=sys.stderr)
        return 2


def _train(args: argparse.Namespace) -> int:
    import torch

    from hifacegan.damage.train import DetectorTraining, train_detector

    if args.threads:
        torch.set_num_threads(args.threads)
    settings = None
    if not args.resume:
        if not args.data or not args.held_out:
            raise ValueError("a new run needs --data and --held-out folders (or --resume)")
        settings = DetectorTraining(
            sources=[str(Path(d).expanduser()) for d in args.data],
            held_out=[str(Path(d).expanduser()) for d in args.held_out],
            config=args.config,
            steps=args.steps,
            batch_size=args.batch_size,
            seed=args.seed,
        )
    scores = train_detector(args.out, settings, resume=args.resume, max_minutes=args.max_minutes)
    print(f"held-out F1 {scores['f1']:.3f} (precision {scores['precision']:.3f}, recall {scores['recall']:.3f}); "
          f"weights in {args.out}")  # fmt: skip
    return 0


def _detect(args: argparse.Namespace) -> int:
    import numpy as np

    from hifacegan.damage import DamageDetector
    from hifacegan.data.files import read_rgb8, write_png_atomic

    image, _ = read_rgb8(args.image)
    mask = DamageDetector(args.weights)(image)
    write_png_atomic(args.output, np.where(mask, 255, 0).astype(np.uint8))
    print(f"damage on {mask.mean():.2%} of {args.image.name}; mask written to {args.output}")
    return 0
