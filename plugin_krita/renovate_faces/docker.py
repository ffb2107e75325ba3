"""The "Renovate Faces" docker: fidelity, which faces, run, progress, cancel, and the server's status."""

from __future__ import annotations

from krita import DockWidget, DockWidgetFactory, DockWidgetFactoryBase, Krita
from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from . import settings
from .controller import controller

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
        self.faces.addItem("All faces", "all")
        self.faces.addItem("Largest face only", "largest")
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
        self.message = QLabel(body)
        self.message.setWordWrap(True)
        layout.addWidget(self.message)
        self.status = QLabel("Server: not checked yet", body)
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        layout.addStretch(1)
        self.setWidget(body)

        self.fidelity.valueChanged.connect(self._on_fidelity)
        self.faces.currentIndexChanged.connect(self._on_faces)
        self.run_button.clicked.connect(lambda: Krita.instance().action("renovate_faces").trigger())
        self.cancel_button.clicked.connect(lambda: controller().cancel())
        controller().changed.connect(self._sync)
        controller().server_status.connect(self.status.setText)
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
        self.message.setText(c.message)
        if not c.busy:
            c.refresh_status()


def register() -> None:
    Krita.instance().addDockWidgetFactory(
        DockWidgetFactory(DOCKER_ID, DockWidgetFactoryBase.DockRight, RenovateFacesDocker)
    )
