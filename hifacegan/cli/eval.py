"""``hifacegan eval``: score the degraded input, a classical baseline and weights files with the paper's metrics."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from hifacegan.cli._args import PRECISION_CHOICES, PRECISION_HELP, at_least, task_name

_DESCRIPTION = """\
Reference mode (default): every image in --data (aligned face crops, searched recursively, sorted) is
centre-cropped and resized to --size, degraded with --task (seeded per file from --seed and the file's name,
the same bytes `hifacegan degrade --size N` writes), and restored by: the degraded input itself, a classical
baseline (non-local means + bicubic smoothing) and each --weights. Each is compared with the clean crop:
PSNR, SSIM, MS-SSIM, FED, LLE (dlib), FID, LPIPS (AlexNet, when its weights are present), NIQE.

No-reference mode (--no-reference): photos without ground truth get NIQE and dlib face counts (and, with
--weights, so do their renovations by the whole-photo pipeline).

Writes REPORT_DIR/metrics.json (one row per method; null where a metric is unavailable, the reason in the
report), REPORT_DIR/report.md (the paper's Table 1 layout) and REPORT_DIR/per_image.json. Images where dlib
finds no face are counted in faces_missed, never dropped silently.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "eval",
        help="score weights with the paper's eight metrics",
        description=_DESCRIPTION,
        epilog="examples:\n"
        "  hifacegan eval --data faces-eval/celeba-test-128 --task full --size 128 --seed 0 --limit 100 "
        "--out reports/celeba\n"
        "  hifacegan eval --data faces-eval/ffhq-1024 --task full --size 512 --weights default --out reports/ffhq\n"
        "  hifacegan eval --no-reference --data photos --out reports/photos\n"
        "  hifacegan eval --pipeline --data faces-hires --task none --size 1024 --weights default --out reports/hires",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_input_options(parser)
    _add_run_options(parser)
    return parser


def _add_input_options(parser: argparse.ArgumentParser) -> None:
    """What is scored: the data, the reports' folder, the degradation and the methods."""
    parser.add_argument(
        "--data", type=Path, required=True, metavar="DIR", help="folder of clean face crops or photos"
    )
    parser.add_argument(
        "--out", type=Path, required=True, metavar="REPORT_DIR", help="folder for the reports (created)"
    )
    parser.add_argument(
        "--task",
        type=_task_or_none,
        help="degradation task (e.g. full, sr4x, denoise); with --pipeline also 'none' (clean inputs)",
    )
    parser.add_argument(
        "--size",
        type=at_least(1),
        default=512,
        metavar="N",
        help="crop size in px (default 512); with --pipeline the photos' long side (256, 512 or 1024)",
    )
    parser.add_argument(
        "--pipeline",
        action="store_true",
        help="score what users get: whole photos through detection, alignment, renovation and paste-back, "
        "measured in the box of the largest face (adds a 'detail kept' column)",
    )
    parser.add_argument(
        "--damage",
        choices=("faces", "photo", "off"),
        default="off",
        help="with --pipeline: find and fill scratches and dust around each face (faces), over the photo (photo), "
        "or not (off, what users get by default)",
    )
    parser.add_argument(
        "--grain",
        choices=("keep", "remove"),
        default="keep",
        help="with --pipeline: lay the photo's grain back over renovated faces (keep, what users get by default) "
        "or leave them smooth (remove)",
    )
    parser.add_argument(
        "--seed", type=at_least(0), default=0, metavar="S", help="degradation seed (default 0)"
    )
    parser.add_argument(
        "--limit", type=at_least(1), metavar="K", help="only the first K images (sorted by path)"
    )
    parser.add_argument(
        "--weights",
        nargs="+",
        action="extend",
        default=[],
        metavar="W",
        help="weights to score: names, paths or 'default' (any number; the option may be repeated)",
    )
    parser.add_argument(
        "--no-reference", action="store_true", help="photos without ground truth: NIQE + face counts"
    )


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    """How it runs: saved images, worker processes, batches, device and precision, LPIPS weights, reuse."""
    from hifacegan.evaluation import default_workers

    parser.add_argument(
        "--save-images", action="store_true", help="also save every image as PNG under REPORT_DIR/images"
    )
    parser.add_argument(
        "--workers",
        type=at_least(0),
        default=default_workers(),
        help=f"processes for dlib and NIQE, beside the main one (0: all in the main process; default {default_workers()})",
    )
    parser.add_argument(
        "--batch-size", type=at_least(1), default=8, help="images per network batch (default 8)"
    )
    parser.add_argument(
        "--device", default="auto", help="torch device for networks and metrics: auto, cpu, cuda, cuda:1"
    )
    parser.add_argument("--precision", choices=PRECISION_CHOICES, default="auto", help=PRECISION_HELP)
    parser.add_argument(
        "--alexnet-weights",
        metavar="PATH",
        help="torchvision's alexnet-owt-7be5be79.pth for LPIPS (default: torchvision's cache or $HIFACEGAN_ALEXNET)",
    )
    parser.add_argument(
        "--reuse",
        type=Path,
        metavar="REPORT_DIR",
        help="keep the rows of an earlier run on the same files, task, size and seed (its --out folder; the "
        "input pixels are checked) and score only --weights, which replace rows of the same name",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _task_or_none(value: str) -> str:
    return value if value == "none" else task_name(value)


def _run_pipeline(args: argparse.Namespace) -> int:
    from hifacegan.devices import configure_cpu_threads
    from hifacegan.evaluation.pipeline_eval import PipelineEvalConfig, evaluate_pipeline

    configure_cpu_threads()  # this command owns its process: all cores but one, on every device

    if args.task is None:
        print("hifacegan eval: --pipeline needs --task (e.g. --task full, or --task none)", file=sys.stderr)
        return 2
    if args.no_reference or args.reuse:
        print("hifacegan eval: --pipeline takes neither --no-reference nor --reuse", file=sys.stderr)
        return 2
    config = PipelineEvalConfig(
        data=args.data,
        out=args.out,
        task=args.task,
        size=args.size,
        seed=args.seed,
        limit=args.limit,
        weights=tuple(args.weights),
        device=args.device,
        precision=args.precision,
        batch_size=args.batch_size,
        grain=args.grain,
        damage=args.damage,
        progress=not args.quiet,
    )
    return _evaluate_and_show(lambda: evaluate_pipeline(config), args.out)


def _evaluate_and_show(evaluation: Callable[[], list[dict]], out: Path) -> int:
    """Run one evaluation, print its Markdown report, or say in one line why it cannot run."""
    try:
        rows = evaluation()
    except (FileNotFoundError, NotADirectoryError, ValueError) as error:
        print(f"hifacegan eval: {error}", file=sys.stderr)
        return 2
    print((out / "report.md").read_text(encoding="utf-8"))
    print(f"wrote {out / 'metrics.json'} ({len(rows)} rows) and {out / 'report.md'}")
    return 0


def run(args: argparse.Namespace) -> int:
    from hifacegan.evaluation import EvalConfig, evaluate, evaluate_no_reference

    if args.pipeline:
        return _run_pipeline(args)
    if args.task == "none":
        print(
            "hifacegan eval: --task none is for --pipeline (clean photos through the pipeline)",
            file=sys.stderr,
        )
        return 2

    if not args.no_reference and args.task is None:
        print(
            "hifacegan eval: --task is required (e.g. --task full), or use --no-reference for photos",
            file=sys.stderr,
        )
        return 2
    if args.no_reference and args.reuse:
        print(
            "hifacegan eval: --reuse takes reference-mode rows; drop --no-reference",
            file=sys.stderr,
        )
        return 2
    config = EvalConfig(
        data=args.data,
        out=args.out,
        task=args.task,
        size=args.size,
        seed=args.seed,
        limit=args.limit,
        weights=list(args.weights),
        save_images=args.save_images,
        workers=args.workers,
        batch_size=args.batch_size,
        device=args.device,
        precision=args.precision,
        alexnet_weights=args.alexnet_weights,
        progress=not args.quiet,
        reuse=args.reuse,
    )
    return _evaluate_and_show(
        lambda: evaluate_no_reference(config) if args.no_reference else evaluate(config), args.out
    )
