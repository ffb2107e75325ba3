"""Read and write photos without losing what retouchers care about: bit depth, alpha, orientation, colour profile.

Pixels come back as numpy arrays in RGB(A)/gray order with the EXIF orientation already applied (and the EXIF tag
reset to 1, so viewers do not rotate twice). 16-bit PNG and TIFF stay 16-bit: Pillow reduces 16-bit colour to 8,
so their pixels are decoded by OpenCV and 16-bit PNGs are encoded here, with the ICC profile and EXIF kept.
Writes go to a temporary file in the destination folder and are renamed over the target: never half-written.
"""

from __future__ import annotations

import io
import logging
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hifacegan._files import atomic_output

log = logging.getLogger(__name__)

#: Output formats by extension.
FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
    ".bmp": "BMP",
}
SIXTEEN_BIT_FORMATS = ("PNG", "TIFF")
ALPHA_FORMATS = ("PNG", "TIFF", "WEBP")
ORIENTATION_TAG = 0x0112


class ImageReadError(ValueError):
    """A file that is not a readable photo; the message names the file and what to do."""


class ImageWriteError(ValueError):
    """A photo that cannot be written where or how it was asked; nothing was written."""


@dataclass
class Photo:
    """Decoded pixels plus the metadata to write them back faithfully."""

    pixels: np.ndarray  # (H, W) or (H, W, C), C in 2..4; uint8, uint16 or float32; RGB(A) / gray(+alpha)
    format: str = "PNG"
    icc_profile: bytes | None = None
    exif: bytes | None = None  # orientation already applied and reset to 1
    dpi: tuple[float, float] | None = None
    source: Path | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def mode(self) -> str:
        """A short description, e.g. ``RGBA 8-bit`` (for messages and summaries)."""
        channels = 1 if self.pixels.ndim == 2 else self.pixels.shape[2]
        names = {1: "gray", 2: "gray+alpha", 3: "RGB", 4: "RGBA"}
        depth = {"uint8": "8-bit", "uint16": "16-bit", "float32": "float"}.get(self.pixels.dtype.name, "?")
        return f"{names.get(channels, f'{channels}-channel')} {depth}"


def output_format(path: str | os.PathLike) -> str:
    """The format a path's extension asks for; ImageWriteError for unsupported extensions."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ImageWriteError(
            f"cannot write {path}: unsupported extension {suffix or '(none)'!r}; use one of "
            f"{', '.join(sorted(FORMATS))}"
        )
    return FORMATS[suffix]


# ----------------------------------------------------------------------------------------------------------- read


def read_photo(path: str | os.PathLike) -> Photo:
    """Decode ``path``; ImageReadError (a sentence a user can act on) when it is not a readable photo."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageReadError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise ImageReadError(f"{path} is a folder, not a photo") from None
    except OSError as exc:
        raise ImageReadError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return decode_photo(data, source=path)
    except ImageReadError as exc:
        raise ImageReadError(f"{path}: {exc}") from None


def decode_photo(data: bytes, source: Path | None = None) -> Photo:
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageReadError(
            "not a photo this tool can read (corrupt, or an unsupported format); "
            "save it as PNG, JPEG, TIFF or WebP and try again"
        ) from None
    except Exception as exc:
        raise ImageReadError(f"corrupt or unsupported image ({exc})") from None
    try:
        fmt = image.format or "PNG"
        icc = image.info.get("icc_profile") or None
        dpi = image.info.get("dpi")
        exif = image.getexif()
        orientation = int(exif.get(ORIENTATION_TAG, 1) or 1)
        pixels = _decode_pixels(image, data, fmt)
    except ImageReadError:
        raise
    except Exception as exc:  # truncated data, broken compression streams, bad metadata
        raise ImageReadError(
            f"corrupt or truncated image data ({exc}); re-export or re-download the photo"
        ) from None
    if image.mode == "CMYK":
        icc = None  # a CMYK profile would mislabel the RGB pixels
    pixels = apply_orientation(pixels, orientation)
    exif_bytes = None
    if len(exif):
        if ORIENTATION_TAG in exif:
            exif[ORIENTATION_TAG] = 1
        exif_bytes = exif.tobytes()
    photo = Photo(
        pixels=np.ascontiguousarray(pixels),
        format=fmt,
        icc_profile=icc,
        exif=exif_bytes,
        dpi=tuple(float(v) for v in dpi) if dpi else None,
        source=source,
    )
    return photo


def _png_depth(data: bytes) -> tuple[int, int]:
    """(bit depth, colour type) from a PNG's IHDR."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return 8, 2
    return data[24], data[25]


def _decode_pixels(image, data: bytes, fmt: str) -> np.ndarray:
    sixteen = False
    colour_type = None
    if fmt == "PNG":
        depth, colour_type = _png_depth(data)
        sixteen = depth == 16
    elif fmt == "TIFF":
        bits = image.tag_v2.get(258, (8,))
        bits = bits if isinstance(bits, tuple) else (bits,)
        sixteen = 16 in bits and image.mode not in ("F",)
    if sixteen:
        return _decode_16bit(data, colour_type)
    image.load()
    mode = image.mode
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode == "PA":
        image = image.convert("RGBA")
    elif mode == "1":
        image = image.convert("L")
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        image = image.convert("RGB")
    elif mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        array = np.asarray(image)
        return np.clip(array, 0, 65535).astype(np.uint16)
    elif mode == "F":
        return np.asarray(image, dtype=np.float32)
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in mode else "RGB")
    return np.asarray(image)


def _decode_16bit(data: bytes, png_colour_type: int | None) -> np.ndarray:
    import cv2

    array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if array is None:
        raise ImageReadError("corrupt 16-bit image data")
    if array.ndim == 3:
        if png_colour_type == 4:  # gray + alpha: OpenCV expands it to BGRA
            return np.ascontiguousarray(array[..., [0, 3]])
        order = [2, 1, 0, 3] if array.shape[2] == 4 else [2, 1, 0]
        array = array[..., order]
    return array


def apply_orientation(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1..8) to a (H, W[, C]) array, as viewers display it."""
    ops = {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, k=-1),
        7: lambda a: np.rot90(a, k=1)[:, ::-1],
        8: lambda a: np.rot90(a, k=1),
    }
    return ops.get(orientation, ops[1])(pixels)


# ---------------------------------------------------------------------------------------------------------- write


def encode_photo(photo: Photo, fmt: str, quality: int = 95) -> bytes:
    """Encode ``photo`` as ``fmt`` (PNG, JPEG, TIFF, WEBP, BMP), keeping depth, alpha, ICC and EXIF where it can."""
    pixels = photo.pixels
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    if channels not in (1, 2, 3, 4):
        raise ImageWriteError(f"cannot write a {channels}-channel image")
    if channels in (2, 4) and fmt not in ALPHA_FORMATS:
        raise ImageWriteError(
            f"{fmt} cannot hold transparency; write a .png or .tif to keep the alpha channel"
        )
    if pixels.dtype == np.uint16 and fmt not in SIXTEEN_BIT_FORMATS:
        log.warning(
            "%s holds 8 bits per channel: writing 16-bit pixels as 8-bit (use .png or .tif to keep 16)", fmt
        )
        pixels = (pixels.astype(np.uint32) * 255 + 32767) // 65535
        pixels = pixels.astype(np.uint8)
    if pixels.dtype == np.uint16:
        if fmt == "PNG":
            return encode_png16(pixels, photo.icc_profile, photo.exif)
        return _encode_tiff16(pixels)
    if pixels.dtype == np.float32:
        if fmt != "TIFF" or channels != 1:
            raise ImageWriteError(
                "float images can only be written as single-channel .tif; convert to 8/16-bit"
            )
    elif pixels.dtype != np.uint8:
        raise ImageWriteError(f"unsupported pixel type {pixels.dtype}; use uint8 or uint16")
    from PIL import Image

    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[channels] if pixels.dtype == np.uint8 else "F"
    image = Image.fromarray(np.ascontiguousarray(pixels), mode=mode)
    options: dict = {}
    if photo.icc_profile and fmt != "BMP":
        options["icc_profile"] = photo.icc_profile
    if photo.exif and fmt in ("PNG", "JPEG", "TIFF", "WEBP"):
        options["exif"] = photo.exif
    if photo.dpi and fmt in ("PNG", "JPEG", "TIFF"):
        options["dpi"] = photo.dpi
    if fmt == "JPEG":
        options.update(quality=quality, subsampling=0)
    elif fmt == "WEBP":
        options.update(quality=quality)
    elif fmt == "TIFF":
        options.update(compression="tiff_deflate")
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
    )


def encode_png16(pixels: np.ndarray, icc_profile: bytes | None = None, exif: bytes | None = None) -> bytes:
    """A 16-bit PNG (gray, gray+alpha, RGB or RGBA) with its ICC profile and EXIF, which Pillow cannot write."""
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    h, w, channels = pixels.shape
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    rows = pixels.astype(">u2").view(np.uint8).reshape(h, w * channels * 2)
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rows], axis=1).tobytes()  # filter type 0 per row
    parts = [
        b"\x89PNG\r\n\x1a\n",
        _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0)),
    ]
    if icc_profile:
        parts.append(_png_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc_profile)))
    if exif:
        parts.append(_png_chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\x00\x00") else exif))
    parts.append(_png_chunk(b"IDAT", zlib.compress(raw, 6)))
    parts.append(_png_chunk(b"IEND", b""))
    return b"".join(parts)


def _encode_tiff16(pixels: np.ndarray) -> bytes:
    import cv2

    if pixels.ndim == 3 and pixels.shape[2] == 2:
        raise ImageWriteError("16-bit gray+alpha cannot be written as TIFF here; write a .png instead")
    if pixels.ndim == 3:
        pixels = pixels[..., [2, 1, 0, 3][: pixels.shape[2]]]
    ok, buffer = cv2.imencode(".tiff", np.ascontiguousarray(pixels))
    if not ok:
        raise ImageWriteError("OpenCV could not encode the 16-bit TIFF")
    log.info("16-bit TIFF written without its ICC profile/EXIF (write .png to keep them at 16-bit)")
    return buffer.tobytes()


def write_photo(
    photo: Photo,
    path: str | os.PathLike,
    quality: int = 95,
    make_parents: bool = True,
    overwrite: bool = True,
) -> Path:
    """Encode ``photo`` for ``path``'s extension and write it atomically (temp file + rename).

    Encoding happens before anything touches the disk, so a failure leaves no file behind.
    """
    path = Path(path)
    fmt = output_format(path)
    if path.is_dir():
        raise ImageWriteError(f"cannot write {path}: it is a folder")
    if not overwrite and path.exists():
        raise ImageWriteError(f"{path} exists; pass overwrite to replace it")
    data = encode_photo(photo, fmt, quality=quality)
    folder = path.parent
    if not folder.exists():
        if not make_parents:
            raise ImageWriteError(f"cannot write {path}: folder {folder} does not exist")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ImageWriteError(f"cannot create folder {folder}: {exc.strerror or exc}") from None
    try:
        with atomic_output(path, suffix=".part") as handle:
            handle.write(data)
    except OSError as exc:
        raise ImageWriteError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path
