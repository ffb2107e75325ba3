"""Whole photo in, whole photo out: ``Renovator`` (the API the server and the CLI use); one face's preview:
``FacePreviewer``."""

from hifacegan.pipeline.networks import WeightsUnavailable
from hifacegan.pipeline.preview import FacePreview, FacePreviewer, NoFaceFound, side_by_side
from hifacegan.pipeline.records import Cancelled, FacePath, FaceReport, Progress, RenovationResult
from hifacegan.pipeline.renovator import IDENTITY, Renovator
from hifacegan.pipeline.selection import FACE_CHOICES, select_faces

__all__ = [
    "FACE_CHOICES",
    "IDENTITY",
    "Cancelled",
    "FacePreview",
    "FacePath",
    "FacePreviewer",
    "FaceReport",
    "NoFaceFound",
    "Progress",
    "RenovationResult",
    "Renovator",
    "WeightsUnavailable",
    "select_faces",
    "side_by_side",
]
