"""Whether a photo fits in this machine's memory, decided before any work starts on it.

A renovation holds the photo twice (the pixels received and the output it writes) plus working memory for the
faces, the detector and the networks. Measured on this project's pipeline (a 6 and a 24 MP photo, one face, CPU):
the peak grew 130-165 MB beyond the photo itself; :data:`WORKING_BYTES` allows 256 MB. A photo whose estimate
exceeds the memory the system has free is refused with the estimate in the message, instead of being started and
killed by the kernel halfway (users of other face tools report exactly that on 10-25 MP photos).
"""

from __future__ import annotations

from hifacegan_server import protocol as P

WORKING_BYTES = 256 * 2**20


def available_memory() -> int | None:
    """Bytes of memory the system can give without swapping (Linux: MemAvailable), None where unknown."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def job_memory_estimate(spec: P.ImageSpec) -> int:
    """Bytes a renovation of an image of ``spec`` needs: the photo in and out, and the working memory."""
    image = spec.width * spec.height * spec.channels * P.DTYPES[spec.dtype]
    return 2 * image + WORKING_BYTES


def check_fits(spec: P.ImageSpec, available: int | None = None) -> None:
    """Refuse (``too_large``, with the estimate) an image that needs more memory than is free."""
    free = available_memory() if available is None else available
    need = job_memory_estimate(spec)
    if free is not None and need > free:
        raise P.ProtocolError(
            P.E_TOO_LARGE,
            f"This {spec.width}x{spec.height} image needs about {need / 2**30:.1f} GB of memory to renovate and "
            f"only {free / 2**30:.1f} GB is free; select a smaller region or close other programs.",
        )
