"""What the docker says about the server, in plain sentences; pure Python (no Qt, no Krita), so it is unit-tested.

The server's ``status`` reply nests its facts (docs/protocol.md): ``device`` is ``{"requested", "resolved", "cuda",
"gpus"}`` and ``weights`` maps each device to ``{"name", "state": "loading"|"ready"|"failed", "error"}``. A user
needs one sentence: is it starting, loading, ready (on the CPU or on which GPU), busy, not running, or broken, and
what to do about it. Nothing here ever shows a dict, a list or a Python literal.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from .common import SERVER_DOWN

# What to do when the server cannot start or load its model: the same advice as the GIMP plug-in's message.
HOW_TO_FIX = (
    "To see why, run 'hifacegan-server' in a terminal (it stays in the background once it works) "
    "or 'renovate-faces-doctor'; running the Renovate Faces installer again ('hifacegan-install') repairs the set-up."
)


class Kind:
    """The states the docker tells apart; ``TRANSITIONAL`` ones are polled until they settle."""

    unknown = "unknown"
    not_running = "not_running"
    starting = "starting"
    loading = "loading"
    ready = "ready"
    busy = "busy"
    failed = "failed"
    TRANSITIONAL = ("starting", "loading", "busy")


@dataclass(frozen=True)
class ServerState:
    kind: str
    text: str

    @property
    def transitional(self) -> bool:
        return self.kind in Kind.TRANSITIONAL


UNKNOWN = ServerState(Kind.unknown, "Checking the Renovate Faces server...")
STARTING = ServerState(
    Kind.starting,
    "Starting the Renovate Faces server... The first start takes up to a minute; the faces are renovated as "
    "soon as it answers.",
)


def not_running(can_start: bool) -> ServerState:
    if can_start:
        return ServerState(Kind.not_running, "The server is not running; it starts when you press Renovate.")
    return ServerState(
        Kind.not_running,
        "The server is not running, and starting it from Krita is turned off: start the Renovate Faces server, "
        "then try again.",
    )


def start_failed(error: str) -> ServerState:
    """A start that failed; ``error`` (a command line, a path, an errno) is for the log, not the docker."""
    return ServerState(Kind.failed, SERVER_DOWN)


def unreachable(error: str) -> ServerState:
    """The server answered but refused us (token, protocol version), or the client is missing."""
    return ServerState(Kind.failed, f"Cannot talk to the server. {_sentence(error)}")


def busy(where: str = "") -> ServerState:
    on = f" on {where}" if where else ""
    return ServerState(
        Kind.busy, f"Busy: renovating faces{on}. Cancel stops it; the image is unchanged until it ends."
    )


def describe_status(status: dict[str, Any]) -> ServerState:
    """The server's ``status`` (or ``hello``) reply as one state and sentence for the docker."""
    where = device_phrase(status)
    entries = _weights_entries(status.get("weights"))
    names = sorted({model_name(e.get("name")) for e in entries if e.get("name")})
    shown = [name for name in names if name != "default"]  # the default model needs no name
    model = f", with the face model {' and '.join(shown)}" if shown else ""
    which = f" {' and '.join(shown)}" if shown else ""
    states = [str(e.get("state") or "") for e in entries]
    on = f" on {where}" if where else ""
    if "failed" in states:
        errors = [_sentence(str(e.get("error") or "")) for e in entries if e.get("state") == "failed"]
        why = " ".join(dict.fromkeys(e for e in errors if e)) or "No reason was given."
        return ServerState(
            Kind.failed, f"The server is running but could not load its face model{which}. {why} {HOW_TO_FIX}"
        )
    if "loading" in states:
        return ServerState(
            Kind.loading,
            f"The server is loading its face model{which}{on}. Renovate now and the job waits until it is ready.",
        )
    queue = status.get("queue") if isinstance(status.get("queue"), dict) else {}
    running, queued = _count(queue.get("running")), _count(queue.get("queued"))
    if running or queued:
        waiting = f", {queued} more waiting" if queued else ""
        return ServerState(Kind.busy, f"Busy: the server is renovating faces{on}{waiting}{model}.")
    return ServerState(Kind.ready, f"Ready: the server runs{on}{model}." if on else f"Ready{model}.")


def device_phrase(status: dict[str, Any]) -> str:
    """'the CPU', 'the GPU NVIDIA H200', 'the CPU and the GPU ...': where the server runs, or '' when unknown."""
    device = status.get("device")
    if isinstance(device, str):
        resolved, gpus = [device], []
    elif isinstance(device, dict):
        resolved = [str(d) for d in _as_list(device.get("resolved") or device.get("requested"))]
        gpus = [str(g) for g in _as_list(device.get("gpus"))]
    else:
        resolved, gpus = [], []
    if not resolved:  # an older server: the weights entries may name the device they loaded on
        resolved = [str(e["device"]) for e in _weights_entries(status.get("weights")) if e.get("device")]
    phrases = list(dict.fromkeys(_one_device(d, gpus) for d in resolved))
    return " and ".join(p for p in phrases if p)


def _one_device(device: str, gpus: list[str]) -> str:
    kind, _, index = device.lower().partition(":")
    if kind == "cpu":
        return "the CPU"
    if kind == "cuda":
        number = int(index) if index.isdigit() else 0
        name = gpus[number] if number < len(gpus) else ""
        return f"the GPU {name}" if name else "the GPU"
    if kind == "mps":
        return "the Apple GPU (Metal)"
    if kind in ("xpu", "rocm", "hip"):
        return "the GPU"
    return ""  # "auto" before the weights have loaded: not known yet


def model_name(name: Any) -> str:
    """A weights spec as a user reads it: a file's stem, not its whole path."""
    text = str(name)
    if os.sep in text or "/" in text or text.endswith((".safetensors", ".pth", ".pt")):
        base = text.replace("\\", "/").rsplit("/", 1)[-1]
        return base.split(".", 1)[0] or base
    return text


def _weights_entries(weights: Any) -> list[dict[str, Any]]:
    """``{device: {"name", "state", ...}}`` (or one flat entry from an older server) as a list of entries."""
    if not isinstance(weights, dict):
        return [{"name": str(w)} for w in _as_list(weights) if w] if weights else []
    if "state" in weights or "name" in weights:
        return [weights]
    return [{"name": str(v)} if not isinstance(v, dict) else v for v in weights.values()]


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _count(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _sentence(text: str) -> str:
    text = " ".join(str(text).split())
    return text if not text or text.endswith((".", "!", "?")) else text + "."
