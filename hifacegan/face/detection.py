"""Find faces and their 5 landmarks with RetinaFace, on a downscaled copy for big photos.

RetinaFace's cost grows with the pixel count (ResNet-50: ~1 s at 640 px, ~18 s at 2048 px on a 2-core CPU) while
faces big enough to renovate stay detectable after downscaling; boxes and landmarks are mapped back to the photo.
Only the small copy is ever converted to float.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from hifacegan.face.retinaface_model import load_retinaface

#: Faces whose eyes are closer than this (photo pixels) are detector noise (GFPGAN uses 5 px too).
MIN_EYE_DISTANCE = 5.0
#: When nothing is found, a detection copy whose estimated noise sigma (0-255) reaches this is denoised and looked
#: at again: heavy noise hides faces from RetinaFace (on faces-hires degraded with the full task at 512 px it found none in a seventh of
#: the photos whose noise came last), and non-local means at ``h = sigma`` brings them back.
DENOISE_FOR_DETECTION_SIGMA = 10.0
#: When no face reaches the confidence, the detector looks again at coarser copies (half, then a quarter of the
#: detection copy): blur is relative to scale, and a face blurred 4-8x that RetinaFace scores 0.27-0.68 at 512 px
#: scores 0.83-0.95 at half or a quarter of that (faces-hires degraded with the full task at 512 px).
COARSER_LOOKS = 2
#: The coarsest copy looked at, in pixels on its longer side.
COARSEST_SIDE = 96
#: The last resort: when no look (coarser copies and the denoised copy included) finds a face at the confidence,
#: the single best face seen scoring at least this is taken. A face-less photo must not get one: on scikit-image's
#: face-less samples (cat, coffee, gravel, brick, moon, text, ...) at 256 and 512 px RetinaFace scored 0.57 at most,
#: while the one faces-hires portrait found by no look at 0.8 (London 061_03 at 256 px, full task) scores 0.79.
LAST_RESORT_CONFIDENCE = 0.7


@dataclass(frozen=True)
class Detection:
    """One face: ``box`` (x0, y0, x1, y1) and ``landmarks`` (5 x [x, y]: eyes, nose, mouth corners) in photo pixels."""

    box: tuple[float, float, float, float]
    landmarks: tuple[tuple[float, float], ...]
    score: float

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def size(self) -> float:
        """The face box's longer side in pixels."""
        return max(self.width, self.height)

    @property
    def center(self) -> tuple[float, float]:
        return (self.box[0] + self.box[2]) / 2.0, (self.box[1] + self.box[3]) / 2.0

    @property
    def eye_distance(self) -> float:
        (lx, ly), (rx, ry) = self.landmarks[0], self.landmarks[1]
        return float(np.hypot(rx - lx, ry - ly))

    def pixel_box(self, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
        """The box in whole pixels (x0, y0, x1, y1), grown to whole pixels and clipped to a photo of ``shape``."""
        height, width = shape[:2]
        x0, y0, x1, y1 = self.box
        return max(0, int(x0)), max(0, int(y0)), min(width, math.ceil(x1)), min(height, math.ceil(y1))

    def landmarks_array(self) -> np.ndarray:
        return np.asarray(self.landmarks, dtype=np.float64)


def _denoised_if_noisy(data: np.ndarray) -> np.ndarray:
    """The BGR float detection copy, non-local-means filtered when it is noisy enough to hide faces."""
    from hifacegan.models.prefilter import estimate_noise_sigma

    quantised = np.clip(data + 0.5, 0, 255).astype(np.uint8)
    sigma = estimate_noise_sigma(quantised)
    if sigma < DENOISE_FOR_DETECTION_SIGMA:
        return data
    filtered = cv2.fastNlMeansDenoisingColored(quantised, None, sigma, sigma, 7, 21)
    return filtered.astype(np.float32)


def detection_copy(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """A BGR float32 0..255 copy for RetinaFace, at most ``max_side`` px long; returns (copy, scale photo->copy)."""
    h, w = image.shape[:2]
    scale = min(1.0, max_side / float(max(h, w)))
    small = image
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        scale = size[0] / w  # the exact factor applied along x (y differs by < 1 px)
    if small.ndim == 2:
        small = small[..., None]
    channels = small.shape[2]
    colour = small[..., :1] if channels in (1, 2) else small[..., :3]
    if small.dtype == np.uint8:
        data = colour.astype(np.float32)
    elif small.dtype == np.uint16:
        data = colour.astype(np.float32) * (255.0 / 65535.0)
    elif small.dtype.kind == "f":
        data = np.clip(colour.astype(np.float32), 0.0, 1.0) * 255.0
    else:
        raise TypeError(f"unsupported pixel type {small.dtype}; use uint8, uint16 or float32")
    if data.shape[2] == 1:
        data = np.repeat(data, 3, axis=2)
    return np.ascontiguousarray(data[..., ::-1]), scale


class FaceDetector:
    """RetinaFace (facexlib's network class) with downscaled detection and tiny-face filtering.

    ``name``: ``auto`` (ResNet-50 where it can be downloaded, else the offline MobileNet-0.25),
    ``retinaface_resnet50`` or ``retinaface_mobile0.25``.
    """

    def __init__(
        self,
        name: str = "auto",
        device: torch.device | str = "cpu",
        confidence: float = 0.8,
        nms_threshold: float = 0.4,
        max_side: int = 1600,
        min_eye_distance: float = MIN_EYE_DISTANCE,
    ) -> None:
        self.model, self.name = load_retinaface(name, device)
        self.device = torch.device(device)
        self.model.device = self.device  # facexlib's detect_faces puts its tensors on model.device
        self.model.mean_tensor = self.model.mean_tensor.to(self.device)
        self.confidence = confidence
        self.nms_threshold = nms_threshold
        self.max_side = max_side
        self.min_eye_distance = min_eye_distance

    def __call__(self, image: np.ndarray) -> list[Detection]:
        """Faces in ``image`` ((H, W) or (H, W, C); uint8, uint16 or float in [0, 1]), best score first."""
        first, first_scale = detection_copy(image, self.max_side)
        doubtful: list[Detection] = []  # faces under the confidence, for the last resort
        faces = self._look(first, first_scale, doubtful)
        if (
            not faces
        ):  # denoising also smooths faces RetinaFace would have found in the noise: only when needed
            denoised = _denoised_if_noisy(first)
            if denoised is not first:
                faces = self._look(denoised, first_scale, doubtful)
        if not faces and doubtful:
            best = max(doubtful, key=lambda f: f.score)
            faces = [best] if best.score >= min(self.confidence, LAST_RESORT_CONFIDENCE) else []
        return faces

    def _look(self, data: np.ndarray, scale: float, doubtful: list[Detection]) -> list[Detection]:
        """Detect on ``data``, then on coarser copies of it while nothing is found; faces scoring under the
        confidence are added to ``doubtful``."""
        faces = self._detect(data, scale, doubtful)
        for _ in range(COARSER_LOOKS):
            height, width = data.shape[:2]
            if faces or max(height, width) // 2 < COARSEST_SIDE:
                break
            size = (max(1, width // 2), max(1, height // 2))
            data = cv2.resize(data, size, interpolation=cv2.INTER_AREA)
            scale *= size[0] / width
            faces = self._detect(data, scale, doubtful)
        return faces

    def _detect(self, data: np.ndarray, scale: float, doubtful: list[Detection]) -> list[Detection]:
        """RetinaFace on one BGR float copy at ``scale`` (photo -> copy); detections in photo pixels, those under
        the confidence (down to the last resort's) in ``doubtful``."""
        threshold = min(self.confidence, LAST_RESORT_CONFIDENCE)
        with torch.inference_mode():
            raw = self.model.detect_faces(
                data, conf_threshold=threshold, nms_threshold=self.nms_threshold, use_origin_size=True
            )
        faces = []
        for row in np.asarray(raw, dtype=np.float64).reshape(-1, 15):
            box = row[:4] / scale
            points = row[5:15].reshape(5, 2) / scale
            face = Detection(
                box=tuple(float(v) for v in box),
                landmarks=tuple((float(x), float(y)) for x, y in points),
                score=float(row[4]),
            )
            if face.eye_distance >= self.min_eye_distance:
                (faces if face.score >= self.confidence else doubtful).append(face)
        faces.sort(key=lambda f: -f.score)
        return faces
