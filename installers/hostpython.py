"""The host's own Python: what it is, whether it imports pyzmq and msgpack, and wheels that make it do so.

Krita and GIMP run plug-ins with their own Python (the system one on Linux distributions, a bundled one on
Windows, macOS, Flatpak, Snap and AppImage), never this package's. When that Python lacks pyzmq or msgpack, the
installer fetches wheels built for exactly its version, ABI and platform
(``pip download --only-binary=:all: --python-version X.Y --abi cpXY --platform ...``) and unpacks them into a
folder the plug-in already has on ``sys.path``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hifacegan_installers.hosts import PythonSpec
from hifacegan_installers.journal import InstallError, Journal

REQUIREMENTS = ("pyzmq>=25", "msgpack>=1.0")
MODULES = ("zmq", "msgpack")

# Runs inside the host's Python: argv[1] = modules to import (comma list), argv[2:] = folders to put first.
PROBE = r"""
import json, sys, sysconfig
sys.path[:0] = [p for p in sys.argv[2:] if p]
result = {
    "version": "%d.%d" % sys.version_info[:2],
    "abiflags": getattr(sys, "abiflags", ""),
    "platform": sysconfig.get_platform(),
    "executable": sys.executable,
    "imports": {},
}
for name in [m for m in sys.argv[1].split(",") if m]:
    try:
        module = __import__(name, fromlist=["_"])
        result["imports"][name] = {"ok": True, "file": getattr(module, "__file__", None)}
    except BaseException as exc:
        result["imports"][name] = {"ok": False, "error": "%s: %s" % (type(exc).__name__, exc)}
print("RF-PROBE " + json.dumps(result))
"""


@dataclass
class Probe:
    ran: bool
    version: str | None = None
    abiflags: str = ""
    platform: str = ""
    executable: str = ""
    imports: dict[str, dict] = field(default_factory=dict)
    error: str = ""

    def missing(self, modules: tuple[str, ...] = MODULES) -> list[str]:
        return [m for m in modules if not self.imports.get(m, {}).get("ok")]


def probe(
    spec: PythonSpec,
    modules: tuple[str, ...] = MODULES,
    first_on_path: list[str] = (),
    timeout: float = 60,
) -> Probe:
    """Run the host's Python (when it can be run from here) and report its version and imports."""
    if not spec.command:
        return Probe(False, version=spec.version, error=f"{spec.how} cannot be run from outside the host")
    # The program is looked up on our PATH (chroot lives in /usr/sbin); the host's Python gets a plain one.
    program = shutil.which(spec.command[0]) or spec.command[0]
    argv = [program, *spec.command[1:], "-I", "-B", "-c", PROBE, ",".join(modules), *first_on_path]
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
    if sys.platform == "win32":
        env = dict(os.environ)
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Probe(False, version=spec.version, error=f"cannot run {' '.join(spec.command)}: {exc}")
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RF-PROBE ")), None)
    if line is None:
        tail = (proc.stderr or proc.stdout).strip()[-400:]
        return Probe(False, version=spec.version, error=f"{' '.join(spec.command)} failed: {tail}")
    data = json.loads(line[len("RF-PROBE ") :])
    return Probe(
        True, data["version"], data["abiflags"], data["platform"], data["executable"], data["imports"]
    )


def pip_download_command(
    version: str, abiflags: str, platforms: list[str], dest: Path, wheels: Path | None
) -> list[str]:
    """``pip download`` for wheels that fit a Python we do not run: binary only, its version, ABI and platform."""
    digits = version.replace(".", "")
    argv = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--quiet"]
    argv += ["--only-binary=:all:", "--python-version", version, "--implementation", "cp"]
    argv += ["--abi", f"cp{digits}{abiflags}", "--abi", "abi3", "--abi", "none"]
    for tag in platforms:
        argv += ["--platform", tag]
    if wheels is not None:
        argv += ["--no-index", "--find-links", str(wheels)]
    return [*argv, "--dest", str(dest), *REQUIREMENTS]


def download_wheels(
    version: str, abiflags: str, platforms: list[str], dest: Path, wheels: Path | None = None
) -> list[Path]:
    argv = pip_download_command(version, abiflags, platforms, dest, wheels)
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InstallError(f"pip download failed to run ({exc}).") from None
    if proc.returncode != 0:
        raise InstallError(
            f"pip could not fetch pyzmq and msgpack wheels for Python {version} ({', '.join(platforms)}): "
            f"{(proc.stderr or proc.stdout).strip()[-600:]}\nIf this machine is offline, download them elsewhere "
            f"with: pip download --only-binary=:all: --python-version {version} --platform {platforms[0]} "
            "pyzmq msgpack --dest WHEELS, then rerun the installer with --wheels WHEELS."
        )
    found = sorted(dest.glob("*.whl"))
    if not found:
        raise InstallError(f"pip download left no wheels in {dest}.")
    return found


def _top_level(wheel: zipfile.ZipFile) -> list[str]:
    names = set()
    for name in wheel.namelist():
        top = name.split("/", 1)[0]
        if top.endswith((".dist-info", ".data")):
            continue
        names.add(top)
    return sorted(names)


def unpack_wheels(wheels: list[Path], target: Path, journal: Journal) -> list[str]:
    """Unpack each wheel's top-level packages into ``target``, each one a folder the journal owns."""
    unpacked = []
    for path in wheels:
        with zipfile.ZipFile(path) as wheel:
            for top in _top_level(wheel):
                members = [n for n in wheel.namelist() if n == top or n.startswith(top + "/")]
                if members == [top]:  # a single module file
                    journal.write_file(target / top, wheel.read(top))
                else:
                    journal.add_tree(target / top, _extractor(path, top))
                unpacked.append(top)
    return unpacked


def _extractor(path: Path, top: str) -> Callable[[Path], None]:
    def fill(folder: Path) -> None:
        with zipfile.ZipFile(path) as wheel:
            for info in wheel.infolist():
                if not info.filename.startswith(top + "/") or info.is_dir():
                    continue
                out = folder / info.filename[len(top) + 1 :]
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(wheel.read(info))
                mode = (info.external_attr >> 16) & 0o777
                out.chmod(mode if mode else 0o644)

    return fill


def vendor(
    version: str,
    abiflags: str,
    platforms: list[str],
    target: Path,
    journal: Journal,
    wheels: Path | None = None,
) -> list[str]:
    """Fetch and unpack pyzmq and msgpack for a host Python into ``target``; returns the top-level names."""
    if journal.dry_run:
        argv = pip_download_command(version, abiflags, platforms, Path("TMP"), wheels)
        journal.say(f"would run {' '.join(argv)}")
        journal.say(f"would unpack zmq, pyzmq.libs and msgpack into {target}")
        return []
    with tempfile.TemporaryDirectory(prefix="rf-wheels-") as tmp:
        found = download_wheels(version, abiflags, platforms, Path(tmp), wheels)
        return unpack_wheels(found, target, journal)
