"""The plug-in's log: a small rotating file beside the server's logs, and user text for any exception."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from .common import file_logger

_logger: logging.Logger | None = None


def _log_dir() -> Path:
    try:
        from .client_loader import load_paths

        return Path(load_paths().log_dir())
    except Exception:  # the log must work even when the client is missing: that is what it reports
        return Path(os.environ.get("RENOVATE_FACES_LOG_DIR") or tempfile.gettempdir())


def logger() -> logging.Logger:
    """Created on first use, so importing the plug-in touches no file."""
    global _logger
    if _logger is None:
        _logger = file_logger("renovate_faces.krita", _log_dir(), "krita-plugin.log")
    return _logger


def log_error(exc: BaseException) -> str:
    """Log ``exc`` with its traceback and return the sentence to show the user.

    Our own errors (and the client's) already carry a sentence a user can act on; anything else is a bug, so the
    user is pointed at the log file.
    """
    logger().error("%s", exc, exc_info=exc)
    text = str(exc).strip()
    if type(exc).__module__.split(".")[-1] in ("client", "pixels", "core", "client_loader") and text:
        return text
    if isinstance(exc, (OSError, ValueError)) and text:
        return text
    return (
        f"Renovate Faces failed unexpectedly ({type(exc).__name__}: {text}). Details are in the plug-in log."
    )
