"""What a run leaves to look at: scalars as CSV (and TensorBoard events when it is installed), image grids."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np
import torch

from hifacegan.data.files import encode_png
from hifacegan.train.checkpoint import write_bytes

SCALARS = "scalars.csv"
BASE_COLUMNS = ["step", "epoch", "samples", "elapsed_s", "images_per_s", "lr_g", "lr_d"]


class ScalarLog:
    """Append-only CSV of logged scalars; on resume, rows past the checkpoint's step are dropped first.

    Dropping them keeps the CSV one consistent run: the steps between the last checkpoint and a crash are
    trained again after ``--resume`` and logged again.
    """

    def __init__(self, run_dir: Path, loss_names: list[str], resume_step: int | None = None) -> None:
        self.path = run_dir / SCALARS
        self.columns = BASE_COLUMNS + loss_names
        if resume_step is not None and self.path.is_file():
            self._truncate(resume_step)
        elif self.path.is_file():
            self.path.unlink()
        self._writer = None
        self._tensorboard = _open_tensorboard(run_dir)

    def _truncate(self, step: int) -> None:
        with self.path.open(newline="") as stream:
            rows = list(csv.DictReader(stream))
        keep = [row for row in rows if int(row["step"]) <= step]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(keep)
        write_bytes(self.path, buffer.getvalue().encode())

    def write(self, row: dict[str, float]) -> None:
        new = not self.path.is_file()
        with self.path.open("a", newline="") as stream:
            writer = csv.DictWriter(stream, fieldnames=self.columns, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow({k: _fmt(v) for k, v in row.items()})
        if self._tensorboard is not None:
            for key, value in row.items():
                if key not in ("step", "epoch"):
                    self._tensorboard.add_scalar(key, value, int(row["step"]))

    def close(self) -> None:
        if self._tensorboard is not None:
            self._tensorboard.close()


def _fmt(value: float) -> str:
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 1e15):
        return str(int(value))
    return f"{value:.6g}"


def _open_tensorboard(run_dir: Path):
    """A SummaryWriter only when the ``tensorboard`` package is importable (it is optional)."""
    try:
        import tensorboard  # noqa: F401
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(log_dir=str(run_dir / "tensorboard"))


def read_scalars(run_dir: Path) -> list[dict[str, float]]:
    """The CSV back as numbers (tests and reports)."""
    with (run_dir / SCALARS).open(newline="") as stream:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(stream)]


def image_grid(
    degraded: torch.Tensor, output: torch.Tensor, clean: torch.Tensor, max_rows: int = 4
) -> np.ndarray:
    """A uint8 RGB grid, one row per sample: degraded | output | clean (all (N, 3, H, W) in [0, 1])."""
    rows = []
    for i in range(min(max_rows, degraded.shape[0])):
        row = torch.cat([degraded[i], output[i], clean[i]], dim=2)
        rows.append(row)
    grid = torch.cat(rows, dim=1).float().clamp(0, 1)
    return (grid.permute(1, 2, 0).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)


def save_grid(path: Path, degraded: torch.Tensor, output: torch.Tensor, clean: torch.Tensor) -> None:
    write_bytes(path, encode_png(image_grid(degraded, output, clean)))


def is_finite(terms: dict[str, float]) -> bool:
    return all(math.isfinite(v) for v in terms.values())
