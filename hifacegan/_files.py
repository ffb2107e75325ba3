"""File helpers shared by every writer in the package (standard library only, so torch-free modules can use it)."""

from __future__ import annotations

import os


def ordinary_file_mode() -> int:
    """The mode a plain ``open(path, "w")`` would give (0666 less the umask), for files made with mkstemp.

    ``mkstemp`` creates 0600 files: atomic writers chmod their temporary file to this before renaming it, so
    photos, weights and run logs stay readable as any other file the user writes.
    """
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask
