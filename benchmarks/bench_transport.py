"""Transport cost of the model server: big images through the real daemon and client, against a plain copy.

The daemon runs ``Renovator(weights="identity")`` (no network; detection and paste-back still run), so the
round trip is transport + pipeline. The pipeline's own time is reported by the server (``Result.seconds``);
transport = round trip - pipeline time, compared with ``bytes(buffer)`` of the same image (one in-process copy)
measured in the same run. Target: transport <= 3 x copy + 5 ms. Then requests/s for tiny jobs, 1 and 8 clients.

    python benchmarks/bench_transport.py [--sizes 1 12 24 48] [--repeats 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hifacegan_server.testing import DaemonProcess  # noqa: E402


def copy_seconds(buffer: bytes, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        copied = bytearray(buffer)
        times.append(time.perf_counter() - t0)
        del copied
    return min(times)


def round_trips(daemon: DaemonProcess, megapixels: float, repeats: int) -> dict:
    side = int(round((megapixels * 1e6) ** 0.5))
    width, height = side, int(megapixels * 1e6) // side
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (height, width, 4), dtype=np.uint8)
    buffer = image.tobytes()
    copy = copy_seconds(buffer, repeats + 1)
    totals, pipelines, transports = [], [], []
    with daemon.client(timeout=60) as client:
        for _ in range(repeats):
            t0 = time.perf_counter()
            res = client.renovate(buffer, width, height, 4, timeout=600)
            total = time.perf_counter() - t0
            assert res.width == width and len(res.pixels) == len(buffer)
            totals.append(total)
            pipelines.append(res.seconds)
            transports.append(total - res.seconds)
        assert bytes(res.pixels[:4096]) == buffer[:4096]  # no faces in noise: identity returns the same bytes
    transport = min(transports)
    return {
        "megapixels": round(width * height / 1e6, 2),
        "bytes": len(buffer),
        "copy_ms": round(copy * 1e3, 2),
        "round_trip_ms": round(min(totals) * 1e3, 1),
        "pipeline_ms": round(min(pipelines) * 1e3, 1),
        "transport_ms": round(transport * 1e3, 1),
        "transport_over_copy": round(transport / copy, 2),
        "target_ms": round((3 * copy + 0.005) * 1e3, 1),
        "meets_target": transport <= 3 * copy + 0.005,
    }


def tiny_jobs(daemon: DaemonProcess, clients: int, seconds: float) -> dict:
    image = np.random.default_rng(1).integers(0, 256, (32, 32, 4), dtype=np.uint8).tobytes()
    counts = [0] * clients
    stop = time.perf_counter() + seconds

    def run(i: int) -> None:
        with daemon.client(timeout=30) as c:
            while time.perf_counter() < stop:
                c.renovate(image, 32, 32, 4)
                counts[i] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    return {
        "clients": clients,
        "jobs": sum(counts),
        "seconds": round(elapsed, 2),
        "jobs_per_s": round(sum(counts) / elapsed, 1),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=float, nargs="+", default=[1, 12, 24, 48], help="megapixels per image")
    p.add_argument("--repeats", type=int, default=3, help="round trips per size (the best is reported)")
    p.add_argument("--tiny-seconds", type=float, default=5.0, help="seconds per tiny-job throughput run")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args()
    results: dict = {"sizes": [], "tiny": []}
    with DaemonProcess(weights="identity", device=args.device, extra_args=["--max-pixels", "60"]) as d:
        for mp in args.sizes:
            row = round_trips(d, mp, args.repeats)
            results["sizes"].append(row)
            print(
                f"{row['megapixels']:6.2f} MP  copy {row['copy_ms']:8.2f} ms  round trip {row['round_trip_ms']:8.1f} ms"
                f"  pipeline {row['pipeline_ms']:8.1f} ms  transport {row['transport_ms']:7.1f} ms"
                f" ({row['transport_over_copy']:.1f}x copy; target <= {row['target_ms']} ms:"
                f" {'met' if row['meets_target'] else 'MISSED'})",
                flush=True,
            )
        for clients in (1, 8):
            row = tiny_jobs(d, clients, args.tiny_seconds)
            results["tiny"].append(row)
            print(
                f"tiny 32x32 jobs, {clients} client(s): {row['jobs_per_s']} jobs/s ({row['jobs']} in {row['seconds']} s)"
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
