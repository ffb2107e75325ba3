"""The Krita extension: the "Renovate Faces" action (Tools > Scripts) mapped to the controller."""

from __future__ import annotations

from krita import Extension, Krita

from . import core, settings
from .controller import controller
from .document import KritaDocument

ACTION_ID = "renovate_faces"


def options_from_settings() -> core.Options:
    return core.Options(
        fidelity=float(settings.load(settings.FIDELITY)), faces=str(settings.load(settings.FACES))
    )


def renovate_active_document() -> bool:
    """The action: renovate the active layer of the active document with the docker's options."""
    return controller().start(KritaDocument.active(), options_from_settings())


def show_message(outcome: str, message: str) -> None:
    """A floating message over the canvas: informative, never modal (a modal box would block batch runs)."""
    window = Krita.instance().activeWindow()
    view = window.activeView() if window is not None else None
    server = controller().server
    if outcome == "failed" and message == server.text and len(message) > 160:
        # A failed start with its fix is long for a fading message: the docker keeps the whole text.
        message = (
            "Renovate Faces could not start its server. The Renovate Faces docker (Settings > Dockers) "
            "says why and what to do."
        )
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
