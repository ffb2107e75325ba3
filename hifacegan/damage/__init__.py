"""Damage on old photos: scratches, cracks, dust and fibres, found by a small network and removed.

``DamageDetector`` finds it (a U-Net trained on the ``damage`` degradation's masks, ``hifacegan damage train``),
and ``hifacegan.damage.removal`` fills it from its surroundings at the photo's own resolution.
"""

from __future__ import annotations

from hifacegan.damage.detector import DEFAULT_DETECTOR, DamageDetector, detector_path
from hifacegan.damage.network import DETECTOR_CONFIGS, DamageUNet, build_detector

__all__ = [
    "DEFAULT_DETECTOR",
    "DETECTOR_CONFIGS",
    "DamageDetector",
    "DamageUNet",
    "build_detector",
    "detector_path",
]
