"""What the small trainers (the damage detector, the face-quality network) share: a run folder that stops cleanly
and resumes exactly, a constant-then-linear-decay learning rate, and a CSV of held-out scores.

A run folder holds ``checkpoints/last.pt`` (network, optimiser, step and the settings, so ``--resume`` needs only
the folder) and ``scalars.csv``. The generator's trainer (hifacegan.train.loop) has its own, richer loop.
"""

from __future__ import annotations

import csv
import io
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import torch
from tqdm import tqdm

from hifacegan.train.checkpoint import LAST, load_checkpoint, save_checkpoint, write_bytes

Settings = TypeVar("Settings")


class StopOnSignal:
    """Notes SIGTERM / SIGINT in ``signal`` (its name) instead of dying mid-step; ``restore()`` puts the previous
    handlers back. Outside the main thread it installs nothing (Python delivers signals there only)."""

    def __init__(self) -> None:
        self.signal: str | None = None
        self.previous = {}
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGTERM, signal.SIGINT):
                self.previous[number] = signal.signal(number, self._note)

    def _note(self, number: int, frame: object) -> None:
        self.signal = signal.Signals(number).name

    def restore(self) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)


def decayed_lr(lr: float, steps: int, decay_fraction: float, step: int) -> float:
    """``lr`` until the last ``decay_fraction`` of ``steps``, then linearly down to 0 at ``steps``."""
    decay_start = steps * (1 - decay_fraction)
    if step < decay_start:
        return lr
    return lr * max(0.0, (steps - step) / max(1.0, steps - decay_start))


def open_run(
    run: Path, settings: Settings | None, resume: bool, kind: type[Settings], what: str
) -> tuple[Settings, dict[str, Any]]:
    """The settings and checkpoint state of the run in ``run``: resumed (its stored settings, as ``kind``) or new
    (``settings``; the folder must not hold a run). ``what`` names the run in errors ("detector run")."""
    checkpoint = run / "checkpoints" / LAST
    if resume:
        if not checkpoint.is_file():
            raise FileNotFoundError(f"{run} holds no {what} to resume ({checkpoint} is missing)")
        state = load_checkpoint(checkpoint, holds="network")
        return kind(**state["settings"]), state
    if checkpoint.is_file():
        raise FileExistsError(
            f"{run} already holds a {what}; continue it with --resume or pick another --out"
        )
    if settings is None:
        raise ValueError(f"a new {what} needs its settings")
    return settings, {}


def save_run(
    run: Path, network: torch.nn.Module, optimiser: torch.optim.Optimizer, step: int, settings
) -> None:
    """Write ``checkpoints/last.pt``: what ``open_run`` resumes from."""
    payload = {"network": network.state_dict(), "optimiser": optimiser.state_dict(), "step": step}
    save_checkpoint(run / "checkpoints" / LAST, {**payload, "settings": asdict(settings)})


def append_scalars(
    run: Path, names: tuple[str, ...], step: int, samples: int, minutes: float, loss: float, scores: dict
) -> None:
    """Add one row (step, samples, minutes, loss, then ``scores`` in the order of ``names``) to ``scalars.csv``."""
    path = run / "scalars.csv"
    rows = path.read_text() if path.is_file() else "step,samples,minutes,loss," + ",".join(names) + "\n"
    line = io.StringIO()
    values = [f"{scores[name]:.4f}" for name in names]
    csv.writer(line).writerow([step, samples, f"{minutes:.2f}", f"{loss:.5f}", *values])
    write_bytes(path, (rows + line.getvalue()).encode())


def train_steps(
    run: Path,
    network: torch.nn.Module,
    optimiser: torch.optim.Optimizer,
    loader: Iterable,
    settings,
    step: int,
    loss_of: Callable[[dict], torch.Tensor],
    score: Callable[[], dict[str, float]],
    names: tuple[str, ...],
    *,
    max_minutes: float | None = None,
    log: Callable[[str], None] = print,
    progress: bool = True,
    on_score: Callable[[int, dict[str, float]], None] | None = None,
) -> tuple[int, dict[str, float]]:
    """Optimise ``network`` on ``loader``'s batches from ``step`` to ``settings.steps`` (Adam's rate from
    :func:`decayed_lr`), scoring every ``settings.eval_every`` steps (``score()``, logged to ``scalars.csv`` under
    ``names``, then ``on_score(step, scores)``), saving every 5 minutes, and stopping early at ``max_minutes`` or
    on SIGTERM / Ctrl-C. ``settings`` has ``lr, steps, decay_fraction, eval_every, batch_size, name``. Saves at the
    end; returns the step reached and the last scores ({} when none were taken)."""
    began = last_save = time.monotonic()
    scores: dict[str, float] = {}
    bar = tqdm(
        loader, initial=step, total=settings.steps, desc=settings.name, unit="step", disable=not progress
    )
    stop = StopOnSignal()
    network.train()
    for batch in bar:
        for group in optimiser.param_groups:
            group["lr"] = decayed_lr(settings.lr, settings.steps, settings.decay_fraction, step)
        loss = loss_of(batch)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        step += 1
        bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
        minutes = (time.monotonic() - began) / 60
        if step % settings.eval_every == 0 or step == settings.steps:
            scores = score()
            append_scalars(run, names, step, step * settings.batch_size, minutes, loss.item(), scores)
            shown = ", ".join(f"{name} {scores[name]:.3f}" for name in names)
            log(f"step {step}/{settings.steps}: loss {loss.item():.4f}, held-out {shown}")
            if on_score is not None:
                on_score(step, scores)
        if time.monotonic() - last_save > 300:
            save_run(run, network, optimiser, step, settings)
            last_save = time.monotonic()
        if max_minutes is not None and minutes >= max_minutes:
            log(f"stopping at step {step}: --max-minutes {max_minutes:g} reached")
            break
        if stop.signal:
            log(f"stopping at step {step}: {stop.signal}; continue with --resume")
            break
    stop.restore()
    bar.close()
    save_run(run, network, optimiser, step, settings)
    return step, scores
