"""Whole photo in, whole photo out: ``Renovator`` (the API the server and the CLI use); one face's preview:
``FacePreviewer``. The steps each face goes through are public too: ``Renovator.detect``, ``clean_damage``,
``prepare`` (a :class:`PreparedFace`, hifacegan.pipeline.faces), ``renovate`` and ``blend``; a :class:`CancelToken`
stops any of them between steps."""

from hifacegan.pipeline.faces import PreparedFace
from hifacegan.pipeline.networks import WeightsUnavailable
from hifacegan.pipeline.preview import FacePreview, FacePreviewer, NoFaceFound, side_by_side
from hifacegan.pipeline.records import (
    Cancelled,
    CancelToken,
    FacePath,
    FaceReport,
    Progress,
    RenovationResult,
)
from hifacegan.pipeline.renovator import IDENTITY, Renovator
from hifacegan.pipeline.selection import FACE_CHOICES, select_faces

__all__ = [
    "FACE_CHOICES",
    "IDENTITY",
    "CancelToken",
    "Cancelled",
    "FacePreview",
    "FacePath",
    "FacePreviewer",
    "FaceReport",
    "NoFaceFound",
    "PreparedFace",
    "Progress",
    "RenovationResult",
    "Renovator",
    "WeightsUnavailable",
    "select_faces",
    "side_by_side",
]
