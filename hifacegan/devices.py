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


def select_device(spec: str | torch.device | None = "auto", local_rank: int | None = None) -> torch.device:
    """Resolve ``auto`` (or None) to the best device here; check an explicit one exists, with a clear error.

    ``local_rank`` (training under torchrun; 0 for a single process) gives a CUDA device without an index this
    process's GPU, ``cuda:<local_rank>``.
    """
    if isinstance(spec, torch.device):
        spec = str(spec)
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "mps" if _mps_available() else "cpu"
    if spec == "cuda" and local_rank is not None and torch.cuda.is_available():
        spec = f"cuda:{local_rank}"
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


def default_cpu_threads(reserve: int = 1) -> int:
    """torch threads for this process: its share of the cores it may run on, less ``reserve`` for others.

    The share splits the cores between torchrun's local ranks (``LOCAL_WORLD_SIZE``). Inference reserves one core
    (the default) for the host application (GIMP, Krita) and our I/O; training reserves one per data worker.
    Measured on a 2-core machine with the other core busy: the lite network takes 128 ms per face on one thread
    and 850-2100 ms on two, and a training step ran 5x slower with 2 threads beside a busy data worker than with
    1, because torch's threads wait on each other whenever one of them is descheduled.
    """
    import os

    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 2)
    return max(1, cores // max(local_world, 1) - reserve)


def configure_cpu_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads for CPU inference (``None``: :func:`default_cpu_threads`); returns the count."""
    count = threads if threads and threads > 0 else default_cpu_threads()
    torch.set_num_threads(count)
    return count


PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}

#: Where ``auto`` takes a half precision: (device type, generator config) -> dtype, only for pairs measured within
#: tolerance of float32 on real faces (benchmarks/bench_gpu.py, tests marked gpu). None is measured yet, so
#: ``auto`` is float32 everywhere; users of GFPGAN and CodeFormer report black or unchanged faces from unmeasured
#: half precision on Apple GPUs.
HALF_MEASURED: dict[tuple[str, str], torch.dtype] = {}


def inference_dtype(device: torch.device, precision: str = "auto", config: str | None = None) -> torch.dtype:
    """The dtype a network runs in: ``fp32``, ``fp16`` or ``bf16`` as asked, or for ``auto`` a half precision
    only where :data:`HALF_MEASURED` lists the device and config, float32 otherwise."""
    if precision == "auto":
        return HALF_MEASURED.get((device.type, config or ""), torch.float32)
    try:
        return PRECISIONS[precision]
    except KeyError:
        raise ValueError(f"precision={precision!r}: choose auto, {', '.join(PRECISIONS)}") from None


def describe(device: torch.device) -> str:
    """A one-line description for summaries and the server's status."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    if device.type == "mps":
        return "mps (Apple GPU)"
    return f"cpu ({torch.get_num_threads()} threads)"
