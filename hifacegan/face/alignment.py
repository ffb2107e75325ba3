"""5-point similarity alignment to a weights' template, and warps that do not alias.

Faces in a photo are rarely the crop's size: a 40 px face goes up to a 512 px crop, a 1500 px face down to it.
A plain bilinear warp aliases when it shrinks, so shrinking warps first area-resample by the scale, then warp
the small remainder.
"""

from __future__ import annotations

import cv2
import numpy as np

#: FFHQ 5-point template at 512 px (left eye, right eye, nose, left/right mouth corner): the alignment of the paper's
#: and the released weights. Weights cards carry their own (scaled to their size); this is the fallback.
FFHQ_TEMPLATE_512 = np.array(
    [
        [192.98138, 239.94708],
        [318.90277, 240.19360],
        [256.63416, 314.01935],
        [201.26117, 371.41043],
        [313.08905, 371.15118],
    ],
    dtype=np.float64,
)


def ffhq_template(size: int) -> np.ndarray:
    """The FFHQ template scaled to a ``size`` x ``size`` crop."""
    return FFHQ_TEMPLATE_512 * (size / 512.0)


def estimate_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation; no reflection) mapping ``src`` onto ``dst``.

    Closed form (Umeyama 1991): deterministic, unlike RANSAC/LMedS estimators, so the same photo always aligns
    the same way. Returns a 2x3 matrix.
    """
    src = np.asarray(src, dtype=np.float64).reshape(-1, 2)
    dst = np.asarray(dst, dtype=np.float64).reshape(-1, 2)
    if src.shape != dst.shape or len(src) < 2:
        raise ValueError("need matching point sets of at least 2 points")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    sc, dc = src - mu_s, dst - mu_d
    cov = dc.T @ sc / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1.0
    rotation = u @ np.diag(d) @ vt
    var_s = (sc**2).sum(1).mean()
    if var_s <= 0:
        raise ValueError("degenerate landmarks (all points coincide)")
    scale = float((s * d).sum() / var_s)
    translation = mu_d - scale * rotation @ mu_s
    return np.hstack([scale * rotation, translation[:, None]])


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))


def compose_affine(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The 2x3 affine map ``outer`` after ``inner`` (apply ``inner`` first)."""
    outer, inner = np.asarray(outer, dtype=np.float64), np.asarray(inner, dtype=np.float64)
    return np.hstack([outer[:, :2] @ inner[:, :2], (outer[:, :2] @ inner[:, 2] + outer[:, 2])[:, None]])


def affine_scale(matrix: np.ndarray) -> float:
    """The uniform scale of a similarity transform."""
    return float(np.sqrt(abs(np.linalg.det(np.asarray(matrix)[:, :2]))))


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return points @ np.asarray(matrix)[:, :2].T + np.asarray(matrix)[:, 2]


def warp(
    image: np.ndarray,
    matrix: np.ndarray,
    size: tuple[int, int],
    border: int = cv2.BORDER_REFLECT_101,
    border_value: float = 0.0,
) -> np.ndarray:
    """``cv2.warpAffine`` (output ``size`` = (width, height)) that area-resamples first when the warp shrinks.

    Bicubic enlargement may overshoot the input's range slightly; float callers clip.

    Works on the image's own dtype (uint8, uint16, float32): no float copy of a big source is made.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    scale = affine_scale(matrix)
    if scale < 0.75:
        h, w = image.shape[:2]
        new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)
        pre = np.diag([w / new_w, h / new_h])  # small-image pixel -> original pixel (pixel-corner convention)
        offset = 0.5 * np.array([w / new_w - 1.0, h / new_h - 1.0])
        matrix = compose_affine(matrix, np.hstack([pre, offset[:, None]]))
    # Enlarging warps are bicubic: sharper than bilinear when a small face fills a large crop.
    interpolation = cv2.INTER_CUBIC if scale > 1.25 else cv2.INTER_LINEAR
    out = cv2.warpAffine(
        image, matrix, size, flags=interpolation, borderMode=border, borderValue=(border_value,) * 4
    )
    if out.ndim == 2 and image.ndim == 3:
        out = out[..., None]
    return out


def crop_window(
    matrix: np.ndarray, crop_size: int, shape: tuple[int, int], pad: int = 2
) -> tuple[int, int, int, int]:
    """Photo window (x0, y0, x1, y1), clipped to the photo, that a ``crop_size`` crop aligned by ``matrix`` covers.

    ``matrix`` maps photo -> crop. Empty windows have x1 <= x0 or y1 <= y0.
    """
    corners = np.array([[0, 0], [crop_size, 0], [0, crop_size], [crop_size, crop_size]], dtype=np.float64)
    photo = transform_points(invert_affine(matrix), corners)
    h, w = shape
    x0 = max(0, int(np.floor(photo[:, 0].min())) - pad)
    y0 = max(0, int(np.floor(photo[:, 1].min())) - pad)
    x1 = min(w, int(np.ceil(photo[:, 0].max())) + pad + 1)
    y1 = min(h, int(np.ceil(photo[:, 1].max())) + pad + 1)
    return x0, y0, x1, y1


def shift_affine(matrix: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """``matrix`` (photo -> crop) re-expressed for a window whose origin is photo pixel (dx, dy)."""
    matrix = np.array(matrix, dtype=np.float64)
    matrix[:, 2] += matrix[:, :2] @ np.array([dx, dy])
    return matrix


def align_face(
    image: np.ndarray, landmarks: np.ndarray, template: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Warp one face to the ``size`` crop of ``template``; returns (crop in the image's dtype, photo->crop matrix).

    Only the photo window the crop covers is read, so the cost follows the face, not the photo.
    """
    matrix = estimate_similarity(landmarks, template)
    x0, y0, x1, y1 = crop_window(matrix, size, image.shape[:2])
    if x1 <= x0 or y1 <= y0:
        raise ValueError("face lies outside the photo")
    window = image[y0:y1, x0:x1]
    crop = warp(window, shift_affine(matrix, x0, y0), (size, size))
    return crop, matrix
