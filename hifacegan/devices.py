"""Pick the compute device: CUDA, then Apple's MPS, then the CPU; ``--device`` overrides.

Half precision is used on GPUs (twice the speed, half the memory; HiFaceGAN's normalisations are stable in fp16
at inference) and never on the CPU, where fp16 convolutions are slower than fp32.
"""

from __future__ import annotations

import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def select_device(spec: str | torch.device | None = "auto") -> torch.device:
    """Resolve ``auto`` (or None) to the best device here; check an explicit one exists, with a clear error."""
    if isinstance(spec, torch.device):
        spec = str(spec)
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise ValueError(
            f"--device {spec}: not a device; choose one of {', '.join(DEVICE_CHOICES)}"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"--device {spec}: CUDA is not available here (no NVIDIA GPU or a CPU-only torch); use cpu"
        )
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) here")
    if device.type == "mps" and not _mps_available():
        raise ValueError(f"--device {spec}: Apple MPS is not available here; use cpu")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(
            f"--device {spec}: unsupported device type; choose one of {', '.join(DEVICE_CHOICES)}"
        )
    return device


def default_cpu_threads() -> int:
    """All cores but one: the host application (GIMP, Krita) and our I/O keep a core.

    Measured on a 2-core machine with the other core busy: the lite network takes 128 ms per face on one thread
    and 850-2100 ms on two, because torch's threads wait on each other whenever one of them is descheduled.
    """
    import os

    return max(1, (os.cpu_count() or 2) - 1)


def configure_cpu_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads for CPU inference (``None``: :func:`default_cpu_threads`); returns the count."""
    count = threads if threads and threads > 0 else default_cpu_threads()
    torch.set_num_threads(count)
    return count


def inference_dtype(device: torch.device) -> torch.dtype:
    """float16 on GPUs, float32 on the CPU."""
    return torch.float16 if device.type in ("cuda", "mps") else torch.float32


def describe(device: torch.device) -> str:
    """A one-line description for summaries and the server's status."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    if device.type == "mps":
        return "mps (Apple GPU)"
    return f"cpu ({torch.get_num_threads()} threads)"
