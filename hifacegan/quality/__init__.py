"""Face quality: a small network that tells a soft, resampled or compressed face from a crisp one, at any size.

``FaceQuality`` runs it (trained with ``hifacegan quality train``). It is a measuring tool for now: the pipeline's
decision to keep a face whole (hifacegan.face.detail) does not use it (docs/benchmarks.md says why).
"""

from __future__ import annotations

from hifacegan.quality.estimator import FaceQuality, learned_degradation
from hifacegan.quality.network import QUALITY_CONFIGS, QualityNet, build_quality_net

__all__ = [
    "QUALITY_CONFIGS",
    "FaceQuality",
    "QualityNet",
    "build_quality_net",
    "learned_degradation",
]
