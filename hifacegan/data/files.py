"""Finding, reading and writing the face images that datasets and ``hifacegan degrade`` work on (torch-free).

Face folders in the wild hold grayscale scans, RGBA cut-outs, CMYK JPEGs from print workflows, 16-bit PNGs and
the odd truncated download. Everything readable becomes 8-bit RGB here, so the degradations and the networks
see one format; anything unreadable raises :class:`ImageReadError`, which callers count and skip.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

from hifacegan._files import write_bytes_atomic

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})

_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
_WIDE_GRAY_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})


class ImageReadError(Exception):
    """A file that is not a readable image (corrupt, truncated, or not an image at all)."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"cannot read {path}: {reason}")
        self.path = path
        self.reason = reason


def check_folder(root: str | os.PathLike[str], what: str = "image folder") -> Path:
    """``root`` as a Path, or an error a user can act on when it is missing or not a folder."""
    path = Path(root).expanduser()
    if not path.exists():
        raise FileNotFoundError(
            f"{what} {path} does not exist; check the path (it should hold aligned face images)"
        )
    if not path.is_dir():
        raise NotADirectoryError(
            f"{what} {path} is a file, not a folder; pass the folder that holds the images"
        )
    return path


def list_images(
    root: str | os.PathLike[str], what: str = "image folder", exclude: Path | None = None
) -> list[Path]:
    """Image files under ``root`` (recursively, hidden files skipped), sorted by relative path.

    Sorting makes indices and ``limit`` stable across machines. ``exclude`` drops a sub-folder (an output folder
    placed inside the input). Raises a clear error when the folder is missing or holds no images.
    """
    base = check_folder(root, what)
    excluded = exclude.resolve() if exclude is not None else None
    found = []
    for dirpath, dirnames, filenames in os.walk(base):
        here = Path(dirpath)
        dirnames[:] = sorted(
            d
            for d in dirnames
            if not d.startswith(".") and (excluded is None or (here / d).resolve() != excluded)
        )
        found.extend(
            here / name
            for name in filenames
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES
        )
    if not found:
        suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
        raise ValueError(
            f"{what} {base} holds no images ({suffixes}); point it at a folder of aligned face crops"
        )
    return sorted(found, key=lambda p: p.relative_to(base).as_posix())


def image_key(path: Path, root: Path) -> str:
    """A file's identity: its path relative to ``root`` without the extension (``sub/00001``).

    Seeds derive from it and paired folders match on it, so converting a folder from JPEG to PNG keeps both.
    """
    return path.relative_to(root).with_suffix("").as_posix()


def to_rgb8(image: Image.Image) -> tuple[np.ndarray, bool]:
    """An 8-bit RGB array from any Pillow image, and whether a conversion was needed.

    EXIF orientation is applied; 16-bit and 32-bit grayscale are scaled to 8 bits (65535 -> 255); transparent
    pixels are composited over white (what a viewer shows for a cut-out portrait); CMYK, palette, grayscale and
    the rest go through Pillow's RGB conversion.
    """
    image = ImageOps.exif_transpose(image)
    mode = image.mode
    if mode == "RGB":
        return np.asarray(image, dtype=np.uint8).copy(), False
    if mode in _WIDE_GRAY_MODES:
        gray = np.asarray(image).astype(np.float64)
        if mode == "F" and gray.size and float(np.nanmax(gray)) <= 1.0:
            gray = gray * 255.0
        elif mode != "F" and gray.size and float(gray.max()) > 255.0:
            gray = gray / 257.0
        gray8 = np.clip(np.rint(np.nan_to_num(gray)), 0, 255).astype(np.uint8)
        return np.repeat(gray8[..., None], 3, axis=2), True
    if mode in _ALPHA_MODES or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"), dtype=np.uint8).copy(), True
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy(), True


def read_rgb8(path: str | os.PathLike[str]) -> tuple[np.ndarray, bool]:
    """Read ``path`` as an 8-bit RGB array (H, W, 3); the flag says it needed converting.

    Raises :class:`ImageReadError` for anything that does not decode completely (truncation included).
    """
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's EXIF / palette warnings say nothing actionable here
            with Image.open(path) as image:
                # Pillow reads 48-bit RGB PNGs as 8-bit "RGB" (keeping the high byte); only the tile says so.
                wide_rgb = any(";16" in str(tile.args) for tile in image.tile)
                image.load()
                array, converted = to_rgb8(image)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise ImageReadError(path, str(error) or type(error).__name__) from error
    if array.ndim != 3 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageReadError(path, f"decoded to an empty image of shape {array.shape}")
    return array, converted or wide_rgb


def encode_png(image: np.ndarray) -> bytes:
    """Lossless PNG bytes of a uint8 RGB (H, W, 3) or grey (H, W) array (OpenCV: deterministic, no timestamps)."""
    pixels = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".png", pixels, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise RuntimeError(f"OpenCV could not PNG-encode an image of shape {image.shape}")
    return encoded.tobytes()


def write_png_atomic(path: Path, image: np.ndarray) -> None:
    """Save a uint8 RGB (or grey, (H, W)) array as a lossless PNG at ``path``, atomically."""
    write_bytes_atomic(path, encode_png(image))
