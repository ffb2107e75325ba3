"""Generator cost for every registered config: parameters, MACs, CPU time, and time relative to the FLOP floor.

The FLOP floor is the config's FLOPs divided by the matmul throughput this machine reaches in the same run, so the
ratio says how far each network is from what its arithmetic alone would cost here (noisy machines move both).

    .venv/bin/python benchmarks/bench_generator.py [--threads 2] [--repeats 5] [--configs NAME ...]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from hifacegan.models import build_generator, generator_spec, list_generators


def matmul_gflops(n: int = 1024, repeats: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / statistics.median(times) / 1e9


def count_flops(model: torch.nn.Module, x: torch.Tensor) -> int:
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops()


def time_forward(model: torch.nn.Module, x: torch.Tensor, repeats: int) -> float:
    with torch.inference_mode():
        model(x)  # warm-up
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5, help="timed runs per config (median reported)")
    ap.add_argument("--big-repeats", type=int, default=2, help="timed runs for 512 px configs (slow on CPU)")
    ap.add_argument("--configs", nargs="*", default=None, help="default: every registered config")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    names = args.configs or list_generators()
    gflops = matmul_gflops()
    print(f"threads={args.threads}  matmul (1024^3, fp32): {gflops:.1f} GFLOP/s\n")
    header = f"{'config':22s} {'size':>5s} {'params':>9s} {'GMACs':>8s} {'ms/forward':>11s} {'floor ms':>9s} {'x floor':>8s}"
    print(header)
    print("-" * len(header))
    for name in names:
        spec = generator_spec(name)
        model = build_generator(name).eval()
        size = spec.kwargs.get("size", 512)
        x = torch.rand(1, 3, size, size)
        flops = count_flops(model, x)
        repeats = args.big_repeats if size >= 512 else args.repeats
        seconds = time_forward(model, x, repeats)
        floor = flops / (gflops * 1e9)
        params = sum(p.numel() for p in model.parameters())
        print(
            f"{name:22s} {size:5d} {params / 1e6:8.2f}M {flops / 2e9:8.2f} {seconds * 1e3:11.1f} "
            f"{floor * 1e3:9.1f} {seconds / floor:8.2f}"
        )
    print(
        f"\nmatmul again after the runs: {matmul_gflops():.1f} GFLOP/s (a large change means a noisy machine)"
    )


if __name__ == "__main__":
    main()
