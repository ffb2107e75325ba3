"""Preview one face: renovate the largest face (or the one at a point) and return its neighbourhood before and after.

Made to follow a fidelity slider. A :class:`FacePreviewer` wraps a loaded :class:`~hifacegan.pipeline.Renovator`
and runs one face through exactly its path (alignment with context, the band merge of large faces, colour match,
paste-back: the Renovator's public steps ``prepare``, ``renovate`` and ``blend``), so the preview's pixels are the ones a full
run gives that face. What makes it fast:

- the detection of a photo is cached, keyed by a hash of its pixels (or the caller's ``key``): moving the slider
  costs one face through the network, never a detection;
- the face is pasted into a copy of its neighbourhood only (``paste_face``'s ``canvas``): the photo itself is
  neither copied nor converted to float.

    previewer = FacePreviewer(Renovator())
    shown = previewer(pixels, fidelity=0.3, at=(412, 120))  # the face under / nearest the point
    side_by_side(shown.before, shown.after)                  # one picture: before | after
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field

import numpy as np

from hifacegan.face.detection import Detection
from hifacegan.pipeline.faces import PreparedFace
from hifacegan.pipeline.records import CancelToken, FaceReport, check_image, face_report
from hifacegan.pipeline.renovator import Renovator
from hifacegan.pipeline.selection import select_faces

#: The neighbourhood shown around a face: its box grown by this share of the box's longer side on every side.
MARGIN = 0.35
#: Photos whose detection is kept (one per open image in a host is plenty).
CACHE_SIZE = 4


class NoFaceFound(ValueError):
    """The photo has no face big enough to preview (a ValueError: it is about the input, not the server)."""


@dataclass
class FacePreview:
    """One face's neighbourhood before and after renovation.

    ``before`` and ``after`` are the same window (``window``: x0, y0, x1, y1 in photo pixels) of the input and of
    the renovated photo, in the input's dtype and channels (a grey (H, W) photo gives (h, w) crops). ``face`` is the
    face's report (box, landmarks, score, ``path``: how it went through the network), ``index`` its place in the
    photo's detections (``faces`` of them), ``cached`` whether the detection came from the cache.
    """

    before: np.ndarray
    after: np.ndarray
    window: tuple[int, int, int, int]
    face: FaceReport
    index: int
    faces: int
    cached: bool
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def box(self) -> tuple[float, float, float, float]:
        return self.face.box

    @property
    def path(self) -> dict | None:
        return self.face.path

    def side_by_side(self, gap: int = 8) -> np.ndarray:
        return side_by_side(self.before, self.after, gap)


def pixels_key(image: np.ndarray) -> str:
    """A key for the pixels of ``image``: its shape, dtype and a BLAKE2 hash of its bytes."""
    digest = hashlib.blake2b(np.ascontiguousarray(image).data, digest_size=16).hexdigest()
    return f"{image.shape}:{image.dtype}:{digest}"


def choose_face(
    detections: list[Detection],
    shape: tuple[int, int],
    at: tuple[float, float] | None = None,
    min_face_size: float = 16,
) -> int:
    """The index of the face to preview: without ``at`` the largest; with it the face whose box contains the point
    (the one whose centre is nearest, when boxes overlap), else the face whose box is nearest the point.

    Faces smaller than ``min_face_size`` are left out, as the Renovator leaves them; raises :class:`NoFaceFound`.
    """
    verdicts = select_faces(detections, shape, "all", None, min_face_size)
    candidates = [i for i, v in enumerate(verdicts) if not v]
    if not candidates:
        found = (
            f"{len(detections)} found, all smaller than {min_face_size:g} px" if detections else "none found"
        )
        raise NoFaceFound(f"no face to preview in this photo ({found})")
    if at is None:
        return max(candidates, key=lambda i: detections[i].width * detections[i].height)
    x, y = float(at[0]), float(at[1])

    def distance(i: int) -> tuple[float, float]:
        x0, y0, x1, y1 = detections[i].box
        to_box = float(np.hypot(max(x0 - x, 0.0, x - x1), max(y0 - y, 0.0, y - y1)))  # 0 inside the box
        cx, cy = detections[i].center
        return to_box, float(np.hypot(cx - x, cy - y))

    return min(candidates, key=distance)


def neighbourhood(
    box: tuple[float, float, float, float], shape: tuple[int, int], margin: float = MARGIN
) -> tuple[int, int, int, int]:
    """The face's box grown by ``margin`` x its longer side on every side, in whole pixels, clipped to the photo."""
    x0, y0, x1, y1 = box
    grow = margin * max(x1 - x0, y1 - y0)
    h, w = shape
    return (
        max(0, int(np.floor(x0 - grow))),
        max(0, int(np.floor(y0 - grow))),
        min(w, int(np.ceil(x1 + grow))),
        min(h, int(np.ceil(y1 + grow))),
    )


def side_by_side(before: np.ndarray, after: np.ndarray, gap: int = 8) -> np.ndarray:
    """One picture: ``before`` | a ``gap`` px white (opaque) gap | ``after``; same dtype and channels as the crops."""
    if before.shape != after.shape or before.dtype != after.dtype:
        raise ValueError(f"before {before.shape} {before.dtype} and after {after.shape} {after.dtype} differ")
    if gap < 0:
        raise ValueError("gap must be >= 0")
    white = np.iinfo(before.dtype).max if before.dtype.kind in "ui" else 1.0
    spacer = np.full((before.shape[0], gap, *before.shape[2:]), white, dtype=before.dtype)
    return np.concatenate([before, spacer, after], axis=1)


class FacePreviewer:
    """Previews of one face at a time through ``renovator``'s loaded networks, with the photos' detections cached.

    Thread-safe for the cache; the renovator's networks are shared, so run previews and full jobs of one renovator
    from one worker at a time, as the server does.
    """

    def __init__(self, renovator: Renovator, cache_size: int = CACHE_SIZE) -> None:
        self.renovator = renovator
        self.cache_size = max(1, int(cache_size))
        self._cache: OrderedDict[Hashable, list[Detection]] = OrderedDict()
        self._lock = threading.Lock()
        self.detections_run = 0  # how many times the detector ran (the cache's misses)

    def detect(self, image: np.ndarray, key: Hashable | None = None) -> tuple[list[Detection], bool]:
        """The faces of ``image`` and whether they came from the cache; ``key`` names the pixels (default: their
        hash, :func:`pixels_key`). A caller's key must change whenever the pixels do."""
        key = pixels_key(image) if key is None else key
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key], True
        detections = self.renovator.detect(image)
        with self._lock:
            self.detections_run += 1
            self._cache[key] = detections
            self._cache.move_to_end(key)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return detections, False

    def forget(self) -> None:
        """Drop every cached detection."""
        with self._lock:
            self._cache.clear()

    def _prepare(
        self, image: np.ndarray, detection: Detection, index: int, damage: str | None
    ) -> tuple[np.ndarray, np.ndarray, PreparedFace]:
        """The photo as (H, W, C), the photo the face is renovated in (a copy with damage filled around the face,
        as a run would fill it, or the photo itself) and the face prepared in it."""
        r = self.renovator
        original = image if image.ndim == 3 else image[..., None]
        photo, found = original, None
        if r.damage_detector is not None and (damage or r.damage) != "off":
            photo = original.copy()
            (found,) = r.clean_damage(photo, [detection], None, "faces")
        try:
            face = r.prepare(photo, detection, index, original if found is not None and found.area else None)
        except ValueError as exc:
            raise NoFaceFound(f"the face at {detection.box} cannot be aligned: {exc}") from exc
        if found is not None:
            face.path.damage_share, face.path.damage_area = found.share, found.area
        return original, photo, face

    def __call__(
        self,
        image: np.ndarray,
        fidelity: float = 0.5,
        at: tuple[float, float] | None = None,
        *,
        key: Hashable | None = None,
        margin: float = MARGIN,
        min_face_size: float = 16,
        damage: str | None = None,
        grain: str | None = None,
        cancel: CancelToken | None = None,
    ) -> FacePreview:
        """Renovate one face of ``image`` (as for :class:`Renovator`) at ``fidelity``: the largest, or the one at
        or nearest ``at`` = (x, y) in photo pixels. Raises :class:`NoFaceFound` when there is none to preview.
        ``damage``: ``off`` shows the face with its scratches and dust left; else they are filled around it.
        ``grain``: ``remove`` shows the face without the photo's grain laid back over it. ``cancel``: checked
        between the steps (a slider moved on makes this preview moot)."""
        image = check_image(image)
        if not 0.0 <= float(fidelity) <= 1.0:
            raise ValueError(f"fidelity must be within 0..1, got {fidelity}")
        if margin < 0:
            raise ValueError("margin must be >= 0")
        r = self.renovator
        token = cancel or CancelToken()
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        detections, cached = self.detect(image, key)
        t1 = time.perf_counter()
        timings["detect"] = t1 - t0
        index = choose_face(detections, image.shape[:2], at, min_face_size)
        detection = detections[index]
        token.check("before its face was prepared")
        original, photo, face = self._prepare(image, detection, index, damage)
        t2 = time.perf_counter()
        timings["align"] = t2 - t1
        token.check("before its face was renovated")
        (renovated,) = r.renovate([face], fidelity)
        t3 = time.perf_counter()
        timings["network"] = t3 - t2
        x0, y0, x1, y1 = neighbourhood(detection.box, image.shape[:2], margin)
        before = original[y0:y1, x0:x1]
        after = photo[y0:y1, x0:x1].copy()
        written, _ = r.blend(photo, face, renovated, None, canvas=(after, x0, y0), grain=grain)
        timings["paste"] = time.perf_counter() - t3
        timings["total"] = time.perf_counter() - t0
        if image.ndim == 2:
            before, after = before[..., 0], after[..., 0]
        return FacePreview(
            before=before.copy(),
            after=after,
            window=(x0, y0, x1, y1),
            face=face_report(detection, written is not None, "", face.path),
            index=index,
            faces=len(detections),
            cached=cached,
            timings=timings,
        )
