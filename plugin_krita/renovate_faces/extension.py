"""The Krita extension: the "Renovate Faces" action (Tools > Scripts) mapped to the controller."""

from __future__ import annotations

from krita import Extension, Krita

from . import core, settings
from .controller import controller
from .document import KritaDocument

ACTION_ID = "renovate_faces"


def options_from_settings() -> core.Options:
    return core.Options(
        fidelity=float(settings.load(settings.FIDELITY)),
        faces=str(settings.load(settings.FACES)),
        keep_grain=bool(settings.load(settings.KEEP_GRAIN)),
        remove_damage=bool(settings.load(settings.REMOVE_DAMAGE)),
    )


def renovate_active_document() -> bool:
    """The action: renovate the active layer of the active document with the docker's options."""
    return controller().start(KritaDocument.active(), options_from_settings())


def show_message(outcome: str, message: str) -> None:
    """A floating message over the canvas: informative, never modal (a modal box would block batch runs)."""
    window = Krita.instance().activeWindow()
    view = window.activeView() if window is not None else None
    if outcome == "done":
        job = controller().last_document
        if job is None or view is None or view.document() != job.doc:
            return  # another document is in front: the docker's line is enough
        message += " Edit > Undo removes it."
    if view is not None:
        from PyQt5.QtGui import QIcon

        view.showFloatingMessage(message, QIcon(), 6000 if outcome == "done" else 12000, 1)


class RenovateFacesExtension(Extension):
    def __init__(self, parent: Krita) -> None:
        super().__init__(parent)

    def setup(self) -> None:
        controller().finished.connect(show_message)

    def createActions(self, window: object) -> None:
        action = window.createAction(ACTION_ID, "Renovate Faces", "tools/scripts")
        action.setToolTip("Renovate the faces of the active layer into a new layer above it (HiFaceGAN)")
        action.triggered.connect(renovate_active_document)
