"""File helpers shared by every writer in the package (standard library only, so torch-free modules can use it)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """The sha256 of a file's bytes, as hex, read in chunks (weights files are tens of megabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def ordinary_file_mode() -> int:
    """The mode a plain ``open(path, "w")`` would give (0666 less the umask), for files made with mkstemp.

    ``mkstemp`` creates 0600 files: atomic writers chmod their temporary file to this before renaming it, so
    photos, weights and run logs stay readable as any other file the user writes.
    """
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def atomic_output(path: Path, *, fsync: bool = False, suffix: str = ".tmp") -> Iterator[BinaryIO]:
    """A binary stream whose bytes replace ``path`` only when the block ends without an exception.

    Every file the package writes goes through here: readers see the old file or the whole new one, never half
    (a crash, a full disk or a failed checksum leaves nothing behind), and the result gets the usual permissions.
    ``fsync`` for files whose loss after a power cut costs more than the flush (checkpoints, downloads).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    try:
        with os.fdopen(handle, "wb") as stream:
            yield stream
            if fsync:
                stream.flush()
                os.fsync(stream.fileno())
        os.chmod(temporary, ordinary_file_mode())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: Path, data: bytes, *, fsync: bool = False) -> None:
    """``path.write_bytes(data)``, atomically (see :func:`atomic_output`)."""
    with atomic_output(path, fsync=fsync) as stream:
        stream.write(data)
