"""What a ``renovate-faces-doctor`` check is: a :class:`Check` with its status and the one-sentence fix for a
failure, and the doctor's :class:`Options`; shared by the checks of hosts (``diagnose_hosts``), of the server
(``diagnose_server``) and by ``diagnose``, which runs them all."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"
REINSTALL = "run hifacegan-install"


@dataclass
class Check:
    name: str  # stable id, e.g. "plugin:gimp:system", "daemon", "weights:hifacegan-lite-fidelity"
    status: str  # ok | warn | fail | skip
    summary: str
    fix: str = ""
    detail: dict[str, Any] | None = None


@dataclass
class Options:
    home: Path | None = None
    hosts: list[str] | None = None
    root: Path | None = None
    endpoint: str | None = None
    timeout: float = 3.0
    weights: bool = True
    os_name: str | None = None
    config_dir: Path | None = None
