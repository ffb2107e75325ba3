"""The training loop: data, budget, checkpoints and logs around :class:`TrainingStep`.

:func:`train` runs the same way as a single process or as one rank of a torchrun job: it checks the inputs, then
a :class:`Trainer` starts (fresh, from ``--init-from`` weights, or resumed), runs until a stop and finishes. It
stops cleanly (checkpoint, weights, summary) at ``max_steps``, after ``max_minutes``, or on SIGTERM / SIGINT, and
``resume=True`` continues from the run directory's last checkpoint with the same data order and losses. The
weights file and its model card are written by :mod:`hifacegan.train.export`.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from hifacegan.devices import default_cpu_threads
from hifacegan.train.checkpoint import (
    LAST,
    adapt_init_state,
    generator_state_from,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
    write_bytes,
)
from hifacegan.train.config import TrainConfig, save_config
from hifacegan.train.distributed import (
    DistInfo,
    any_rank,
    gather_strings,
    init_distributed,
    mean_over_ranks,
    shutdown,
)
from hifacegan.train.export import export_weights
from hifacegan.train.report import ScalarLog, is_finite, save_grid
from hifacegan.train.sampler import ResumableSampler
from hifacegan.train.step import TrainingStep

CONFIG_FILE = "config.yaml"
SUMMARY_FILE = "summary.json"


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    samples: int
    stopped_by: str
    weights: Path | None
    summary: dict[str, Any] = field(default_factory=dict)


def step_limit(config: TrainConfig) -> tuple[int | None, str]:
    """The step a run stops at, and why: --max-steps, else the end of a schedule that decays to zero.

    Past that end the learning rate is zero and every further step is wasted time that changes nothing.
    """
    if config.max_steps is not None:
        return config.max_steps, "max_steps"
    if config.steps is not None and config.decay_fraction > 0:
        return config.steps, "schedule_end"
    return None, ""


def learning_rate(base: float, step: int, total: int | None, decay_fraction: float) -> float:
    """Constant, then linear decay to zero over the last ``decay_fraction`` of ``total`` steps (the paper's)."""
    if total is None or decay_fraction <= 0:
        return base
    decay_start = total * (1.0 - decay_fraction)
    if step < decay_start:
        return base
    return base * max(0.0, (total - step) / max(total - decay_start, 1.0))


class StopFlag:
    """Set by SIGTERM / SIGINT; a second SIGINT interrupts at once."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.reason is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.reason = signal.Signals(signum).name

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


def _worker_init(_: int) -> None:
    # One data worker is one process per core already; torch's own threads there would steal the trainer's.
    torch.set_num_threads(1)
    # Ctrl-C (or a SIGTERM sent to the whole process group) must reach only the trainer, which stops after its
    # step and saves; a worker dying of it first would turn a clean stop into a DataLoader error.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def build_loader(
    dataset: Any, sampler: ResumableSampler, config: TrainConfig, device: torch.device
) -> DataLoader:
    workers = config.workers
    return DataLoader(
        dataset,
        batch_size=config.batch_size,
        sampler=sampler,
        num_workers=workers,
        drop_last=True,
        pin_memory=device.type == "cuda",
        persistent_workers=workers > 0,
        prefetch_factor=2 if workers > 0 else None,
        worker_init_fn=_worker_init if workers > 0 else None,
    )


def train(
    config: TrainConfig,
    data: str | os.PathLike[str],
    run_dir: str | os.PathLike[str],
    resume: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Train ``config`` on the clean faces in ``data``, writing everything to ``run_dir``."""
    from hifacegan.data import FaceDegradationDataset

    run_dir = Path(run_dir).expanduser()
    dist = init_distributed(config.device)
    try:
        if dist.device.type == "cpu":
            torch.set_num_threads(config.threads or default_cpu_threads(reserve=config.workers))
        torch.manual_seed(config.seed)
        dataset = FaceDegradationDataset(
            data,
            config.image_size,
            task=config.task,
            train=True,
            seed=config.seed + dist.rank,
            flip=config.flip,
            limit=config.limit,
            zoom_out_probability=config.zoom_out_probability,
            zoom_out_min_scale=config.zoom_out_min_scale,
            clean_probability=config.clean_probability,
            small_face_probability=config.small_face_probability,
            small_face_min_side=config.small_face_min_side,
        )
        per_rank = len(dataset) // dist.world_size
        if per_rank < config.batch_size:
            raise ValueError(
                f"{data} holds {len(dataset)} images: too few for a batch of {config.batch_size} on each of "
                f"{dist.world_size} process(es); add images or lower --batch-size"
            )
        if not resume and (run_dir / "checkpoints" / LAST).is_file():
            raise FileExistsError(
                f"{run_dir} already holds a training run ({run_dir / 'checkpoints' / LAST}); continue it with "
                "--resume, or choose another --out (nothing was overwritten)"
            )
        trainer = Trainer(config, dataset, Path(data), run_dir, dist, log)
        trainer.start(resume)
        return trainer.finish(trainer.run(progress))
    finally:
        shutdown(dist)


@dataclass
class Position:
    """Where a run stands: what a checkpoint records besides the networks, the optimizers and the RNG states."""

    step: int = 0
    epoch: int = 0
    offset: int = 0  # batches of this rank already taken from the epoch
    samples: int = 0  # over all ranks
    trained_seconds: float = 0.0  # before this process started training
    init_note: str | None = None  # where the generator's first tensors came from


class LossWindow:
    """Losses summed over the steps since the last log line, with the clock and sample count when it opened."""

    def __init__(self, start: float, samples: int) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.steps = 0
        self.start = start
        self.samples = samples

    def add(self, terms: dict[str, torch.Tensor]) -> None:
        for key, value in terms.items():
            self.sums[key] = self.sums.get(key, 0) + value
        self.steps += 1

    def means(self) -> dict[str, float]:
        return {k: float(v) / self.steps for k, v in self.sums.items()}


class Trainer:
    """One rank's run: :meth:`start` (resume or initialise), :meth:`run` until a stop, :meth:`finish`."""

    def __init__(
        self,
        config: TrainConfig,
        dataset: Any,
        data: Path,
        run_dir: Path,
        dist: DistInfo,
        log: Callable[[str], None],
    ) -> None:
        self.config, self.dataset, self.data, self.run_dir, self.dist = config, dataset, data, run_dir, dist
        self.primary = dist.is_primary
        self.say = log if self.primary else (lambda _: None)
        self.step_fn = TrainingStep(config, dist)
        self.ckpt_path = run_dir / "checkpoints" / LAST
        self.at = Position()
        self.resumed = False
        self.last_terms: dict[str, float] = {}
        self.started = time.monotonic()

    # -- start -------------------------------------------------------------------------------------------------
    def start(self, resume: bool) -> None:
        """Resume from the run's checkpoint or initialise from ``--init-from``; write the resolved config."""
        config = self.config
        if resume:
            self._resume()
        elif config.init_from:
            self._init_from(config.init_from)
        if self.primary:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            save_config(config, self.run_dir / CONFIG_FILE)
        if self.step_fn.perceptual is not None:
            self.say(f"perceptual loss: {self.step_fn.perceptual.description}")
        self.say(
            f"training {config.generator} at {config.image_size}px on {len(self.dataset)} faces from {self.data} "
            f"({self.dist.world_size} process(es), device {self.dist.device}, batch {config.batch_size} each)"
        )

    def _resume(self) -> None:
        payload = load_checkpoint(self.ckpt_path)
        self.step_fn.load_state_dict(payload)
        at = self.at
        at.step, at.epoch, at.offset = int(payload["step"]), int(payload["epoch"]), int(payload["offset"])
        at.samples, at.trained_seconds = int(payload["samples"]), float(payload["trained_seconds"])
        at.init_note = payload.get("init_from")
        if (payload["world_size"], payload["batch_size"]) != (self.dist.world_size, self.config.batch_size):
            self.say(
                "note: world size or batch size changed since the checkpoint; data restarts at the next epoch"
            )
            at.epoch, at.offset = at.epoch + 1, 0
        set_rng_state(payload["rng"])
        self.resumed = True
        self.say(f"resumed {self.run_dir} at step {at.step} ({at.samples} samples seen)")

    def _init_from(self, spec: str) -> None:
        from hifacegan.weights import check_state_dict

        generator = self.step_fn.generator
        state, note, source_config = generator_state_from(spec)
        check_state_dict(generator, state, spec, self.config.generator)
        state, adapted = adapt_init_state(state, source_config, generator.config, spec)
        if adapted:
            note += f" ({adapted})"
        generator.load_state_dict(state)
        self.at.init_note = note
        self.say(f"generator initialised from {note}")

    # -- run ---------------------------------------------------------------------------------------------------
    def run(self, progress: bool) -> str:
        """Train until the step limit, the time budget, a signal or another rank stops; returns why it stopped."""
        config, dist, at = self.config, self.dist, self.at
        sampler = ResumableSampler(len(self.dataset), dist.rank, dist.world_size, seed=config.seed)
        loader = build_loader(self.dataset, sampler, config, dist.device)
        batches_per_epoch = sampler.per_rank // config.batch_size
        if at.offset >= batches_per_epoch:
            at.epoch, at.offset = at.epoch + 1, 0
        scalars = self._open_scalars()
        last_step, last_reason = step_limit(config)
        stop = StopFlag()
        stop.install()
        bar = self._progress_bar(progress, last_step)
        self.started = time.monotonic()
        last_ckpt = self.started
        window = LossWindow(self.started, at.samples)
        stopped_by = None
        self.step_fn.train()
        try:
            if last_step is not None and at.step >= last_step:
                stopped_by = last_reason
            while stopped_by is None:
                self.dataset.set_epoch(at.epoch)
                sampler.set_position(at.epoch, at.offset * config.batch_size)
                for batch in loader:
                    terms, fake, lrs = self._train_step(batch, batches_per_epoch)
                    window.add(terms)
                    if at.step % config.log_every == 0:
                        self._log(window, lrs, scalars, bar)
                        window = LossWindow(time.monotonic(), at.samples)
                    if bar is not None:
                        bar.update(1)
                    if self.primary and at.step % config.image_every == 0:
                        self._save_samples(batch, fake)
                    reason = self._stop_reason(stop, last_step, last_reason)
                    if any_rank(reason is not None, dist):
                        stopped_by = reason or "another rank stopped"
                        break
                    due_by_time = (
                        config.checkpoint_minutes is not None
                        and time.monotonic() - last_ckpt >= config.checkpoint_minutes * 60
                    )
                    if self.primary and (at.step % config.checkpoint_every == 0 or due_by_time):
                        self.save_checkpoint(at.trained_seconds + time.monotonic() - self.started)
                        last_ckpt = time.monotonic()
        finally:
            stop.restore()
            if bar is not None:
                bar.close()
            if scalars is not None:
                scalars.close()
        at.trained_seconds += time.monotonic() - self.started
        return stopped_by

    def _open_scalars(self) -> ScalarLog | None:
        """The loss log on the primary rank (continued after a resume); None on the others."""
        if not self.primary:
            return None
        return ScalarLog(
            self.run_dir, _loss_names(self.step_fn), resume_step=self.at.step if self.resumed else None
        )

    def _progress_bar(self, progress: bool, last_step: int | None) -> Any:
        """A tqdm bar of steps on the primary rank when ``progress``; None otherwise."""
        if not (self.primary and progress):
            return None
        from tqdm import tqdm

        return tqdm(
            total=last_step, initial=self.at.step, unit="step", dynamic_ncols=True, desc=self.config.name
        )

    def _save_samples(self, batch: dict[str, torch.Tensor], fake: torch.Tensor) -> None:
        """The step's input, output and target side by side, under ``RUN_DIR/samples``."""
        save_grid(
            self.run_dir / "samples" / f"step_{self.at.step:07d}.png",
            batch["lq"],
            fake.cpu(),
            batch["gt"],
        )

    def _train_step(
        self, batch: dict[str, torch.Tensor], batches_per_epoch: int
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor, tuple[float, float]]:
        config, at = self.config, self.at
        lr_g = learning_rate(config.lr_g, at.step, config.steps, config.decay_fraction)
        lr_d = learning_rate(config.lr_d, at.step, config.steps, config.decay_fraction)
        self.step_fn.set_lr(lr_g, lr_d)
        terms, fake = self.step_fn(batch["lq"], batch["gt"])
        at.step += 1
        at.offset += 1
        at.samples += config.batch_size * self.dist.world_size
        if at.offset >= batches_per_epoch:
            at.epoch, at.offset = at.epoch + 1, 0
        return terms, fake, (lr_g, lr_d)

    def _log(self, window: LossWindow, lrs: tuple[float, float], scalars: ScalarLog | None, bar: Any) -> None:
        """Average the window's losses over ranks, refuse NaNs, and write them to scalars.csv and the console."""
        at = self.at
        now = time.monotonic()
        means = mean_over_ranks(window.means(), self.dist)
        if not is_finite(means):
            raise FloatingPointError(
                f"a loss became NaN or infinite at step {at.step} ({means}); resume from the last "
                "checkpoint with a lower learning rate"
            )
        rate = (at.samples - window.samples) / max(now - window.start, 1e-9)
        self.last_terms = means
        lr_g, lr_d = lrs
        if scalars is not None:
            scalars.write(
                {
                    "step": at.step,
                    "epoch": at.epoch,
                    "samples": at.samples,
                    "elapsed_s": at.trained_seconds + now - self.started,
                    "images_per_s": rate,
                    "lr_g": lr_g,
                    "lr_d": lr_d,
                    **means,
                }
            )
        if bar is not None:
            bar.set_postfix({**{k: f"{v:.4g}" for k, v in means.items()}, "img/s": f"{rate:.3g}"})
        else:
            text = " ".join(f"{k}={v:.4g}" for k, v in means.items())
            self.say(f"step {at.step} samples {at.samples} {text} img/s={rate:.3g} lr_g={lr_g:.3g}")

    def _stop_reason(self, stop: StopFlag, last_step: int | None, last_reason: str) -> str | None:
        """This rank's reason to stop after the step just taken, if any."""
        reason = stop.reason
        if reason is None and last_step is not None and self.at.step >= last_step:
            reason = last_reason
        max_minutes = self.config.max_minutes
        if reason is None and max_minutes is not None and time.monotonic() - self.started >= max_minutes * 60:
            reason = "max_minutes"
        return reason

    def save_checkpoint(self, trained_seconds: float) -> None:
        at = self.at
        save_checkpoint(
            self.ckpt_path,
            {
                **self.step_fn.state_dict(),
                "step": at.step,
                "epoch": at.epoch,
                "offset": at.offset,
                "samples": at.samples,
                "trained_seconds": trained_seconds,
                "world_size": self.dist.world_size,
                "batch_size": self.config.batch_size,
                "rng": rng_state(),
                "init_from": at.init_note,
            },
        )

    # -- finish ------------------------------------------------------------------------------------------------
    def finish(self, stopped_by: str | None) -> TrainResult:
        """Check the ranks agree, then (primary) checkpoint, export the weights and write summary.json."""
        from hifacegan.weights import tensor_sha256

        at, step_fn = self.at, self.step_fn
        # Generator and discriminator, every rank: DDP must have kept them identical.
        digest = tensor_sha256(step_fn.generator.state_dict())
        if step_fn.discriminator is not None:
            digest += ":" + tensor_sha256(step_fn.discriminator.state_dict())
        hashes = gather_strings(digest, self.dist)
        summary = {
            "stopped_by": stopped_by,
            "step": at.step,
            "epoch": at.epoch,
            "samples": at.samples,
            "trained_seconds": round(at.trained_seconds, 1),
            "world_size": self.dist.world_size,
            "rank_weights_sha256": hashes,
            "ranks_in_sync": len(set(hashes)) == 1,
            "last_losses": self.last_terms,
            "perceptual": step_fn.perceptual.description if step_fn.perceptual is not None else None,
        }
        weights_path = None
        if self.primary:
            self.save_checkpoint(at.trained_seconds)
            weights_path = export_weights(
                step_fn, self.config, self.run_dir, summary, self.data, at.init_note
            )
            summary["weights"] = str(weights_path)
            write_bytes(self.run_dir / SUMMARY_FILE, (json.dumps(summary, indent=2) + "\n").encode())
            self.say(
                f"stopped by {stopped_by} at step {at.step} ({at.samples} samples, "
                f"{at.trained_seconds / 60:.1f} min); weights: {weights_path}; continue with --resume"
            )
        if not summary["ranks_in_sync"]:
            raise RuntimeError(
                f"ranks ended with different weights (generator:discriminator sha256): {hashes}"
            )
        return TrainResult(self.run_dir, at.step, at.samples, str(stopped_by), weights_path, summary)


def _loss_names(step_fn: TrainingStep) -> list[str]:
    names = ["l1"]
    if step_fn.perceptual is not None:
        names.append("perceptual")
    if step_fn.discriminator is not None:
        names += ["gan", "fm", "d_fake", "d_real"]
    return names + ["g_total"]
