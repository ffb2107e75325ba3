"""The jobs waiting for a worker: a bounded queue served round-robin by client session, so one client's batch
cannot starve another's job, with the previews' lane (``server/previews.py``) served before any job."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hifacegan_server import protocol as P
from hifacegan_server.errors import REASON_CODES, REASON_TEXT
from hifacegan_server.previews import PreviewLane

QUEUED, RUNNING, DONE = "queued", "running", "done"


@dataclass(eq=False)
class Job:
    """A renovation or a preview, from its acceptance to its last event."""

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
    finished: bool = False  # its final event (result or error) is on its way: nothing may end it again

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
        self._previews = PreviewLane()  # served before any job; guarded by this queue's lock
        self._closed = False
        self._cond = threading.Condition()

    def __len__(self) -> int:
        return self._count + len(self._previews)

    def submit_preview(self, job: Job) -> int:
        """Queue a preview in the previews' lane; returns how many previews are ahead of it."""
        with self._cond:
            if self._closed:
                raise P.ProtocolError(P.E_SHUTTING_DOWN, REASON_TEXT["shutting_down"])
            ahead = self._previews.add(job)
            self._cond.notify()
            return ahead

    def take_preview(self, ready: Callable[[Job], bool] = lambda job: True) -> Job | None:
        """The first waiting preview that ``ready`` accepts, without waiting; None when there is none."""
        with self._cond:
            return self._previews.take(ready)

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
        """The next job (a waiting preview first), taking sessions in turn; None when closed (or after
        ``timeout``)."""
        with self._cond:
            end = None if timeout is None else time.monotonic() + timeout
            while not self._count and not self._previews and not self._closed:
                remaining = None if end is None else end - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            if self._previews:
                return self._previews.take()
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
                return self._previews.remove(job)
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
            left = [
                *self._previews.drain(),
                *(job for session in self._turns for job in self._by_session[session]),
            ]
            self._by_session.clear()
            self._turns.clear()
            self._count = 0
            self._cond.notify_all()
            return left
