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

# Four embedded networks of 13.5 MB (the 128 and 256 px rungs, each with both ends of the fidelity slider), the
# damage detector and the code: about 49.5 MB. Room for the code to grow, none for another network unnoticed.
MAX_WHEEL_BYTES = 56 * 1024 * 1024
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
    assert {
        f"hifacegan-lite{rung}-{end}.safetensors"
        for rung in ("", "-256")
        for end in ("fidelity", "perceptual")
    } <= embedded
    assert not any(n.startswith(("hifacegan/weights/training/", "docs/")) for n in names)

    # Every package folder ships, under its import name: server/ and installers/ as hifacegan_server and
    # hifacegan_installers, never as top-level `server` or `installers` that another distribution could shadow.
    packages = [p.parent.relative_to(REPO).as_posix() for p in (REPO / "hifacegan").rglob("__init__.py")]
    missing = [p for p in packages if f"{p}/__init__.py" not in names]
    assert missing == [], f"add these to [tool.setuptools] packages in pyproject.toml: {missing}"
    shipped = {Path(n).parts[0] for n in names if not n.startswith("hifacegan-")}
    assert shipped == {"hifacegan", "hifacegan_server", "hifacegan_installers"}, shipped
    assert {f"hifacegan_server/{p.name}" for p in (REPO / "server").glob("*.py")} <= set(names)
    assert {
        f"hifacegan_installers/templates/{p.name}" for p in (REPO / "installers" / "templates").iterdir()
    } <= set(names)

    # The unpacked wheel imports by itself: the daemon, the client's command, the installer and the doctor.
    unpacked = tmp_path / "unpacked"
    zipfile.ZipFile(wheel).extractall(unpacked)
    site_packages = [p for p in sys.path if p.endswith("site-packages")]
    code = (
        "import sys; sys.path[:0] = [sys.argv[1]]; sys.path += sys.argv[2:]\n"
        "import hifacegan_server.daemon, hifacegan_server.client_cli, hifacegan_installers.install\n"
        "import hifacegan_installers.doctor\n"
        "print(hifacegan_server.daemon.__file__)"
    )
    # -S: no site-packages' .pth files, so the developer's editable install cannot answer instead of the wheel.
    run = subprocess.run(
        [sys.executable, "-S", "-c", code, unpacked, *site_packages],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == str(unpacked / "hifacegan_server" / "daemon.py")
