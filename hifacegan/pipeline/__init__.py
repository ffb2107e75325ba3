"""Whole photo in, whole photo out: ``Renovator`` (the API the server and the CLI use)."""

from hifacegan.pipeline.networks import WeightsUnavailable
from hifacegan.pipeline.renovator import (
    IDENTITY,
    Cancelled,
    FaceReport,
    RenovationResult,
    Renovator,
)
from hifacegan.pipeline.selection import FACE_CHOICES, select_faces

__all__ = [
    "FACE_CHOICES",
    "IDENTITY",
    "Cancelled",
    "FaceReport",
    "RenovationResult",
    "Renovator",
    "WeightsUnavailable",
    "select_faces",
]
