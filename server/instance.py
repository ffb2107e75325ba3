"""One server per user, and starting it detached: the lock, the info file and the spawned process.

The lock is an OS file lock in the runtime folder, so a server killed with SIGKILL frees it at once; the info file
tells a second server (and ``hifacegan-client``) which process holds it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hifacegan_server import paths
from hifacegan_server.client import EXIT_ALREADY_RUNNING, start_detached


class SingleInstance:
    """An exclusive lock in the runtime folder: one server per user, released by the OS if the server dies."""

    def __init__(self, runtime: Path) -> None:
        self.lock_path = runtime / paths.LOCK_FILE
        self.info_path = runtime / paths.INFO_FILE
        self._fh: Any = None

    def acquire(self) -> bool:
        fh = open(self.lock_path, "a+")  # noqa: SIM115 - held for the life of the server
        try:
            if os.name == "nt":
                import msvcrt

                msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            return False
        self._fh = fh
        return True

    def holder(self) -> dict[str, Any]:
        try:
            return json.loads(self.info_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def publish(self, info: dict[str, Any]) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".info.", dir=self.info_path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(info, fh)
        os.replace(tmp, self.info_path)

    def release(self) -> None:
        with contextlib.suppress(OSError):
            self.info_path.unlink()
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def already_running_message(info: dict[str, Any], runtime: Path) -> str:
    if info.get("pid"):
        return (
            f"hifacegan-server is already running (pid {info['pid']}, serving {info.get('endpoint')}). "
            f"Stop it with 'hifacegan-client shutdown' or 'kill {info['pid']}'."
        )
    return f"hifacegan-server is already running (it holds {runtime / paths.LOCK_FILE})."


def spawn_detached(argv: list[str]) -> int:
    """Start the server in its own session and return once it publishes its endpoint (or fails)."""
    runtime = paths.ensure_private_dir(paths.runtime_dir())
    instance = SingleInstance(runtime)
    if not instance.acquire():
        print(already_running_message(instance.holder(), runtime), file=sys.stderr)
        return EXIT_ALREADY_RUNNING
    instance.release()
    proc, stderr_path = start_detached([sys.executable, "-m", "hifacegan_server", "--foreground", *argv])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        info = instance.holder()
        if info.get("pid") == proc.pid:
            print(f"hifacegan-server: serving {info['endpoint']} (pid {proc.pid}); log: {info.get('log')}")
            return 0
        rc = proc.poll()
        if rc is not None:
            tail = paths.log_tail(stderr_path, 5)
            print("\n".join(tail) or f"hifacegan-server exited with status {rc}", file=sys.stderr)
            return rc or 1
        time.sleep(0.05)
    print(f"hifacegan-server did not start within 60 s; see {stderr_path}", file=sys.stderr)
    return 1
