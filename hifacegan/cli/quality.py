"""``hifacegan quality``: train the face-quality network, or show how degraded it finds each face of photos."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hifacegan.cli._args import at_least

_EPILOG = """\
examples:
  # train on clean portraits (every fifth held out and scored as it goes); ffhq-1024 is the evaluation split
  hifacegan quality train --data ../shared/data/faces-hires/london-1024 \\
      --data ../shared/data/faces-hires/3dsk-1024 --out ~/runs/face-quality --max-minutes 40 --threads 1
  hifacegan quality train --resume --out ~/runs/face-quality --max-minutes 20    # continue where it stopped
  # each face of some photos: its size, the network's chance that it is degraded, and the share that asks for
  hifacegan quality score --weights ~/runs/face-quality photo.jpg other.png

Training shows each portrait shrunk so that its face is 24-320 px; half the faces are made to look like web,
phone or scanned photos (the web task, the paper's full task, JPEG, resampling, blur), half are left clean or
given a sharp photo's texture (a fine JPEG, film grain, sensor noise). The run folder gets checkpoints/last.pt,
scalars.csv (held-out AUC as training goes) and face-quality.safetensors.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "quality",
        help="train the face-quality network, or score the faces of photos",
        description="The face-quality network: the chance that a face was blurred, resampled or compressed.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    train = sub.add_parser("train", help="train or continue a run")
    train.add_argument(
        "--data", action="append", default=[], help="folder of clean portraits (repeat for more)"
    )
    train.add_argument("--out", required=True, type=Path, help="run folder (checkpoints, scalars, weights)")
    train.add_argument("--resume", action="store_true", help="continue the run in --out")
    train.add_argument(
        "--config", default="face-quality-16", help="network config (default: face-quality-16)"
    )
    train.add_argument(
        "--steps",
        type=at_least(1),
        default=None,
        help="schedule length in steps (default 2000; with --resume, a longer schedule to continue to)",
    )
    train.add_argument("--batch-size", type=at_least(2), default=32, help="faces per step (default 32)")
    train.add_argument("--max-minutes", type=float, default=None, help="stop after this many minutes")
    train.add_argument("--threads", type=at_least(1), default=None, help="torch threads (default: torch's)")
    train.add_argument("--seed", type=at_least(0), default=0, help="seed of the data and initialisation")
    score = sub.add_parser("score", help="score every face of some photos")
    score.add_argument("images", type=Path, nargs="+", help="photos")
    score.add_argument(
        "--weights", required=True, help="a trained network: its face-quality.safetensors or its run folder"
    )
    return parser


def run(args: argparse.Namespace) -> int:
    try:
        return _train(args) if args.action == "train" else _score(args)
    except (OSError, ValueError) as error:
        print(f"hifacegan quality {args.action}: error: {error}", file=sys.stderr)
        return 2


def _train(args: argparse.Namespace) -> int:
    import torch

    from hifacegan.quality.train import QualityTraining, train_quality

    if args.threads:
        torch.set_num_threads(args.threads)
    settings = None
    if not args.resume:
        if not args.data:
            raise ValueError("a new run needs --data folders of clean portraits (or --resume)")
        settings = QualityTraining(
            sources=[str(Path(d).expanduser()) for d in args.data],
            config=args.config,
            steps=args.steps or 2000,
            batch_size=args.batch_size,
            seed=args.seed,
        )
    sources = [str(Path(d).expanduser()) for d in args.data] if args.resume else None
    scores = train_quality(
        args.out, settings, args.resume, args.max_minutes, steps=args.steps, sources=sources
    )
    print(f"held-out AUC {scores['auc']:.3f}, accuracy {scores['accuracy']:.3f}; weights in {args.out}")
    return 0


def _score(args: argparse.Namespace) -> int:
    from hifacegan.data.files import read_rgb8
    from hifacegan.face.detection import FaceDetector
    from hifacegan.quality import FaceQuality, learned_degradation

    quality, detector = FaceQuality(args.weights), FaceDetector()
    for path in args.images:
        image, _ = read_rgb8(path)
        faces = detector(image)
        if not faces:
            print(f"{path.name}: no face found")
        for number, face in enumerate(faces, 1):
            x0, y0, x1, y1 = face.pixel_box(image.shape)
            chance = quality(image[y0:y1, x0:x1].astype("float32") / 255.0)
            print(f"{path.name}: face {number} of {len(faces)}, {max(x1 - x0, y1 - y0)} px: chance degraded "
                  f"{chance:.2f}, share {learned_degradation(chance):.2f}")  # fmt: skip
    return 0
