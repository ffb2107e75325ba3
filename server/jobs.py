"""Renovation jobs on the worker threads that run the pipeline, and the events they send to clients.

The daemon's main thread owns the ZeroMQ socket; workers never touch it. A worker reports progress and results
as events on a plain queue and wakes the main thread through an ``inproc://`` socket, so pixel arrays travel
from the pipeline to the network without a copy.

What a worker takes comes from the fair queue (``server/fairqueue.py``); a preview, served first and also between
a running job's batches of faces, runs in ``server/previews.py``; a failure's code and message come from the one
error table in ``server/errors.py``; pixels and results cross to and from the wire in ``server/frames.py``.
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

from hifacegan_server import protocol as P
from hifacegan_server.errors import (
    LoadOutOfMemory,
    PipelineUnavailable,
    failure,
    is_out_of_memory,
    sentence,
)
from hifacegan_server.fairqueue import RUNNING, FairQueue, Job
from hifacegan_server.frames import image_of, preview_message, result_message
from hifacegan_server.previews import Previewers

log = logging.getLogger("renovate-faces.jobs")

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


@dataclass
class Event:
    """Something a worker wants sent to a job's client. ``final`` ends the job."""

    job: Job
    header: dict[str, Any]
    frames: list[Any] = field(default_factory=list)
    final: bool = False


class Worker(threading.Thread):
    """Runs jobs on one device with renovators loaded once and kept resident.

    Supervised (the Paranoid Pirate idea, inside one process): any exception while a job or preview runs ends that
    job alone, with an ``internal`` error that names the log, and the worker carries on with the next. Should the
    thread itself die, ``current`` still names the job it held, so the daemon ends that job and starts a
    replacement (``server/daemon.py``, ``Server.supervise``).
    """

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
        precision: str = "auto",
        batch_size: int = 0,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.device = device
        self.default_weights = default_weights
        self.jobs = jobs
        self.events = events
        self.context = context
        self.wake_endpoint = wake_endpoint
        self.renovator_factory = renovator_factory or functools.partial(
            _load_renovator, threads=threads, precision=precision, batch_size=batch_size
        )
        self.max_resident = max_resident
        self.threads = threads
        self.current: Job | None = None
        self.weights_state: dict[str, Any] = {"name": default_weights, "state": "loading", "error": None}
        self.resolved_device: str | None = None
        self.jobs_done = 0
        self.failures = 0  # jobs ended by an exception this worker survived
        self.preloaded = threading.Event()  # set once the first weights load has finished, well or not
        self._renovators: collections.OrderedDict[tuple[str, str], Any] = collections.OrderedDict()
        self.previewers = Previewers()  # a FacePreviewer (its detection cache) per resident renovator
        self._wake: zmq.Socket | None = None

    # -- events -----------------------------------------------------------------------------------------------
    def _emit(self, event: Event) -> None:
        if event.final:
            event.job.finished = True
        self.events.put(event)
        # Only a wake-up: the main loop forwards queued events on every tick anyway, so a failed send loses nothing.
        if self._wake is not None:
            with contextlib.suppress(zmq.ZMQError):
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
        renovator = self._load(weights, key[1])
        self._renovators[key] = renovator
        while len(self._renovators) > self.max_resident:
            evicted, _ = self._renovators.popitem(last=False)
            self.previewers.forget(evicted)
            log.info("unloaded weights %s on %s to make room", *evicted)
        return renovator

    def _load(self, weights: str, device: str) -> Any:
        """A renovator from the factory; running out of memory here is said as such (``LoadOutOfMemory``)."""
        try:
            return self.renovator_factory(weights, device)
        except Exception as exc:
            if is_out_of_memory(exc):
                raise LoadOutOfMemory(weights, device) from exc
            raise

    def _preload(self) -> None:
        t0 = time.monotonic()
        try:
            r = self.renovator(self.default_weights)
        except Exception as exc:
            self.weights_state.update(state="failed", error=sentence(exc))
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
    @property
    def state(self) -> str:
        """``loading`` (first weights), ``idle``, ``busy``, or ``dead`` (the thread is gone)."""
        if not self.is_alive():
            return "dead" if self.ident is not None else "starting"
        if not self.preloaded.is_set():
            return "loading"
        return "busy" if self.current is not None else "idle"

    def run(self) -> None:
        self._wake = self.context.socket(zmq.PUSH)
        self._wake.setsockopt(zmq.LINGER, 0)
        self._wake.setsockopt(zmq.SNDHWM, 1)
        self._wake.connect(self.wake_endpoint)
        try:
            try:
                _cap_threads(self.threads)
                self._preload()
            finally:
                self.preloaded.set()
            while True:
                job = self.jobs.take()
                if job is None:
                    break
                self.current = job
                self._guarded(job, self._run_preview if job.kind == P.OP_PREVIEW else self._run_job)
                # Cleared only here: a thread that dies inside a job leaves it named for the supervisor.
                self.current = None
                self.jobs_done += 1
        finally:
            self._wake.close(0)
            self._wake = None

    def _guarded(self, job: Job, step: Callable[[Job], None]) -> None:
        """Run one job or preview; whatever it raises ends that job alone (``internal``, traceback in the log)."""
        try:
            step(job)
        except Exception as exc:
            self.failures += 1
            weights = job.options.get("weights") or self.default_weights
            if job.finished:  # its result was sent: the failure came after, and is only logged
                log.error(
                    "job %s/%s failed after its result:\n%s", job.session, job.job_id, traceback.format_exc()
                )
                return
            self._fail(job, weights, exc)

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
            shown = self.previewers.run(job, self.renovator(weights), (weights, self.device))
        except Exception as exc:
            self._fail(job, weights, exc)
            return
        header, crops = preview_message(job, shown)
        self._emit(Event(job, header, crops, final=True))

    def _serve_previews(self) -> None:
        """Run the previews that wait for weights already loaded here: called between a job's batches of faces,
        on this thread, so a preview never waits for a whole long job and the networks never run twice at once."""
        while True:
            preview = self.jobs.take_preview(
                lambda j: (j.options.get("weights") or self.default_weights, self.device) in self._renovators
            )
            if preview is None:
                return
            self._guarded(
                preview, self._run_preview
            )  # its failure ends that preview, never the job around it

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
        """End ``job`` with the error its exception maps to in :func:`hifacegan_server.errors.error_table`."""
        self._error(job, *failure(job, weights, exc))

    def _renovate_with_fallback(self, job: Job, weights: str) -> tuple[Any, list[str]]:
        """Run the pipeline; on GPU out-of-memory free the cache and retry with halved face batches down to one,
        then once more on a CPU copy of the weights, each time with a warning the user sees. Host out-of-memory is
        an error. The fallback is this job's alone: the resident renovator gets its batch size back and the CPU
        copy is dropped afterwards, so the next job runs at full batch on the GPU again."""
        warnings: list[str] = []
        resident = self.renovator(weights)
        full_batch = getattr(resident, "batch_size", None)
        if job.options.get("batch_size") and full_batch is not None:  # this job's own batch, restored after
            resident.batch_size = job.options["batch_size"]
        current = resident
        try:
            while True:
                try:
                    return self._call(job, current), warnings
                except Exception as exc:
                    if not is_out_of_memory(exc) or isinstance(exc, MemoryError):
                        raise
                    if str(getattr(current, "device", self.device)).startswith("cpu"):
                        raise
                    text, current = self._shrink(job, weights, current)
                    log.warning("job %s/%s: %s", job.session, job.job_id, text)
                    warnings.append(text)
                    self._emit_progress(job, "load", 0.0, force=True, text=text)
        finally:
            if full_batch is not None:
                resident.batch_size = full_batch

    def _shrink(self, job: Job, weights: str, renovator: Any) -> tuple[str, Any]:
        """After a GPU out-of-memory: half the face batch, or at one face a CPU copy kept for this job only."""
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()
        batch = int(getattr(renovator, "batch_size", 1) or 1)
        if batch > 1:
            renovator.batch_size = batch // 2
            return f"The GPU ran out of memory; retrying with {batch // 2} faces at a time.", renovator
        text = "The GPU ran out of memory; this image is renovated on the CPU instead (slower)."
        return text, self._load(weights, "cpu")

    def _call(self, job: Job, renovator: Any) -> Any:
        import numpy as np

        from hifacegan.pipeline import CancelToken

        spec = job.spec
        image = image_of(job)
        region = None
        if job.mask is not None:
            region = np.frombuffer(job.mask, dtype=np.uint8).reshape(spec.height, spec.width)
        opts = job.options
        kwargs: dict[str, Any] = {
            "fidelity": opts.get("fidelity", 0.5),
            "faces": opts.get("faces", "all"),
            "max_faces": opts.get("max_faces"),
            "region": region,
            "report": lambda state: self._on_report(job, state),
            # the job's own event: a client's cancel, its silence, a time limit or shutdown set it, and the pipeline
            # stops at its next check (before each batch of faces) with the photo untouched
            "cancel": CancelToken(job.cancel_event),
        }
        if "min_face_size" in opts:
            kwargs["min_face_size"] = opts["min_face_size"]
        for option in ("damage", "grain"):
            if option in opts:
                kwargs[option] = opts[option]
        return renovator(image, **kwargs)

    def _on_report(self, job: Job, state: Any) -> None:
        """The pipeline's Progress as each stage starts: detect, then renovate and paste per batch of faces; its
        ``text`` ("Renovating faces 5-8 of 29 (about 12 s left)") is what the user reads. Previews waiting for this
        worker are served here, between the job's stages (a slider must not wait for a whole photo)."""
        self._serve_previews()
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
        try:
            header, frames = result_message(job, result, warnings)
        except P.ProtocolError as exc:  # the pipeline returned an image of the wrong shape
            self._error(job, exc.code, exc.message)
            return
        self._emit(Event(job, header, frames, final=True))


def _load_renovator(
    weights: str, device: str, threads: int = 0, precision: str = "auto", batch_size: int = 0
) -> Any:
    try:
        from hifacegan.pipeline import (
            Renovator,
        )  # heavy (torch): imported by the worker, never at daemon start
    except ImportError as exc:
        raise PipelineUnavailable(f"the pipeline cannot be imported ({exc})") from exc

    # threads 0: the pipeline's default for CPUs (all cores but one, leaving one for GIMP or Krita)
    return Renovator(
        weights=weights,
        device=device,
        threads=threads or None,
        precision=precision,
        batch_size=batch_size or None,
    )


def _cap_threads(threads: int) -> None:
    """The server owns its process: torch's CPU threads are ``threads``, or all cores but one, on every device, so a
    GIMP or Krita beside it keeps a core (CPU work goes on around a GPU's network: detection, alignment, pasting)."""
    try:
        from hifacegan.devices import configure_cpu_threads
    except ImportError:  # no library: the worker reports that when it loads weights
        return
    configure_cpu_threads(threads or None)
