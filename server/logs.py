"""The server's logs, bounded: rotated, owner-only, capped on stderr, and rate-limited for what strangers cause."""

from __future__ import annotations

import io
import logging
import logging.handlers
import sys
import time
from pathlib import Path
from typing import Any

from hifacegan_server import paths


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log whose files are created owner-only (0600): the log names the user's files and jobs."""

    def _open(self):  # noqa: ANN202 - the base class's signature
        return io.TextIOWrapper(paths.open_private_append(Path(self.baseFilename)), encoding=self.encoding)


class CappedStreamHandler(logging.StreamHandler):
    """The console copy of the log, cut off after ``limit`` bytes: a detached server's stderr is a plain file
    (``server-stderr.log``) that nothing rotates while the server runs, so it must bound itself."""

    def __init__(self, stream: Any, limit: int, logfile: Path) -> None:
        super().__init__(stream)
        self.limit = limit
        self.logfile = logfile
        self.written = 0

    def emit(self, record: logging.LogRecord) -> None:
        if self.written >= self.limit:
            return
        text = self.format(record) + self.terminator
        self.written += len(text.encode("utf-8", "replace"))
        if self.written >= self.limit:
            text = f"(stderr log limit of {self.limit} bytes reached; the rest is only in {self.logfile})\n"
        try:
            self.stream.write(text)
            self.flush()
        except Exception:
            self.handleError(record)


def setup_logging(foreground: bool, verbose: bool) -> Path:
    """``<log>/server.log`` (1 MiB x 4, 0600, in a 0700 folder), and in the foreground a copy on stderr capped
    at ``paths.STDERR_LOG_LIMIT``: every log file has a bound, whoever started the server."""
    logfile = paths.ensure_log_dir() / paths.LOG_FILE
    root = logging.getLogger("renovate-faces")
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.handlers.clear()
    fmt = logging.Formatter("%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
    handler = PrivateRotatingFileHandler(logfile, maxBytes=1 << 20, backupCount=3, encoding="utf-8")
    handler.setFormatter(fmt)
    root.addHandler(handler)
    if foreground:
        console = CappedStreamHandler(sys.stderr, paths.STDERR_LOG_LIMIT, logfile)
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
            span = "minute" if round(now - self.started) in (60, 61) else f"{now - self.started:.0f} s"
            self.logger.warning("%d %s in the last %s", self.count, self.what, span)
        self.started, self.count = now, 0
