"""Per-image CPU work (dlib faces and NIQE) run in a process pool, so several cores share the slow part.

Workers load dlib's models once (pool initializer). Each job is one image index: the clean face is measured
first, then every method's image at the clean face's box, so FED and LLE compare the same face, on the same
images for every method; whether dlib's detector finds a face in a method's image is counted on its own
(``hifacegan.metrics._identity`` says why).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hifacegan.metrics._errors import MetricUnavailable
from hifacegan.metrics._identity import FaceAnalyzer, FaceMeasure, fed, lle
from hifacegan.metrics._niqe import BLOCK, niqe

_ANALYZER: FaceAnalyzer | None = None
_ANALYZER_ERROR: str | None = None


@dataclass
class ImageScores:
    """Per-image, per-method results: NaN where a value does not exist (no face, image too small)."""

    index: int
    reference_found: bool
    niqe: list[float]
    found: list[bool]
    fed: list[float]
    lle: list[float]
    faces: list[int]
    face_error: str | None = None


def init_worker() -> None:
    """Load dlib once per process; remember why if it cannot be loaded (reported, never hidden)."""
    global _ANALYZER, _ANALYZER_ERROR
    try:
        _ANALYZER = FaceAnalyzer()
    except MetricUnavailable as exc:
        _ANALYZER, _ANALYZER_ERROR = None, str(exc)


def _safe_niqe(image: np.ndarray) -> float:
    return niqe(image) if min(image.shape[:2]) >= BLOCK else float("nan")


def score_image(job: tuple[int, np.ndarray | None, list[np.ndarray]]) -> ImageScores:
    """NIQE of each method image; FED/LLE against the clean image (or face counts when there is none)."""
    index, clean, images = job
    count = len(images)
    niqes = [_safe_niqe(img) for img in images]
    found, feds, lles, faces = [False] * count, [float("nan")] * count, [float("nan")] * count, [0] * count
    reference: FaceMeasure | None = None
    if _ANALYZER is None:
        return ImageScores(index, False, niqes, found, feds, lles, faces, _ANALYZER_ERROR)
    if clean is not None:
        reference = _ANALYZER.measure(clean)
    for i, img in enumerate(images):
        if clean is None:
            faces[i] = len(_ANALYZER.detect(img))
            found[i] = faces[i] > 0
            continue
        found[i] = _ANALYZER.find(img, near=reference.box if reference else None) is not None
        faces[i] = int(found[i])
        if reference is not None:
            measure = _ANALYZER.measure_at(img, reference.box)
            feds[i] = fed(reference, measure)
            lles[i] = lle(reference, measure, img.shape[1])
    return ImageScores(index, reference is not None, niqes, found, feds, lles, faces)
