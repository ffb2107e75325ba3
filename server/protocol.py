"""The wire format shared by the daemon and the client (specification: ``docs/protocol.md``).

Standard library + msgpack only: the GIMP and Krita plug-ins copy this file next to ``client.py``.

A message is one msgpack *header* frame (a map) followed by zero or more raw pixel frames. Requests go
DEALER -> ROUTER; the router prepends the peer's routing id, which never appears in this module. Every check
here runs before anything sized by the peer is allocated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack

VERSION = 1
"""Protocol version. Bumped on any incompatible change; the server answers other versions with an error."""

MAX_HEADER_BYTES = 1 << 20
"""A header frame above this size is refused without being decoded."""

TCP_MAX_FRAME_BYTES = 16 << 20
"""The frame limit on tcp endpoints: what a stranger can make the server allocate before it is refused."""

DTYPES: dict[str, int] = {"u8": 1, "u16": 2, "f32": 4}
"""Sample types and their size in bytes. Samples are little-endian; f32 samples are expected in [0, 1]."""

# The option vocabularies, defined here once: the plug-ins' copies (which faces, which options they send) and
# hifacegan.pipeline.selection.FACE_CHOICES are tested against them (tests/test_option_choices.py).
FACE_CHOICES = ("all", "largest", "center")
"""Which faces a renovate job takes: every face, the largest one, or the one nearest the centre."""

DAMAGE_CHOICES = ("faces", "photo", "off")
"""Where scratches and dust are found and filled: around each face, over the whole photo, or nowhere."""

GRAIN_CHOICES = ("keep", "remove")
"""Whether the photo's grain is laid back over renovated faces (keep) or they are left smooth (remove)."""

OPTIONS = (
    "weights", "fidelity", "faces", "max_faces", "min_face_size", "timeout", "damage", "grain", "batch_size",
)  # fmt: skip
"""The renovate options a server knows; any other key is refused (``bad_option``)."""

PREVIEW_OPTIONS = ("weights", "fidelity", "min_face_size", "timeout", "damage", "grain")
"""The options a preview takes (one face: no face choice, no face count)."""

# Requests (client -> server).
OP_HELLO = "hello"
OP_STATUS = "status"
OP_RENOVATE = "renovate"
OP_CANCEL = "cancel"
OP_HEARTBEAT = "heartbeat"
OP_SHUTDOWN = "shutdown"
OP_PREVIEW = "preview"
REQUEST_OPS = (OP_HELLO, OP_STATUS, OP_RENOVATE, OP_PREVIEW, OP_CANCEL, OP_HEARTBEAT, OP_SHUTDOWN)
DATA_OPS = (OP_RENOVATE, OP_PREVIEW)
"""The requests that carry pixel frames after their header."""

# Events (server -> client) besides the replies that reuse the request's op name.
EV_ACCEPTED = "accepted"
EV_PROGRESS = "progress"
EV_RESULT = "result"
EV_ERROR = "error"
EV_PREVIEW = OP_PREVIEW  # a preview's answer: the window before and after

# Stable error codes. Clients switch on these; the accompanying message is for people.
E_BAD_REQUEST = "bad_request"
E_VERSION = "unsupported_version"
E_UNAUTHORIZED = "unauthorized"
E_UNKNOWN_OP = "unknown_op"
E_TOO_LARGE = "too_large"
E_BAD_FRAME = "bad_frame"
E_BAD_OPTION = "bad_option"
E_BUSY = "busy"
E_DUPLICATE_JOB = "duplicate_job"
E_UNKNOWN_JOB = "unknown_job"
E_ALREADY_DONE = "already_done"
E_CANCELLED = "cancelled"
E_TIMEOUT = "timeout"
E_OUT_OF_MEMORY = "out_of_memory"
E_WEIGHTS = "weights_unavailable"
E_SHUTTING_DOWN = "shutting_down"
E_NO_FACE = "no_face"
E_INTERNAL = "internal"
ERROR_CODES = (
    E_BAD_REQUEST,
    E_VERSION,
    E_UNAUTHORIZED,
    E_UNKNOWN_OP,
    E_TOO_LARGE,
    E_BAD_FRAME,
    E_BAD_OPTION,
    E_BUSY,
    E_DUPLICATE_JOB,
    E_UNKNOWN_JOB,
    E_ALREADY_DONE,
    E_CANCELLED,
    E_TIMEOUT,
    E_OUT_OF_MEMORY,
    E_WEIGHTS,
    E_SHUTTING_DOWN,
    E_NO_FACE,
    E_INTERNAL,
)


class ProtocolError(Exception):
    """A message that breaks the protocol; ``code`` is one of :data:`ERROR_CODES`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class BadOption(ProtocolError):
    """A renovate option the server refuses (unknown, mistyped or out of range): the user's to fix."""

    def __init__(self, message: str) -> None:
        super().__init__(E_BAD_OPTION, message)


def pack(header: dict[str, Any]) -> bytes:
    return msgpack.packb(header, use_bin_type=True)


def unpack_header(frame: bytes | memoryview) -> dict[str, Any]:
    """Decode a header frame, refusing anything that is not a small msgpack map with string keys."""
    if len(frame) > MAX_HEADER_BYTES:
        raise ProtocolError(
            E_TOO_LARGE, f"The header frame is {len(frame)} bytes; the limit is {MAX_HEADER_BYTES}."
        )
    try:
        header = msgpack.unpackb(
            frame,
            raw=False,
            strict_map_key=True,
            max_str_len=MAX_HEADER_BYTES,
            max_bin_len=MAX_HEADER_BYTES,
            max_array_len=100_000,
            max_map_len=100_000,
            max_ext_len=0,
        )
    except Exception as exc:  # msgpack raises several unrelated types on garbage
        raise ProtocolError(
            E_BAD_REQUEST,
            f"The header frame is not valid msgpack ({type(exc).__name__}); upgrade the client.",
        ) from None
    if not isinstance(header, dict):
        raise ProtocolError(E_BAD_REQUEST, "The header frame must be a msgpack map; upgrade the client.")
    return header


def short(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters: what a peer sent, quoted in a message or a log line without
    letting a 500 KB field through."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 15]}... ({len(text)} chars)"


def type_name(value: Any) -> str:
    """'a list', 'an integer', ...: the type of a mistyped field, named for a sentence."""
    names = {
        dict: "a map",
        list: "a list",
        tuple: "a list",
        int: "an integer",
        float: "a number",
        bool: "a boolean",
    }
    names.update({str: "a string", bytes: "binary data", type(None): "nil"})
    return names.get(type(value), type(value).__name__)


def error_header(code: str, message: str, request: dict[str, Any] | None = None) -> dict[str, Any]:
    """An error event, echoing the request's ``id`` and ``job`` so the client can match it."""
    header: dict[str, Any] = {"v": VERSION, "op": EV_ERROR, "code": code, "message": message}
    if request:
        for key in ("id", "job"):
            value = request.get(key)
            if isinstance(value, (str, int)) and not isinstance(value, bool):
                header[key] = value
    return header


@dataclass(frozen=True)
class ImageSpec:
    """The geometry of a pixel frame: ``height`` rows of ``stride`` bytes, each holding ``width`` pixels."""

    width: int
    height: int
    channels: int
    dtype: str
    stride: int

    @property
    def itemsize(self) -> int:
        return DTYPES[self.dtype]

    @property
    def row_bytes(self) -> int:
        return self.width * self.channels * self.itemsize

    @property
    def frame_bytes(self) -> int:
        """Bytes a frame of this geometry must hold: the last row needs no padding."""
        return self.stride * (self.height - 1) + self.row_bytes

    @property
    def pixels(self) -> int:
        return self.width * self.height

    def to_header(self) -> dict[str, Any]:
        return {
            "width": self.width,
            "height": self.height,
            "channels": self.channels,
            "dtype": self.dtype,
            "stride": self.stride,
        }


def _int_field(header: dict[str, Any], key: str, low: int, high: int, what: str) -> int:
    value = header.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ProtocolError(E_BAD_REQUEST, f"The {what} ('{key}') must be an integer, got {value!r}.")
    if not low <= value <= high:
        raise ProtocolError(
            E_TOO_LARGE if value > high else E_BAD_REQUEST,
            f"The {what} ('{key}') is {value}; it must be between {low} and {high}.",
        )
    return value


def parse_image_spec(header: dict[str, Any], max_pixels: int, max_side: int = 1 << 16) -> ImageSpec:
    """Validate the geometry a header claims, before any buffer of that size exists."""
    width = _int_field(header, "width", 1, max_side, "image width")
    height = _int_field(header, "height", 1, max_side, "image height")
    if width * height > max_pixels:
        raise ProtocolError(
            E_TOO_LARGE,
            f"The image is {width}x{height} = {width * height / 1e6:.1f} megapixels; this server accepts at most "
            f"{max_pixels / 1e6:.1f}. Scale the image down or select a smaller region.",
        )
    channels = _int_field(header, "channels", 1, 4, "channel count")
    dtype = header.get("dtype")
    if dtype not in DTYPES:
        raise ProtocolError(
            E_BAD_REQUEST,
            f"The sample type (dtype) {dtype!r} is not supported; use one of {', '.join(DTYPES)}.",
        )
    row_bytes = width * channels * DTYPES[dtype]
    stride = row_bytes
    if header.get("stride") is not None:
        stride = _int_field(header, "stride", row_bytes, row_bytes + 4096, "row stride")
    return ImageSpec(width, height, channels, dtype, stride)


def check_frame(spec: ImageSpec, frame_len: int, what: str = "pixel frame") -> None:
    """A frame must hold exactly the bytes its header promised: shorter is truncated, longer is lying."""
    need = spec.frame_bytes
    if frame_len != need and frame_len != spec.stride * spec.height:
        raise ProtocolError(
            E_BAD_FRAME,
            f"The {what} has {frame_len} bytes but a {spec.width}x{spec.height} image with {spec.channels} "
            f"{spec.dtype} channel(s) and a {spec.stride}-byte row stride needs {need}.",
        )


def split_chunks(data: memoryview, size: int) -> list[memoryview]:
    """``data`` as frames of at most ``size`` bytes (views, no copy), for a server whose frame limit is smaller."""
    return [data[i : i + size] for i in range(0, data.nbytes, size)] if data.nbytes > size else [data]


def join_chunks(buffers: list[memoryview]) -> memoryview:
    """The frames of one data block as one buffer: the frame itself when it came whole (no copy), else a copy."""
    if len(buffers) == 1:
        return buffers[0]
    joined = bytearray(sum(b.nbytes for b in buffers))
    at = 0
    for b in buffers:
        joined[at : at + b.nbytes] = b.cast("B")
        at += b.nbytes
    return memoryview(joined)


def renovate_buffers(
    request: dict[str, Any], spec: ImageSpec, buffers: list[memoryview]
) -> tuple[memoryview, memoryview | None]:
    """A renovate request's pixels and mask (None without one) from its data frames: ``chunks`` (default 1) pixel
    frames, then the mask's frames when ``mask`` is true; each checked against ``spec``."""
    has_mask = bool(request.get("mask", False))
    chunks = request.get("chunks", 1)
    op = request.get("op") if request.get("op") in DATA_OPS else OP_RENOVATE
    if not isinstance(chunks, int) or isinstance(chunks, bool) or not 1 <= chunks <= len(buffers) - has_mask:
        raise ProtocolError(
            E_BAD_FRAME,
            f"A {op} request carries 'chunks' (default 1) pixel frames, then the mask's if 'mask' is true; "
            f"this one has {len(buffers)} data frame(s) for chunks={short(chunks)}.",
        )
    if not has_mask and len(buffers) != chunks:
        raise ProtocolError(
            E_BAD_FRAME,
            f"A {op} request without a mask carries {chunks} data frame(s), this one has {len(buffers)}.",
        )
    pixels = join_chunks(buffers[:chunks])
    check_frame(spec, pixels.nbytes)
    if not has_mask:
        return pixels, None
    mask = join_chunks(buffers[chunks:])
    if mask.nbytes != spec.width * spec.height:
        raise ProtocolError(
            E_BAD_FRAME,
            f"The selection mask has {mask.nbytes} bytes; a {spec.width}x{spec.height} image needs "
            f"{spec.width * spec.height} (one byte per pixel).",
        )
    return pixels, mask


def validate_options(options: Any, known: tuple[str, ...] = OPTIONS) -> dict[str, Any]:
    """Check renovate options (``known``: :data:`PREVIEW_OPTIONS` for a preview); unknown keys are refused so that
    typos are not silently ignored."""
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise BadOption("The renovate options must be a map.")
    unknown = sorted(str(k) for k in options if k not in known)
    if unknown:
        raise BadOption(
            f"Unknown option(s) {', '.join(unknown)}; known options are {', '.join(sorted(known))}.",
        )
    out: dict[str, Any] = {}
    if "weights" in options and options["weights"] is not None:
        weights = options["weights"]
        if not isinstance(weights, str) or not weights or len(weights) > 4096:
            raise BadOption("The 'weights' option must be a weights name or file path.")
        out["weights"] = weights
    if "fidelity" in options and options["fidelity"] is not None:
        fidelity = options["fidelity"]
        if not isinstance(fidelity, (int, float)) or isinstance(fidelity, bool) or not 0.0 <= fidelity <= 1.0:
            raise BadOption(f"'fidelity' must be a number from 0 to 1, got {fidelity!r}.")
        out["fidelity"] = float(fidelity)
    if "faces" in options and options["faces"] is not None:
        if options["faces"] not in FACE_CHOICES:
            raise BadOption(f"'faces' must be one of {', '.join(FACE_CHOICES)}, got {options['faces']!r}.")
        out["faces"] = options["faces"]
    for key, choices in (("damage", DAMAGE_CHOICES), ("grain", GRAIN_CHOICES)):
        if key in options and options[key] is not None:
            if options[key] not in choices:
                raise BadOption(f"'{key}' must be one of {', '.join(choices)}, got {options[key]!r}.")
            out[key] = options[key]
    for key, high in (("max_faces", 1 << 20), ("min_face_size", 1 << 20), ("batch_size", 256)):
        if key in options and options[key] is not None:
            value = options[key]
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= high:
                raise BadOption(f"'{key}' must be a positive integer, got {value!r}.")
            out[key] = value
    if "timeout" in options and options["timeout"] is not None:
        timeout = options["timeout"]
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not timeout > 0:
            raise BadOption(f"'timeout' must be a positive number of seconds, got {timeout!r}.")
        out["timeout"] = float(timeout)
    return out


def preview_target(request: dict[str, Any]) -> tuple[tuple[float, float] | None, str | None]:
    """A preview request's ``at`` ([x, y] in photo pixels, or nil: the largest face) and ``key`` (a name for the
    pixels, 1-128 chars, or nil: the server hashes them), checked."""
    at = request.get("at")
    if at is not None:
        if (
            not isinstance(at, (list, tuple))
            or len(at) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in at)
            or not all(abs(v) <= 1 << 20 for v in at)  # also refuses NaN
        ):
            raise ProtocolError(
                E_BAD_REQUEST, f"A preview's 'at' must be [x, y] in photo pixels or nil, got {short(at)}."
            )
        at = (float(at[0]), float(at[1]))
    key = request.get("key")
    if key is not None and (not isinstance(key, str) or not 0 < len(key) <= 128):
        raise ProtocolError(
            E_BAD_REQUEST, f"A preview's 'key' must be a string of 1-128 chars or nil, got {short(key)}."
        )
    return at, key


def image_frames(
    header: dict[str, Any], frames: list[Any], count: int, what: str
) -> tuple[ImageSpec, list[Any]]:
    """The ``count`` pixel buffers of an answer (a result, a preview's before and after) that ``header`` describes,
    each checked against its geometry; ProtocolError (``bad_frame``) when they do not match."""
    spec = parse_image_spec(header, 1 << 62)
    if len(frames) != count:
        raise ProtocolError(E_BAD_FRAME, f"a {what} carries {count} pixel frame(s), not {len(frames)}")
    buffers = [getattr(f, "buffer", f) for f in frames]
    for buffer in buffers:
        check_frame(spec, memoryview(buffer).nbytes, f"{what} frame")
    return spec, buffers


def dropped_message(biggest_frame: int, limit: Any) -> str:
    """What a client says when the server answered a heartbeat but never its request: it closed the connection
    mid-request, most likely over a frame beyond ``limit`` (``limits.max_frame_bytes``)."""
    if isinstance(limit, int) and biggest_frame > limit:
        return (
            f"The image data is {biggest_frame} bytes, more than the server accepts in one piece "
            f"({limit} bytes); scale the image down or select a smaller region."
        )
    return (
        f"The server dropped this request unread (its largest part is {biggest_frame} bytes, which may be "
        "over the server's size limit); select a smaller region, or restart the server and retry."
    )
