"""One renovation at a time, run off Krita's GUI thread; the action and the docker both drive this object.

The GUI thread reads the pixels (:func:`core.prepare`), a plain ``threading.Thread`` talks to the server
(:func:`core.run`), and the result comes back through a queued Qt signal to the GUI thread, which adds the layer
(:func:`core.apply`). Krita stays responsive the whole time; cancel sets an event the client forwards to the server.
"""

from __future__ import annotations

import enum
import threading
from typing import Any

from PyQt5.QtCore import QObject, pyqtSignal

from . import core
from .client_loader import load_client
from .document import KritaDocument
from .log import log_error, logger


class State(enum.Enum):
    idle = "idle"
    connecting = "connecting"
    running = "running"
    error = "error"


class Outcome(enum.Enum):
    done = "done"
    nothing = "nothing"  # no face changed: no layer added
    cancelled = "cancelled"
    failed = "failed"


class Controller(QObject):
    """State, progress and the last message of the current or last job, as Qt signals."""

    changed = pyqtSignal()  # state, progress or message changed
    finished = pyqtSignal(str, str)  # outcome value, user message
    server_status = pyqtSignal(str)  # one line: device and weights, or why the server is unreachable

    _progress = pyqtSignal(float, str)  # worker thread -> GUI thread
    _done = pyqtSignal(object)
    _status = pyqtSignal(str)

    def __init__(self, start_server: bool = True) -> None:
        super().__init__()
        self.state = State.idle
        self.progress = 0.0
        self.message = ""
        self.start_server = start_server
        self.last_layer: Any = None
        self.last_error: str = (
            ""  # the exception type of the last failure or cancel ("Cancelled"), for logs and tests
        )
        self._cancel: threading.Event | None = None
        self._thread: threading.Thread | None = None
        self._progress.connect(self._on_progress)
        self._done.connect(self._on_done)
        self._status.connect(self.server_status)

    @property
    def busy(self) -> bool:
        return self.state in (State.connecting, State.running)

    # -- GUI thread ---------------------------------------------------------------------------------------------
    def start(self, document: KritaDocument | None, options: core.Options) -> bool:
        """Begin renovating the active layer of ``document``; False (with a message) when it cannot start."""
        if self.busy:
            self._set(self.state, "Renovate Faces is already working; wait or press Cancel.")
            return False
        try:
            if document is None:
                raise core.NothingToDo("Open an image first: Renovate Faces works on the active layer.")
            node = document.active_node()
            job = core.prepare(document, node, options)
            client_module = load_client()
        except Exception as exc:  # every refusal ends here, with text for the user
            text = str(exc) if isinstance(exc, core.NothingToDo) else log_error(exc)
            self._finish(Outcome.nothing if isinstance(exc, core.NothingToDo) else Outcome.failed, text)
            return False
        self._cancel = threading.Event()
        self.last_layer = None
        self.last_error = ""
        self._set(State.connecting, "Connecting to the Renovate Faces server...", 0.0)
        logger().info("renovate %s %dx%d %s", document.name, job.rect.width, job.rect.height, job.fmt)
        self._thread = threading.Thread(
            target=self._work,
            args=(client_module, job, self._cancel, (document, node)),
            name="renovate-faces",
            daemon=True,
        )
        self._thread.start()
        return True

    def cancel(self) -> None:
        """Ask the server to drop the job; the document is left as it was."""
        if self._cancel is not None and self.busy:
            self._cancel.set()
            self._set(self.state, "Cancelling...")

    def refresh_status(self) -> None:
        """Ask the server for its device and weights, off the GUI thread; answers with ``server_status``."""
        threading.Thread(target=self._query_status, name="renovate-faces-status", daemon=True).start()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the worker thread ends (tests and scripts only: the GUI never waits)."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def _on_progress(self, fraction: float, text: str) -> None:
        if self.busy and not (self._cancel and self._cancel.is_set()):
            self._set(State.running, text or "Renovating faces...", fraction)

    def _on_done(self, payload: tuple[Any, ...]) -> None:
        (document, node), job, result, error = payload
        self.last_error = type(error).__name__ if error is not None else ""
        if error is not None:
            cancelled = type(error).__name__ == "Cancelled" or (
                self._cancel is not None and self._cancel.is_set()
            )
            if cancelled:
                self._finish(Outcome.cancelled, "Cancelled; the image is unchanged.")
            else:
                self._finish(Outcome.failed, log_error(error))
            return
        if self._cancel is not None and self._cancel.is_set():
            self._finish(Outcome.cancelled, "Cancelled; the image is unchanged.")
            return
        if not document.is_open() or not document.contains(node):
            self._finish(Outcome.failed, "The layer was closed or deleted while its faces were renovated.")
            return
        try:
            self.last_layer = core.apply(document, node, job, result)
        except core.NothingToDo as exc:
            self._finish(Outcome.nothing, str(exc))
            return
        except Exception as exc:
            self._finish(Outcome.failed, log_error(exc))
            return
        self._finish(
            Outcome.done,
            f"Renovated {result.renovated_faces} face(s) into the layer '{job.options.layer_name}' "
            "(Edit > Undo removes it).",
        )

    def _finish(self, outcome: Outcome, message: str) -> None:
        logger().info("%s: %s", outcome.value, message)
        self._set(
            State.error if outcome is Outcome.failed else State.idle,
            message,
            1.0 if outcome is Outcome.done else 0.0,
        )
        self.finished.emit(outcome.value, message)

    def _set(self, state: State, message: str, progress: float | None = None) -> None:
        self.state = state
        self.message = message
        if progress is not None:
            self.progress = progress
        self.changed.emit()

    # -- worker threads -----------------------------------------------------------------------------------------
    def _work(
        self, client_module: Any, job: core.Job, cancel: threading.Event, target: tuple[Any, Any]
    ) -> None:
        result, error = None, None
        try:
            client = client_module.Client()
            client.ensure_running(start=self.start_server, wait=120.0)
            self._progress.emit(0.0, "Renovating faces...")
            result = core.run(
                job, client.renovate, lambda f, t: self._progress.emit(float(f), str(t or "")), cancel
            )
        except BaseException as exc:  # reported on the GUI thread
            error = exc
        self._done.emit((target, job, result, error))

    def _query_status(self) -> None:
        try:
            client = load_client().Client(timeout=5.0)
            status = client.status()
            self._status.emit(describe_status(status))
        except Exception as exc:
            name = type(exc).__name__
            if name == "ServerUnavailable":
                hint = "it starts when you renovate" if self.start_server else str(exc)
                self._status.emit(f"Server not running ({hint}).")
            else:
                self._status.emit(log_error(exc))


def describe_status(status: dict[str, Any]) -> str:
    """The server's status dict as one line for the docker."""
    device = status.get("device", "?")
    weights = status.get("weights", "?")
    if isinstance(weights, dict):
        weights = (
            weights.get("name") or weights.get("spec") or ", ".join(f"{k}={v}" for k, v in weights.items())
        )
    elif isinstance(weights, (list, tuple)):
        weights = ", ".join(str(w) for w in weights)
    return f"Server ready on {device}, weights: {weights}"


_controller: Controller | None = None


def controller() -> Controller:
    """The one controller, created lazily (importing the plug-in creates nothing)."""
    global _controller
    if _controller is None:
        from . import settings

        _controller = Controller(start_server=bool(settings.load(settings.START_SERVER)))
    return _controller
