"""Datasets of (degraded, clean) face pairs, and the torch-free file helpers they read with.

``FaceDegradationDataset`` degrades clean faces on the fly; ``PairedFolderDataset`` reads pre-made LQ/GT
folders. They load with torch on first use, so ``hifacegan.data.files`` (used by ``hifacegan degrade``) stays
torch-free.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hifacegan.data.files import IMAGE_SUFFIXES, ImageReadError, image_key, list_images, read_rgb8

if TYPE_CHECKING:
    from hifacegan.data.datasets import FaceDegradationDataset, PairedFolderDataset, zoom_out

__all__ = [
    "IMAGE_SUFFIXES",
    "FaceDegradationDataset",
    "ImageReadError",
    "PairedFolderDataset",
    "image_key",
    "list_images",
    "read_rgb8",
    "zoom_out",
]


def __getattr__(name: str):
    if name in ("FaceDegradationDataset", "PairedFolderDataset", "zoom_out"):
        from hifacegan.data import datasets

        return getattr(datasets, name)
    raise AttributeError(f"module 'hifacegan.data' has no attribute {name!r}")
