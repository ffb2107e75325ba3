"""The few Krita document operations the plug-in needs, behind one small class.

Everything Krita-specific about reading and writing pixels lives here, so the rest of the plug-in deals in
bytes and rectangles, and the traps are handled once:

- ``Node.pixelData`` returns a ``QByteArray`` in the node's colour space (see :mod:`.pixels` for the layout);
  it is converted with ``bytes()`` at once, since iterating a ``QByteArray`` yields 1-byte ``bytes``.
- ``Node.setPixelData`` is not undoable, but adding a node is: the result is written into a fresh paint layer
  *before* it is added, so one Edit > Undo removes the whole result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .pixels import PixelFormat


@dataclass(frozen=True)
class Rect:
    x: int
    y: int
    width: int
    height: int

    @property
    def empty(self) -> bool:
        return self.width <= 0 or self.height <= 0

    def intersected(self, other: Rect) -> Rect:
        left, top = max(self.x, other.x), max(self.y, other.y)
        right = min(self.x + self.width, other.x + other.width)
        bottom = min(self.y + self.height, other.y + other.height)
        return Rect(left, top, max(0, right - left), max(0, bottom - top))

    def grown(self, margin: int) -> Rect:
        return Rect(self.x - margin, self.y - margin, self.width + 2 * margin, self.height + 2 * margin)


class KritaDocument:
    """A Krita ``Document`` seen as: bounds, selection, pixels of a node, and "add a layer above a node"."""

    def __init__(self, doc: Any) -> None:
        self.doc = doc

    @classmethod
    def active(cls) -> KritaDocument | None:
        from krita import Krita

        doc = Krita.instance().activeDocument()
        return cls(doc) if doc is not None else None

    @property
    def bounds(self) -> Rect:
        return Rect(0, 0, self.doc.width(), self.doc.height())

    @property
    def name(self) -> str:
        return self.doc.fileName() or self.doc.name() or "untitled"

    def active_node(self) -> Any:
        return self.doc.activeNode()

    def is_open(self) -> bool:
        """False once the user closed the document (a job may outlive it)."""
        from krita import Krita

        return any(d == self.doc for d in Krita.instance().documents())

    def contains(self, node: Any) -> bool:
        """True while ``node`` is still part of this document (the user may delete it during a job)."""
        try:
            found = self.doc.nodeByUniqueID(node.uniqueId())
        except AttributeError:  # pragma: no cover - Krita < 5 has no nodeByUniqueID
            return node.parentNode() is not None
        return found is not None

    def pixel_format(self, node: Any) -> PixelFormat:
        """The node's colour space, or ``UnsupportedImage`` saying how to convert it."""
        return PixelFormat.check(node.colorModel(), node.colorDepth())

    def selection_rect(self) -> Rect | None:
        """The selection's bounding box within the image, or None when nothing is selected."""
        sel = self.doc.selection()
        if sel is None or sel.width() <= 0 or sel.height() <= 0:
            return None
        return Rect(sel.x(), sel.y(), sel.width(), sel.height()).intersected(self.bounds)

    def selection_mask(self, rect: Rect) -> bytes | None:
        """One byte per pixel of ``rect`` (0 unselected .. 255 selected), or None when nothing is selected."""
        sel = self.doc.selection()
        if sel is None or sel.width() <= 0 or sel.height() <= 0:
            return None
        return bytes(sel.pixelData(rect.x, rect.y, rect.width, rect.height))

    def read_pixels(self, node: Any, rect: Rect) -> bytes:
        return bytes(node.pixelData(rect.x, rect.y, rect.width, rect.height))

    def add_layer_above(self, node: Any, name: str, rect: Rect, data: bytes) -> Any:
        """A new paint layer holding ``data`` at ``rect``, stacked right above ``node``: one undo step."""
        from PyQt5.QtCore import QByteArray

        layer = self.doc.createNode(name, "paintlayer")
        if (node.colorModel(), node.colorDepth()) != (self.doc.colorModel(), self.doc.colorDepth()):
            layer.setColorSpace(node.colorModel(), node.colorDepth(), node.colorProfile())
        layer.setPixelData(QByteArray(data), rect.x, rect.y, rect.width, rect.height)
        parent = node.parentNode() or self.doc.rootNode()
        parent.addChildNode(layer, node)
        self.doc.refreshProjection()
        return layer

    def unique_layer_name(self, name: str) -> str:
        """``name``, or ``name #1``, ``name #2`` ... when a layer has it already (as GIMP names copies)."""
        taken = set()
        stack = list(self.doc.topLevelNodes())
        while stack:
            node = stack.pop()
            taken.add(node.name())
            stack.extend(node.childNodes())
        if name not in taken:
            return name
        number = 1
        while f"{name} #{number}" in taken:
            number += 1
        return f"{name} #{number}"

    def is_active(self, node: Any) -> bool:
        active = self.doc.activeNode()
        return active is not None and active.uniqueId() == node.uniqueId()

    def activate(self, node: Any) -> None:
        self.doc.setActiveNode(node)
