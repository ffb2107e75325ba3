"""The training loop: data, budget, checkpoints, logs and the exported weights around :class:`TrainingStep`.

One function, :func:`train`, runs the same way as a single process or as one rank of a torchrun job. It stops
cleanly (checkpoint, weights, summary) at ``max_steps``, after ``max_minutes``, or on SIGTERM / SIGINT, and
``resume=True`` continues from the run directory's last checkpoint with the same data order and losses.
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
        return _train(config, dataset, Path(data), run_dir, resume, progress, log, dist)
    finally:
        shutdown(dist)


def _train(
    config: TrainConfig,
    dataset: Any,
    data: Path,
    run_dir: Path,
    resume: bool,
    progress: bool,
    log: Callable[[str], None],
    dist: DistInfo,
) -> TrainResult:
    primary = dist.is_primary
    say = log if primary else (lambda _: None)
    step_fn = TrainingStep(config, dist)
    ckpt_path = run_dir / "checkpoints" / LAST
    step = epoch = offset = samples = 0
    trained_seconds = 0.0
    init_note = None
    if resume:
        payload = load_checkpoint(ckpt_path)
        step_fn.load_state_dict(payload)
        step, epoch, offset = int(payload["step"]), int(payload["epoch"]), int(payload["offset"])
        samples, trained_seconds = int(payload["samples"]), float(payload["trained_seconds"])
        init_note = payload.get("init_from")
        if (payload["world_size"], payload["batch_size"]) != (dist.world_size, config.batch_size):
            say(
                "note: world size or batch size changed since the checkpoint; data restarts at the next epoch"
            )
            epoch, offset = epoch + 1, 0
        set_rng_state(payload["rng"])
        say(f"resumed {run_dir} at step {step} ({samples} samples seen)")
    elif config.init_from:
        from hifacegan.weights import check_state_dict

        state, init_note, source_config = generator_state_from(config.init_from)
        check_state_dict(step_fn.generator, state, config.init_from, config.generator)
        state, adapted = adapt_init_state(state, source_config, step_fn.generator.config, config.init_from)
        if adapted:
            init_note += f" ({adapted})"
        step_fn.generator.load_state_dict(state)
        say(f"generator initialised from {init_note}")
    if primary:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, run_dir / CONFIG_FILE)
    if step_fn.perceptual is not None:
        say(f"perceptual loss: {step_fn.perceptual.description}")
    say(
        f"training {config.generator} at {config.image_size}px on {len(dataset)} faces from {data} "
        f"({dist.world_size} process(es), device {dist.device}, batch {config.batch_size} each)"
    )

    sampler = ResumableSampler(len(dataset), dist.rank, dist.world_size, seed=config.seed)
    loader = build_loader(dataset, sampler, config, dist.device)
    batches_per_epoch = sampler.per_rank // config.batch_size
    if offset >= batches_per_epoch:
        epoch, offset = epoch + 1, 0
    loss_names = _loss_names(step_fn)
    scalars = ScalarLog(run_dir, loss_names, resume_step=step if resume else None) if primary else None
    total_steps = config.steps
    last_step, last_reason = step_limit(config)
    stop = StopFlag()
    stop.install()
    bar = None
    if primary and progress:
        from tqdm import tqdm

        bar = tqdm(total=last_step, initial=step, unit="step", dynamic_ncols=True, desc=config.name)
    started = time.monotonic()
    last_ckpt = started
    window: dict[str, torch.Tensor] = {}
    window_steps, window_start, window_samples = 0, started, samples
    stopped_by = None
    last_terms: dict[str, float] = {}
    step_fn.train()
    try:
        if last_step is not None and step >= last_step:
            stopped_by = last_reason
        while stopped_by is None:
            dataset.set_epoch(epoch)
            sampler.set_position(epoch, offset * config.batch_size)
            for batch in loader:
                lr_g = learning_rate(config.lr_g, step, total_steps, config.decay_fraction)
                lr_d = learning_rate(config.lr_d, step, total_steps, config.decay_fraction)
                step_fn.set_lr(lr_g, lr_d)
                terms, fake = step_fn(batch["lq"], batch["gt"])
                step += 1
                offset += 1
                samples += config.batch_size * dist.world_size
                if offset >= batches_per_epoch:
                    epoch, offset = epoch + 1, 0
                for key, value in terms.items():
                    window[key] = window.get(key, 0) + value
                window_steps += 1
                if step % config.log_every == 0:
                    now = time.monotonic()
                    means = mean_over_ranks({k: float(v) / window_steps for k, v in window.items()}, dist)
                    if not is_finite(means):
                        raise FloatingPointError(
                            f"a loss became NaN or infinite at step {step} ({means}); resume from the last "
                            "checkpoint with a lower learning rate"
                        )
                    rate = (samples - window_samples) / max(now - window_start, 1e-9)
                    last_terms = means
                    if scalars is not None:
                        scalars.write(
                            {
                                "step": step,
                                "epoch": epoch,
                                "samples": samples,
                                "elapsed_s": trained_seconds + now - started,
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
                        say(f"step {step} samples {samples} {text} img/s={rate:.3g} lr_g={lr_g:.3g}")
                    window, window_steps, window_start, window_samples = {}, 0, now, samples
                if bar is not None:
                    bar.update(1)
                if primary and step % config.image_every == 0:
                    save_grid(
                        run_dir / "samples" / f"step_{step:07d}.png", batch["lq"], fake.cpu(), batch["gt"]
                    )
                elapsed = time.monotonic() - started
                reason = stop.reason
                if reason is None and last_step is not None and step >= last_step:
                    reason = last_reason
                if reason is None and config.max_minutes is not None and elapsed >= config.max_minutes * 60:
                    reason = "max_minutes"
                if any_rank(reason is not None, dist):
                    stopped_by = reason or "another rank stopped"
                    break
                due_by_time = (
                    config.checkpoint_minutes is not None
                    and time.monotonic() - last_ckpt >= config.checkpoint_minutes * 60
                )
                if primary and (step % config.checkpoint_every == 0 or due_by_time):
                    _save(
                        ckpt_path,
                        step_fn,
                        config,
                        dist,
                        step,
                        epoch,
                        offset,
                        samples,
                        trained_seconds + time.monotonic() - started,
                        init_note,
                    )
                    last_ckpt = time.monotonic()
    finally:
        stop.restore()
        if bar is not None:
            bar.close()
        if scalars is not None:
            scalars.close()
    trained_seconds += time.monotonic() - started
    weights_path = None
    from hifacegan.weights import tensor_sha256

    # Generator and discriminator, every rank: DDP must have kept them identical.
    digest = tensor_sha256(step_fn.generator.state_dict())
    if step_fn.discriminator is not None:
        digest += ":" + tensor_sha256(step_fn.discriminator.state_dict())
    hashes = gather_strings(digest, dist)
    summary = {
        "stopped_by": stopped_by,
        "step": step,
        "epoch": epoch,
        "samples": samples,
        "trained_seconds": round(trained_seconds, 1),
        "world_size": dist.world_size,
        "rank_weights_sha256": hashes,
        "ranks_in_sync": len(set(hashes)) == 1,
        "last_losses": last_terms,
        "perceptual": step_fn.perceptual.description if step_fn.perceptual is not None else None,
    }
    if primary:
        _save(ckpt_path, step_fn, config, dist, step, epoch, offset, samples, trained_seconds, init_note)
        weights_path = export_weights(step_fn, config, run_dir, summary, data, init_note)
        summary["weights"] = str(weights_path)
        write_bytes(run_dir / SUMMARY_FILE, (json.dumps(summary, indent=2) + "\n").encode())
        say(
            f"stopped by {stopped_by} at step {step} ({samples} samples, {trained_seconds / 60:.1f} min); "
            f"weights: {weights_path}; continue with --resume"
        )
    if not summary["ranks_in_sync"]:
        raise RuntimeError(f"ranks ended with different weights (generator:discriminator sha256): {hashes}")
    return TrainResult(run_dir, step, samples, str(stopped_by), weights_path, summary)


def _loss_names(step_fn: TrainingStep) -> list[str]:
    names = ["l1"]
    if step_fn.perceptual is not None:
        names.append("perceptual")
    if step_fn.discriminator is not None:
        names += ["gan", "fm", "d_fake", "d_real"]
    return names + ["g_total"]


def _save(
    path: Path,
    step_fn: TrainingStep,
    config: TrainConfig,
    dist: DistInfo,
    step: int,
    epoch: int,
    offset: int,
    samples: int,
    trained_seconds: float,
    init_note: str | None,
) -> None:
    save_checkpoint(
        path,
        {
            **step_fn.state_dict(),
            "step": step,
            "epoch": epoch,
            "offset": offset,
            "samples": samples,
            "trained_seconds": trained_seconds,
            "world_size": dist.world_size,
            "batch_size": config.batch_size,
            "rng": rng_state(),
            "init_from": init_note,
        },
    )


def export_weights(
    step_fn: TrainingStep,
    config: TrainConfig,
    run_dir: Path,
    summary: dict[str, Any],
    data: Path,
    init_note: str | None,
) -> Path:
    """Write ``RUN_DIR/NAME.safetensors`` (and its Markdown card) with the recipe that made it."""
    from hifacegan.weights import ModelCard, save_weights

    role = config.role or ("fidelity" if config.fidelity and not config.gan else "perceptual")
    losses = []
    if config.fidelity:
        losses.append(f"L1 x{config.lambda_l1:g}")
    if step_fn.perceptual is not None:
        losses.append(f"perceptual x{config.lambda_perceptual:g} ({step_fn.perceptual.backbone})")
    if config.gan:
        losses.append(
            f"LSGAN x{config.lambda_gan:g} + feature matching x{config.lambda_fm:g} ({config.discriminator})"
        )
    training = {
        "losses": ", ".join(losses),
        "perceptual_network": summary["perceptual"],
        "data": f"{data.name}, {summary['samples']} samples seen, degradation task {config.task!r}, "
        f"random flips {config.flip}"
        + (
            f", zoom-out p {config.zoom_out_probability:g} (scale {config.zoom_out_min_scale:g}-1)"
            if config.zoom_out_probability
            else ""
        )
        + (f", undegraded p {config.clean_probability:g}" if config.clean_probability else ""),
        "steps": summary["step"],
        "batch_size": f"{config.batch_size} x {summary['world_size']} process(es)",
        "optimizer": f"Adam betas ({config.beta1:g}, {config.beta2:g}), lr G {config.lr_g:g}"
        + (f" / D {config.lr_d:g}, " if config.gan else ", ")
        + (
            f"constant then linear decay over the last {config.decay_fraction:.0%} of {config.steps} steps"
            if config.steps
            else "constant"
        ),
        "trained_minutes": round(summary["trained_seconds"] / 60, 1),
        "stopped_by": summary["stopped_by"],
        "seed": config.seed,
    }
    if init_note:
        training["initialised_from"] = init_note
    size = config.image_size
    template, training["template"] = card_template(config, data, run_dir)
    card = ModelCard(
        name=config.name,
        config=config.generator,
        config_overrides=dict(config.generator_overrides),
        size=size,
        output="symmetric",
        template=template,
        role=role,
        partner=config.partner,
        description=config.description or f"{config.generator} trained with `hifacegan train` ({role}).",
        license=config.license,
        training=training,
    )
    path = run_dir / f"{config.name}.safetensors"
    save_weights(
        path,
        step_fn.generator,
        card,
        dtype=torch.float16 if config.export_fp16 else None,
        write_markdown=True,
    )
    return path


def card_template(config: TrainConfig, data: Path, run_dir: Path) -> tuple[list[list[float]], str]:
    """The alignment template for the card, and a note on where it came from.

    ``data``: the median landmarks of the training faces (``hifacegan.face.template``), measured once per run and
    kept in ``RUN_DIR/template.json``. When no face is found there the FFHQ template is used and the note says so.
    """
    from hifacegan.weights import FFHQ_TEMPLATE_512, scale_template

    size = config.image_size
    if isinstance(config.template, list):
        return config.template, "given in the training config"
    ffhq = scale_template(FFHQ_TEMPLATE_512, 512, size)
    if config.template == "ffhq":
        return ffhq, "FFHQ 5-point template (the paper's alignment)"
    cached = run_dir / "template.json"
    if cached.is_file():
        measured = json.loads(cached.read_text())
    else:
        from hifacegan.face.template import estimate_template

        try:
            measured = estimate_template(data, size, limit=200, seed=config.seed).as_dict()
        except (ValueError, RuntimeError, OSError) as error:
            return ffhq, f"FFHQ 5-point template: measuring the training faces failed ({error})"
        write_bytes(cached, (json.dumps(measured, indent=2) + "\n").encode())
    note = (
        f"median RetinaFace landmarks of {measured['faces_used']} training faces "
        f"({measured['faces_missed']} without a detection)"
    )
    return measured["template"], note
