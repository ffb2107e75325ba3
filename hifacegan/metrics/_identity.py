"""FED and LLE with dlib (the paper's identity and landmark metrics).

- Detection: dlib's HOG frontal face detector, on an image upsampled until its short side reaches 256 px
  (at most twice) so the faces of 128 px crops are found; the largest face (or, given a reference box, the
  one overlapping it most) is used.
- Where a restored face is measured: at the clean image's face box (:meth:`FaceAnalyzer.measure_at`), whether
  or not the detector finds a face in the restored image. Why: the paper's scripts skipped the images where no
  face was detected, so each method was averaged over its own subset, and a method whose outputs the detector
  gives up on (the hardest faces) scored better for it; on CelebA the classical baseline was averaged over 341
  faces and our network over 470. With the reference box every method is scored on the same faces, as
  landmark benchmarks give the predictor the ground-truth box (300-W) and identity scores of aligned restored
  crops skip detection (GFPGAN's and CodeFormer's). Whether a face is found at all is reported on its own.
- Landmarks: dlib's 68-point shape predictor (``face_recognition_models``: iBUG 300-W, whose licence excludes
  commercial use).
- FED: Euclidean distance between the 128-d embeddings of dlib's ResNet face recognition model (the model
  ``face_recognition`` uses), aligned by the 68 landmarks, no jitter. Same person about 0.2-0.4; dlib's
  "different people" threshold is 0.6.
- LLE: mean over the 68 points of the Euclidean distance between the landmarks of the two images, in pixels
  scaled to a 512 px image (``* 512 / width``) so that scores at any evaluation size compare with the paper's.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hifacegan.metrics._errors import MetricUnavailable

LLE_REFERENCE_SIZE = 512
_MODELS = ("shape_predictor_68_face_landmarks.dat", "dlib_face_recognition_resnet_model_v1.dat")


@dataclass(frozen=True)
class FaceMeasure:
    """One face as dlib sees it: box (left, top, right, bottom), 68 landmarks (x, y) and a 128-d embedding."""

    box: tuple[int, int, int, int]
    landmarks: np.ndarray
    embedding: np.ndarray


def _models_dir() -> Path:
    # Found without importing the package: its __init__ needs pkg_resources, gone from new setuptools.
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise MetricUnavailable(
            "FED/LLE need dlib's face models: pip install dlib-bin face-recognition-models==0.3.0"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def _check_rgb8(image: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 RGB image (H, W, 3), got {image.dtype} {image.shape}")


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / area


class FaceAnalyzer:
    """dlib detector, 68-point predictor and embedding network, loaded once per process."""

    def __init__(self, min_detect_side: int = 256):
        try:
            import dlib
        except ImportError as exc:
            raise MetricUnavailable("FED/LLE need dlib: pip install dlib-bin") from exc
        folder = _models_dir()
        paths = [folder / name for name in _MODELS]
        for path in paths:
            if not path.is_file():
                raise MetricUnavailable(f"dlib model {path} is missing: reinstall face-recognition-models")
        self._dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(paths[0]))
        self.encoder = dlib.face_recognition_model_v1(str(paths[1]))
        self.min_detect_side = min_detect_side

    def detect(self, image: np.ndarray) -> list[tuple[int, int, int, int]]:
        """Face boxes (left, top, right, bottom) in ``image`` (uint8 RGB, (H, W, 3))."""
        _check_rgb8(image)
        short = min(image.shape[:2])
        upsample = (
            0 if short >= self.min_detect_side else min(2, math.ceil(math.log2(self.min_detect_side / short)))
        )
        rects = self.detector(np.ascontiguousarray(image), upsample)
        return [(r.left(), r.top(), r.right(), r.bottom()) for r in rects]

    def measure(self, image: np.ndarray, near: tuple[int, int, int, int] | None = None) -> FaceMeasure | None:
        """Landmarks and embedding of the face in ``image``; ``None`` when dlib finds none.

        ``near``: a reference box (the clean image's face); the detected face overlapping it most is used,
        and a face not overlapping it at all counts as not found.
        """
        box = self.find(image, near)
        return None if box is None else self.measure_at(image, box)

    def find(
        self, image: np.ndarray, near: tuple[int, int, int, int] | None = None
    ) -> tuple[int, int, int, int] | None:
        """The box of the face :meth:`measure` would use, or ``None`` (same rules, no landmarks or embedding)."""
        boxes = self.detect(image)
        if near is not None:
            boxes = [b for b in boxes if _overlap(b, near) > 0]
            boxes.sort(key=lambda b: _overlap(b, near), reverse=True)
        else:
            boxes.sort(key=lambda b: (b[2] - b[0]) * (b[3] - b[1]), reverse=True)
        return boxes[0] if boxes else None

    def measure_at(self, image: np.ndarray, box: tuple[int, int, int, int]) -> FaceMeasure:
        """Landmarks and embedding of whatever is at ``box`` in ``image``, without detecting anything.

        The evaluation measures every restored image at its clean image's face box (see the module's docstring).
        """
        _check_rgb8(image)
        image = np.ascontiguousarray(image)
        shape = self.predictor(image, self._dlib.rectangle(*box))
        landmarks = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
        embedding = np.array(self.encoder.compute_face_descriptor(image, shape), dtype=np.float64)
        return FaceMeasure(box=tuple(box), landmarks=landmarks, embedding=embedding)


def fed(a: FaceMeasure, b: FaceMeasure) -> float:
    """Face embedding distance: L2 between the two 128-d dlib embeddings (0 = same embedding)."""
    return float(np.linalg.norm(a.embedding - b.embedding))


def lle(a: FaceMeasure, b: FaceMeasure, image_width: int) -> float:
    """Landmark localisation error: mean L2 over 68 points, in pixels of a 512 px wide image."""
    if image_width <= 0:
        raise ValueError(f"image_width must be positive, got {image_width}")
    distances = np.linalg.norm(a.landmarks - b.landmarks, axis=1)
    return float(distances.mean() * LLE_REFERENCE_SIZE / image_width)
