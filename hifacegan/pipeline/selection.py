"""Which detected faces to renovate: all, the largest, the centre one, at most N, inside a region, big enough.

Every detection gets a verdict; skipped faces keep the reason, so summaries can say why a face was left alone.
"""

from __future__ import annotations

import numpy as np

from hifacegan.face.detection import Detection

FACE_CHOICES = ("all", "largest", "center")


def check_region(region: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray | None:
    """Validate a selection mask: (H, W) matching the photo, uint8 0..255 (bool is accepted as 0/255)."""
    if region is None:
        return None
    region = np.asarray(region)
    if region.ndim == 3 and region.shape[2] == 1:
        region = region[..., 0]
    if region.shape != tuple(shape):
        raise ValueError(f"region mask is {region.shape}, the photo is {tuple(shape)}: they must match")
    if region.dtype == bool:
        return region.astype(np.uint8) * 255
    if region.dtype != np.uint8:
        raise ValueError(f"region mask must be uint8 (0..255) or bool, not {region.dtype}")
    return region


def select_faces(
    detections: list[Detection],
    shape: tuple[int, int],
    faces: str = "all",
    max_faces: int | None = None,
    min_face_size: float = 16,
    region: np.ndarray | None = None,
) -> list[str]:
    """One verdict per detection: ``""`` to renovate it, else the reason it is skipped."""
    if faces not in FACE_CHOICES:
        raise ValueError(f"faces={faces!r}: choose one of {', '.join(FACE_CHOICES)}")
    if max_faces is not None and max_faces < 0:
        raise ValueError("max_faces must be None or >= 0")
    verdicts = [""] * len(detections)
    for i, face in enumerate(detections):
        if face.size < min_face_size:
            verdicts[i] = f"smaller than min_face_size ({face.size:.0f} px < {min_face_size:g} px)"
        elif region is not None:
            cx, cy = face.landmarks_array().mean(axis=0)
            x = int(np.clip(round(cx), 0, shape[1] - 1))
            y = int(np.clip(round(cy), 0, shape[0] - 1))
            if region[y, x] == 0:
                verdicts[i] = "outside the selected region"
    candidates = [i for i, v in enumerate(verdicts) if not v]
    if faces in ("largest", "center") and candidates:
        if faces == "largest":
            keep = max(candidates, key=lambda i: detections[i].width * detections[i].height)
            reason = "not the largest face"
        else:
            mid = np.array([shape[1] / 2.0, shape[0] / 2.0])
            keep = min(candidates, key=lambda i: float(np.hypot(*(np.array(detections[i].center) - mid))))
            reason = "not the centre face"
        for i in candidates:
            if i != keep:
                verdicts[i] = reason
        candidates = [keep]
    if max_faces is not None and len(candidates) > max_faces:
        by_size = sorted(candidates, key=lambda i: -(detections[i].width * detections[i].height))
        for i in by_size[max_faces:]:
            verdicts[i] = f"beyond max_faces={max_faces} (the largest faces are renovated first)"
    return verdicts
