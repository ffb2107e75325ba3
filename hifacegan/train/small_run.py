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
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import torch

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
