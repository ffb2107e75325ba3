"""Krita pixel bytes <-> the server's wire format, in pure Python (the plug-in may not use numpy).

Krita hands out raw pixel bytes in the layer's own colour space. What those bytes mean depends on it:

========  ======  =================================  ===========================================
model     depth   Krita byte layout per pixel        sent to the server as
========  ======  =================================  ===========================================
RGBA      U8      B, G, R, A  (1 byte each)          4 x u8, R G B A
RGBA      U16     B, G, R, A  (2 bytes each)         4 x u16, R G B A
RGBA      F16     R, G, B, A  (half floats)          4 x f32, R G B A (the wire has no half floats)
RGBA      F32     R, G, B, A                         4 x f32, R G B A
GRAYA     any     gray, alpha                        2 channels of the matching wire type
========  ======  =================================  ===========================================

Integer RGB in Krita is stored BGR ("KoBgrU8Traits"); float RGB is stored RGB. Getting that wrong swaps red and
blue, which a face makes very visible. Other models (CMYK, Lab, XYZ, YCbCr) are refused with a message that says
how to convert: converting them here would silently change colours outside the faces.

Every conversion is done with extended-slice copies (``bytearray[0::4] = ...``), which run at C speed.
"""

from __future__ import annotations

import struct
import sys
from array import array
from dataclasses import dataclass

SUPPORTED_MODELS = ("RGBA", "GRAYA")
_DEPTH_BYTES = {"U8": 1, "U16": 2, "F16": 2, "F32": 4}
_WIRE_DTYPE = {"U8": "u8", "U16": "u16", "F16": "f32", "F32": "f32"}
_WIRE_BYTES = {"u8": 1, "u16": 2, "f32": 4}


class UnsupportedImage(Exception):
    """The layer's colour space cannot be renovated; ``str()`` tells the user what to do instead."""


@dataclass(frozen=True)
class PixelFormat:
    """A layer's colour space as Krita names it (``colorModel()``, ``colorDepth()``)."""

    model: str
    depth: str

    @classmethod
    def check(cls, model: str, depth: str) -> PixelFormat:
        """The format, or :class:`UnsupportedImage` with the steps that make the image usable."""
        if model not in SUPPORTED_MODELS:
            raise UnsupportedImage(
                f"Renovate Faces works on RGB and grayscale images, and this layer is {model} ({depth}). "
                "Convert it with Image > Convert Image Color Space... to RGB/Alpha, run Renovate Faces, "
                "then convert back if you need to."
            )
        if depth not in _DEPTH_BYTES:
            raise UnsupportedImage(
                f"Renovate Faces cannot read {model} layers with {depth} channels; convert the image to "
                "8-bit, 16-bit or floating point with Image > Convert Image Color Space..."
            )
        return cls(model, depth)

    @property
    def channels(self) -> int:
        return 4 if self.model == "RGBA" else 2

    @property
    def host_bytes_per_pixel(self) -> int:
        return self.channels * _DEPTH_BYTES[self.depth]

    @property
    def wire_dtype(self) -> str:
        """The server's sample type: ``u8``, ``u16`` or ``f32``."""
        return _WIRE_DTYPE[self.depth]

    @property
    def wire_bytes_per_pixel(self) -> int:
        return self.channels * _WIRE_BYTES[self.wire_dtype]

    @property
    def swaps_red_blue(self) -> bool:
        """Integer RGB is stored B, G, R, A in Krita."""
        return self.model == "RGBA" and self.depth in ("U8", "U16")


def _swap_red_blue(data: bytes | bytearray, typecode: str) -> bytes:
    """B,G,R,A <-> R,G,B,A for samples of ``typecode`` (the swap is its own inverse)."""
    samples = array(typecode)
    samples.frombytes(data)
    out = array(typecode, samples)
    out[0::4] = samples[2::4]
    out[2::4] = samples[0::4]
    return out.tobytes()


def _half_to_float(data: bytes | bytearray) -> bytes:
    count = len(data) // 2
    return array("f", struct.unpack(f"<{count}e", data)).tobytes()


def _float_to_half(data: bytes | bytearray) -> bytes:
    values = array("f")
    values.frombytes(data)
    try:
        return struct.pack(f"<{len(values)}e", *values)
    except (OverflowError, struct.error):  # a value beyond the half range (65504): clamp it, as Krita would
        return struct.pack(f"<{len(values)}e", *(max(-65504.0, min(65504.0, v)) for v in values))


def _check_length(data: bytes | bytearray, width: int, height: int, bytes_per_pixel: int, what: str) -> None:
    need = width * height * bytes_per_pixel
    if len(data) != need:
        raise ValueError(f"{what} holds {len(data)} bytes, a {width}x{height} region needs {need}.")


def host_to_wire(data: bytes | bytearray, fmt: PixelFormat, width: int, height: int) -> bytes:
    """Krita's bytes for a ``width`` x ``height`` region -> the bytes the server expects (channel order R,G,B,A)."""
    if sys.byteorder != "little":  # pragma: no cover - Krita runs on little-endian machines only
        raise UnsupportedImage("Renovate Faces needs a little-endian machine.")
    _check_length(data, width, height, fmt.host_bytes_per_pixel, "The layer's pixel data")
    if fmt.swaps_red_blue:
        return _swap_red_blue(data, "B" if fmt.depth == "U8" else "H")
    if fmt.depth == "F16":
        return _half_to_float(data)
    return bytes(data)


def wire_to_host(data: bytes | bytearray, fmt: PixelFormat, width: int, height: int) -> bytes:
    """The server's result bytes -> Krita's bytes for the same region (the inverse of :func:`host_to_wire`)."""
    _check_length(data, width, height, fmt.wire_bytes_per_pixel, "The server's result")
    if fmt.swaps_red_blue:
        return _swap_red_blue(data, "B" if fmt.depth == "U8" else "H")
    if fmt.depth == "F16":
        return _float_to_half(data)
    return bytes(data)


def _first_difference(a: bytes, b: bytes) -> int:
    """Index of the first differing byte of two equally long, unequal byte strings (binary search, memcmp speed)."""
    lo, hi = 0, len(a)
    while hi - lo > 64:
        mid = (lo + hi) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid
    while a[lo] == b[lo]:
        lo += 1
    return lo


@dataclass(frozen=True)
class ChangedRegion:
    """The part of a result that differs from the original, as a layer-ready rectangle.

    ``data`` covers ``width`` x ``height`` pixels at (``x``, ``y``) relative to the region that was compared; pixels
    that did not change are fully transparent (all-zero bytes are transparent in every supported format), so the
    layer, stacked over the original, shows exactly the result.
    """

    x: int
    y: int
    width: int
    height: int
    data: bytes
    changed_pixels: int


def changed_region(
    original: bytes, result: bytes, width: int, height: int, bytes_per_pixel: int
) -> ChangedRegion | None:
    """Keep only the changed pixels of ``result`` (both in host layout); None when nothing changed.

    Each row keeps the span between its first and last changed pixel, so a face's pixels are copied whole;
    the unchanged pixels inside a span equal the original and are harmless.
    """
    row = width * bytes_per_pixel
    if len(original) != row * height or len(result) != row * height:
        raise ValueError("original and result must both hold width * height * bytes_per_pixel bytes")
    spans: list[tuple[int, int, int]] = []  # (row index, first pixel, last pixel + 1)
    for y in range(height):
        a = original[y * row : (y + 1) * row]
        b = result[y * row : (y + 1) * row]
        if a == b:
            continue
        first = _first_difference(a, b) // bytes_per_pixel
        last = row - 1 - _first_difference(a[::-1], b[::-1])
        spans.append((y, first, last // bytes_per_pixel + 1))
    if not spans:
        return None
    top, bottom = spans[0][0], spans[-1][0] + 1
    left = min(s[1] for s in spans)
    right = max(s[2] for s in spans)
    out_w, out_h = right - left, bottom - top
    out_row = out_w * bytes_per_pixel
    out = bytearray(out_row * out_h)
    changed = 0
    for y, first, end in spans:
        src = y * row
        dst = (y - top) * out_row
        out[dst + (first - left) * bytes_per_pixel : dst + (end - left) * bytes_per_pixel] = result[
            src + first * bytes_per_pixel : src + end * bytes_per_pixel
        ]
        changed += end - first
    return ChangedRegion(left, top, out_w, out_h, bytes(out), changed)


def mask_is_empty(mask: bytes) -> bool:
    """True when a selection mask (one byte per pixel) selects nothing."""
    return mask.count(0) == len(mask)


def wire_to_rgba8(
    data: bytes | bytearray | memoryview, channels: int, dtype: str, width: int, height: int
) -> bytes:
    """The server's packed pixels (R,G,B,A or gray,alpha; ``u8``, ``u16`` or ``f32``) -> 8-bit R,G,B,A for display.

    For the preview only: 16 bits keep their high byte, floats are clamped to 0..1 (no colour management).
    """
    if channels not in (2, 4):
        raise ValueError(f"cannot display {channels}-channel pixels")
    data = bytes(data)
    _check_length(data, width, height, channels * _WIRE_BYTES[dtype], "The preview")
    if dtype == "u16":
        data = data[1::2]  # little-endian: the high byte of each sample
    elif dtype == "f32":
        values = array("f")
        values.frombytes(data)
        data = bytes(0 if v != v or v <= 0.0 else 255 if v >= 1.0 else int(v * 255.0 + 0.5) for v in values)
    if channels == 4:
        return data
    out = bytearray(width * height * 4)
    gray = data[0::2]
    out[0::4], out[1::4], out[2::4], out[3::4] = gray, gray, gray, data[1::2]
    return bytes(out)
