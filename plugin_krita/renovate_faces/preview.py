"""The docker's face preview: one face of the active layer, before | after, at the slider's fidelity.

The GUI thread reads the layer's pixels; the previewer's long-lived worker (:mod:`.worker`, its own thread and
client, so a preview is served while a job runs) asks the server for a preview (``Client.preview``); a queued Qt
signal brings the answer back. One request is in flight at a time: a newer one waits and replaces any older
waiting one, and an answer to a request that is no longer the newest is dropped, so a quick series of slider
moves ends on the last value.

The face is the largest of the layer, or the one nearest the selection's centre when there is a selection. The
whole layer is sent (a selection moves only the point; 8-bit RGBA as GIMP sends it, a float layer as it is) with a
cheap key of its content (:func:`preview_key`), so the server reuses its detection of it. The GIMP plug-in sends
the same request, after the same pause.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PyQt5.QtCore import QObject, pyqtSignal

from . import core
from .client_loader import is_client_error, load_client
from .common import PreviewQueue, answer_entry, preview_caption, preview_error_text, preview_key
from .document import KritaDocument
from .log import log_error, logger
from .pixels import UnsupportedImage, host_to_wire, wire_to_rgba8
from .worker import Worker

HELLO_TIMEOUT = 2.0  # nothing answers: say so quickly
PREVIEW_TIMEOUT = 60.0  # a preview waits at most one batch of another job's faces


@dataclass(frozen=True)
class Request:
    """What one preview needs, read on the GUI thread."""

    serial: int
    fidelity: float
    width: int
    height: int
    pixels: bytes  # packed rows of ``channels`` samples of ``dtype``
    channels: int = 4
    dtype: str = "u8"
    at: tuple[float, float] | None = None  # the selection's centre, image pixels
    options: dict[str, str] = field(default_factory=dict)  # grain and damage (common.photo_options)


@dataclass(frozen=True)
class Picture:
    """A preview ready to show: ``before`` and ``after`` are ``width`` x ``height`` 8-bit RGBA."""

    serial: int
    fidelity: float
    width: int
    height: int
    before: bytes
    after: bytes
    window: list[int] = field(default_factory=list)
    face_index: int = 0
    face_count: int = 0
    at_selection: bool = False
    cached: bool = False
    seconds: float = 0.0
    kept: bool = False  # the face looked sharp already: it keeps its pixels at any fidelity
    slider: bool = True  # the fidelity slider changes this face

    @property
    def caption(self) -> str:
        return preview_caption(
            self.fidelity, self.face_index, self.face_count, self.at_selection, self.kept, self.slider
        )


def read_request(
    document: KritaDocument | None, fidelity: float, serial: int, options: dict[str, str] | None = None
) -> Request:
    """The active layer's pixels and the selection's centre (GUI thread); NothingToDo says why not."""
    if document is None:
        raise core.NothingToDo("Open an image to see a preview of its faces.")
    node = document.active_node()
    if node is None:
        raise core.NothingToDo("Select a layer to see a preview of its faces.")
    fmt = document.pixel_format(node)
    rect = document.bounds
    selected = document.selection_rect()
    at = None
    if selected is not None and not selected.empty:
        at = (selected.x + selected.width / 2, selected.y + selected.height / 2)
    wire = host_to_wire(document.read_pixels(node, rect), fmt, rect.width, rect.height)
    if fmt.wire_dtype == "f32":  # a float layer as it is: converting each sample in Python would block Krita
        return Request(
            serial, fidelity, rect.width, rect.height, wire, fmt.channels, "f32", at, dict(options or {})
        )
    pixels = wire_to_rgba8(wire, fmt.channels, fmt.wire_dtype, rect.width, rect.height)  # byte slices: fast
    return Request(serial, fidelity, rect.width, rect.height, pixels, 4, "u8", at, dict(options or {}))


def fetch(client: Any, request: Request) -> Picture:
    """Ask the server (any thread: no Krita calls) and convert its answer for display."""
    client.hello(timeout=HELLO_TIMEOUT)
    answer = client.preview(
        request.pixels,
        request.width,
        request.height,
        request.channels,
        dtype=request.dtype,
        fidelity=request.fidelity,
        at=request.at,
        key=preview_key(request.pixels, request.width, request.height),
        options=request.options,
        timeout=PREVIEW_TIMEOUT,
    )

    def rgba(data: Any) -> bytes:
        return wire_to_rgba8(data, answer.channels, answer.dtype, answer.width, answer.height)

    path = answer.face.get("path") or {}

    return Picture(
        request.serial,
        request.fidelity,
        answer.width,
        answer.height,
        rgba(answer.before),
        rgba(answer.after),
        list(answer.window),
        int(answer.index),
        int(answer.face_count),
        request.at is not None,
        bool(answer.cached),
        float(answer.seconds),
        path.get("degradation") == 0,
        path.get("slider", True),
    )


def error_text(exc: BaseException, can_start: bool) -> str:
    """One sentence for the preview area."""
    if isinstance(exc, (core.NothingToDo, UnsupportedImage)):
        return str(exc)
    if is_client_error(exc, "Cancelled"):
        return "The preview was cancelled; press Preview to try again."
    if not is_client_error(
        exc, "ServerError"
    ):  # a missing library says what to install; a bug, where the log is
        return f"No preview: {log_error(exc)}"
    logger().info("preview: %s", exc)
    starts = "it starts when you press Renovate" if can_start else "start it, then press Preview"
    return preview_error_text(getattr(exc, "code", ""), str(exc), starts)


class Previewer(QObject):
    """Previews requested by the docker; ``shown`` carries a :class:`Picture` or a sentence (str)."""

    HISTORY = 100

    shown = pyqtSignal(object)
    busy_changed = pyqtSignal(bool)
    _answer = pyqtSignal(object)  # worker thread -> GUI thread: (request, Picture or exception)

    def __init__(self, can_start: Any = lambda: True) -> None:
        super().__init__()
        self.can_start = can_start
        self.current: Picture | str | None = None
        self.history: list[dict[str, Any]] = []  # the last HISTORY answers, shown or dropped, as logged
        self._queue = PreviewQueue(self._start)  # one request in flight, the newest waiting
        self._answer.connect(self._on_answer)
        self._worker = Worker("renovate-faces-preview")

    @property
    def busy(self) -> bool:
        return self._queue.running is not None

    @property
    def waiting_for_server(self) -> bool:
        return isinstance(self.current, str) and "server is not running" in self.current

    def request(
        self, document: KritaDocument | None, fidelity: float, options: dict[str, str] | None = None
    ) -> None:
        """A preview of ``document``'s active layer at ``fidelity`` with ``options`` (grain and damage, as
        :func:`common.photo_options` gives them; GUI thread); the newest request wins."""
        try:
            request = read_request(document, fidelity, self._queue.next_serial(), options)
            load_client()  # a missing client or library is said now, not from the worker
        except Exception as exc:
            self._queue.waiting = None
            self._show(error_text(exc, bool(self.can_start())))
            return
        self._queue.submit(request)

    def _start(self, request: Request) -> None:
        self.busy_changed.emit(True)
        self._worker.submit(lambda worker: self._work(worker, request))

    def _work(self, worker: Worker, request: Request) -> None:
        answer: Picture | BaseException
        try:
            answer = fetch(worker.client(), request)
        except BaseException as exc:  # shown on the GUI thread
            answer = exc
        self._answer.emit((request, answer))

    def _on_answer(self, payload: tuple[Request, Any]) -> None:
        request, answer = payload
        stale = self._queue.answered(request.serial)  # sends the waiting request, if any
        picture = isinstance(answer, Picture)
        caption, what = (answer.caption, answer.after) if picture else ("", answer)
        entry = answer_entry(request.serial, request.fidelity, request.options, stale, caption, what)
        if picture:
            entry.update(
                window=answer.window,
                face=answer.face_index,
                faces=answer.face_count,
                cached=answer.cached,
                seconds=answer.seconds,
            )
        self.history.append(entry)
        del self.history[: -self.HISTORY]
        logger().info("preview %s", entry)
        if not self.busy:
            self.busy_changed.emit(False)
        if stale:  # a newer request was made meanwhile: its answer (or its error) is what counts
            return
        if isinstance(answer, Picture):
            self._show(answer)
        else:
            self._show(error_text(answer, bool(self.can_start())))

    def _show(self, what: Picture | str) -> None:
        self.current = what
        self.shown.emit(what)


_previewer: Previewer | None = None


def previewer() -> Previewer:
    """The one previewer, shared by the dockers of all windows (created on first use)."""
    global _previewer
    if _previewer is None:
        from .controller import controller

        _previewer = Previewer(can_start=lambda: controller().start_server)
    return _previewer
