"""What ``renovate-faces-doctor`` checks: hosts, plug-ins, their registration and Python, the daemon, the device, weights.

Each check gives a :class:`Check` whose ``fix`` says, in one sentence, what to do about a failure. Checks never
change anything; they read files, run the host's Python with the plug-in folder first on ``sys.path`` (the way
the plug-in imports its client), ask the daemon ``hello`` and ``status``, and verify every weights file's sha256.

This module runs them all in order (:func:`run_checks`), checks the weights itself and writes the results (text or
JSON); the hosts' and plug-ins' checks are in :mod:`hifacegan_installers.diagnose_hosts`, the server's, the daemon's and the
device's in :mod:`hifacegan_installers.diagnose_server`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from hifacegan_installers.checks import FAIL, OK, SKIP, WARN, Check, Options
from hifacegan_installers.diagnose_hosts import checked_hosts, host_checks
from hifacegan_installers.diagnose_server import daemon_checks, server_config_checks
from hifacegan_installers.places import Places

__all__ = ["Check", "Options", "print_check", "run_checks", "to_json"]


def doctor_home(home: Path | str | None = None) -> Path:
    """The home the doctor checks: ``home`` when given, else ``$HOME``, the one the hosts, the plug-ins and the
    server see (server/paths.py reads it too), so the plug-ins' folders and server.json come from one home."""
    return Path(home).expanduser() if home else Path(os.path.expanduser("~"))


def run_checks(options: Options, progress: Callable[[Check], None] = lambda c: None) -> list[Check]:
    places = Places.for_home(doctor_home(options.home), options.os_name, options.config_dir)
    checks: list[Check] = []

    def add(check: Check) -> None:
        checks.append(check)
        progress(check)

    hosts = checked_hosts(places, options)
    for check in host_checks(places, options, hosts):
        add(check)
    for check in server_config_checks(places):
        add(check)
    failed = {c.name for c in checks if c.status == FAIL}
    starters = [h for h in hosts if not (h.blocked or h.sandboxed or f"plugin:{h.key}" in failed)]
    for check in daemon_checks(places, options, starters):
        add(check)
    if options.weights:
        for check in weights_checks():
            add(check)
    return checks


# ---------------------------------------------------------------------------------------------------------
# Weights
# ---------------------------------------------------------------------------------------------------------


def weights_checks() -> list[Check]:
    try:
        from hifacegan import weights as W
    except Exception as exc:  # noqa: BLE001
        return [Check("weights", FAIL, f"the hifacegan package does not load: {exc}", "reinstall hifacegan")]
    entries = W.list_weights()
    checks = []
    try:
        default = W.resolve("default")
        checks.append(
            Check(
                "weights:default",
                OK,
                f"default weights: {default.name} ({default.source})",
                detail={"path": str(default.path)},
            )
        )
    except W.WeightsError as exc:
        checks.append(
            Check(
                "weights:default",
                FAIL,
                f"no default weights: {exc}",
                "reinstall hifacegan (the default weights ship inside it) or `hifacegan weights download`",
            )
        )
    for entry in entries:
        name = f"weights:{entry.name}"
        detail = {"path": str(entry.path), "source": entry.source}
        try:
            W.read_weights(entry.path, verify=True)
        except W.WeightsError as exc:
            if entry.source == "embedded":
                fix = "reinstall hifacegan (pip install --force-reinstall hifacegan)"
            else:
                fix = (
                    f"delete {entry.path} and download or import it again (`hifacegan weights download`, "
                    "`hifacegan weights import`)"
                )
            checks.append(Check(name, FAIL, str(exc), fix, detail))
            continue
        checks.append(Check(name, OK, f"{entry.path.name} verified (sha256 of its tensors)", detail=detail))
    return checks


# ---------------------------------------------------------------------------------------------------------


def to_json(checks: list[Check]) -> dict[str, Any]:
    return {
        "ok": not any(c.status == FAIL for c in checks),
        "failures": sum(c.status == FAIL for c in checks),
        "warnings": sum(c.status == WARN for c in checks),
        "checks": [asdict(c) for c in checks],
    }


SYMBOLS = {OK: "ok  ", WARN: "warn", FAIL: "FAIL", SKIP: "skip"}


def print_check(check: Check, out=sys.stdout) -> None:
    print(f"[{SYMBOLS[check.status]}] {check.summary}", file=out)
    if check.fix and check.status in (FAIL, WARN):
        print(f"       fix: {check.fix}", file=out)
