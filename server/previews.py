"""Previews: one face before and after, to follow a fidelity slider.

They wait in a lane of their own that the worker serves first: when it is idle, and also inside a running job,
between its batches of faces (from the pipeline's ``report`` callback). So a preview waits at most for one batch
of faces (or one detection) of another client's long job, and the networks are still only ever run by the
worker's own thread. A preview runs on a :class:`FacePreviewer` kept per resident renovator, whose detection cache
makes the next preview of the same photo fast.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hifacegan_server import protocol as P
from hifacegan_server.frames import image_of

if TYPE_CHECKING:
    from hifacegan_server.fairqueue import Job

MAX_PREVIEWS = 16  # previews waiting in all
MAX_PREVIEWS_PER_SESSION = 2  # a slider sends one at a time; two lets the next wait while one runs


class PreviewLane:
    """The previews waiting, first come first served. Not locked itself: its owner, the job queue, holds its
    lock around every call."""

    def __init__(self) -> None:
        self._waiting: collections.deque[Job] = collections.deque()

    def __len__(self) -> int:
        return len(self._waiting)

    def add(self, job: Job) -> int:
        """Line ``job`` up; how many previews are ahead of it. Busy past the limits, in all or per client."""
        mine = sum(1 for j in self._waiting if j.session == job.session)
        if len(self._waiting) >= MAX_PREVIEWS or mine >= MAX_PREVIEWS_PER_SESSION:
            raise P.ProtocolError(
                P.E_BUSY,
                f"{'This client already has' if mine >= MAX_PREVIEWS_PER_SESSION else 'The server has'} "
                f"{mine if mine >= MAX_PREVIEWS_PER_SESSION else len(self._waiting)} previews waiting; "
                "wait for one to finish.",
            )
        self._waiting.append(job)
        return len(self._waiting) - 1

    def take(self, ready: Callable[[Job], bool] = lambda job: True) -> Job | None:
        """The first waiting preview that ``ready`` accepts, out of the lane; None when there is none."""
        for job in self._waiting:
            if ready(job):
                self._waiting.remove(job)
                return job
        return None

    def remove(self, job: Job) -> bool:
        """Take ``job`` out of the lane; False when it no longer waits there."""
        if job not in self._waiting:
            return False
        self._waiting.remove(job)
        return True

    def drain(self) -> list[Job]:
        """Everything still waiting, out of the lane."""
        left = list(self._waiting)
        self._waiting.clear()
        return left


class Previewers:
    """One FacePreviewer (with its detection cache) per resident renovator, keyed as the worker keys those."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, str], Any] = {}

    def forget(self, key: tuple[str, str]) -> None:
        """Drop the previewer of a renovator the worker unloaded."""
        self._by_key.pop(key, None)

    def run(self, job: Job, renovator: Any, key: tuple[str, str]) -> Any:
        """Preview ``job``'s face with ``renovator``: the pipeline's shown face (crops, window, face, timings)."""
        if key not in self._by_key:
            from hifacegan.pipeline import FacePreviewer

            self._by_key[key] = FacePreviewer(renovator)
        from hifacegan.pipeline import CancelToken

        spec = job.spec
        return self._by_key[key](
            image_of(job),
            fidelity=job.options.get("fidelity", 0.5),
            at=job.at,
            # the client's name for the pixels, within their geometry; None: the previewer hashes them
            key=None
            if job.pixels_key is None
            else (spec.width, spec.height, spec.channels, spec.dtype, job.pixels_key),
            min_face_size=job.options.get("min_face_size", 16),
            damage=job.options.get("damage"),
            grain=job.options.get("grain"),
            cancel=CancelToken(job.cancel_event),
        )
