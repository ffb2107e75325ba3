"""The "Renovate Faces" docker: fidelity, which faces, run, progress, cancel, and the server's status."""

from __future__ import annotations

from krita import DockWidget, DockWidgetFactory, DockWidgetFactoryBase, Krita
from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import (
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from . import settings
from .controller import controller
from .core import FACE_CHOICES

DOCKER_ID = "renovate_faces_docker"


class RenovateFacesDocker(DockWidget):
    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("Renovate Faces")
        self.setObjectName(DOCKER_ID)
        body = QWidget(self)
        layout = QVBoxLayout(body)

        row = QHBoxLayout()
        row.addWidget(QLabel("Fidelity", body))
        self.fidelity = QSlider(Qt.Horizontal, body)
        self.fidelity.setRange(0, 100)
        self.fidelity.setToolTip(settings.FIDELITY.desc)
        self.fidelity.setValue(round(100 * settings.load(settings.FIDELITY)))
        self.fidelity_value = QLabel(body)
        row.addWidget(self.fidelity)
        row.addWidget(self.fidelity_value)
        layout.addLayout(row)

        self.faces = QComboBox(body)
        for nick, label in FACE_CHOICES:
            self.faces.addItem(label, nick)
        self.faces.setCurrentIndex(max(0, self.faces.findData(settings.load(settings.FACES))))
        layout.addWidget(self.faces)

        buttons = QHBoxLayout()
        self.run_button = QPushButton("Renovate", body)
        self.run_button.setToolTip("Renovate the faces of the active layer (inside the selection, if any)")
        self.cancel_button = QPushButton("Cancel", body)
        self.cancel_button.setObjectName("renovate_faces_cancel")
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        layout.addLayout(buttons)

        self.progress = QProgressBar(body)
        self.progress.setRange(0, 1000)
        layout.addWidget(self.progress)
        # What the last job did (errors stay until the next run), then the server's state: both wrap, never clip.
        self.message = wrapping_label(body, "renovate_faces_message")
        layout.addWidget(self.message)
        self.status = wrapping_label(body, "renovate_faces_status")
        layout.addWidget(self.status)
        layout.addStretch(1)
        # In a crowded dock column the texts scroll instead of being cut off.
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        scroll.setWidget(body)
        self.setWidget(scroll)

        self.fidelity.valueChanged.connect(self._on_fidelity)
        self.faces.currentIndexChanged.connect(self._on_faces)
        self.run_button.clicked.connect(lambda: Krita.instance().action("renovate_faces").trigger())
        self.cancel_button.clicked.connect(lambda: controller().cancel())
        controller().changed.connect(self._sync)
        controller().server_status.connect(self._on_server_status)
        self._on_fidelity(self.fidelity.value())
        self._sync()
        controller().refresh_status()

    def canvasChanged(self, canvas: object) -> None:  # required by DockWidget
        pass

    def _on_fidelity(self, value: int) -> None:
        self.fidelity_value.setText(f"{value / 100:.2f}")
        settings.save(settings.FIDELITY, value / 100)

    def _on_faces(self, index: int) -> None:
        settings.save(settings.FACES, self.faces.itemData(index))

    def _sync(self) -> None:
        c = controller()
        self.run_button.setEnabled(not c.busy)
        self.cancel_button.setEnabled(c.busy)
        self.progress.setValue(round(1000 * c.progress))
        self._show_texts()
        if not c.busy:
            c.refresh_status()

    def _on_server_status(self, text: str) -> None:
        self._show_texts()

    def _show_texts(self) -> None:
        c = controller()
        self.status.setText(wrappable(c.server.text))
        # A failed start is explained (with the fix) by the status line, which stays; no need to say it twice.
        self.message.setText(wrappable("" if c.message == c.server.text else c.message))


def wrapping_label(parent: QWidget, name: str) -> QLabel:
    label = QLabel(parent)
    label.setObjectName(name)
    label.setWordWrap(True)
    label.setTextFormat(Qt.PlainText)
    label.setTextInteractionFlags(Qt.TextSelectableByMouse)  # commands and paths can be copied
    return label


def wrappable(text: str) -> str:
    """``text`` with a break opportunity after each '/', so a long path wraps instead of widening the docker."""
    return text.replace("/", "/\u200b")


def register() -> None:
    Krita.instance().addDockWidgetFactory(
        DockWidgetFactory(DOCKER_ID, DockWidgetFactoryBase.DockRight, RenovateFacesDocker)
    )
