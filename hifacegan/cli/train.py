"""``hifacegan train``: train a generator on a folder of clean faces (one CPU, one GPU, or many with torchrun)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EPILOG = """\
examples:
  # the paper's recipe (LSGAN + feature matching + perceptual) on 512 px faces
  hifacegan train --config hifacegan-512 --data faces/ --out runs/paper
  # the CPU-sized fidelity (L1) model, 90 minutes, then the perceptual model fine-tuned from it
  hifacegan train --config hifacegan-lite-fidelity --data faces/ --out runs/fid --max-minutes 90
  hifacegan train --config hifacegan-lite-perceptual --data faces/ --out runs/perc \\
      --init-from runs/fid/hifacegan-lite-fidelity.safetensors
  # continue a stopped run (same --out); extend its budget
  hifacegan train --resume --data faces/ --out runs/fid --max-minutes 60
  # 8 GPUs
  torchrun --nproc_per_node 8 -m hifacegan train --config hifacegan-512 --data faces/ --out runs/paper

The run directory gets config.yaml (the resolved settings), checkpoints/last.pt, scalars.csv, samples/*.png
(degraded | output | clean), summary.json and NAME.safetensors (the weights, with their model card).
SIGTERM or Ctrl-C stops after the current step, saving a checkpoint and the weights.
"""

# (flag, config key, type, help) for the plain value overrides.
_VALUE_OPTIONS: list[tuple[str, str, type, str]] = [
    ("--name", "name", str, "name of the exported weights (default: the config's)"),
    (
        "--task",
        "task",
        str,
        "degradation task for the inputs (default: full, the paper's face renovation), or a weighted mix drawn "
        "per sample, e.g. full:1,web:1",
    ),
    ("--size", "size", int, "training image side in pixels (default: the generator config's size)"),
    ("--limit", "limit", int, "use only the first N images of the data folder"),
    ("--batch-size", "batch_size", int, "images per step and process"),
    ("--lr-g", "lr_g", float, "generator learning rate (paper: 1e-4)"),
    ("--lr-d", "lr_d", float, "discriminator learning rate (paper: 4e-4)"),
    (
        "--steps",
        "steps",
        int,
        "length of the learning-rate schedule: constant, then linear decay to 0, where training stops "
        "(default: the config's; none: constant)",
    ),
    (
        "--max-steps",
        "max_steps",
        int,
        "stop after this many steps in total (counted across --resume; default: the end of --steps)",
    ),
    ("--max-minutes", "max_minutes", float, "stop after this many minutes of this invocation"),
    ("--l1-weight", "lambda_l1", float, "weight of the L1 term of --fidelity (default 100)"),
    (
        "--perceptual-weight",
        "lambda_perceptual",
        float,
        "weight of the perceptual loss (paper: 10; 0 disables)",
    ),
    (
        "--discriminator",
        "discriminator",
        str,
        "multiscale (the paper's), multiscale-lite (half width, for CPUs) or projected-mobilenet (heads on frozen "
        "MobileNetV2 features beside multiscale-lite: texture in fewer samples)",
    ),
    (
        "--perceptual",
        "perceptual",
        str,
        "auto (VGG19 if its weights are present, else MobileNetV2), vgg19, mobilenet_v2",
    ),
    ("--vgg19-path", "vgg19_path", str, "VGG19 weights file (torchvision's vgg19-dcbb9e9d.pth)"),
    (
        "--init-from",
        "init_from",
        str,
        "start the generator from weights (.safetensors, name) or a checkpoint",
    ),
    ("--checkpoint-every", "checkpoint_every", int, "checkpoint every N steps"),
    ("--checkpoint-minutes", "checkpoint_minutes", float, "also checkpoint every M minutes"),
    ("--log-every", "log_every", int, "log scalars every N steps"),
    ("--image-every", "image_every", int, "save a degraded | output | clean grid every N steps"),
    ("--workers", "workers", int, "data loading processes per training process (default 1)"),
    ("--threads", "threads", int, "torch threads on CPU (default: torch's choice)"),
    ("--seed", "seed", int, "seed of initialisation, data order and degradations"),
    ("--device", "device", str, "auto, cpu, cuda or cuda:N"),
]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "train",
        help="train a generator (one CPU, one GPU, or many with torchrun)",
        description="Train a HiFaceGAN generator on clean aligned faces, degraded on the fly. Settings come "
        "from --config, then the options below, then --set KEY=VALUE.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", help="a shipped recipe name, a generator config name, or a YAML file")
    parser.add_argument("--data", required=True, help="folder of clean aligned face images")
    parser.add_argument("--out", required=True, help="run directory (checkpoints, logs, images, weights)")
    parser.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its last checkpoint"
    )
    parser.add_argument(
        "--fidelity",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="add the L1 term of the paper's fidelity variant (weight: --l1-weight)",
    )
    parser.add_argument(
        "--gan",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the adversarial terms (LSGAN + feature matching); --no-gan trains with L1/perceptual only",
    )
    parser.add_argument("--fp16", action="store_true", default=None, help="export the weights in float16")
    for flag, key, kind, text in _VALUE_OPTIONS:
        parser.add_argument(flag, dest=key, type=kind, default=None, help=text)
    parser.add_argument(
        "--set",
        dest="assignments",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other setting, value in YAML (e.g. --set 'generator_overrides={ngf: 8}')",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bar (logs still go to scalars.csv)"
    )
    return parser


def resolve_from_args(args: argparse.Namespace):
    """The run's TrainConfig: base (recipe, or the run's saved config on --resume), options, then --set."""
    from hifacegan.train.config import (
        ConfigError,
        load_config_source,
        parse_assignment,
        read_yaml,
        resolve_config,
    )
    from hifacegan.train.loop import CONFIG_FILE

    if args.resume:
        saved = Path(args.out).expanduser() / CONFIG_FILE
        if not saved.is_file():
            raise ConfigError(f"--resume: {saved} does not exist; is {args.out} a run directory?")
        base, source = read_yaml(saved), str(saved)
        if args.config is not None:
            print(
                f"note: --resume continues with {saved}; --config {args.config} is ignored", file=sys.stderr
            )
    elif args.config is None:
        raise ConfigError(
            "--config is required for a new run (a recipe such as hifacegan-lite-fidelity, or a YAML file)"
        )
    else:
        base, source = load_config_source(args.config)
    overrides = {key: getattr(args, key) for _, key, _, _ in _VALUE_OPTIONS}
    overrides.update(fidelity=args.fidelity, gan=args.gan, export_fp16=args.fp16)
    for text in args.assignments:
        key, value = parse_assignment(text)
        overrides[key] = value
        if value is None:
            base.pop(key, None)
    return resolve_config(base, overrides, source)


def run(args: argparse.Namespace) -> int:
    from hifacegan.losses import PerceptualWeightsUnavailable
    from hifacegan.train.config import ConfigError
    from hifacegan.train.loop import train
    from hifacegan.weights import WeightsError

    try:
        config = resolve_from_args(args)
        result = train(config, args.data, args.out, resume=args.resume, progress=not args.no_progress)
    except (
        ConfigError,
        FileExistsError,
        FileNotFoundError,
        NotADirectoryError,
        WeightsError,
        PerceptualWeightsUnavailable,
        FloatingPointError,
        ValueError,
    ) as error:
        print(f"hifacegan train: error: {error}", file=sys.stderr)
        return 2
    return 0 if result.stopped_by != "SIGINT" else 130
