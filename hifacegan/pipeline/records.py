"""What a renovation reports: its progress, each face's outcome and path, the result, and the checks on its input.

Shared by the :class:`~hifacegan.pipeline.renovator.Renovator`, the face preview and the server, which all speak
of faces the same way.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from hifacegan.face.detection import Detection

#: Progress.text names the time left once at least this many seconds are estimated to remain.
LEFT_FROM_S = 5.0


class Cancelled(Exception):
    """The run's :class:`CancelToken` was cancelled; the photo was left as it was."""


class CancelToken:
    """The one way to stop a renovation or a preview.

    ``cancel()`` from any thread (a host's Cancel button, the server when a client goes away or a time limit
    passes, a signal handler); the pipeline checks the token between its steps and batches of faces
    (:meth:`check`) and raises :class:`Cancelled`, leaving the photo as it was. Wraps a ``threading.Event`` (its
    own, or the caller's: the server's job already has one).
    """

    def __init__(self, event: threading.Event | None = None) -> None:
        self.event = event if event is not None else threading.Event()
        self.reason = ""

    def cancel(self, reason: str = "cancelled") -> None:
        """Ask the run to stop at its next check; the first reason given is kept."""
        self.reason = self.reason or reason
        self.event.set()

    @property
    def cancelled(self) -> bool:
        return self.event.is_set()

    def check(self, where: str) -> None:
        """Raise :class:`Cancelled` (saying ``where`` the run stopped) once the token is cancelled."""
        if self.cancelled:
            raise Cancelled(f"renovation cancelled {where}")


class _PollingToken(CancelToken):
    """A token over the older ``cancel`` callable (True: stop), kept for one release."""

    def __init__(self, poll: Callable[[], bool]) -> None:
        super().__init__()
        self.poll = poll

    @property
    def cancelled(self) -> bool:
        return self.event.is_set() or bool(self.poll())


def as_token(cancel: CancelToken | threading.Event | Callable[[], bool] | None) -> CancelToken:
    """The :class:`CancelToken` for a run's ``cancel`` argument: a token itself, a fresh one for None, one around a
    ``threading.Event``; a plain callable still works for one release, with a DeprecationWarning."""
    if cancel is None:
        return CancelToken()
    if isinstance(cancel, CancelToken):
        return cancel
    if isinstance(cancel, threading.Event):
        return CancelToken(cancel)
    if callable(cancel):
        warnings.warn(
            "passing a callable as cancel= is deprecated and will be removed in the next release: pass a "
            "hifacegan.pipeline.CancelToken (or a threading.Event) and call its cancel()",
            DeprecationWarning,
            stacklevel=3,
        )
        return _PollingToken(cancel)
    raise TypeError(f"cancel must be a CancelToken, a threading.Event or None, not {type(cancel).__name__}")


@dataclass(frozen=True)
class Progress:
    """Where a renovation is, sent to ``Renovator.__call__``'s ``report`` callback as each stage starts.

    ``stage``: ``detect``, then per batch of faces ``renovate`` (align and run the network) and ``paste`` (colour
    match and blend back), then ``done``. ``done`` faces of ``total`` (the faces chosen) are finished: blended back,
    or left out when they could not be aligned or pasted (``RenovationResult.faces`` says which);
    ``first``..``last`` (1-based) are the faces the stage works on now (0 for detect and done). ``remaining`` is an
    estimate in seconds from the faces finished so far (None before the first batch ends).
    """

    stage: str
    done: int = 0
    total: int = 0
    first: int = 0
    last: int = 0
    elapsed: float = 0.0
    remaining: float | None = None

    @property
    def fraction(self) -> float:
        """The share of the faces finished (0 while detecting, 1 when done)."""
        if self.stage == "done":
            return 1.0
        return self.done / self.total if self.total else 0.0

    @property
    def text(self) -> str:
        """A sentence for a status bar: "Renovating faces 5-8 of 29 (about 12 s left)"."""
        if self.stage == "detect":
            return "Detecting faces"
        if self.stage == "done":
            return f"Done: {self.done} of {self.total} faces" if self.total else "Done: no face to renovate"
        faces = f"face {self.first}" if self.first == self.last else f"faces {self.first}-{self.last}"
        text = f"{'Renovating' if self.stage == 'renovate' else 'Blending'} {faces} of {self.total}"
        if self.stage == "paste":
            text += " back"
        if self.remaining is not None and self.remaining >= LEFT_FROM_S:
            text += f" (about {self.remaining:.0f} s left)"
        return text


@dataclass
class FaceReport:
    """One detected face: ``box`` (x0, y0, x1, y1) and ``landmarks`` in photo pixels; why it was skipped, if it was."""

    box: tuple[float, float, float, float]
    landmarks: list[list[float]]
    score: float
    renovated: bool
    reason: str = ""
    # How the face went through the network (renovated faces): FacePath.to_dict().
    path: dict | None = None
    # Whether any of its pixels changed: a renovated face measured sharp and clean, with no damage found, keeps
    # every pixel (renovated, not changed). What the hosts and the CLI count.
    changed: bool = False

    def to_dict(self) -> dict:
        data = asdict(self)
        data["box"] = [round(v, 2) for v in self.box]
        data["landmarks"] = [[round(x, 2), round(y, 2)] for x, y in self.landmarks]
        data["score"] = round(self.score, 4)
        return data


@dataclass
class FacePath:
    """How one face was renovated: the network's size, the face's own size and the size it was cut at.

    ``merge`` is ``replace`` (the renovated face replaces the photo's, faces up to the network's size) or
    ``detail`` (the network's correction of the low band plus the fine band's cleaning are added to the photo's
    own pixels: hifacegan.face.detail). Either way ``degradation`` of the renovated face is taken: 0 for a face
    that looked sharp and clean (it keeps its pixels), 1 for a degraded one.
    """

    weights: str
    network_size: int
    face_size: float
    working_size: int
    # How degraded the face looked (hifacegan.face.detail): the renovated face's share.
    degradation: float = 1.0
    # Damage found and filled around the face (hifacegan.damage): its share of the face's window, and pixels.
    damage_share: float = 0.0
    damage_area: int = 0
    # Whether the fidelity slider changes this face: its weights have a partner at the slider's other end.
    slider: bool = True
    # The share of the network's face taken at the slider's position (hifacegan.pipeline.fidelity.slider_share);
    # None until the face is renovated, when its degradation is the share.
    share: float | None = None

    @property
    def taken(self) -> float:
        """The share of the renovated face laid over the photo's own pixels."""
        return self.degradation if self.share is None else self.share

    @property
    def merge(self) -> str:
        return "detail" if self.working_size > self.network_size else "replace"

    def to_dict(self) -> dict:
        return {
            "weights": self.weights,
            "network_size": self.network_size,
            "face_size": round(self.face_size, 1),
            "working_size": self.working_size,
            "merge": self.merge,
            "degradation": round(self.degradation, 3),
            "damage": {"share": round(self.damage_share, 4), "area": self.damage_area},
            "slider": self.slider,
            "share": round(self.taken, 3),
        }


@dataclass
class RenovationResult:
    image: np.ndarray
    faces: list[FaceReport]
    timings: dict[str, float]
    notes: list[str] = field(default_factory=list)
    crops: list[np.ndarray] = field(default_factory=list)  # renovated aligned faces (uint8 RGB) if asked for

    @property
    def renovated(self) -> int:
        return sum(f.renovated for f in self.faces)


def check_image(image: np.ndarray) -> np.ndarray:
    """``image`` if the pipeline takes it ((H, W) or (H, W, 1-4), uint8/uint16/float32); else TypeError/ValueError."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array, not {type(image).__name__}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and not 1 <= image.shape[2] <= 4):
        raise ValueError(f"image must be (H, W) or (H, W, C) with C in 1..4, got shape {image.shape}")
    if image.dtype not in (np.uint8, np.uint16, np.float32):
        raise ValueError(f"image must be uint8, uint16 or float32, got {image.dtype}")
    if min(image.shape[:2]) < 1:
        raise ValueError("image is empty")
    return image


def face_report(face: Detection, renovated: bool, reason: str, path: FacePath | None) -> FaceReport:
    """What the result says of one detected face: renovated or why not, and how (its path)."""
    return FaceReport(
        box=tuple(face.box),
        landmarks=[list(p) for p in face.landmarks],
        score=face.score,
        renovated=renovated,
        reason="" if renovated else (reason or "not renovated"),
        path=path.to_dict() if renovated and path is not None else None,
        changed=renovated and path is not None and (path.degradation > 0 or path.damage_area > 0),
    )
