"""The server's log files."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

from server import paths


def setup_logging(foreground: bool, verbose: bool) -> Path:
    folder = paths.log_dir()
    folder.mkdir(parents=True, exist_ok=True)
    logfile = folder / paths.LOG_FILE
    root = logging.getLogger("renovate-faces")
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.handlers.clear()
    fmt = logging.Formatter("%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
    handler = logging.handlers.RotatingFileHandler(logfile, maxBytes=1 << 20, backupCount=3, encoding="utf-8")
    handler.setFormatter(fmt)
    root.addHandler(handler)
    if foreground:
        console = logging.StreamHandler(sys.stderr)
        console.setFormatter(fmt)
        root.addHandler(console)
    return logfile
