"""The "Renovate Faces" docker: fidelity, which faces, run, progress, cancel, and the server's status."""

from __future__ import annotations

from krita import DockWidget, DockWidgetFactory, DockWidgetFactoryBase, Krita
from PyQt5.QtCore import Qt, QTimer
from PyQt5.QtGui import QImage, QPainter, QPixmap
from PyQt5.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from . import settings
from .common import KEEP_GRAIN_LABEL, PREVIEW_DEBOUNCE_MS, REMOVE_DAMAGE_LABEL, photo_options
from .controller import controller
from .core import FACE_CHOICES
from .document import KritaDocument
from .preview import Picture, previewer

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

        self.keep_grain = setting_box(body, KEEP_GRAIN_LABEL, settings.KEEP_GRAIN)
        layout.addWidget(self.keep_grain)
        self.remove_damage = setting_box(body, REMOVE_DAMAGE_LABEL, settings.REMOVE_DAMAGE)
        layout.addWidget(self.remove_damage)

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
        self._add_preview(body, layout)
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
        if canvas is not None:  # an image was opened or another view became active: show its face
            self._preview_timer.start(self.OPEN_PREVIEW_MS)

    # -- the face preview (see preview.py) -------------------------------------------------------------------
    OPEN_PREVIEW_MS = 600  # lets Krita finish opening the image

    def _add_preview(self, body: QWidget, layout: QVBoxLayout) -> None:
        self.preview_button = QPushButton("Preview", body)
        self.preview_button.setObjectName("renovate_faces_preview_button")
        self.preview_button.setToolTip(
            "Show one face before | after at the chosen fidelity: the largest, or the one at the selection's centre"
        )
        layout.addWidget(self.preview_button)
        self.preview = QLabel(body)
        self.preview.setObjectName("renovate_faces_preview")
        self.preview.setAlignment(Qt.AlignCenter)
        self.preview.setWordWrap(True)
        self.preview.setTextFormat(Qt.PlainText)
        self.preview.setMinimumHeight(80)
        self.preview.setSizePolicy(
            QSizePolicy.Ignored, QSizePolicy.Preferred
        )  # the pixmap follows the docker
        self.preview.setText("Press Preview to see a face before and after.")
        layout.addWidget(self.preview)
        self.preview_caption = wrapping_label(body, "renovate_faces_preview_caption")
        layout.addWidget(self.preview_caption)
        self._preview_image: QImage | None = None
        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.timeout.connect(self.request_preview)
        self.preview_button.clicked.connect(self.request_preview)
        self.fidelity.sliderReleased.connect(self.request_preview)
        self.fidelity.valueChanged.connect(self._fidelity_for_preview)
        # A check box asks again like a step of the slider: after the same pause.
        for box in (self.keep_grain, self.remove_damage):
            box.toggled.connect(lambda _checked: self._preview_timer.start(PREVIEW_DEBOUNCE_MS))
        previewer().shown.connect(self._show_preview)
        previewer().busy_changed.connect(self._preview_busy)
        controller().server_status.connect(self._preview_when_server_answers)

    def request_preview(self) -> None:
        self._preview_timer.stop()
        previewer().request(KritaDocument.active(), self.fidelity.value() / 100, self.photo_options())

    def photo_options(self) -> dict[str, str]:
        return photo_options(self.keep_grain.isChecked(), self.remove_damage.isChecked())

    def _fidelity_for_preview(self, value: int) -> None:
        # Once the value pauses, as in GIMP's dialog: a drag that stops asks, and the release asks at once.
        self._preview_timer.start(PREVIEW_DEBOUNCE_MS)

    def _preview_when_server_answers(self, text: str) -> None:
        if previewer().waiting_for_server and controller().server.kind == "ready":
            self._preview_timer.start(0)

    def _preview_busy(self, busy: bool) -> None:
        if busy:
            self.preview_caption.setText(
                f"Updating the preview at fidelity {self.fidelity.value() / 100:.2f}..."
            )

    def _show_preview(self, what: object) -> None:
        if isinstance(what, Picture):
            self._preview_image = side_by_side(what)
            self._render_preview()
            self.preview_caption.setText(what.caption)
        else:
            self._preview_image = None
            self.preview.clear()
            self.preview.setMinimumHeight(80)
            self.preview.setText(wrappable(str(what)))
            self.preview_caption.setText("")

    def _render_preview(self) -> None:
        if self._preview_image is None:
            return
        image = self._preview_image
        # As wide as the docker allows: a small face is enlarged (up to 3x), a big one shrunk.
        width = min(max(60, self.preview.width()), 3 * image.width())
        if image.width() != width:
            image = image.scaledToWidth(width, Qt.SmoothTransformation)
        self.preview.setMinimumHeight(max(80, image.height()))  # a word-wrapping label sizes by its text
        self.preview.setPixmap(QPixmap.fromImage(image))

    def resizeEvent(self, event: object) -> None:
        super().resizeEvent(event)
        QTimer.singleShot(0, self._render_preview)  # once the layout gave the label its new width

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
        # No "0%" while idle: the message below says how the last job ended.
        self.progress.setTextVisible(c.busy)
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


PREVIEW_GAP = 4  # pixels between before and after


def side_by_side(picture: Picture) -> QImage:
    """Before and after next to each other, as one image (QImage copies the bytes: no numpy)."""
    w, h = picture.width, picture.height
    combined = QImage(2 * w + PREVIEW_GAP, h, QImage.Format_ARGB32_Premultiplied)
    combined.fill(Qt.transparent)
    painter = QPainter(combined)
    for x, data in ((0, picture.before), (w + PREVIEW_GAP, picture.after)):
        painter.drawImage(x, 0, QImage(data, w, h, 4 * w, QImage.Format_RGBA8888))
    painter.end()
    return combined


def setting_box(parent: QWidget, label: str, setting: settings.Setting) -> QCheckBox:
    """A check box showing a boolean setting, saving it whenever it is ticked or unticked."""
    box = QCheckBox(label, parent)
    box.setObjectName(f"renovate_faces_{setting.name}")
    box.setToolTip(setting.desc)
    box.setChecked(bool(settings.load(setting)))
    box.toggled.connect(lambda checked: settings.save(setting, bool(checked)))
    return box


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
