"""Embed trained weights into the package as a default: ``python -m hifacegan.weights.embed RUN/NAME.safetensors``.

A maintainer's step, not a user's: it halves the file (float16; loading returns float32), records evaluation
results in the card, and writes ``hifacegan/weights/embedded/NAME.safetensors`` plus its human-readable card
``NAME.md``, atomically. The card's sha256 covers the half-precision tensors actually shipped.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from hifacegan.weights.format import read_weights, save_weights
from hifacegan.weights.store import EMBEDDED_DIR


def embed(
    source: Path,
    name: str | None = None,
    metrics: dict | None = None,
    notes: str | None = None,
    out_dir: Path = EMBEDDED_DIR,
    description: str | None = None,
) -> Path:
    state, card = read_weights(source, verify=True)
    if name:
        card.name = name
    if description:
        card.description = description
    if metrics:
        card.metrics.update(metrics)
    if notes:
        card.description = f"{card.description} {notes}".strip()
    dest = out_dir / f"{card.name}.safetensors"
    save_weights(dest, state, card, dtype=torch.float16, write_markdown=True)
    return dest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hifacegan.weights.embed", description=__doc__)
    ap.add_argument("source", type=Path, help="a weights file exported by `hifacegan train`")
    ap.add_argument("--name", help="name to embed it under (default: the card's)")
    ap.add_argument(
        "--metrics",
        type=Path,
        action="append",
        default=[],
        help="a metrics.json from `hifacegan eval` to record in the card under its folder's name (repeatable)",
    )
    ap.add_argument(
        "--description",
        help="the card's description in place of the training run's (e.g. a run's whole history, when it spans "
        "several sittings)",
    )
    ap.add_argument("--notes", help="a sentence appended to the card's description")
    ap.add_argument(
        "--out-dir",
        type=Path,
        default=EMBEDDED_DIR,
        help="where to write (default: the package's embedded folder)",
    )
    args = ap.parse_args(argv)
    metrics = {path.parent.name: json.loads(path.read_text()) for path in args.metrics}
    dest = embed(args.source, args.name, metrics, args.notes, args.out_dir, args.description)
    print(f"embedded {args.source} -> {dest} ({dest.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
