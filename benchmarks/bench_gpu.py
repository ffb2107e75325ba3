"""Faces per second of the generators in each precision and batch, and the pipeline on a 24 MP photo (issue #31).

On a CUDA machine: ``hifacegan-lite-128-nlm``, ``hifacegan-lite-256-nlm`` and ``hifacegan-512`` at batch 1, 8 and 32
in fp32, fp16 and bf16 (each with its largest difference from fp32), then the whole pipeline on a 24 MP photo made
of real faces. Sized to finish within 8 minutes on one GPU. Without CUDA it prints the CPU rows it can in a few
minutes (the lite configs at batch 1 and 8, fp32 and bf16) and says what it left out.

    .venv/bin/python benchmarks/bench_gpu.py [--device cuda] [--repeats 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from hifacegan.devices import PRECISIONS
from hifacegan.models import build_generator

REPO = Path(__file__).resolve().parents[1]
CONFIGS = {"hifacegan-lite-128-nlm": 128, "hifacegan-lite-256-nlm": 256, "hifacegan-512": 512}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def faces_per_second(
    config: str, size: int, batch: int, precision: str, device: torch.device, repeats: int
) -> dict:
    """Median faces/s of one config's forward pass, and its largest difference from fp32 on the same input."""
    torch.manual_seed(0)
    model = build_generator(config).eval().to(device)
    x = torch.rand(batch, 3, size, size, device=device)
    with torch.inference_mode():
        reference = model(x).float()
        half = model.to(PRECISIONS[precision])
        out = half(x.to(PRECISIONS[precision])).float()
        sync(device)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            half(x.to(PRECISIONS[precision]))
            sync(device)
            times.append(time.perf_counter() - start)
    return {
        "config": config, "batch": batch, "precision": precision,
        "faces_per_s": round(batch / statistics.median(times), 2),
        "max_diff_from_fp32": round(float((out - reference).abs().max()), 4),
        "finite": bool(torch.isfinite(out).all()),
    }  # fmt: skip


def large_photo(megapixels: float = 24.0) -> np.ndarray:
    """A photo of about ``megapixels`` made of real faces: the Solvay photo tiled and enlarged."""
    import cv2

    from hifacegan.data.files import read_rgb8

    solvay = read_rgb8(REPO / "examples" / "solvay_conference_1927.png")[0]
    scale = (megapixels * 1e6 / (solvay.shape[0] * solvay.shape[1])) ** 0.5
    return cv2.resize(solvay, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)


def pipeline_row(device: torch.device, precision: str, megapixels: float) -> dict:
    from hifacegan.pipeline import Renovator

    photo = large_photo(megapixels)
    renovator = Renovator("default", device, precision=precision)
    renovator(photo[:512, :512])  # warm-up
    sync(device)
    start = time.perf_counter()
    result = renovator(photo)
    sync(device)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return {
        "pipeline": f"{photo.shape[1]}x{photo.shape[0]}", "precision": precision,
        "seconds": round(time.perf_counter() - start, 2), "faces": result.renovated,
        "peak_gpu_gib": None if peak is None else round(peak, 2),
    }  # fmt: skip


def plan(device: torch.device) -> tuple[list[tuple[str, int, str]], list[str]]:
    """The (config, batch, precision) rows to run on ``device``, and what is left out there."""
    if device.type == "cuda":
        return [(c, b, p) for c in CONFIGS for b in (1, 8, 32) for p in PRECISIONS], []
    rows = [(c, b, p) for c in list(CONFIGS)[:2] for b in (1, 8) for p in ("fp32", "bf16")]
    return rows, ["hifacegan-512, batch 32, fp16 and the 24 MP pipeline: GPU rows, not run on a CPU"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--megapixels", type=float, default=24.0)
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    rows, left_out = plan(device)
    results = []
    for config, batch, precision in rows:
        repeats = args.repeats if device.type == "cuda" else max(2, args.repeats // 4)
        try:
            row = faces_per_second(config, CONFIGS[config], batch, precision, device, repeats)
        except torch.cuda.OutOfMemoryError:
            row = {"config": config, "batch": batch, "precision": precision, "faces_per_s": "out of memory"}
            torch.cuda.empty_cache()
        results.append(row)
        print(json.dumps(row), flush=True)
    if device.type == "cuda":
        for precision in ("fp32", "fp16"):
            results.append(pipeline_row(device, precision, args.megapixels))
            print(json.dumps(results[-1]), flush=True)
    for line in left_out:
        print(f"left out on {device}: {line}")
    if args.json:
        args.json.write_text(
            json.dumps({"device": str(device), "rows": results, "left_out": left_out}, indent=1)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
