"""What ``renovate-faces-doctor`` checks: hosts, plug-ins, their registration and Python, the daemon, the device, weights.

Each check gives a :class:`Check` whose ``fix`` says, in one sentence, what to do about a failure. Checks never
change anything; they read files, run the host's Python with the plug-in folder first on ``sys.path`` (the way
the plug-in imports its client), ask the daemon ``hello`` and ``status``, and verify every weights file's sha256.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from installers import hostpython, kritarc
from installers.hosts import HostInstall, detect, select
from installers.install import client_module, vendor_dir
from installers.places import GIMP_PLUGIN, KRITA_PLUGIN, LAUNCH_AGENT, SYSTEMD_UNIT, Places, same_path
from installers.sources import CLIENT_FILES

PROCEDURE = "plug-in-renovate-faces"
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
# Hosts and plug-ins
# ---------------------------------------------------------------------------------------------------------


def _manifest_hosts(places: Places) -> list[str]:
    try:
        data = json.loads(places.manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [str(h) for h in data.get("info", {}).get("hosts", [])]


def checked_hosts(places: Places, options: Options) -> list[HostInstall]:
    """The hosts to check: those asked for, else those found plus those the install manifest names."""
    found = detect(places, options.root)
    wanted = options.hosts or None
    if wanted is None:
        installed = [k for k in _manifest_hosts(places) if k not in {f.key for f in found}]
        if installed:
            wanted = sorted({f.key for f in found} | set(installed))
    return select(found, wanted, places, options.root) if wanted else found


def host_checks(places: Places, options: Options, hosts: list[HostInstall] | None = None) -> list[Check]:
    hosts = checked_hosts(places, options) if hosts is None else hosts
    if not hosts:
        return [
            Check(
                "hosts",
                FAIL,
                "found neither GIMP 3 nor Krita",
                "install GIMP 3 or Krita, then run hifacegan-install (it also installs for a host named with "
                "--host before the host is there)",
            )
        ]
    checks = []
    for host in hosts:
        checks.append(_host_check(host))
        if host.blocked:
            continue
        plugin = _gimp_files(places, host) if host.host == "gimp" else _krita_files(places, host)
        checks.append(plugin)
        if plugin.status == FAIL:
            continue
        checks.append(_gimp_registered(places, host) if host.host == "gimp" else _krita_enabled(places, host))
        checks.append(_python_check(places, host, options.root))
    return checks


def _host_check(host: HostInstall) -> Check:
    detail = {"location": host.location, "version": host.version, "flavor": host.flavor}
    if host.blocked:
        return Check(f"host:{host.key}", FAIL, f"{host.label} cannot run the plug-in", host.blocked, detail)
    if not host.found:
        fix = f"install {host.label.split(' (')[0]} (the plug-in is in place for when it is)"
        return Check(f"host:{host.key}", WARN, f"{host.label}", fix, detail)
    version = f" {host.version}" if host.version else ""
    return Check(f"host:{host.key}", OK, f"{host.label}{version} at {host.location}", detail=detail)


def _missing_files(files: list[Path]) -> list[str]:
    return [str(p) for p in files if not p.is_file()]


def _gimp_files(places: Places, host: HostInstall) -> Check:
    folder = places.gimp_plugin_dir(host.flavor)
    script = folder / f"{GIMP_PLUGIN}.py"
    name = f"plugin:{host.key}"
    missing = _missing_files([script, *(folder / f for f in CLIENT_FILES)])
    fix = f"{REINSTALL} --host {host.host}" + (f":{host.flavor}" if host.flavor != "system" else "")
    if missing:
        return Check(name, FAIL, f"GIMP plug-in missing: {', '.join(missing)}", fix, {"folder": str(folder)})
    stray = folder.parent / f"{GIMP_PLUGIN}.py"
    if stray.is_file():
        return Check(
            name,
            WARN,
            f"a stray {stray} is ignored by GIMP (plug-ins need their own folder)",
            f"delete {stray}",
            {"folder": str(folder)},
        )
    if os.name == "posix" and not os.access(script, os.X_OK):
        return Check(
            name,
            FAIL,
            f"{script} is not executable, so GIMP skips it",
            f"chmod +x '{script}' (or {fix})",
            {"folder": str(folder)},
        )
    return Check(name, OK, f"GIMP plug-in in {folder}", detail={"folder": str(folder)})


def _gimp_registered(places: Places, host: HostInstall) -> Check:
    pluginrc = places.gimp_config(host.flavor) / "pluginrc"
    script = places.gimp_plugin_dir(host.flavor) / f"{GIMP_PLUGIN}.py"
    name = f"registered:{host.key}"
    detail = {"pluginrc": str(pluginrc)}
    if not pluginrc.is_file():
        return Check(
            name,
            WARN,
            "GIMP has not started since the install (no pluginrc yet)",
            "start GIMP once; the entry appears under Filters ▸ Enhance ▸ Renovate Faces…",
            detail,
        )
    text = pluginrc.read_text(encoding="utf-8", errors="replace")
    if f'"{PROCEDURE}"' in text:
        return Check(name, OK, f"GIMP registered {PROCEDURE} (Filters ▸ Enhance)", detail=detail)
    if pluginrc.stat().st_mtime < script.stat().st_mtime:
        return Check(
            name, WARN, "GIMP has not queried the plug-in since it was installed", "restart GIMP", detail
        )
    return Check(
        name,
        FAIL,
        f"GIMP started since the install but did not register {PROCEDURE}",
        "run `gimp-console-3.0 --verbose -i --quit` (flatpak: flatpak run --command=gimp-console-3.0 "
        "org.gimp.GIMP --verbose -i --quit) and read the lines about renovate-faces; usually the host's Python "
        "lacks GObject introspection (python3-gi) or the file is not executable",
        detail,
    )


def _krita_files(places: Places, host: HostInstall) -> Check:
    data = places.krita_data(host.flavor)
    package = data / "pykrita" / KRITA_PLUGIN
    files = [data / "pykrita" / f"{KRITA_PLUGIN}.desktop", package / "__init__.py"]
    files += [package / f for f in CLIENT_FILES]
    missing = _missing_files(files)
    fix = f"{REINSTALL} --host {host.host}" + (f":{host.flavor}" if host.flavor != "system" else "")
    if missing:
        return Check(
            f"plugin:{host.key}",
            FAIL,
            f"Krita plug-in missing: {', '.join(missing)}",
            fix,
            {"folder": str(package)},
        )
    action = data / "actions" / f"{KRITA_PLUGIN}.action"
    detail = {"folder": str(package), "action": str(action) if action.is_file() else None}
    return Check(f"plugin:{host.key}", OK, f"Krita plug-in in {package}", detail=detail)


def _krita_enabled(places: Places, host: HostInstall) -> Check:
    rc = places.kritarc(host.flavor)
    name = f"registered:{host.key}"
    text = rc.read_text(encoding="utf-8", errors="replace") if rc.is_file() else ""
    value = kritarc.get_value(text, "python", f"enable_{KRITA_PLUGIN}")
    if value == "true":
        return Check(name, OK, f"enabled in {rc}", detail={"kritarc": str(rc)})
    return Check(
        name,
        FAIL,
        f"the plug-in is not enabled in {rc} (enable_{KRITA_PLUGIN}={value})",
        "in Krita: Settings ▸ Configure Krita ▸ Python Plugin Manager, tick Renovate Faces and restart Krita "
        f"(or {REINSTALL})",
        {"kritarc": str(rc)},
    )


def _python_check(places: Places, host: HostInstall, root: Path | None) -> Check:
    name = f"python:{host.key}"
    spec = host.python
    if spec is None or not spec.command:
        how = spec.how if spec else "its Python"
        return Check(
            name,
            SKIP,
            f"cannot run {how} from here to check its imports",
            "if the plug-in reports a missing pyzmq or msgpack, rerun hifacegan-install",
        )
    folder = vendor_dir(places, host)
    inside = str(folder) if root is None else "/" + str(folder.resolve().relative_to(root.resolve()))
    modules = (*hostpython.MODULES, client_module(host))
    probe = hostpython.probe(spec, modules, [inside])
    if not probe.ran:
        return Check(name, WARN, probe.error, "check that the host starts; then rerun renovate-faces-doctor")
    missing = probe.missing(modules)
    detail = {"version": probe.version, "executable": probe.executable, "imports": probe.imports}
    if not missing:
        return Check(
            name,
            OK,
            f"Python {probe.version} ({probe.executable}) imports zmq, msgpack and the client",
            detail=detail,
        )
    errors = "; ".join(f"{m}: {probe.imports[m].get('error')}" for m in missing)
    if spec.system_packages and set(missing) & {"zmq", "msgpack"}:
        fix = "sudo apt install python3-zmq python3-msgpack (Fedora: sudo dnf install python3-pyzmq python3-msgpack), or rerun hifacegan-install to put wheels beside the plug-in"
    else:
        fix = f"{REINSTALL} (it puts pyzmq and msgpack built for Python {probe.version} beside the plug-in)"
    return Check(name, FAIL, f"{host.label}'s Python {probe.version} cannot import: {errors}", fix, detail)


# ---------------------------------------------------------------------------------------------------------
# Server configuration, login item, daemon, device
# ---------------------------------------------------------------------------------------------------------


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
    from server import paths

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
    from server.client import Client, ServerError, ServerUnavailable

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
