"""Why a job ended badly, in one place: the exception types the worker raises, the one table that maps the
exceptions that can end a job to the protocol's error codes, and the message its client reads.

A bug (an exception no row matches) reads ``internal``, with its traceback in the log, never as the user's mistake.
"""

from __future__ import annotations

import functools
import logging
import sys
import traceback
from typing import TYPE_CHECKING

from hifacegan_server import paths
from hifacegan_server import protocol as P

if TYPE_CHECKING:
    from hifacegan_server.fairqueue import Job

log = logging.getLogger("renovate-faces.jobs")  # the failures are the jobs' own: the jobs' logger

# Why a job was stopped -> the error code its client receives.
REASON_CODES = {
    "cancelled": P.E_CANCELLED,
    "client_gone": P.E_CANCELLED,
    "timeout": P.E_TIMEOUT,
    "shutting_down": P.E_SHUTTING_DOWN,
}
REASON_TEXT = {
    "cancelled": "The job was cancelled.",
    "client_gone": "The job was cancelled because its client stopped sending heartbeats.",
    "timeout": "The job took longer than its {timeout:.0f} s time limit; try a smaller image or region, "
    "or raise the limit with the 'timeout' option.",
    "shutting_down": "The server is shutting down; start it again and retry.",
}


class JobStopped(Exception):
    """Raised inside the pipeline's progress callback to stop a job that was cancelled or timed out."""


class LoadOutOfMemory(MemoryError):
    """Memory ran out while the weights were loading, before any image was looked at."""

    def __init__(self, weights: str, device: str) -> None:
        super().__init__(f"not enough memory to load the weights {weights!r} on {device}")
        self.weights = weights
        self.device = device


class PipelineUnavailable(Exception):
    """The pipeline (torch, OpenCV, the library) cannot be imported, so no weights can be loaded."""


@functools.cache
def error_table() -> tuple[tuple[tuple[type[BaseException], ...], str], ...]:
    """The one map from the exceptions that can end a job to the protocol's error codes (first match wins).

    An exception no row matches is a bug: ``internal``, its traceback in the log. A ``ProtocolError`` (such as
    ``BadOption``, raised where options are validated) carries its own code. The library's types are imported
    here, in the worker, never at daemon start; without the library only the server's own rows remain.
    """
    cancelled: tuple[type[BaseException], ...] = (JobStopped,)
    out_of_memory: tuple[type[BaseException], ...] = (MemoryError,)
    weights: tuple[type[BaseException], ...] = (PipelineUnavailable,)
    no_face: tuple[type[BaseException], ...] = ()
    try:
        import torch

        from hifacegan.pipeline import Cancelled, NoFaceFound, WeightsUnavailable
        from hifacegan.weights import WeightsError
    except ImportError:
        pass
    else:
        cancelled += (Cancelled,)
        out_of_memory += (torch.cuda.OutOfMemoryError,)
        weights += (WeightsUnavailable, WeightsError)
        no_face += (NoFaceFound,)  # a preview of a photo without a (big enough) face
    return (
        (cancelled, P.E_CANCELLED),
        (out_of_memory, P.E_OUT_OF_MEMORY),
        (weights, P.E_WEIGHTS),
        (no_face, P.E_NO_FACE),
    )


def error_code(exc: BaseException) -> str:
    """The protocol error code for an exception that ended a job: :func:`error_table`'s, else ``internal``."""
    if isinstance(exc, P.ProtocolError):
        return exc.code
    for types, code in error_table():
        if isinstance(exc, types):
            return code
    if is_out_of_memory(exc):  # MPS and older torch raise a plain RuntimeError
        return P.E_OUT_OF_MEMORY
    return P.E_INTERNAL


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` means memory ran out: on the host, or on the GPU (by type, or by message for MPS and
    older torch, which raise a plain RuntimeError)."""
    if isinstance(exc, MemoryError):
        return True
    torch = sys.modules.get("torch")
    oom = getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None) if torch else None
    if oom is not None and isinstance(exc, oom):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def sentence(exc: BaseException) -> str:
    """An exception's text as a sentence (its type's name when it has none)."""
    text = str(exc).strip() or type(exc).__name__
    return text if text.endswith((".", "!", "?")) else text + "."


def internal_message() -> str:
    """What the client of a job that hit a bug reads: not the user's fault, retry, and where the traceback is."""
    return (
        "The server failed on this job because of an internal error, not because of the image or the "
        f"options. Retry, and report the traceback in {paths.log_dir() / paths.LOG_FILE} if it happens "
        "again."
    )


def failure(job: Job, weights: str, exc: Exception) -> tuple[str, str]:
    """The error code and message that end ``job``, for its exception as :func:`error_table` maps it; what the
    user cannot act on (a bug, the weights, memory) is also logged, a bug with its traceback."""
    code = error_code(exc)
    where = f"job {job.session}/{job.job_id}"
    if code == P.E_CANCELLED:
        if job.cancel_event.is_set():
            code, message = job.stop_error()
        else:
            message = REASON_TEXT["cancelled"]
    elif code == P.E_OUT_OF_MEMORY:
        log.warning("%s ran out of memory: %s", where, exc)
        message = "Not enough memory to renovate this image; select a smaller region or close other programs."
        if isinstance(exc, LoadOutOfMemory):
            message = (
                f"Not enough memory to load the weights {exc.weights!r} on {exc.device}; close other programs "
                "that use it, or start the server with --device cpu."
            )
    elif code == P.E_NO_FACE:
        message = (
            f"{sentence(exc)[0].upper()}{sentence(exc)[1:]} Preview a photo or a selection with a face in it."
        )
    elif code == P.E_WEIGHTS:
        log.error("%s: weights %r unavailable: %s", where, weights, exc)
        message = f"The weights {weights!r} could not be loaded: {sentence(exc)}"
    elif code == P.E_INTERNAL:
        log.error("%s failed:\n%s", where, "".join(traceback.format_exception(exc)))
        message = internal_message()
    else:  # a ProtocolError: its message is already written for the user
        message = exc.message if isinstance(exc, P.ProtocolError) else sentence(exc)
    return code, message
