"""The docker's face preview: one face of the active layer, before | after, at the slider's fidelity.

The GUI thread reads the layer's pixels (the bytes the Renovate action sends, :mod:`.pixels`); a plain thread asks
the server for a preview (``Client.preview``) and turns its answer into 8-bit RGBA; a queued Qt signal brings it
back. One request is in flight at a time: a newer one waits and replaces any older waiting one, and an answer to
a request that is no longer the newest is dropped, so a quick series of slider moves ends on the last value.

The face is the largest of the layer, or the one nearest the selection's centre when there is a selection. The
whole layer is sent (a selection moves only the point), so the server's detection of it can be reused. Krita
tells no revision of a layer, so no ``key`` is sent: the server recognises the same pixels by their hash.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from typing import Any

from PyQt5.QtCore import QObject, pyqtSignal

from . import core
from .client_loader import is_client_error, load_client
from .document import KritaDocument
from .log import log_error, logger
from .pixels import PixelFormat, UnsupportedImage, host_to_wire, wire_to_rgba8

HELLO_TIMEOUT = 2.0  # nothing answers: say so quickly
PREVIEW_TIMEOUT = 60.0  # a preview waits at most one batch of another job's faces


@dataclass(frozen=True)
class Request:
    """What one preview needs, read on the GUI thread."""

    serial: int
    fidelity: float
    fmt: PixelFormat
    width: int
    height: int
    pixels: bytes  # host layout
    at: tuple[float, float] | None  # the selection's centre, image pixels


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

    @property
    def caption(self) -> str:
        which = "nearest the selection's centre" if self.at_selection else "the largest"
        face = f"face {self.face_index + 1} of {self.face_count} ({which})"
        if self.kept:
            return f"The {face} already looks sharp: it keeps its pixels at any fidelity."
        return f"Before | after at fidelity {self.fidelity:.2f}: {face}."

    @property
    def digest(self) -> str:
        return hashlib.md5(self.after).hexdigest()


def read_request(document: KritaDocument | None, fidelity: float, serial: int) -> Request:
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
    pixels = document.read_pixels(node, rect)
    return Request(serial, fidelity, fmt, rect.width, rect.height, pixels, at)


def fetch(client: Any, request: Request) -> Picture:
    """Ask the server (any thread: no Krita calls) and convert its answer for display."""
    client.hello(timeout=HELLO_TIMEOUT)
    wire = host_to_wire(request.pixels, request.fmt, request.width, request.height)
    answer = client.preview(
        wire,
        request.width,
        request.height,
        request.fmt.channels,
        dtype=request.fmt.wire_dtype,
        fidelity=request.fidelity,
        at=request.at,
        timeout=PREVIEW_TIMEOUT,
    )

    def rgba(data: Any) -> bytes:
        return wire_to_rgba8(data, answer.channels, answer.dtype, answer.width, answer.height)

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
        (answer.face.get("path") or {}).get("degradation") == 0,
    )


def error_text(exc: BaseException, can_start: bool) -> str:
    """One sentence for the preview area."""
    if isinstance(exc, (core.NothingToDo, UnsupportedImage)):
        return str(exc)
    code = getattr(exc, "code", "")
    if code == "no_face":
        logger().info("preview: %s", exc)
        return "No face big enough to preview in this layer."
    if is_client_error(exc, "ServerUnavailable"):
        start = "it starts when you press Renovate" if can_start else "start it with 'hifacegan-server'"
        return f"No preview: the Renovate Faces server is not running ({start})."
    if is_client_error(exc, "Cancelled"):
        return "The preview was cancelled; press Preview to try again."
    return f"No preview: {log_error(exc)}"


class Previewer(QObject):
    """Previews requested by the docker; ``shown`` carries a :class:`Picture` or a sentence (str)."""

    shown = pyqtSignal(object)
    busy_changed = pyqtSignal(bool)
    _answer = pyqtSignal(object)  # worker thread -> GUI thread: (request, Picture or exception)

    def __init__(self, can_start: Any = lambda: True) -> None:
        super().__init__()
        self.can_start = can_start
        self.serial = 0
        self.current: Picture | str | None = None
        self.history: list[dict[str, Any]] = []  # every answer, shown or dropped (logs and tests)
        self._running: Request | None = None
        self._waiting: Request | None = None
        self._answer.connect(self._on_answer)

    @property
    def busy(self) -> bool:
        return self._running is not None

    @property
    def waiting_for_server(self) -> bool:
        return isinstance(self.current, str) and "server is not running" in self.current

    def request(self, document: KritaDocument | None, fidelity: float) -> None:
        """A preview of ``document``'s active layer at ``fidelity`` (GUI thread); the newest request wins."""
        self.serial += 1
        try:
            request = read_request(document, fidelity, self.serial)
        except Exception as exc:
            self._waiting = None
            self._show(error_text(exc, bool(self.can_start())))
            return
        if self._running is not None:
            self._waiting = request  # replaces an older waiting one, which is never sent
            return
        self._start(request)

    def _start(self, request: Request) -> None:
        try:
            client_module = load_client()
        except Exception as exc:
            self._show(error_text(exc, bool(self.can_start())))
            return
        self._running = request
        self.busy_changed.emit(True)
        threading.Thread(
            target=self._work, args=(client_module, request), name="renovate-faces-preview", daemon=True
        ).start()

    def _work(self, client_module: Any, request: Request) -> None:
        answer: Picture | BaseException
        try:
            with client_module.Client(timeout=PREVIEW_TIMEOUT) as client:
                answer = fetch(client, request)
        except BaseException as exc:  # shown on the GUI thread
            answer = exc
        self._answer.emit((request, answer))

    def _on_answer(self, payload: tuple[Request, Any]) -> None:
        request, answer = payload
        self._running = None
        stale = request.serial != self.serial
        entry: dict[str, Any] = {"serial": request.serial, "fidelity": request.fidelity, "stale": stale}
        if isinstance(answer, Picture):
            entry.update(
                outcome="picture",
                digest=answer.digest,
                window=answer.window,
                caption=answer.caption,
                face=answer.face_index,
                faces=answer.face_count,
                cached=answer.cached,
                seconds=answer.seconds,
            )
        else:
            entry.update(outcome="error", error=type(answer).__name__, code=getattr(answer, "code", ""))
        self.history.append(entry)
        if self._waiting is not None:
            waiting, self._waiting = self._waiting, None
            self._start(waiting)
        else:
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
