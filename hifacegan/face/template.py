"""Derive a weights' alignment template from its training faces, with the project's own detector.

The pipeline aligns each face of a photo to the template in the weights' model card. For weights trained on
pre-cropped faces (UTKFace's tight crops, not FFHQ's alignment), that template must describe *those* crops, or
renovated faces come out shifted or scaled. We detect the 5 landmarks of a sample of the training faces (resized to
the model size, padded so the detector sees some context around tight crops) and take the median of each point.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from hifacegan.face.detection import FaceDetector

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


@dataclass
class TemplateEstimate:
    template: list[list[float]]  # 5 x [x, y] at ``size``
    size: int
    used: int
    missed: int
    spread: list[float]  # median absolute deviation of each point, px

    def as_dict(self) -> dict:
        return {
            "template": self.template,
            "size": self.size,
            "faces_used": self.used,
            "faces_missed": self.missed,
            "point_mad_px": self.spread,
        }


def estimate_template(
    folder: str | Path,
    size: int,
    limit: int = 400,
    seed: int = 0,
    pad: float = 0.5,
    detector: FaceDetector | None = None,
) -> TemplateEstimate:
    """Median 5-point landmarks of up to ``limit`` faces of ``folder``, each resized to ``size`` px."""
    paths = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise ValueError(f"no images found in {folder}")
    random.Random(seed).shuffle(paths)
    detector = detector or FaceDetector("retinaface_mobile0.25", confidence=0.5, max_side=4 * size)
    border = int(round(pad * size))
    points, missed = [], 0
    for path in paths[:limit]:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            missed += 1
            continue
        image = cv2.cvtColor(cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
        padded = cv2.copyMakeBorder(image, border, border, border, border, cv2.BORDER_REPLICATE)
        faces = detector(padded)
        if not faces:
            missed += 1
            continue
        points.append(faces[0].landmarks_array() - border)
    if not points:
        raise ValueError(f"no face was detected in {min(limit, len(paths))} images of {folder}")
    stack = np.stack(points)
    median = np.median(stack, axis=0)
    mad = np.median(np.linalg.norm(stack - median, axis=2), axis=0)
    return TemplateEstimate(
        template=[[round(float(x), 3), round(float(y), 3)] for x, y in median],
        size=size,
        used=len(points),
        missed=missed,
        spread=[round(float(v), 3) for v in mad],
    )
