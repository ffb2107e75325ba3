"""Faces in whole photos: detection (RetinaFace), 5-point alignment, colour matching and paste-back."""

from hifacegan.face._cache import cache_dir
from hifacegan.face.alignment import (
    FFHQ_TEMPLATE_512,
    align_face,
    crop_window,
    estimate_similarity,
    ffhq_template,
    invert_affine,
    warp,
)
from hifacegan.face.blending import dtype_max, feather_mask, paste_face, to_rgb_float
from hifacegan.face.colour import is_monochrome, match_colour
from hifacegan.face.detection import Detection, FaceDetector, detection_copy
from hifacegan.face.parsing import FaceParser
from hifacegan.face.retinaface_model import DETECTOR_NAMES, DownloadError, load_retinaface

__all__ = [
    "DETECTOR_NAMES",
    "Detection",
    "DownloadError",
    "FFHQ_TEMPLATE_512",
    "FaceDetector",
    "FaceParser",
    "align_face",
    "cache_dir",
    "crop_window",
    "detection_copy",
    "dtype_max",
    "estimate_similarity",
    "feather_mask",
    "ffhq_template",
    "invert_affine",
    "is_monochrome",
    "load_retinaface",
    "match_colour",
    "paste_face",
    "to_rgb_float",
    "warp",
]
