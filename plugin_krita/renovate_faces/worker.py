"""One long-lived thread with one client of the server, off Krita's GUI thread.

The controller's jobs and status polls share one :class:`Worker`; the previewer has its own, so that a preview is
served while a job runs (the server answers previews between a job's batches). Each keeps one ``Client`` (one
ZeroMQ context and socket) for as long as Krita runs, instead of a new thread, context and socket per poll. A task
runs after the tasks submitted before it; whoever submits it makes sure polls do not pile up.

The client is made again when the endpoint changes (``server.json`` or ``RENOVATE_FACES_ENDPOINT`` edited while
Krita runs): the next task then talks to the server where it now listens.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any

from .client_loader import load_client, load_paths
from .log import logger


class Worker:
    """``submit(task)`` runs ``task(worker)`` on the worker's thread; the task calls :meth:`client`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._tasks: queue.Queue[Callable[[Worker], None]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._client: Any = None

    def submit(self, task: Callable[[Worker], None]) -> None:
        """Queue ``task``; the thread starts with the first task (importing the plug-in starts nothing)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
            self._thread.start()
        self._tasks.put(task)

    def client(self) -> Any:
        """The worker's client (worker thread only), made on first use and again when the endpoint moved.

        Raises as ``Client()`` does (the client's ``ServerUnavailable`` for an unusable endpoint setting)."""
        endpoint = None
        with contextlib.suppress(Exception):  # the client says why, in its own words, below
            endpoint = load_paths().default_endpoint()
        if self._client is not None and endpoint is not None and self._client.endpoint != endpoint:
            self._client.close()
            self._client = None
        if self._client is None:
            self._client = load_client().Client()
        return self._client

    def _loop(self) -> None:
        while True:
            task = self._tasks.get()
            try:
                task(self)
            except BaseException as exc:  # tasks report their own errors: this only keeps the thread alive
                logger().error("%s: a task failed: %s", self.name, exc, exc_info=exc)
