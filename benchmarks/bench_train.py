"""Training throughput on this machine: the data pipeline's degraded pairs/s, and samples/hour per lite config.

    .venv/bin/python benchmarks/bench_train.py                  # everything (several minutes on 2 cores)
    .venv/bin/python benchmarks/bench_train.py --only data
    .venv/bin/python benchmarks/bench_train.py --only step --configs hifacegan-lite-128 --steps 3

Step variants (each on a fixed batch of real degraded faces, so data loading is not in the step figure):

- ``naive``: torch's default thread count, Adam's default (for-loop) kernel, and the textbook two-pass GAN step
  (G pass with D, then a second D pass on ``fake.detach()`` and the real images);
- ``tuned``: what ``hifacegan train`` does on a CPU: one torch thread per core left after the data worker,
  fused Adam, one discriminator pass per step (``TrainingStep``);
- ``tuned+cl``: tuned with channels_last memory format;
- ``VARIANT@N``: any of those with N torch threads (``naive@1`` isolates the step formulation and the
  optimiser from the thread count, ``tuned@2`` the thread count from them).

``--end-to-end`` also runs ``TrainingStep`` fed by the real DataLoader (1 worker), the figure a run will see.
Numbers on a shared machine move with its load: the load average is printed beside them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hifacegan.data import FaceDegradationDataset  # noqa: E402
from hifacegan.devices import default_cpu_threads  # noqa: E402
from hifacegan.losses import (  # noqa: E402
    PerceptualLoss,
    feature_matching_loss,
    l1_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
)
from hifacegan.train import TrainConfig, TrainingStep  # noqa: E402
from hifacegan.train.distributed import DistInfo  # noqa: E402
from hifacegan.train.loop import build_loader  # noqa: E402
from hifacegan.train.sampler import ResumableSampler  # noqa: E402

DATA = Path(os.environ.get("HIFACEGAN_SHARED", REPO.parent / "shared")) / "data" / "faces-train"
LITE = {"hifacegan-lite-128": (128, 8), "hifacegan-lite-256": (256, 4)}  # config: (size, batch)


def load() -> float:
    return os.getloadavg()[0]


def bench_data(size: int, batch: int, batches: int, workers: int) -> float:
    """Degraded pairs per second delivered by the training DataLoader (task full)."""
    dataset = FaceDegradationDataset(DATA, size, task="full", train=True, seed=0)
    sampler = ResumableSampler(len(dataset), seed=0)
    config = TrainConfig(generator="hifacegan-lite-128", batch_size=batch, workers=workers)
    loader = build_loader(dataset, sampler, config, torch.device("cpu"))
    dataset.set_epoch(0)
    iterator = iter(loader)
    next(iterator)  # worker start-up is paid once per run, not per batch
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch / (time.perf_counter() - start)


def fixed_batch(size: int, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    data = FaceDegradationDataset(DATA, size, task="full", train=False, seed=0, limit=batch)
    items = [data[i] for i in range(batch)]
    return torch.stack([x["lq"] for x in items]), torch.stack([x["gt"] for x in items])


class NaiveStep:
    """The textbook two-pass step (pix2pixHD / SPADE style) on TrainingStep's networks, with for-loop Adam."""

    def __init__(self, step: TrainingStep) -> None:
        self.s = step
        betas = (0.0, 0.9)
        self.opt_g = torch.optim.Adam(step.generator.parameters(), lr=1e-4, betas=betas, foreach=False)
        self.opt_d = (
            torch.optim.Adam(step.discriminator.parameters(), lr=4e-4, betas=betas, foreach=False)
            if step.discriminator is not None
            else None
        )

    def __call__(self, lq: torch.Tensor, gt: torch.Tensor) -> None:
        s, c = self.s, self.s.config
        fake = (s.generator(lq) + 1) / 2
        loss = c.lambda_l1 * l1_loss(fake, gt) if c.fidelity else 0
        loss = loss + c.lambda_perceptual * s.perceptual(fake, gt)
        if s.discriminator is not None:
            s.discriminator.requires_grad_(False)
            fake_f, real_f = s.discriminator(lq, fake), s.discriminator(lq, gt)
            loss = loss + lsgan_generator_loss(fake_f) + c.lambda_fm * feature_matching_loss(fake_f, real_f)
            s.discriminator.requires_grad_(True)
        self.opt_g.zero_grad()
        loss.backward()
        self.opt_g.step()
        if s.discriminator is not None:
            d_fake, d_real = lsgan_discriminator_loss(
                s.discriminator(lq, fake.detach()), s.discriminator(lq, gt)
            )
            self.opt_d.zero_grad()
            (d_fake + d_real).backward()
            self.opt_d.step()


def time_steps(fn, lq, gt, steps: int) -> float:
    fn(lq, gt)  # warm-up: allocator, oneDNN primitive caches
    start = time.perf_counter()
    for _ in range(steps):
        fn(lq, gt)
    return (time.perf_counter() - start) / steps


def bench_step(name: str, gan: bool, label: str, steps: int, perceptual: PerceptualLoss) -> dict:
    size, batch = LITE[name]
    variant, _, forced = label.partition("@")  # "tuned@2": the tuned step with 2 threads (ablations)
    threads = torch.get_num_threads() if variant == "naive" else default_cpu_threads(reserve=1)
    threads = int(forced) if forced else threads
    with _threads(threads):
        torch.manual_seed(0)
        config = TrainConfig(
            name=name,
            generator=name,
            gan=gan,
            fidelity=not gan,
            discriminator="multiscale-lite",
            batch_size=batch,
            channels_last=variant == "tuned+cl",
        )
        step = TrainingStep(config, DistInfo(), perceptual=perceptual)
        lq, gt = fixed_batch(size, batch)
        fn = NaiveStep(step) if variant == "naive" else step
        if variant == "tuned+cl":
            lq, gt = step.prepare(lq), step.prepare(gt)
        seconds = time_steps(fn, lq, gt, steps)
    return {
        "config": name,
        "gan": gan,
        "variant": label,
        "threads": threads,
        "batch": batch,
        "s_per_step": round(seconds, 3),
        "samples_per_hour": round(batch * 3600 / seconds),
        "load": round(load(), 1),
    }


def bench_end_to_end(name: str, gan: bool, steps: int, perceptual: PerceptualLoss) -> dict:
    size, batch = LITE[name]
    config = TrainConfig(
        name=name,
        generator=name,
        gan=gan,
        fidelity=not gan,
        discriminator="multiscale-lite",
        batch_size=batch,
        workers=1,
    )
    with _threads(default_cpu_threads(reserve=config.workers)):
        step = TrainingStep(config, DistInfo(), perceptual=perceptual)
        dataset = FaceDegradationDataset(DATA, size, task="full", seed=0)
        dataset.set_epoch(0)
        loader = iter(build_loader(dataset, ResumableSampler(len(dataset)), config, torch.device("cpu")))
        first = next(loader)
        step(first["lq"], first["gt"])
        start = time.perf_counter()
        for _ in range(steps):
            b = next(loader)
            step(b["lq"], b["gt"])
        seconds = (time.perf_counter() - start) / steps
    return {
        "config": name,
        "gan": gan,
        "variant": "end-to-end (1 worker)",
        "threads": torch.get_num_threads(),
        "batch": batch,
        "s_per_step": round(seconds, 3),
        "samples_per_hour": round(batch * 3600 / seconds),
        "load": round(load(), 1),
    }


@contextlib.contextmanager
def _threads(n: int):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", choices=["data", "step"], help="run one part only")
    parser.add_argument("--configs", nargs="+", default=list(LITE), choices=list(LITE))
    parser.add_argument("--variants", nargs="+", default=["naive", "tuned", "tuned+cl"])
    parser.add_argument(
        "--steps", type=int, default=3, help="timed steps per measurement (after one warm-up)"
    )
    parser.add_argument(
        "--end-to-end", action="store_true", help="also time steps fed by the real DataLoader"
    )
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"face data not found at {DATA} (set HIFACEGAN_SHARED)", file=sys.stderr)
        return 2
    results: dict[str, list] = {"data": [], "step": []}
    print(f"cpu cores {os.cpu_count()}, torch {torch.__version__}, default threads {torch.get_num_threads()}")
    if args.only in (None, "data"):
        for size, batch in ((128, 8), (256, 4)):
            for workers in (0, 1):
                rate = bench_data(size, batch, batches=96 // batch, workers=workers)
                row = {
                    "size": size,
                    "workers": workers,
                    "pairs_per_s": round(rate, 1),
                    "load": round(load(), 1),
                }
                results["data"].append(row)
                print(
                    f"data  {size}px task=full workers={workers}: {rate:6.1f} pairs/s   (load {row['load']})"
                )
    if args.only in (None, "step"):
        perceptual = PerceptualLoss()
        print(f"perceptual: {perceptual.backbone}")
        for name in args.configs:
            for gan in (False, True):
                for variant in args.variants:
                    row = bench_step(name, gan, variant, args.steps, perceptual)
                    results["step"].append(row)
                    print(
                        f"step  {name} {'L1+perc+GAN' if gan else 'L1+perc    '} {variant:9s} threads={row['threads']} "
                        f"batch={row['batch']}: {row['s_per_step']:7.2f} s/step = {row['samples_per_hour']:6d} "
                        f"samples/h   (load {row['load']})",
                        flush=True,
                    )
                if args.end_to_end:
                    row = bench_end_to_end(name, gan, args.steps, perceptual)
                    results["step"].append(row)
                    print(
                        f"step  {name} {'L1+perc+GAN' if gan else 'L1+perc    '} end-to-end: {row['s_per_step']:7.2f} "
                        f"s/step = {row['samples_per_hour']:6d} samples/h   (load {row['load']})",
                        flush=True,
                    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
