"""The doctor's checks of the hosts and their plug-ins: GIMP 3 and Krita found, the plug-ins' files in place,
registered (GIMP's pluginrc) or enabled (Krita's kritarc), and the host's Python importing pyzmq, msgpack and the
client the way the plug-in does. They read files and run the host's Python; they change nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path

from hifacegan_installers import hostpython, kritarc
from hifacegan_installers.checks import FAIL, OK, REINSTALL, SKIP, WARN, Check, Options
from hifacegan_installers.hosts import HostInstall, detect, select
from hifacegan_installers.install import client_module, vendor_dir
from hifacegan_installers.places import GIMP_PLUGIN, KRITA_PLUGIN, Places
from hifacegan_installers.sources import CLIENT_FILES, SHARED_FILES

PROCEDURE = "plug-in-renovate-faces"


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
    missing = _missing_files([script, *(folder / f for f in (*CLIENT_FILES, *SHARED_FILES))])
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
