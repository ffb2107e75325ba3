"""HiFaceGAN face renovation: networks, weights, degradations, training, evaluation and the face pipeline.

Public entry points are re-exported here; heavy modules (torch) load only when first used.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "build_generator", "list_generators", "build_discriminator", "Renovator"]


def __getattr__(name: str):
    # Keep `import hifacegan` (and so the CLI's --help and the server's client) free of torch.
    if name in ("build_generator", "list_generators", "build_discriminator"):
        from hifacegan import models

        return getattr(models, name)
    if name == "Renovator":
        from hifacegan.pipeline import Renovator

        return Renovator
    raise AttributeError(f"module 'hifacegan' has no attribute {name!r}")
