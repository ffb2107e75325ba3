"""Renovation jobs: a bounded queue that is fair between clients, and the worker threads that run the pipeline.

The daemon's main thread owns the ZeroMQ socket; workers never touch it. A worker reports progress and results
as events on a plain queue and wakes the main thread through an ``inproc://`` socket, so pixel arrays travel
from the pipeline to the network without a copy.

Previews (one face, to follow a fidelity slider) wait in a lane of their own that the worker serves first: when it
is idle, and also inside a running job, between its batches of faces (from the pipeline's ``report`` callback).
So a preview waits at most for one batch of faces (or one detection) of another client's long job, and the
networks are still only ever run by the worker's own thread.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import logging
import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import zmq

from server import paths
from server import protocol as P

log = logging.getLogger("renovate-faces.jobs")

QUEUED, RUNNING, DONE = "queued", "running", "done"

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
# Where each stage sits in the overall progress bar, and what the user reads when the pipeline says no more. The
# stages come in the order they happen: load, detect, then for each batch of faces renovate (align and network)
# and paste (blend back), the pipeline's Progress saying which faces ("Renovating faces 5-8 of 29 (about 12 s
# left)"), then done. Over the faces the bar moves by the share of faces finished, from the start of their range.
STAGES = {
    "load": (0.0, 0.02, "Loading weights"),
    "detect": (0.02, 0.2, "Detecting faces"),
    "renovate": (0.2, 1.0, "Renovating faces"),
    "paste": (0.2, 1.0, "Blending faces back"),
    "done": (1.0, 1.0, "Done"),  # every face back; the result follows
}
PROGRESS_INTERVAL = 0.1  # seconds between progress events of one job's stage
NUMPY_DTYPES = {"u8": "u1", "u16": "<u2", "f32": "<f4"}  # the protocol's sample types as numpy's
MAX_PREVIEWS = 16  # previews waiting in all
MAX_PREVIEWS_PER_SESSION = 2  # a slider sends one at a time; two lets the next wait while one runs


class JobStopped(Exception):
    """Raised inside the pipeline's progress callback to stop a job that was cancelled or timed out."""


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
    if _is_out_of_memory(exc):  # MPS and older torch raise a plain RuntimeError
        return P.E_OUT_OF_MEMORY
    return P.E_INTERNAL


@dataclass(eq=False)
class Job:
    session: str
    job_id: str
    route: bytes
    spec: P.ImageSpec
    pixels: Any  # a buffer (zmq.Frame.buffer) holding the image rows
    mask: Any  # None or a buffer of width*height bytes
    options: dict[str, Any]
    timeout: float
    kind: str = P.OP_RENOVATE  # or P.OP_PREVIEW: one face before and after
    at: tuple[float, float] | None = None  # previews: the face at or nearest this point (None: the largest)
    pixels_key: str | None = None  # previews: the client's name for the pixels (None: the server hashes them)
    accepted: float = field(default_factory=time.monotonic)
    state: str = QUEUED
    started: float | None = None
    cancel_event: threading.Event = field(default_factory=threading.Event)
    cancel_reason: str | None = None
    worker: str | None = None
    last_progress: tuple[str | None, float] = (None, 0.0)  # stage and time of the last progress event sent
    last_fraction: float = 0.0  # the overall fraction last sent: progress never goes backwards

    @property
    def key(self) -> tuple[str, str]:
        return (self.session, self.job_id)

    @property
    def deadline(self) -> float:
        return self.accepted + self.timeout

    def stop(self, reason: str) -> None:
        if self.cancel_reason is None:
            self.cancel_reason = reason
        self.cancel_event.set()

    def stop_error(self) -> tuple[str, str]:
        reason = self.cancel_reason or "cancelled"
        return REASON_CODES[reason], REASON_TEXT[reason].format(timeout=self.timeout)


class FairQueue:
    """Bounded job queue served round-robin by session, so one client's batch cannot starve another's job."""

    def __init__(self, max_queued: int, max_per_session: int) -> None:
        self.max_queued = max_queued
        self.max_per_session = max_per_session
        self._by_session: dict[str, collections.deque[Job]] = {}
        self._turns: collections.deque[str] = collections.deque()
        self._count = 0
        self._previews: collections.deque[Job] = collections.deque()  # served before any job
        self._closed = False
        self._cond = threading.Condition()

    def __len__(self) -> int:
        return self._count + len(self._previews)

    def submit_preview(self, job: Job) -> int:
        """Queue a preview in the previews' lane; returns how many previews are ahead of it."""
        with self._cond:
            if self._closed:
                raise P.ProtocolError(P.E_SHUTTING_DOWN, REASON_TEXT["shutting_down"])
            mine = sum(1 for j in self._previews if j.session == job.session)
            if len(self._previews) >= MAX_PREVIEWS or mine >= MAX_PREVIEWS_PER_SESSION:
                raise P.ProtocolError(
                    P.E_BUSY,
                    f"{'This client already has' if mine >= MAX_PREVIEWS_PER_SESSION else 'The server has'} "
                    f"{mine if mine >= MAX_PREVIEWS_PER_SESSION else len(self._previews)} previews waiting; "
                    "wait for one to finish.",
                )
            self._previews.append(job)
            self._cond.notify()
            return len(self._previews) - 1

    def take_preview(self, ready: Callable[[Job], bool] = lambda job: True) -> Job | None:
        """The first waiting preview that ``ready`` accepts, without waiting; None when there is none."""
        with self._cond:
            for job in self._previews:
                if ready(job):
                    self._previews.remove(job)
                    return job
            return None

    def submit(self, job: Job) -> int:
        """Queue ``job``; returns how many jobs are ahead of it in its own session's line."""
        with self._cond:
            if self._closed:
                raise P.ProtocolError(P.E_SHUTTING_DOWN, REASON_TEXT["shutting_down"])
            if self._count >= self.max_queued:
                raise P.ProtocolError(
                    P.E_BUSY,
                    f"The server already has {self._count} jobs waiting; retry when some have finished.",
                )
            line = self._by_session.get(job.session)
            if line is not None and len(line) >= self.max_per_session:
                raise P.ProtocolError(
                    P.E_BUSY,
                    f"This client already has {len(line)} jobs waiting (the limit is {self.max_per_session}); "
                    "wait for one to finish.",
                )
            if line is None:
                line = self._by_session[job.session] = collections.deque()
                self._turns.append(job.session)
            line.append(job)
            self._count += 1
            self._cond.notify()
            return self._count - 1

    def take(self, timeout: float | None = None) -> Job | None:
        """The next job, taking sessions in turn; None when closed (or after ``timeout``)."""
        with self._cond:
            end = None if timeout is None else time.monotonic() + timeout
            while not self._count and not self._previews and not self._closed:
                remaining = None if end is None else end - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            if self._previews:
                return self._previews.popleft()
            if self._closed and not self._count:
                return None
            session = self._turns.popleft()
            line = self._by_session[session]
            job = line.popleft()
            if line:
                self._turns.append(session)
            else:
                del self._by_session[session]
            self._count -= 1
            return job

    def remove(self, job: Job) -> bool:
        """Take a queued job out of line; False when a worker already has it."""
        with self._cond:
            if job.kind == P.OP_PREVIEW:
                if job not in self._previews:
                    return False
                self._previews.remove(job)
                return True
            line = self._by_session.get(job.session)
            if line is None or job not in line:
                return False
            line.remove(job)
            self._count -= 1
            if not line:
                del self._by_session[job.session]
                self._turns.remove(job.session)
            return True

    def close(self) -> list[Job]:
        """Stop accepting jobs, wake idle workers and hand back everything still waiting."""
        with self._cond:
            self._closed = True
            left = [*self._previews, *(job for session in self._turns for job in self._by_session[session])]
            self._previews.clear()
            self._by_session.clear()
            self._turns.clear()
            self._count = 0
            self._cond.notify_all()
            return left


@dataclass
class Event:
    """Something a worker wants sent to a job's client. ``final`` ends the job."""

    job: Job
    header: dict[str, Any]
    frames: list[Any] = field(default_factory=list)
    final: bool = False


def _is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    torch = sys.modules.get("torch")
    oom = getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None) if torch else None
    if oom is not None and isinstance(exc, oom):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


class Worker(threading.Thread):
    """Runs jobs on one device with renovators loaded once and kept resident."""

    def __init__(
        self,
        name: str,
        device: str,
        default_weights: str,
        jobs: FairQueue,
        events: queue.SimpleQueue[Event],
        context: zmq.Context,
        wake_endpoint: str,
        renovator_factory: Callable[[str, str], Any] | None = None,
        max_resident: int = 2,
        threads: int = 0,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.device = device
        self.default_weights = default_weights
        self.jobs = jobs
        self.events = events
        self.context = context
        self.wake_endpoint = wake_endpoint
        self.renovator_factory = renovator_factory or functools.partial(_load_renovator, threads=threads)
        self.max_resident = max_resident
        self.threads = threads
        self.current: Job | None = None
        self.weights_state: dict[str, Any] = {"name": default_weights, "state": "loading", "error": None}
        self.resolved_device: str | None = None
        self.jobs_done = 0
        self.preloaded = threading.Event()  # set once the first weights load has finished, well or not
        self._renovators: collections.OrderedDict[tuple[str, str], Any] = collections.OrderedDict()
        self._previewers: dict[
            tuple[str, str], Any
        ] = {}  # a FacePreviewer (its detection cache) per renovator
        self._wake: zmq.Socket | None = None

    # -- events -----------------------------------------------------------------------------------------------
    def _emit(self, event: Event) -> None:
        self.events.put(event)
        assert self._wake is not None
        with contextlib.suppress(zmq.Again):
            self._wake.send(b"", zmq.NOBLOCK)

    def _error(self, job: Job, code: str, message: str) -> None:
        header = P.error_header(code, message, {"job": job.job_id})
        self._emit(Event(job, header, final=True))

    # -- renovators -------------------------------------------------------------------------------------------
    def renovator(self, weights: str, device: str | None = None) -> Any:
        key = (weights, device or self.device)
        if key in self._renovators:
            self._renovators.move_to_end(key)
            return self._renovators[key]
        renovator = self.renovator_factory(weights, key[1])
        self._renovators[key] = renovator
        while len(self._renovators) > self.max_resident:
            evicted, _ = self._renovators.popitem(last=False)
            self._previewers.pop(evicted, None)
            log.info("unloaded weights %s on %s to make room", *evicted)
        return renovator

    def _preload(self) -> None:
        t0 = time.monotonic()
        try:
            r = self.renovator(self.default_weights)
        except Exception as exc:
            self.weights_state.update(state="failed", error=_sentence(exc))
            log.error("could not load weights %r on %s: %s", self.default_weights, self.device, exc)
            log.debug("%s", traceback.format_exc())
            return
        self.resolved_device = str(getattr(r, "device", self.device))
        self.weights_state.update(state="ready", error=None, device=self.resolved_device)
        log.info(
            "weights %r ready on %s in %.1f s",
            self.default_weights,
            self.resolved_device,
            time.monotonic() - t0,
        )

    # -- the loop ---------------------------------------------------------------------------------------------
    def run(self) -> None:
        self._wake = self.context.socket(zmq.PUSH)
        self._wake.setsockopt(zmq.LINGER, 0)
        self._wake.setsockopt(zmq.SNDHWM, 1)
        self._wake.connect(self.wake_endpoint)
        try:
            try:
                if self.threads > 0:
                    import torch

                    torch.set_num_threads(self.threads)
                self._preload()
            finally:
                self.preloaded.set()
            while True:
                job = self.jobs.take()
                if job is None:
                    break
                self.current = job
                try:
                    if job.kind == P.OP_PREVIEW:
                        self._run_preview(job)
                    else:
                        self._run_job(job)
                finally:
                    self.current = None
                    self.jobs_done += 1
        finally:
            self._wake.close(0)

    def _start(self, job: Job) -> str | None:
        """Mark ``job`` running; the weights it asks for, or None when it was stopped while it waited."""
        job.state = RUNNING
        job.started = time.monotonic()
        job.worker = self.name
        if job.cancel_event.is_set():
            self._error(job, *job.stop_error())
            return None
        return job.options.get("weights") or self.default_weights

    def _run_preview(self, job: Job) -> None:
        weights = self._start(job)
        if weights is None:
            return
        try:
            renovator = self.renovator(weights)
            key = (weights, self.device)
            if key not in self._previewers:
                from hifacegan.pipeline import FacePreviewer

                self._previewers[key] = FacePreviewer(renovator)
            spec = job.spec
            shown = self._previewers[key](
                self._image(job),
                fidelity=job.options.get("fidelity", 0.5),
                at=job.at,
                # the client's name for the pixels, within their geometry; None: the previewer hashes them
                key=None
                if job.pixels_key is None
                else (spec.width, spec.height, spec.channels, spec.dtype, job.pixels_key),
                min_face_size=job.options.get("min_face_size", 16),
            )
        except Exception as exc:
            self._fail(job, weights, exc)
            return
        self._emit_preview(job, shown)

    def _serve_previews(self) -> None:
        """Run the previews that wait for weights already loaded here: called between a job's batches of faces,
        on this thread, so a preview never waits for a whole long job and the networks never run twice at once."""
        while True:
            preview = self.jobs.take_preview(
                lambda j: (j.options.get("weights") or self.default_weights, self.device) in self._renovators
            )
            if preview is None:
                return
            self._run_preview(preview)

    def _run_job(self, job: Job) -> None:
        weights = self._start(job)
        if weights is None:
            return
        try:
            self._emit_progress(job, "load", 0.0, force=True)
            result, warnings = self._renovate_with_fallback(job, weights)
        except Exception as exc:
            self._fail(job, weights, exc)
            return
        self._emit_result(job, result, warnings)

    def _fail(self, job: Job, weights: str, exc: Exception) -> None:
        """End ``job`` with the error its exception maps to in :func:`error_table`."""
        code = error_code(exc)
        where = f"job {job.session}/{job.job_id}"
        if code == P.E_CANCELLED:
            if job.cancel_event.is_set():
                code, message = job.stop_error()
            else:
                message = REASON_TEXT["cancelled"]
        elif code == P.E_OUT_OF_MEMORY:
            log.warning("%s ran out of memory: %s", where, exc)
            message = (
                "Not enough memory to renovate this image; select a smaller region or close other programs."
            )
        elif code == P.E_NO_FACE:
            message = (
                f"{_sentence(exc)[0].upper()}{_sentence(exc)[1:]} Preview a photo or a selection with a face "
                "in it."
            )
        elif code == P.E_WEIGHTS:
            log.error("%s: weights %r unavailable: %s", where, weights, exc)
            message = f"The weights {weights!r} could not be loaded: {_sentence(exc)}"
        elif code == P.E_INTERNAL:
            log.error("%s failed:\n%s", where, "".join(traceback.format_exception(exc)))
            message = (
                "The server failed on this job because of an internal error, not because of the image or the "
                f"options. Retry, and report the traceback in {paths.log_dir() / paths.LOG_FILE} if it happens "
                "again."
            )
        else:  # a ProtocolError: its message is already written for the user
            message = exc.message if isinstance(exc, P.ProtocolError) else _sentence(exc)
        self._error(job, code, message)

    def _renovate_with_fallback(self, job: Job, weights: str) -> tuple[Any, list[str]]:
        """Run the pipeline; on GPU out-of-memory free the cache and retry with halved face batches down to one,
        then once more on the CPU, each time with a warning the user sees. Host out-of-memory is an error."""
        warnings: list[str] = []
        device: str | None = None
        while True:
            renovator = self.renovator(weights, device)
            try:
                return self._call(job, renovator), warnings
            except Exception as exc:
                if not _is_out_of_memory(exc) or isinstance(exc, MemoryError):
                    raise
                on_cpu = str(getattr(renovator, "device", device or self.device)).startswith("cpu")
                if on_cpu:
                    raise
                torch = sys.modules.get("torch")
                if torch is not None and torch.cuda.is_available():
                    torch.cuda.empty_cache()
                batch = int(getattr(renovator, "batch_size", 1) or 1)
                if batch > 1:
                    renovator.batch_size = batch // 2
                    text = f"The GPU ran out of memory; retrying with {batch // 2} face(s) at a time."
                else:
                    device = "cpu"
                    text = "The GPU ran out of memory; this image is renovated on the CPU instead (slower)."
                log.warning("job %s/%s: %s", job.session, job.job_id, text)
                warnings.append(text)
                self._emit_progress(job, "load", 0.0, force=True, text=text)

    def _image(self, job: Job) -> Any:
        """The job's pixels as an (H, W, C) array over the received frame (no copy), or (H, W) for one channel."""
        import numpy as np

        spec = job.spec
        dtype = np.dtype(NUMPY_DTYPES[spec.dtype])
        image = np.ndarray(
            (spec.height, spec.width, spec.channels),
            dtype=dtype,
            buffer=job.pixels,
            strides=(spec.stride, spec.channels * dtype.itemsize, dtype.itemsize),
        )
        if dtype.byteorder == ">" or (dtype.byteorder == "=" and sys.byteorder == "big"):
            image = image.astype(dtype.newbyteorder("="))
        return image[:, :, 0] if spec.channels == 1 else image

    def _call(self, job: Job, renovator: Any) -> Any:
        import numpy as np

        spec = job.spec
        image = self._image(job)
        region = None
        if job.mask is not None:
            region = np.frombuffer(job.mask, dtype=np.uint8).reshape(spec.height, spec.width)
        opts = job.options
        kwargs: dict[str, Any] = {
            "fidelity": opts.get("fidelity", 0.5),
            "faces": opts.get("faces", "all"),
            "max_faces": opts.get("max_faces"),
            "region": region,
            "progress": lambda stage, fraction: self._checkpoint(job),
            "report": lambda state: self._on_report(job, state),
            "cancel": job.cancel_event.is_set,
        }
        if "min_face_size" in opts:
            kwargs["min_face_size"] = opts["min_face_size"]
        return renovator(image, **kwargs)

    def _checkpoint(self, job: Job) -> None:
        """Between the pipeline's stages and batches of faces: stop a cancelled job, run waiting previews."""
        if job.cancel_event.is_set():
            raise JobStopped(job.cancel_reason or "cancelled")
        self._serve_previews()

    def _on_report(self, job: Job, state: Any) -> None:
        """The pipeline's Progress as each stage starts: detect, then renovate and paste per batch of faces; its
        ``text`` ("Renovating faces 5-8 of 29 (about 12 s left)") is what the user reads."""
        self._checkpoint(job)
        fraction = state.done / state.total if state.total else 0.0
        faces = {"done": state.done, "total": state.total, "remaining": state.remaining}
        self._emit_progress(job, state.stage, fraction, text=state.text, faces=faces)

    def _emit_progress(
        self,
        job: Job,
        stage: str,
        fraction: float,
        force: bool = False,
        text: str | None = None,
        faces: dict[str, Any] | None = None,
    ) -> None:
        now = time.monotonic()
        last_stage, last_time = job.last_progress
        # Per stage: renovate and paste alternate per batch, and each start is sent, so that the text shown is the
        # stage that runs (the network's batch may take far longer than the paste before it).
        if not force and stage == last_stage and now - last_time < PROGRESS_INTERVAL:
            return
        job.last_progress = (stage, now)
        low, high, label = STAGES.get(stage, (0.0, 1.0, stage))
        try:
            fraction = min(1.0, max(0.0, float(fraction)))
        except (TypeError, ValueError):
            fraction = 0.0
        overall = max(job.last_fraction, low + (high - low) * fraction)  # never backwards
        job.last_fraction = overall
        header = {
            "v": P.VERSION,
            "op": P.EV_PROGRESS,
            "job": job.job_id,
            "stage": stage,
            "fraction": round(overall, 4),
            "text": text or label,
        }
        if faces is not None:  # faces finished of those chosen, and the seconds left (None until known)
            remaining = faces["remaining"]
            header.update(faces, remaining=None if remaining is None else round(float(remaining), 1))
        self._emit(Event(job, header))

    def _emit_result(self, job: Job, result: Any, warnings: list[str]) -> None:
        import numpy as np

        spec = job.spec
        out = np.asarray(result.image)
        want = NUMPY_DTYPES[spec.dtype]
        if out.ndim == 2:
            out = out[:, :, None]
        if out.shape != (spec.height, spec.width, spec.channels):
            self._error(
                job,
                P.E_INTERNAL,
                f"The pipeline returned an image of shape {out.shape}, expected "
                f"{(spec.height, spec.width, spec.channels)}; the server log has the details.",
            )
            return
        out = np.ascontiguousarray(out, dtype=want)
        faces = [_face_dict(face) for face in getattr(result, "faces", [])]
        timings = {str(k): round(float(v), 4) for k, v in dict(getattr(result, "timings", {}) or {}).items()}
        header = {
            "v": P.VERSION,
            "op": P.EV_RESULT,
            "job": job.job_id,
            **P.ImageSpec(spec.width, spec.height, spec.channels, spec.dtype, out.strides[0]).to_header(),
            "faces": faces,
            "timings": timings,
            "warnings": warnings + [str(n) for n in getattr(result, "notes", []) or []],
            "seconds": round(time.monotonic() - (job.started or job.accepted), 4),
        }
        self._emit(Event(job, header, [out], final=True))

    def _emit_preview(self, job: Job, shown: Any) -> None:
        import numpy as np

        want = NUMPY_DTYPES[job.spec.dtype]
        crops = [np.ascontiguousarray(c, dtype=want) for c in (shown.before, shown.after)]
        crops = [c[:, :, None] if c.ndim == 2 else c for c in crops]
        height, width, channels = crops[0].shape
        header = {
            "v": P.VERSION,
            "op": P.EV_PREVIEW,
            "job": job.job_id,
            **P.ImageSpec(width, height, channels, job.spec.dtype, crops[0].strides[0]).to_header(),
            "window": [int(v) for v in shown.window],
            "face": _face_dict(shown.face),
            "index": int(shown.index),
            "face_count": int(shown.faces),
            "cached": bool(shown.cached),
            "timings": {str(k): round(float(v), 4) for k, v in shown.timings.items()},
            "seconds": round(time.monotonic() - (job.started or job.accepted), 4),
        }
        self._emit(Event(job, header, crops, final=True))


def _face_dict(face: Any) -> dict[str, Any]:
    """A FaceReport as plain msgpack types."""

    def plain(value: Any) -> Any:
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        tolist = getattr(value, "tolist", None)
        if tolist is not None:
            return plain(tolist())
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):  # a face's path: a map, as docs/protocol.md says (was its str())
            return {str(k): plain(v) for k, v in value.items()}
        return str(value)

    if hasattr(face, "to_dict"):
        face = face.to_dict()
    out: dict[str, Any] = {}
    for key in ("box", "landmarks", "score", "renovated", "reason", "path"):
        if hasattr(face, key):
            out[key] = plain(getattr(face, key))
        elif isinstance(face, dict) and key in face:
            out[key] = plain(face[key])
    return out


def _sentence(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if text.endswith((".", "!", "?")) else text + "."


def _load_renovator(weights: str, device: str, threads: int = 0) -> Any:
    try:
        from hifacegan.pipeline import (
            Renovator,
        )  # heavy (torch): imported by the worker, never at daemon start
    except ImportError as exc:
        raise PipelineUnavailable(f"the pipeline cannot be imported ({exc})") from exc

    # threads 0: the pipeline's default for CPUs (all cores but one, leaving one for GIMP or Krita)
    return Renovator(weights=weights, device=device, threads=threads or None)
