"""Install and uninstall: plug-ins and client where the hosts look, their Python's dependencies, the daemon.

:func:`install` is what ``hifacegan-install`` runs and what the host tests call to set up a scratch HOME:

    from hifacegan_installers import install
    report = install(home=scratch_home, hosts=["gimp"], autostart=False, root=trixie_root)
    report.hosts[0].plugin_dir       # where the plug-in went

Every change goes through the journal (see journal.py), so running it again is harmless and
:func:`uninstall` puts back exactly what was there before.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hifacegan_installers import autostart as login
from hifacegan_installers import hostpython
from hifacegan_installers.hosts import HostInstall, detect, select
from hifacegan_installers.journal import InstallError, Journal, undo_all
from hifacegan_installers.places import (
    ELSEWHERE,
    GIMP_PLUGIN,
    KRITA_PLUGIN,
    Places,
    account_home,
    current_os,
    same_path,
)
from hifacegan_installers.sources import Sources, find_sources
from hifacegan_server.paths import loopback_endpoint

SANDBOX_ENDPOINT = loopback_endpoint()


@dataclass
class HostResult:
    key: str
    label: str
    installed: bool = False
    plugin_dir: Path | None = None  # GIMP: plug-ins/renovate-faces; Krita: pykrita/renovate_faces
    python: dict[str, Any] = field(default_factory=dict)  # the probe: version, imports
    vendored: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # each one a sentence with its fix

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "plugin_dir": str(self.plugin_dir) if self.plugin_dir else None}


@dataclass
class InstallReport:
    home: Path
    manifest: Path
    hosts: list[HostResult] = field(default_factory=list)
    autostart: list[Path] = field(default_factory=list)
    server_config: Path | None = None
    problems: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return (
            bool(self.hosts) and all(h.installed and not h.problems for h in self.hosts) and not self.problems
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "home": str(self.home),
            "manifest": str(self.manifest),
            "hosts": [h.to_dict() for h in self.hosts],
            "autostart": [str(p) for p in self.autostart],
            "server_config": str(self.server_config) if self.server_config else None,
            "problems": self.problems,
            "dry_run": self.dry_run,
            "ok": self.ok,
        }


def install(
    home: Path | str | None = None,
    hosts: list[str] | None = None,
    autostart: bool = True,
    dry_run: bool = False,
    *,
    os_name: str | None = None,
    root: Path | str | None = None,
    vendor: str = "auto",
    wheels: Path | str | None = None,
    python_version: str | None = None,
    config_dir: Path | str | None = None,
    endpoint: str | None = None,
    say: Callable[[str], None] = print,
) -> InstallReport:
    """Install the plug-ins for ``hosts`` (None: every GIMP 3 and Krita found) into ``home`` (None: yours).

    ``vendor``: ``auto`` fetches pyzmq/msgpack wheels into the plug-in folder when the host's Python lacks them,
    ``always`` does so even when it has them, ``never`` only reports. ``root``: the hosts live in that root
    (a chroot), and their Python runs there. ``endpoint`` goes into server.json (default: the daemon's own,
    ``tcp://127.0.0.1:47315`` when a sandboxed host needs it). Raises InstallError for what stops everything.
    """
    if vendor not in ("auto", "always", "never"):
        raise ValueError("vendor must be auto, always or never")
    places = Places.for_home(home, os_name, config_dir)
    root = Path(root) if root else None
    wheels = Path(wheels) if wheels else None
    sources = find_sources()
    journal = Journal(places.manifest, dry_run=dry_run, say=say)
    report = InstallReport(places.home, journal.manifest, dry_run=dry_run)
    chosen = select(detect(places, root), hosts, places, root)
    report.problems += _preflight_problems(chosen, places, dry_run)
    sandboxed = [c for c in chosen if c.sandboxed and not c.blocked]
    if sandboxed and endpoint is None:
        endpoint = SANDBOX_ENDPOINT
    context = _Context(places, journal, sources, root, vendor, wheels, python_version, say)
    for host in chosen:
        result = HostResult(host.key, host.label)
        report.hosts.append(result)
        _install_host(context, host, result, endpoint, autostart)
    report.server_config = _server_config(context, endpoint)
    if autostart:
        report.autostart = login.install_autostart(places, journal, report.problems)
    journal.info.update({"python": login.server_command()[0], "hosts": [h.key for h in chosen]})
    if home is None:
        _point_from_account_home(places, journal, say)
    journal.save()
    return report


def _preflight_problems(chosen: list[HostInstall], places: Places, dry_run: bool) -> list[str]:
    """What stops the install before any host: no host found, or a server this Python cannot import."""
    problems = []
    if not chosen:
        problems.append(
            "Found neither GIMP 3 nor Krita. Install one, or name it to install the plug-in anyway: "
            "hifacegan-install --host gimp --host krita"
        )
    if not dry_run and places.os_name == current_os():
        try:
            login.check_server_importable()
        except InstallError as exc:
            problems.append(str(exc))
    return problems


def _install_host(
    ctx: _Context, host: HostInstall, result: HostResult, endpoint: str | None, autostart: bool
) -> None:
    """One host: its plug-in files, its Python's dependencies and, when sandboxed, its own server config."""
    ctx.say(f"== {host.label}")
    if host.blocked:
        result.problems.append(f"not installed: {host.blocked}")
        ctx.say(f"   skipped: {host.blocked}")
        return
    for note in host.notes:
        ctx.say(f"   note: {note}")
    try:
        if host.host == "gimp":
            _install_gimp(ctx, host, result)
        else:
            _install_krita(ctx, host, result)
        _host_python(ctx, host, result)
        if host.sandboxed:
            _sandbox_config(ctx, host, endpoint, result)
            if not autostart:
                result.problems.append(
                    f"{host.label} cannot start the server from its sandbox and autostart is off: "
                    "start it yourself (hifacegan-server) before using the plug-in, or rerun without "
                    "--no-autostart."
                )
    except InstallError as exc:
        result.problems.append(str(exc))
        ctx.say(f"   failed: {exc}")


def _point_from_account_home(places: Places, journal: Journal, say: Callable[[str], None]) -> None:
    """When ``$HOME`` is not the account's home, say so and leave a pointer to this install's manifest in the
    account home, so that an uninstall run with the usual ``$HOME`` finds it (the pointer is journaled: the
    uninstall removes it too)."""
    account = Places.for_home(account_home(), places.os_name)
    if same_path(account.home, places.home):
        return
    say(
        f"note: installing into $HOME {places.home}, not your account's home {account.home}: GIMP, Krita and the "
        "login item use these files only when they run with the same HOME."
    )
    pointer = account.config_dir / ELSEWHERE
    data = json.dumps({"manifests": [str(places.manifest)]}, indent=1) + "\n"
    journal.write_file(pointer, data.encode(), 0o600)


@dataclass
class _Context:
    places: Places
    journal: Journal
    sources: Sources
    root: Path | None
    vendor: str
    wheels: Path | None
    python_version: str | None
    say: Callable[[str], None]

    def inside(self, path: Path) -> str:
        """``path`` as the host (in ``root``) sees it."""
        if self.root is None:
            return str(path)
        return "/" + str(path.resolve().relative_to(self.root.resolve()))


def _install_gimp(ctx: _Context, host: HostInstall, result: HostResult) -> None:
    folder = ctx.places.gimp_plugin_dir(host.flavor)
    ctx.journal.ensure_dir(folder)
    # GIMP runs only executable files, in a folder named as the file's stem.
    ctx.journal.copy_file(ctx.sources.gimp_script, folder / f"{GIMP_PLUGIN}.py", 0o755)
    for source in (*ctx.sources.client_files, *ctx.sources.shared_files):
        ctx.journal.copy_file(source, folder / source.name)
    result.plugin_dir = folder
    result.installed = True


def _install_krita(ctx: _Context, host: HostInstall, result: HostResult) -> None:
    data = ctx.places.krita_data(host.flavor)
    pykrita = data / "pykrita"
    package = pykrita / KRITA_PLUGIN
    ctx.journal.ensure_dir(package)
    ctx.journal.copy_file(ctx.sources.krita_desktop, pykrita / ctx.sources.krita_desktop.name)
    for relative in ctx.sources.krita_package_files():
        ctx.journal.ensure_dir((package / relative).parent)
        ctx.journal.copy_file(ctx.sources.krita_package / relative, package / relative)
    for source in ctx.sources.client_files:
        ctx.journal.copy_file(source, package / source.name)
    if ctx.sources.krita_action.is_file():
        ctx.journal.ensure_dir(data / "actions")
        ctx.journal.copy_file(ctx.sources.krita_action, data / "actions" / ctx.sources.krita_action.name)
    ctx.journal.set_ini(ctx.places.kritarc(host.flavor), "python", f"enable_{KRITA_PLUGIN}", "true")
    result.plugin_dir = package
    result.installed = True


def vendor_dir(places: Places, host: HostInstall) -> Path:
    """A folder already on the plug-in's ``sys.path``: GIMP's plug-in folder, Krita's ``pykrita``."""
    if host.host == "gimp":
        return places.gimp_plugin_dir(host.flavor)
    return places.krita_data(host.flavor) / "pykrita"


def client_module(host: HostInstall) -> str:
    return "client" if host.host == "gimp" else f"{KRITA_PLUGIN}.client"


def _host_python(ctx: _Context, host: HostInstall, result: HostResult) -> None:
    spec = host.python
    if spec is None:
        result.problems.append(
            f"The Python {host.label} runs plug-ins with is unknown here; make sure it can import pyzmq and msgpack."
        )
        return
    target = vendor_dir(ctx.places, host)
    first = [ctx.inside(target)] if not ctx.journal.dry_run else []
    modules = hostpython.MODULES if ctx.journal.dry_run else (*hostpython.MODULES, client_module(host))
    found = hostpython.probe(spec, modules, first) if not ctx.journal.dry_run or spec.command else None
    if found is not None and found.ran:
        result.python = {"version": found.version, "executable": found.executable, "imports": found.imports}
        ctx.say(
            f"   host Python {found.version} ({found.executable}): "
            + ", ".join(f"{m} {'ok' if info.get('ok') else 'missing'}" for m, info in found.imports.items())
        )
    missing = found.missing() if found is not None and found.ran else list(hostpython.MODULES)
    if not missing and ctx.vendor != "always":
        return
    if ctx.vendor == "never":
        result.problems.append(_python_advice(host, missing))
        return
    version = (
        ctx.python_version or (found.version if found is not None and found.ran else None) or spec.version
    )
    if version is None:
        result.problems.append(
            f"Cannot tell which Python {host.label} uses ({found.error if found else spec.how}); rerun with "
            "--python-version X.Y (its version) so the installer can fetch pyzmq and msgpack for it. "
            + _python_advice(host, missing)
        )
        return
    abiflags = found.abiflags if found is not None and found.ran else ""
    platforms = spec.platforms or hostpython_platforms(found)
    ctx.say(f"   fetching pyzmq and msgpack for Python {version} ({platforms[0]}) into {target}")
    try:
        result.vendored = hostpython.vendor(version, abiflags, platforms, target, ctx.journal, ctx.wheels)
    except InstallError as exc:
        result.problems.append(f"{exc} {_python_advice(host, missing)}")
        return
    if spec.command and not ctx.journal.dry_run:
        again = hostpython.probe(spec, modules, [ctx.inside(target)])
        result.python = {"version": again.version, "executable": again.executable, "imports": again.imports}
        still = again.missing(modules) if again.ran else []
        if still:
            errors = "; ".join(f"{m}: {again.imports.get(m, {}).get('error', '?')}" for m in still)
            result.problems.append(
                f"{host.label}'s Python still cannot import {', '.join(still)} ({errors})."
            )


def hostpython_platforms(found: hostpython.Probe | None) -> list[str]:
    if found is None or not found.ran or not found.platform.startswith("linux-"):
        raise InstallError(
            "Cannot tell the host Python's platform; rerun with --python-version on a known host."
        )
    arch = found.platform.split("-", 1)[1]
    return [f"manylinux_2_28_{arch}", f"manylinux_2_17_{arch}", f"manylinux2014_{arch}"]


def _python_advice(host: HostInstall, missing: list[str]) -> str:
    packages = ", ".join("pyzmq" if m == "zmq" else m for m in missing)
    if host.python is not None and host.python.system_packages:
        debs = " ".join(f"python3-{m}" for m in missing if m in ("zmq", "msgpack"))
        return (
            f"{host.label}'s Python lacks {packages}: install them with your package manager "
            f"(Debian/Ubuntu: sudo apt install {debs}; Fedora: sudo dnf install python3-pyzmq python3-msgpack), "
            "or rerun the installer with network access so it can put wheels beside the plug-in."
        )
    return (
        f"{host.label}'s Python lacks {packages}: rerun the installer with network access (or --wheels DIR)."
    )


def _sandbox_config(ctx: _Context, host: HostInstall, endpoint: str | None, result: HostResult) -> None:
    """A sandboxed host reads its own config folder: give it the endpoint and a copy of the token."""
    folder = ctx.places.sandbox_config_dir(host.host, host.flavor)
    if folder is None:
        return
    config = ctx.places.config_dir
    token = config / "token"
    if not token.is_file():
        ctx.journal.ensure_dir(config, 0o700)
        ctx.journal.write_file(token, (secrets.token_hex(32) + "\n").encode(), 0o600)
    ctx.journal.ensure_dir(folder, 0o700)
    data = json.dumps({"endpoint": endpoint or SANDBOX_ENDPOINT}, indent=1) + "\n"
    ctx.journal.write_file(folder / "server.json", data.encode(), 0o600)
    if token.is_file():
        ctx.journal.write_file(folder / "token", token.read_bytes(), 0o600)


def _server_config(ctx: _Context, endpoint: str | None) -> Path:
    """``<config>/server.json``: how the client starts the daemon; other keys a user set are kept."""
    config = ctx.places.config_dir
    path = config / "server.json"
    data: dict[str, Any] = {}
    if path.is_file():
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
            data = loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError):
            data = {}
    data["command"] = login.server_command()
    if endpoint:
        data["endpoint"] = endpoint
    ctx.journal.ensure_dir(config, 0o700)
    ctx.journal.write_file(path, (json.dumps(data, indent=1) + "\n").encode(), 0o600)
    return path


def uninstall(
    home: Path | str | None = None,
    dry_run: bool = False,
    *,
    os_name: str | None = None,
    config_dir: Path | str | None = None,
    say: Callable[[str], None] = print,
) -> int:
    """Remove everything the installer added to ``home`` and restore what it changed; returns the action count."""
    places = Places.for_home(home, os_name, config_dir)
    if places.manifest.is_file() or home is not None:
        return undo_all(places.manifest, dry_run=dry_run, say=say)
    # Installed with another $HOME: the account home's pointer names the manifest.
    pointer = Places.for_home(account_home(), places.os_name).config_dir / ELSEWHERE
    manifests = []
    with contextlib.suppress(OSError, ValueError, TypeError):
        manifests = [Path(p) for p in json.loads(pointer.read_text())["manifests"]]
    found = [m for m in manifests if m.is_file()]
    if not found:
        return undo_all(places.manifest, dry_run=dry_run, say=say)
    say(f"found the install made with another HOME through {pointer}")
    return sum(undo_all(manifest, dry_run=dry_run, say=say) for manifest in found)
