"""Between the wire and the pipeline: a job's received pixels as a numpy array (no copy), and what the pipeline
returns (a renovated image, a preview's two crops, its faces) as the protocol's event headers and frames."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

from hifacegan_server import protocol as P

if TYPE_CHECKING:
    from hifacegan_server.fairqueue import Job

NUMPY_DTYPES = {"u8": "u1", "u16": "<u2", "f32": "<f4"}  # the protocol's sample types as numpy's


def image_of(job: Job) -> Any:
    """The job's pixels as an (H, W, C) array over the received frame (no copy), or (H, W) for one channel."""
    import numpy as np

    spec = job.spec
    dtype = np.dtype(NUMPY_DTYPES[spec.dtype])
    image = np.ndarray(
        (spec.height, spec.width, spec.channels),
        dtype=dtype,
        buffer=job.pixels,
        strides=(spec.stride, spec.channels * dtype.itemsize, dtype.itemsize),
    )
    if dtype.byteorder == ">" or (dtype.byteorder == "=" and sys.byteorder == "big"):
        image = image.astype(dtype.newbyteorder("="))
    return image[:, :, 0] if spec.channels == 1 else image


def result_message(job: Job, result: Any, warnings: list[str]) -> tuple[dict[str, Any], list[Any]]:
    """The result event of a renovation: its header and the image's frame; an image of the
    wrong shape raises a ProtocolError (``internal``) that holds the message for its client."""
    import numpy as np

    spec = job.spec
    out = np.asarray(result.image)
    want = NUMPY_DTYPES[spec.dtype]
    if out.ndim == 2:
        out = out[:, :, None]
    if out.shape != (spec.height, spec.width, spec.channels):
        raise P.ProtocolError(
            P.E_INTERNAL,
            f"The pipeline returned an image of shape {out.shape}, expected "
            f"{(spec.height, spec.width, spec.channels)}; the server log has the details.",
        )
    out = np.ascontiguousarray(out, dtype=want)
    faces = [face_dict(face) for face in getattr(result, "faces", [])]
    timings = {str(k): round(float(v), 4) for k, v in dict(getattr(result, "timings", {}) or {}).items()}
    header = {
        "v": P.VERSION,
        "op": P.EV_RESULT,
        "job": job.job_id,
        **P.ImageSpec(spec.width, spec.height, spec.channels, spec.dtype, out.strides[0]).to_header(),
        "faces": faces,
        "timings": timings,
        "warnings": warnings + [str(n) for n in getattr(result, "notes", []) or []],
        "seconds": round(time.monotonic() - (job.started or job.accepted), 4),
    }
    return header, [out]


def preview_message(job: Job, shown: Any) -> tuple[dict[str, Any], list[Any]]:
    """The preview event of a preview job: its header and the before and after crops of its face."""
    import numpy as np

    want = NUMPY_DTYPES[job.spec.dtype]
    crops = [np.ascontiguousarray(c, dtype=want) for c in (shown.before, shown.after)]
    crops = [c[:, :, None] if c.ndim == 2 else c for c in crops]
    height, width, channels = crops[0].shape
    header = {
        "v": P.VERSION,
        "op": P.EV_PREVIEW,
        "job": job.job_id,
        **P.ImageSpec(width, height, channels, job.spec.dtype, crops[0].strides[0]).to_header(),
        "window": [int(v) for v in shown.window],
        "face": face_dict(shown.face),
        "index": int(shown.index),
        "face_count": int(shown.faces),
        "cached": bool(shown.cached),
        "timings": {str(k): round(float(v), 4) for k, v in shown.timings.items()},
        "seconds": round(time.monotonic() - (job.started or job.accepted), 4),
    }
    return header, crops


def face_dict(face: Any) -> dict[str, Any]:
    """A FaceReport as plain msgpack types."""

    def plain(value: Any) -> Any:
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        tolist = getattr(value, "tolist", None)
        if tolist is not None:
            return plain(tolist())
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):  # a face's path: a map, as docs/protocol.md says (was its str())
            return {str(k): plain(v) for k, v in value.items()}
        return str(value)

    if hasattr(face, "to_dict"):
        face = face.to_dict()
    out: dict[str, Any] = {}
    for key in ("box", "landmarks", "score", "renovated", "reason", "path", "changed"):
        if hasattr(face, key):
            out[key] = plain(getattr(face, key))
        elif isinstance(face, dict) and key in face:
            out[key] = plain(face[key])
    return out
