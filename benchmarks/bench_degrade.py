"""How many (degraded, clean) training pairs per second the data pipeline makes on this machine.

For every task at each size it measures three things:

- ``degrade``: the degradation alone, on faces already decoded and resized (the recipe's own cost);
- ``dataset``: ``FaceDegradationDataset.__getitem__`` in one process (decode JPEG + resize + flip + degrade +
  tensors), which is what training with ``num_workers=0`` gets;
- ``loader``: a ``DataLoader`` with ``--workers`` worker processes, batch 4, persistent workers, timed over a
  second pass so worker start-up is not counted.

Usage: ``.venv/bin/python benchmarks/bench_degrade.py [--faces DIR] [--samples 48] [--sizes 128 512]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from hifacegan.data import FaceDegradationDataset
from hifacegan.data.files import read_rgb8
from hifacegan.degradations import degrade, fit_to_size, list_tasks

REPO = Path(__file__).resolve().parents[1]
DEFAULT_FACES = Path(os.environ.get("HIFACEGAN_SHARED", REPO.parent / "shared")) / "data" / "faces-train"


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def bench_degrade(faces: list[np.ndarray], task: str) -> float:
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for face in faces:
        degrade(face, task, rng=rng)
    return rate(len(faces), time.perf_counter() - start)


def bench_dataset(dataset: FaceDegradationDataset) -> float:
    start = time.perf_counter()
    for index in range(len(dataset)):
        dataset[index]
    return rate(len(dataset), time.perf_counter() - start)


def bench_loader(dataset: FaceDegradationDataset, workers: int) -> float:
    loader = DataLoader(dataset, batch_size=4, shuffle=True, num_workers=workers, persistent_workers=True)
    for _ in loader:  # warm-up pass: starts the workers
        pass
    start = time.perf_counter()
    count = sum(len(batch["name"]) for batch in loader)
    elapsed = time.perf_counter() - start
    del loader
    return rate(count, elapsed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faces", type=Path, default=DEFAULT_FACES, help="folder of clean faces")
    parser.add_argument("--samples", type=int, default=48, help="faces per measurement (default 48)")
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[128, 512], help="model sizes (default 128 512)"
    )
    parser.add_argument("--tasks", nargs="+", default=list_tasks(), help="tasks (default: all)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers (default 2)")
    args = parser.parse_args(argv)
    if not args.faces.is_dir():
        print(f"face folder {args.faces} not found; pass --faces DIR", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    print(f"{os.cpu_count()} CPUs; {args.samples} faces from {args.faces}; pairs per second", flush=True)
    header = f"{'task':<10} {'size':>5} {'degrade':>9} {'dataset':>9} {f'loader x{args.workers}':>10}"
    print(header)
    print("-" * len(header))
    for size in args.sizes:
        probe = FaceDegradationDataset(args.faces, size, limit=args.samples)
        faces = [fit_to_size(read_rgb8(path)[0], size) for path in probe.files]
        for task in args.tasks:
            dataset = FaceDegradationDataset(args.faces, size, task=task, seed=0, limit=args.samples)
            alone = bench_degrade(faces, task)
            single = bench_dataset(dataset)
            loader = bench_loader(dataset, args.workers)
            print(f"{task:<10} {size:>5} {alone:>9.1f} {single:>9.1f} {loader:>10.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
