"""The server's log files."""

from __future__ import annotations

import logging
import logging.handlers
import sys
import time
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


class RejectionLog:
    """Logs what a peer got refused without letting a flood fill the disk: the first ``burst`` per ``window``
    seconds in full, then only a count, summarised once the window ends ("N rejected requests in the last
    minute"). Used for everything a peer can cause before it proved it has the token."""

    def __init__(
        self, logger: logging.Logger, what: str, template: str, burst: int = 5, window: float = 60.0
    ) -> None:
        self.logger = logger
        self.what = what
        self.template = template
        self.burst = burst
        self.window = window
        self.started = time.monotonic()
        self.count = 0

    def __call__(self, detail: str, exc_info: bool = False) -> None:
        self.tick()
        self.count += 1
        if self.count <= self.burst:
            self.logger.warning(self.template, detail, exc_info=exc_info)
        elif self.count == self.burst + 1:
            self.logger.warning("more %s follow; counting them instead of logging each", self.what)

    def tick(self, now: float | None = None) -> None:
        """Close the window once it has passed, logging the count of what it did not log one by one."""
        now = time.monotonic() if now is None else now
        if now - self.started < self.window:
            return
        if self.count > self.burst:
            self.logger.warning("%d %s in the last %.0f s", self.count, self.what, now - self.started)
        self.started, self.count = now, 0
