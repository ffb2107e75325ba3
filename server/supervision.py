"""Supervised workers, the Paranoid Pirate idea inside one process: a dead worker's job is ended and the worker
replaced, so no job ever waits for a dead worker (docs/protocol.md, "Workers are supervised").

A worker survives what a job raises (``Worker._guarded``); this catches the rest, a thread that died. The daemon's
main loop calls :meth:`Supervisor.check` every tick.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hifacegan_server import protocol as P
from hifacegan_server.errors import internal_message
from hifacegan_server.fairqueue import Job
from hifacegan_server.jobs import Worker

log = logging.getLogger("renovate-faces.server")


@dataclass
class WorkerSlot:
    """What the supervisor keeps about one worker slot across replacements."""

    restarts: int = 0
    started: float = field(default_factory=time.monotonic)
    backoff: float = 0.0  # seconds before the next replacement; doubles while replacements die young
    next_start: float = 0.0


# A replacement that dies within this many seconds counts as dying young: the next waits twice as long, up to
# the cap, so a worker that cannot run does not spin (the Paranoid Pirate's back-off).
YOUNG_DEATH_S = 10.0
MAX_BACKOFF_S = 32.0


class Supervisor:
    """The workers, one per device slot, and what is kept about each slot across replacements."""

    def __init__(
        self,
        make_worker: Callable[[int, str], Worker],
        devices: list[str],
        finish: Callable[[Job, str, str], None],
    ) -> None:
        self.make_worker = make_worker
        self.finish = finish  # ends a job no worker holds any more, with an error event
        self.workers = [make_worker(i, device) for i, device in enumerate(devices)]
        self.slots = [WorkerSlot() for _ in self.workers]

    def start(self) -> None:
        for worker, slot in zip(self.workers, self.slots, strict=True):
            slot.started = time.monotonic()
            worker.start()

    def check(self, now: float, stopping: bool = False) -> None:
        """End the job a dead worker held and start its replacement, so no job waits for a dead worker."""
        for index, worker in enumerate(self.workers):
            if worker.is_alive() or worker.ident is None or stopping:
                continue
            slot = self.slots[index]
            job = worker.current
            if job is not None:
                worker.current = None
                if not job.finished:
                    self.finish(job, P.E_INTERNAL, internal_message())
                    log.error("worker %s died running job %s/%s; the job was ended", worker.name, *job.key)
            if slot.next_start == 0.0:
                young = now - slot.started < YOUNG_DEATH_S
                slot.backoff = min(MAX_BACKOFF_S, max(1.0, slot.backoff * 2)) if young else 0.0
                slot.next_start = now + slot.backoff
                log.error("worker %s died; a replacement starts in %.0f s", worker.name, slot.backoff)
            if now < slot.next_start:
                continue
            replacement = self.make_worker(index, worker.device)
            replacement.start()
            self.workers[index] = replacement
            slot.restarts += 1
            slot.started, slot.next_start = now, 0.0
            log.warning("worker %s replaced (restart %d)", replacement.name, slot.restarts)

    def summary(self) -> list[dict[str, Any]]:
        """Each worker's state, restarts and failures survived, for ``status``."""
        return [
            {
                "name": w.name,
                "device": w.device,
                "state": w.state,
                "restarts": slot.restarts,
                "failures": w.failures,
                "jobs_done": w.jobs_done,
                "job": w.current.job_id if w.current is not None else None,
            }
            for w, slot in zip(self.workers, self.slots, strict=True)
        ]

    def health(self) -> str:
        """``ready``, ``loading`` (weights still loading) or ``degraded`` (no worker alive to run a job)."""
        if not any(w.is_alive() for w in self.workers):
            return "degraded"
        return "loading" if not all(w.preloaded.is_set() for w in self.workers if w.is_alive()) else "ready"
