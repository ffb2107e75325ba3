"""What ``status`` reports about the machine: devices, memory and the package version."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any


def device_summary(devices: list[str], torch: Any) -> dict[str, Any]:
    info: dict[str, Any] = {"requested": devices}
    if torch is not None:
        info["cuda"] = bool(torch.cuda.is_available())
        if info["cuda"]:
            info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


def memory_summary(resolved: list[str], torch: Any) -> dict[str, Any]:
    mem: dict[str, Any] = {}
    try:
        with open("/proc/self/statm") as fh:
            mem["rss_bytes"] = int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        with contextlib.suppress(ImportError):
            import resource

            scale = 1 if sys.platform == "darwin" else 1024
            mem["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    if torch is not None and torch.cuda.is_available():
        gpus = {}
        for device in resolved:
            if device.startswith("cuda"):
                free, total = torch.cuda.mem_get_info(device)
                gpus[device] = {
                    "allocated_bytes": int(torch.cuda.memory_allocated(device)),
                    "reserved_bytes": int(torch.cuda.memory_reserved(device)),
                    "free_bytes": int(free),
                    "total_bytes": int(total),
                }
        mem["gpu"] = gpus
    return mem


def package_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("hifacegan")
    except metadata.PackageNotFoundError:
        return "unknown"
