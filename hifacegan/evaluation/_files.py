"""Reading the evaluation's images and writing its reports, atomically.

Files are found, read and keyed exactly as ``hifacegan degrade`` and the validation datasets do
(``hifacegan.data.files``), so the degraded inputs of an evaluation are the bytes ``hifacegan degrade --size N``
writes for the same seed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hifacegan._files import write_bytes_atomic
from hifacegan.data.files import image_key, list_images, read_rgb8, write_png_atomic


def find_images(folder: str | Path, limit: int | None = None) -> tuple[list[Path], list[str]]:
    """Image files under ``folder`` sorted by relative path (so ``--limit K`` always takes the same K), and keys."""
    root = Path(folder).expanduser()
    if limit is not None and limit < 1:
        raise ValueError(f"--limit must be at least 1, got {limit}")
    files = list_images(root, what="--data folder")
    if limit is not None:
        files = files[:limit]
    return files, [image_key(f, root) for f in files]


def read_rgb(path: Path) -> np.ndarray:
    """uint8 RGB (H, W, 3), whatever the file's depth, alpha or orientation."""
    return read_rgb8(path)[0]


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: Path, data: object) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def save_png_atomic(path: Path, image: np.ndarray) -> None:
    """Lossless PNG of a uint8 RGB array, written atomically."""
    write_png_atomic(path, image)
