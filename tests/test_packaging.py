"""What the wheel holds: the embedded weights, never a training checkpoint, and a bounded size.

The wheel is built from a copy of the working tree (build outputs left out), so a stale ``build/`` folder can
neither hide nor add a file, and a checkpoint lying untracked in the package tree would be caught.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from conftest import REPO

MAX_WHEEL_BYTES = 40 * 1024 * 1024
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")
SCRATCH = (".git", ".venv", "build", "dist", "runs", "out", "tmp", "*.egg-info", "__pycache__", ".*_cache")


def test_wheel_ships_embedded_weights_and_no_checkpoint(tmp_path: Path) -> None:
    source = tmp_path / "src"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*SCRATCH))
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-qw", wheels, source],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()

    assert wheel.stat().st_size < MAX_WHEEL_BYTES, f"{wheel.name}: {wheel.stat().st_size / 2**20:.1f} MB"
    assert [n for n in names if n.endswith(CHECKPOINT_SUFFIXES)] == []
    embedded = {Path(n).name for n in names if n.startswith("hifacegan/weights/embedded/")}
    assert {"hifacegan-lite-fidelity.safetensors", "hifacegan-lite-perceptual.safetensors"} <= embedded
    assert not any(n.startswith(("hifacegan/weights/training/", "docs/")) for n in names)
