"""The doctor's checks of the server: its server.json and login item, whether it answers (or the plug-ins would
start it on demand), and the device it computes on, as its ``status`` says or, when it is not running, as torch
says here. They read files and ask the daemon ``hello`` and ``status``; they change nothing."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from hifacegan_installers.checks import FAIL, OK, REINSTALL, WARN, Check, Options
from hifacegan_installers.hosts import HostInstall
from hifacegan_installers.places import LAUNCH_AGENT, SYSTEMD_UNIT, Places, same_path


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _runnable(command: Any) -> bool:
    """True when ``command`` (server.json's: a list of words or one string) names a program that exists."""
    exe = command[0] if isinstance(command, list) and command else command
    return bool(exe) and (Path(str(exe)).is_file() or shutil.which(str(exe)) is not None)


def server_config_checks(places: Places) -> list[Check]:
    path = places.config_dir / "server.json"
    config = _read_json(path)
    checks = []
    if config is None:
        checks.append(
            Check(
                "server-config",
                WARN,
                f"no readable {path}: the plug-ins look for hifacegan-server on PATH",
                REINSTALL,
                {"path": str(path)},
            )
        )
    else:
        command = config.get("command")
        exe = command[0] if isinstance(command, list) and command else command
        if not _runnable(command):
            checks.append(
                Check(
                    "server-config",
                    FAIL,
                    f"{path} names a server command that does not exist: {exe}",
                    REINSTALL,
                    {"path": str(path), "command": command},
                )
            )
        else:
            checks.append(
                Check(
                    "server-config",
                    OK,
                    f"{path}: {' '.join(command)}",
                    detail={"path": str(path), "command": command},
                )
            )
    login = {
        "linux": places.systemd_user_dir / SYSTEMD_UNIT,
        "darwin": places.launch_agent,
        "win32": places.config_dir / "windows-task.xml",
    }[places.os_name]
    if login.is_file():
        checks.append(
            Check("autostart", OK, f"the server starts at login ({login})", detail={"path": str(login)})
        )
    else:
        checks.append(
            Check(
                "autostart",
                WARN,
                "the server does not start at login; the plug-ins start it on "
                "first use (Flatpak and Snap hosts cannot)",
                "run hifacegan-install without --no-autostart",
                {"path": str(login)},
            )
        )
    return checks


def _endpoint(places: Places, options: Options) -> str:
    return options.endpoint or _plugins_endpoint(places)


def _plugins_endpoint(places: Places) -> str:
    """The endpoint the plug-ins of this home use (server/paths.py's rules, with this home's server.json)."""
    if os.environ.get("RENOVATE_FACES_ENDPOINT"):
        return os.environ["RENOVATE_FACES_ENDPOINT"]
    configured = (_read_json(places.config_dir / "server.json") or {}).get("endpoint")
    if isinstance(configured, str) and configured:
        return configured
    from hifacegan_server import paths

    if places.is_real_home or same_path(places.config_dir, paths.config_dir()):
        return paths.default_endpoint()
    # another home whose server.json names no endpoint: the built-in default, not this process's server.json
    if places.os_name == "win32":
        return f"tcp://127.0.0.1:{paths.DEFAULT_TCP_PORT}"
    sock = paths.runtime_dir() / paths.SOCKET_FILE
    too_long = len(str(sock).encode()) > paths.IPC_PATH_LIMIT
    return f"tcp://127.0.0.1:{paths.DEFAULT_TCP_PORT}" if too_long else f"ipc://{sock}"


def _starts_on_demand(
    places: Places, options: Options, endpoint: str, starters: list[HostInstall] | None
) -> str | None:
    """Why a server that does not answer is fine: the plug-ins start it when a host asks for faces (server.json's
    command, else hifacegan-server on PATH, as server/client.py's ``server_command``), or None when they cannot:
    the endpoint is not theirs, no host can (Flatpak and Snap hosts cannot start programs) or there is no command.
    ``starters``: the checked hosts that could start it (None: not known, assume a host can)."""
    if starters is not None and not starters:
        return None
    try:
        if endpoint != _plugins_endpoint(places):
            return None
    except Exception:  # noqa: BLE001 - a broken server.json is reported by the server-config check
        return None
    config = _read_json(places.config_dir / "server.json") or {}
    command = config.get("command")
    if command:
        return (
            f"with {' '.join(command) if isinstance(command, list) else command}"
            if _runnable(command)
            else None
        )
    found = shutil.which("hifacegan-server")
    return f"with {found}" if found else None


def _start_fix(places: Places) -> str:
    if places.os_name == "linux" and (places.systemd_user_dir / SYSTEMD_UNIT).is_file():
        return f"start it: systemctl --user start {SYSTEMD_UNIT} (or run hifacegan-server in a terminal)"
    if places.os_name == "darwin" and places.launch_agent.is_file():
        return f"start it: launchctl kickstart gui/$(id -u)/{LAUNCH_AGENT} (or run hifacegan-server)"
    return "start it: hifacegan-server (it detaches and keeps running)"


def _not_running(
    places: Places,
    options: Options,
    endpoint: str,
    why: str,
    starters: list[HostInstall] | None,
    detail: dict,
) -> Check:
    """The daemon check for a server that does not answer: fine when the plug-ins start it on demand."""
    how = _starts_on_demand(places, options, endpoint, starters)
    if how is None:
        return Check(
            "daemon", FAIL, f"the server is not running at {endpoint} ({why})", _start_fix(places), detail
        )
    detail = {**detail, "running": False, "on_demand": True}
    summary = f"the server is not running (starts on demand): the plug-ins start it at {endpoint} {how}"
    return Check("daemon", OK, summary, detail=detail)


def daemon_checks(places: Places, options: Options, starters: list[HostInstall] | None = None) -> list[Check]:
    """Whether the server answers; one that does not is "not running (starts on demand)" when the plug-ins of
    ``starters`` (hosts that can start programs; None: not known) would start it, else a failure with its fix."""
    from hifacegan_server.client import Client, ServerError, ServerUnavailable

    try:
        endpoint = _endpoint(places, options)
    except Exception as exc:  # noqa: BLE001 - a broken server.json is reported, not raised
        return [Check("daemon", FAIL, f"cannot work out the server's endpoint: {exc}", REINSTALL)]
    token_file = places.config_dir / "token"
    detail: dict[str, Any] = {"endpoint": endpoint}
    try:
        token = token_file.read_text(encoding="utf-8").strip()
    except OSError:
        token = None
    if not token:
        why = f"it has never run: no {token_file}"
        return [_not_running(places, options, endpoint, why, starters, detail), local_device_check()]
    try:
        with Client(endpoint=endpoint, token=token, timeout=options.timeout) as client:
            hello = client.hello(timeout=options.timeout)
            status = client.status(timeout=options.timeout)
    except ServerUnavailable as exc:
        return [_not_running(places, options, endpoint, str(exc), starters, detail), local_device_check()]
    except ServerError as exc:
        fix = "restart the server (it rewrites its token) and rerun hifacegan-install if versions differ"
        return [
            Check("daemon", FAIL, f"the server at {endpoint} refused us: {exc}", fix, detail),
            local_device_check(),
        ]
    detail.update({"server": hello.get("server"), "pid": hello.get("pid"), "version": hello.get("version")})
    checks = [
        Check(
            "daemon",
            OK,
            f"{hello.get('server')} answers at {endpoint} (pid {hello.get('pid')})",
            detail=detail,
        )
    ]
    checks.append(_device_from_status(status))
    for device, state in (status.get("weights") or {}).items():
        if state.get("state") == "failed":
            checks.append(
                Check(
                    f"server-weights:{device}",
                    FAIL,
                    f"the server could not load its weights on {device}: {state.get('error')}",
                    "see `hifacegan weights verify`; restart the server",
                )
            )
    return checks


def _device_from_status(status: dict[str, Any]) -> Check:
    device = status.get("device") or {}
    memory = status.get("memory") or {}
    resolved = ", ".join(map(str, device.get("resolved") or [])) or "?"
    summary = f"the server computes on {resolved}"
    text = _memory_text(memory)
    return Check(
        "device", OK, summary + (f"; {text}" if text else ""), detail={"device": device, "memory": memory}
    )


def _memory_text(memory: dict[str, Any]) -> str:
    parts = []
    for name, info in (memory.get("gpu") or {}).items():
        free, total = info.get("free_bytes"), info.get("total_bytes")
        if isinstance(free, (int, float)) and isinstance(total, (int, float)) and total:
            parts.append(f"{name}: {free / 2**30:.1f} of {total / 2**30:.1f} GiB free")
    if isinstance(memory.get("rss_bytes"), (int, float)):
        parts.append(f"server uses {memory['rss_bytes'] / 2**30:.2f} GiB of RAM")
    return ", ".join(parts)


def local_device_check() -> Check:
    """The device the server would pick here, asked of torch directly (the server is not running)."""
    try:
        import torch

        from hifacegan.devices import describe, select_device
    except Exception as exc:  # noqa: BLE001 - torch missing or broken is itself the finding
        return Check(
            "device", FAIL, f"torch does not load: {exc}", "reinstall torch for your GPU (see README)"
        )
    device = select_device("auto")
    detail: dict[str, Any] = {"device": str(device), "torch": torch.__version__, "cuda": torch.version.cuda}
    summary = f"the server would compute on {describe(device)}"
    if device.type == "cuda":
        free, total = torch.cuda.mem_get_info(device)
        detail.update({"free_bytes": free, "total_bytes": total})
        summary += f"; {free / 2**30:.1f} of {total / 2**30:.1f} GiB free"
        return Check("device", OK, summary, detail=detail)
    if device.type == "cpu":
        pages = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else None
        if pages:
            detail["free_bytes"] = pages
            summary += f"; {pages / 2**30:.1f} GiB of memory free"
        return Check(
            "device",
            WARN,
            summary + " (no GPU: renovating is slower)",
            "for a GPU, install a CUDA build of torch (see https://pytorch.org) and restart the server",
            detail,
        )
    return Check("device", OK, summary, detail=detail)
