"""The ``hifacegan`` command: one sub-command per module in this package.

Each sub-command lives in its own module exposing ``add_parser(subparsers)`` and ``run(args) -> int``.
Modules are imported only when their command runs, so ``hifacegan --help`` stays fast and never imports torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from hifacegan import __version__

# (command, module, one-line help). The order is the order `--help` lists them in.
COMMANDS: list[tuple[str, str, str]] = [
    ("renovate", "hifacegan.cli.renovate", "renovate every face of whole photos"),
    ("weights", "hifacegan.cli.weights", "list, inspect, import, download and verify weights"),
    (
        "degrade",
        "hifacegan.cli.degrade",
        "degrade clean images with the paper's tasks (seeded, lossless output)",
    ),
    ("align", "hifacegan.cli.align", "cut aligned training faces out of portraits"),
    ("train", "hifacegan.cli.train", "train a generator (one CPU, one GPU, or many with torchrun)"),
    ("eval", "hifacegan.cli.eval", "score weights with the paper's eight metrics"),
    ("damage", "hifacegan.cli.damage", "train the scratch and dust detector, or find damage on a photo"),
    ("quality", "hifacegan.cli.quality", "train the face-quality network, or score the faces of photos"),
]


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hifacegan",
        description="HiFaceGAN face renovation: renovate photos, manage weights, degrade, train and evaluate.",
    )
    parser.add_argument("--version", action="version", version=f"hifacegan {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module, help_text in COMMANDS:
        if only is not None and name == only:
            importlib.import_module(module).add_parser(sub)
        else:
            sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    names = {name: module for name, module, _ in COMMANDS}
    command = next((a for a in argv if not a.startswith("-")), None)
    if command not in names:
        parser = build_parser()
        if not argv:
            parser.print_help()
            return 2
        parser.parse_args(argv)  # prints --help/--version or an "invalid choice" error and exits
        return 2
    parser = build_parser(only=command)
    args = parser.parse_args(argv)
    module = importlib.import_module(names[command])
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
