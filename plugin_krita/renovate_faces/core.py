"""Renovate the faces of one node: read (GUI thread) -> send to the server (any thread) -> add a layer (GUI thread).

The three steps are separate functions because Krita's API may only be used on the GUI thread while the server
call must not block it; :func:`renovate_node` chains them synchronously for scripts and the kritarunner tests.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .common import layer_name, nothing_changed_message, photo_options
from .document import KritaDocument, Rect
from .pixels import ChangedRegion, PixelFormat, changed_region, host_to_wire, mask_is_empty, wire_to_host

Progress = Callable[[float, str], None]
RenovateCall = Callable[..., Any]  # Client.renovate's signature (docs/architecture.md, "Client")

# Which faces to renovate: the protocol's choices (server/protocol.py FACE_CHOICES, tied to this copy by
# tests/test_option_choices.py) with the words the docker shows. The plug-in's only copy: the docker's combo box
# and the stored setting's check read it from here.
FACE_CHOICES = (
    ("all", "All faces"),
    ("largest", "Largest face only"),
    ("center", "Face nearest the centre"),
)
FACE_NICKS = tuple(nick for nick, _ in FACE_CHOICES)


class NothingToDo(Exception):
    """The request cannot change anything (empty selection, no faces found); ``str()`` is for the user."""


@dataclass(frozen=True)
class Options:
    fidelity: float = 0.5
    faces: str = "all"
    keep_grain: bool = True
    remove_damage: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.fidelity <= 1.0:
            raise ValueError(f"fidelity must be between 0 and 1, got {self.fidelity}")
        if self.faces not in FACE_NICKS:
            raise ValueError(f"faces must be one of {FACE_NICKS}, got {self.faces!r}")

    def to_server(self) -> dict[str, Any]:
        return {"fidelity": float(self.fidelity), "faces": self.faces, **self.photo_options}

    @property
    def photo_options(self) -> dict[str, str]:
        """Grain and damage: what a preview sends too."""
        return photo_options(self.keep_grain, self.remove_damage)

    @property
    def layer_name(self) -> str:
        return layer_name(self.fidelity, self.faces)


@dataclass(frozen=True)
class Job:
    """Everything the server call needs, read from the document on the GUI thread."""

    fmt: PixelFormat
    rect: Rect  # image coordinates of the pixels sent
    pixels: bytes  # host layout, kept to find what changed
    wire: bytes
    mask: bytes | None
    options: Options


@dataclass(frozen=True)
class Result:
    changed: ChangedRegion | None
    faces: list[dict[str, Any]] = field(default_factory=list)

    @property
    def renovated_faces(self) -> int:
        return sum(1 for f in self.faces if f.get("renovated"))

    @property
    def changed_faces(self) -> int:
        """Faces whose pixels changed (a sharp, clean face is renovated yet keeps every pixel): what users hear."""
        return sum(1 for f in self.faces if f.get("changed"))


def context_margin(width: int, height: int) -> int:
    """How far beyond a selection's box the pixels sent reach: a face the selection's edge cuts must reach the
    detector whole, with context around it. The GIMP plug-in's rule, where the reasoning is written out
    (plugin_gimp/renovate-faces/renovate-faces.py, ``context_margin``); tests/test_option_choices.py ties them."""
    return max(64, max(width, height) // 2)


def selection_context(selection: Rect, bounds: Rect) -> Rect:
    """The area sent when a selection exists: its box plus the context margin, inside the image."""
    return selection.grown(context_margin(selection.width, selection.height)).intersected(bounds)


def prepare(document: KritaDocument, node: Any, options: Options) -> Job:
    """Read the node's pixels (and the selection) on the GUI thread."""
    if node is None:
        raise NothingToDo("Select a layer first: Renovate Faces works on the active layer.")
    fmt = document.pixel_format(node)
    selected = document.selection_rect()
    if selected is not None and selected.empty:
        raise NothingToDo("The selection lies outside the image; select the faces to renovate, or none.")
    rect = document.bounds if selected is None else selection_context(selected, document.bounds)
    mask = document.selection_mask(rect)
    if mask is not None and mask_is_empty(mask):
        raise NothingToDo("The selection is empty; select the faces to renovate, or select nothing.")
    pixels = document.read_pixels(node, rect)
    wire = host_to_wire(pixels, fmt, rect.width, rect.height)
    return Job(fmt, rect, pixels, wire, mask, options)


def run(
    job: Job,
    renovate: RenovateCall,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> Result:
    """Send the job to the server and keep only the changed pixels; safe on any thread (no Krita calls)."""
    res = renovate(
        job.wire,
        job.rect.width,
        job.rect.height,
        job.fmt.channels,
        dtype=job.fmt.wire_dtype,
        mask=job.mask,
        options=job.options.to_server(),
        progress=progress or (lambda fraction, text: None),
        cancel=cancel,
    )
    if (res.width, res.height, res.channels, res.dtype) != (
        job.rect.width,
        job.rect.height,
        job.fmt.channels,
        job.fmt.wire_dtype,
    ):
        raise RuntimeError(
            f"The server answered with a {res.width}x{res.height} {res.channels}-channel {res.dtype} image for a "
            f"{job.rect.width}x{job.rect.height} {job.fmt.channels}-channel {job.fmt.wire_dtype} request; "
            "update the server and the plug-in together."
        )
    host = wire_to_host(res.pixels, job.fmt, job.rect.width, job.rect.height)
    changed = changed_region(job.pixels, host, job.rect.width, job.rect.height, job.fmt.host_bytes_per_pixel)
    return Result(changed, list(res.faces or []))


def apply(document: KritaDocument, node: Any, job: Job, result: Result) -> Any:
    """Add the result as a new paint layer right above ``node`` (GUI thread); returns the layer.

    Raises :class:`NothingToDo` when the server changed nothing, so no empty layer is left behind.
    """
    if result.changed is None or not result.changed_faces:
        raise NothingToDo(nothing_changed_message(result.faces, job.mask is not None))
    c = result.changed
    rect = Rect(job.rect.x + c.x, job.rect.y + c.y, c.width, c.height)
    name = document.unique_layer_name(job.options.layer_name)
    layer = document.add_layer_above(node, name, rect, c.data)
    document.doc.waitForDone()
    return layer


def renovate_node(
    document: KritaDocument,
    node: Any,
    renovate: RenovateCall,
    options: Options | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> tuple[Any, Result]:
    """The whole flow on the calling thread: (new layer, result). For scripts and tests; the GUI uses a worker."""
    job = prepare(document, node, options or Options())
    result = run(job, renovate, progress, cancel)
    return apply(document, node, job, result), result
