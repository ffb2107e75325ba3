"""One renovation at a time, run off Krita's GUI thread; the action and the docker both drive this object.

The GUI thread reads the pixels (:func:`core.prepare`), the controller's long-lived worker thread talks to the
server (:func:`core.run`, through its one client: :mod:`.worker`), and the result comes back through a queued Qt
signal to the GUI thread, which adds the layer (:func:`core.apply`). Krita stays responsive the whole time; cancel
sets an event the client forwards to the server.

The server's state (:mod:`.status`: starting, loading, ready, busy, not running, failed) is kept here too, as a
plain sentence: the job reports each step of an on-demand start, and while the state is transitional the status
is polled (on the same worker, one poll at a time, none while a job runs) every second until it settles, so the
docker never shows a stale line. A failed start stands until the server answers again or the next Renovate tries
anew.
"""

from __future__ import annotations

import enum
import threading
from typing import Any

from PyQt5.QtCore import QObject, QTimer, pyqtSignal

from . import core, status
from .client_loader import is_client_error, load_client
from .common import SERVER_START_WAIT, SERVER_STOPPED, done_message
from .document import KritaDocument
from .log import log_error, logger
from .worker import Worker


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
    server_status = pyqtSignal(
        str
    )  # one sentence: starting, loading, ready on..., busy, not running, failed + fix

    _progress = pyqtSignal(float, str)  # worker thread -> GUI thread
    _done = pyqtSignal(object)
    _status = pyqtSignal(object)  # a status.ServerState from a status query
    _job_status = pyqtSignal(object)  # a status.ServerState from the job's worker (starting, loading, busy)

    POLL_MS = 1000  # while the server's state is transitional (starting, loading, busy)
    SETTLED_POLL_MS = 10000  # otherwise

    def __init__(self, start_server: bool = True) -> None:
        super().__init__()
        self.state = State.idle
        self.progress = 0.0
        self.message = ""
        self.start_server = start_server
        self.last_layer: Any = None
        self.last_document: KritaDocument | None = None  # the document of the last job
        self.last_error: str = ""  # the exception type of the last failure or cancel ("Cancelled"), as logged
        self.server: status.ServerState = status.UNKNOWN
        self._start_error: status.ServerState | None = None  # a failed start, shown until the server answers
        self._cancel: threading.Event | None = None
        self._worker = Worker("renovate-faces")  # jobs and status polls, one client
        self._job_ended = threading.Event()
        self._job_ended.set()
        self._querying = False
        self._job_where = ""  # where the job's server runs ("the CPU"), from its hello
        self._poll = QTimer(self)
        self._poll.setSingleShot(True)
        self._poll.timeout.connect(self.refresh_status)
        self._progress.connect(self._on_progress)
        self._done.connect(self._on_done)
        self._status.connect(self._on_status)
        self._job_status.connect(lambda state: self._on_status(state, from_query=False))

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
            load_client()  # a missing client or library is said now, not from the worker
        except Exception as exc:  # every refusal ends here, with text for the user
            text = str(exc) if isinstance(exc, core.NothingToDo) else log_error(exc)
            self._finish(Outcome.nothing if isinstance(exc, core.NothingToDo) else Outcome.failed, text)
            return False
        self._cancel = threading.Event()
        self.last_layer = None
        self.last_document = document
        self.last_error = ""
        self._set(State.connecting, "Connecting to the Renovate Faces server...", 0.0)
        logger().info("renovate %s %dx%d %s", document.name, job.rect.width, job.rect.height, job.fmt)
        cancel, target = self._cancel, (document, node)
        self._job_ended.clear()
        self._worker.submit(lambda worker: self._work(worker, job, cancel, target))
        return True

    def cancel(self) -> None:
        """Ask the server to drop the job; the document is left as it was."""
        if self._cancel is not None and self.busy:
            self._cancel.set()
            self._set(self.state, "Cancelling...")

    def refresh_status(self) -> None:
        """Ask the server how it is, off the GUI thread; answers with ``server_status`` (one query at a time).

        While a job runs, it reports the server's state itself (a query would only see "not running" during an
        on-demand start, and would wait behind the job on the worker).
        """
        if self._querying or self.busy:
            return
        self._querying = True
        self._worker.submit(self._query_status)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job ends on the worker (scripts only: the GUI never waits)."""
        return self._job_ended.wait(timeout)

    def _on_progress(self, fraction: float, text: str) -> None:
        if self.busy and not (self._cancel and self._cancel.is_set()):
            if self.server.kind == status.Kind.loading:  # the weights are in: the job runs (no poll says so)
                self._on_status(status.busy(self._job_where), from_query=False)
            self._set(State.running, text or "Renovating faces...", fraction)

    def _on_status(self, state: status.ServerState, from_query: bool = True) -> None:
        """A new server state (GUI thread): keep a standing start error, poll while the state is transitional."""
        if from_query:
            self._querying = False
        if state.kind == status.Kind.not_running and self._start_error is not None:
            state = self._start_error  # nothing answers yet: the failed start still explains why
        elif state.kind in (status.Kind.ready, status.Kind.loading, status.Kind.busy):
            if self._start_error is not None and self.message == self._start_error.text and not self.busy:
                self.message = ""  # the server answers now: the old failure would contradict the status line
                self.changed.emit()
            self._start_error = None
        if (
            from_query
            and self.busy
            and state.kind in (status.Kind.ready, status.Kind.not_running, status.Kind.busy)
        ):
            # Our own job runs: one sentence (the job's) until it ends, not the poll's and the job's in turn.
            state = self.server if self.server.kind == status.Kind.busy else status.busy()
        self.server = state
        self.server_status.emit(state.text)
        # Transitional states are followed closely; settled ones are rechecked now and then (the server may be
        # started or stopped by hand, or serve another client).
        if state.transitional or self.busy:
            self._poll.start(self.POLL_MS)
        else:
            self._poll.start(self.SETTLED_POLL_MS)

    def _on_done(self, payload: tuple[Any, ...]) -> None:
        (document, node), job, result, error, connected = payload
        self.last_error = type(error).__name__ if error is not None else ""
        if error is not None:
            cancelled = is_client_error(error, "Cancelled") or (
                self._cancel is not None and self._cancel.is_set()
            )
            if cancelled:
                self._finish(Outcome.cancelled, "Cancelled; the image is unchanged.")
            elif not connected and is_client_error(error, "ServerUnavailable"):
                log_error(error)
                failed = status.start_failed(str(error)) if self.start_server else status.not_running(False)
                if self.start_server:
                    self._start_error = failed
                self._on_status(failed, from_query=False)
                self._finish(Outcome.failed, failed.text)
            elif is_client_error(error, "ServerUnavailable"):  # it stopped answering during the job
                log_error(error)
                self._finish(Outcome.failed, SERVER_STOPPED)
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
            keep_active(document, node, self.last_layer)
        except core.NothingToDo as exc:
            self._finish(Outcome.nothing, str(exc))
            return
        except Exception as exc:
            self._finish(Outcome.failed, log_error(exc))
            return
        # No "Edit > Undo removes it" here: the docker keeps this line after an undo and in other documents (the
        # floating message over the canvas, shown once, says it).
        self._finish(Outcome.done, done_message(result.changed_faces, self.last_layer.name()))

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
    def _work(self, worker: Worker, job: core.Job, cancel: threading.Event, target: tuple[Any, Any]) -> None:
        result, error, connected = None, None, False
        try:
            client = worker.client()
            hello = self._connect(load_client(), client)
            connected = True
            server = status.describe_status(hello)
            where = self._job_where = status.device_phrase(hello)
            self._job_status.emit(server if server.kind == status.Kind.loading else status.busy(where))
            self._progress.emit(0.0, "Renovating faces...")
            result = core.run(
                job, client.renovate, lambda f, t: self._progress.emit(float(f), str(t or "")), cancel
            )
        except BaseException as exc:  # reported on the GUI thread
            error = exc
        self._job_ended.set()
        self._done.emit((target, job, result, error, connected))

    def _connect(self, client_module: Any, client: Any) -> dict[str, Any]:
        """``hello`` the server; when nothing answers, say "starting" and start it (if allowed)."""
        try:
            return client.hello(timeout=2.0)
        except client_module.ServerUnavailable:
            if not self.start_server:
                raise
        self._job_status.emit(status.STARTING)
        return client.ensure_running(start=True, wait=SERVER_START_WAIT)

    def _query_status(self, worker: Worker) -> None:
        state = status.UNKNOWN
        try:
            state = status.describe_status(worker.client().status(timeout=5.0))
        except Exception as exc:
            if is_client_error(exc, "ServerUnavailable"):
                state = status.not_running(self.start_server)
            else:
                state = status.unreachable(log_error(exc))
        finally:
            self._status.emit(state)


# When Krita's layer model makes an added layer active: at once on 5.1 and 5.2 once the event loop runs, and
# later on a busy machine. The source is made active again at each of these delays (after the layer is added).
REACTIVATE_MS = (0, 50, 200, 500, 1000, 2000)


def keep_active(document: KritaDocument, source: Any, added: Any) -> None:
    """Keep ``source`` the active layer after ``added`` joined the document, so that a second Renovate works on the
    photo again, not on the mostly transparent result. Only while ``added`` is active: a layer the user picks
    in the meantime is left alone."""

    def restore() -> None:
        try:
            if document.is_open() and document.contains(source) and document.is_active(added):
                document.activate(source)
        except RuntimeError:  # the document or a node went away meanwhile
            pass

    document.activate(source)
    for delay in REACTIVATE_MS:
        QTimer.singleShot(delay, restore)


def describe_status(reply: dict[str, Any]) -> str:
    """The server's ``status`` reply as the sentence the docker shows (see :mod:`.status`)."""
    return status.describe_status(reply).text


_controller: Controller | None = None


def controller() -> Controller:
    """The one controller, created lazily (importing the plug-in creates nothing)."""
    global _controller
    if _controller is None:
        from . import settings

        _controller = Controller(start_server=bool(settings.load(settings.START_SERVER)))
    return _controller
