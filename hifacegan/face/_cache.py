"""Where converted and downloaded detector weights live, and how files get there without tearing.

Everything the face package fetches or converts goes to one folder: the user's cache dir for the app
("renovate-faces"), or ``$HIFACEGAN_CACHE_DIR`` when set (tests point it at a temporary folder).
"""

from __future__ import annotations

import os
from pathlib import Path

from hifacegan._files import atomic_output

APP_NAME = "renovate-faces"
CACHE_ENV = "HIFACEGAN_CACHE_DIR"


def cache_dir() -> Path:
    """The folder for converted/downloaded face models (created on demand)."""
    override = os.environ.get(CACHE_ENV)
    if override:
        path = Path(override).expanduser()
    else:
        import platformdirs

        path = Path(platformdirs.user_cache_dir(APP_NAME))
    path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Converted detector weights: fsynced, since a torn file would fail every later start."""
    with atomic_output(path, fsync=True, suffix=".part") as stream:
        stream.write(data)
