"""Find GIMP 3 and Krita: system packages, Flatpak, Snap and AppImage on Linux, app bundles on macOS, Windows.

Each find returns a :class:`HostInstall`: which host, how it is packaged, where its plug-ins go and how to reach
the Python it runs plug-ins with. Finding never runs the host itself (GIMP's first start takes ~15 s); it reads
files (package folders, Flatpak metadata, snap.yaml, Info.plist) and at most asks ``python3 --version``-like probes.
``root`` points all system paths into another root (a chroot holding the hosts; the tests use a Debian trixie one).
"""

from __future__ import annotations

import configparser
import glob
import os
import plistlib
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from hifacegan_installers.places import FLATPAK_GIMP, FLATPAK_KRITA, Places

HOSTS = ("gimp", "krita")
FLAVORS = ("system", "flatpak", "snap", "appimage", "app", "windows")
SANDBOXED = ("flatpak", "snap")
LABELS = {"gimp": "GIMP", "krita": "Krita"}


@dataclass
class PythonSpec:
    """How to learn about the Python a host runs plug-ins with, and how to fetch wheels for it."""

    how: str  # words for the user: "the system's /usr/bin/python3", "Krita's bundled Python 3.10"
    command: list[str] | None = None  # runs that Python (probe, import check); None: cannot be run from here
    version: str | None = None  # "3.11", when known without running it
    platforms: list[str] = field(default_factory=list)  # pip --platform tags for wheels that fit it
    system_packages: bool = False  # a distribution's Python: apt/dnf packages are the better fix


@dataclass
class HostInstall:
    host: str  # "gimp" | "krita"
    flavor: str  # see FLAVORS
    label: str
    location: str | None = None  # executable, app bundle or AppImage
    version: str | None = None
    python: PythonSpec | None = None
    blocked: str | None = None  # why the plug-in cannot be installed for it (said to the user)
    notes: list[str] = field(default_factory=list)
    found: bool = True  # False: named with --host but not found; installed anyway

    @property
    def key(self) -> str:
        return f"{self.host}:{self.flavor}"

    @property
    def sandboxed(self) -> bool:
        return self.flavor in SANDBOXED


def _major(version: str | None) -> int | None:
    match = re.match(r"\s*(\d+)", version or "")
    return int(match.group(1)) if match else None


def _linux_platforms(arch: str = "x86_64") -> list[str]:
    return [f"manylinux_2_28_{arch}", f"manylinux_2_17_{arch}", f"manylinux2014_{arch}"]


def _python_version_in(folder: Path) -> str | None:
    """The newest ``lib/python3.X`` below ``folder`` (how bundled Pythons show their version)."""
    versions = []
    for path in glob.glob(str(folder / "**" / "python3.*"), recursive=True):
        match = re.search(r"python(3\.\d+)$", path)
        if match and os.path.isdir(path):
            versions.append(tuple(int(x) for x in match.group(1).split(".")))
    return ".".join(map(str, max(versions))) if versions else None


# ---------------------------------------------------------------------------------------------------------
# Linux
# ---------------------------------------------------------------------------------------------------------


def _in_root(root: Path | None, path: str) -> Path:
    return Path(path) if root is None else root / path.lstrip("/")


def _root_python(root: Path | None) -> list[str]:
    return ["/usr/bin/python3"] if root is None else ["chroot", str(root), "/usr/bin/python3"]


def _dpkg_version(root: Path | None, package: str) -> str | None:
    status = _in_root(root, "/var/lib/dpkg/status")
    try:
        text = status.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for block in text.split("\n\n"):
        if re.search(rf"^Package: {re.escape(package)}$", block, re.M) and "install ok installed" in block:
            match = re.search(r"^Version: (?:\d+:)?(\S+)", block, re.M)
            return match.group(1) if match else None
    return None


def _linux_system(root: Path | None) -> list[HostInstall]:
    found = []
    spec = PythonSpec(
        "the system's /usr/bin/python3" + (f" (in {root})" if root else ""),
        command=_root_python(root),
        platforms=_linux_platforms(),
        system_packages=True,
    )
    gimp_bins = [_in_root(root, f"/usr/bin/{name}") for name in ("gimp-3.0", "gimp-console-3.0", "gimp")]
    gimp_bin = next((p for p in gimp_bins if p.exists()), None)
    if gimp_bin is not None:
        version = _dpkg_version(root, "gimp")
        has_3 = (
            any(_in_root(root, "/usr/lib").glob("*/gimp/3.0")) or _in_root(root, "/usr/lib/gimp/3.0").is_dir()
        )
        blocked = None
        if not has_3 or (version and (_major(version) or 0) < 3):
            blocked = (
                f"GIMP {version or '2.x'} is installed, and only GIMP 3 runs Python 3 plug-ins. Install GIMP 3 "
                "(Debian 13/Ubuntu 25.04 packages, or 'flatpak install flathub org.gimp.GIMP')."
            )
        found.append(
            HostInstall("gimp", "system", "GIMP (system package)", str(gimp_bin), version, spec, blocked)
        )
    krita_bin = _in_root(root, "/usr/bin/krita")
    if krita_bin.exists():
        version = _dpkg_version(root, "krita")
        notes = []
        pyqt = _in_root(root, "/usr/lib/python3/dist-packages/PyQt5")
        if not pyqt.is_dir():
            notes.append(
                "PyQt5 for the system Python is missing, so Krita loads no Python plug-ins: "
                "install python3-pyqt5 (sudo apt install python3-pyqt5)."
            )
        found.append(
            HostInstall(
                "krita", "system", "Krita (system package)", str(krita_bin), version, spec, notes=notes
            )
        )
    return found


def _flatpak_dirs(places: Places) -> list[Path]:
    return [places.home / ".local/share/flatpak", Path("/var/lib/flatpak")]


def _flatpak(places: Places, host: str) -> HostInstall | None:
    app = FLATPAK_GIMP if host == "gimp" else FLATPAK_KRITA
    for base in _flatpak_dirs(places):
        active = base / "app" / app / "current" / "active"
        metadata = active / "metadata"
        if not metadata.is_file():
            continue
        meta = configparser.ConfigParser(interpolation=None)
        meta.read(metadata)
        runtime = meta.get("Application", "runtime", fallback="")  # org.gnome.Platform/x86_64/47
        version = None
        appdata = next(iter((active / "files" / "share" / "metainfo").glob(f"{app}*.xml")), None)
        if appdata is not None:
            match = re.search(r'<release[^>]*version="([^"]+)"', appdata.read_text(errors="replace"))
            version = match.group(1) if match else None
        py_version = _python_version_in(active / "files" / "lib")
        if py_version is None and runtime:
            py_version = _python_version_in(base / "runtime" / runtime / "active" / "files" / "lib")
        arch = runtime.split("/")[1] if runtime.count("/") >= 2 else "x86_64"
        command = ["flatpak", "run", "--command=python3", app] if shutil.which("flatpak") else None
        spec = PythonSpec(
            f"the Flatpak's Python ({runtime or app})", command, py_version, _linux_platforms(arch)
        )
        label = f"{LABELS[host]} (Flatpak {app})"
        install = HostInstall(host, "flatpak", label, str(active), version, spec)
        if host == "gimp" and version and (_major(version) or 0) < 3:
            install.blocked = (
                f"the Flatpak holds GIMP {version}; only GIMP 3 runs Python 3 plug-ins: "
                f"'flatpak update {app}' (GIMP 3 is on Flathub's stable branch)."
            )
        install.notes.append(
            "Flatpak apps cannot start programs outside their sandbox, so the server must run at login "
            "(leave autostart on) and listen on tcp://127.0.0.1, which the installer sets up."
        )
        return install
    return None


def _snap(host: str) -> HostInstall | None:
    current = Path("/snap") / host / "current"
    snap_yaml = current / "meta" / "snap.yaml"
    if not snap_yaml.is_file():
        return None
    text = snap_yaml.read_text(errors="replace")
    version = (re.search(r"^version:\s*'?\"?([^'\"\n]+)", text, re.M) or [None, None])[1]
    base = (re.search(r"^base:\s*(\S+)", text, re.M) or [None, None])[1]
    confinement = (re.search(r"^confinement:\s*(\S+)", text, re.M) or [None, "strict"])[1]
    py_version = _python_version_in(current / "usr" / "lib")
    if py_version is None and base:
        py_version = _python_version_in(Path("/snap") / base / "current" / "usr" / "lib")
    # Run from outside, the snap's Python would load this machine's libraries, not its base's: only read it.
    spec = PythonSpec(f"the snap's Python ({base or 'its base'})", None, py_version, _linux_platforms())
    install = HostInstall(host, "snap", f"{LABELS[host]} (snap, {confinement})", str(current), version, spec)
    if host == "gimp" and version and (_major(version) or 0) < 3:
        install.blocked = (
            f"the GIMP snap is version {version}; only GIMP 3 runs Python 3 plug-ins: "
            "'sudo snap refresh gimp --channel=latest/stable' once it carries 3.x, or use the Flatpak."
        )
    if confinement == "strict":
        install.notes.append(
            "A strictly confined snap cannot start programs outside it, so the server must run at login "
            "(leave autostart on) and listen on tcp://127.0.0.1, which the installer sets up."
        )
    return install


def _appimages(places: Places) -> list[HostInstall]:
    found = []
    folders = [places.home / d for d in ("Applications", "Downloads", "bin", ".local/bin", "Apps")]
    folders.append(Path("/opt"))
    seen = set()
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            name = path.name.lower()
            if not name.endswith(".appimage") or not path.is_file():
                continue
            host = "krita" if "krita" in name else "gimp" if "gimp" in name else None
            if host is None or host in seen:
                continue
            seen.add(host)
            match = re.search(r"(\d+\.\d+(?:\.\d+)?)", path.name)
            version = match.group(1) if match else None
            spec = PythonSpec(
                f"the Python bundled in {path.name}",
                command=None,
                version=None,
                platforms=_linux_platforms(),
            )
            install = HostInstall(
                host, "appimage", f"{LABELS[host]} (AppImage {path.name})", str(path), version, spec
            )
            if host == "gimp" and version and (_major(version) or 0) < 3:
                install.blocked = f"{path.name} is GIMP {version}; only GIMP 3 runs Python 3 plug-ins."
            found.append(install)
    return found


# ---------------------------------------------------------------------------------------------------------
# macOS and Windows
# ---------------------------------------------------------------------------------------------------------


def _mac_platforms() -> list[str]:
    import platform

    arch = platform.machine() or "arm64"
    return [
        f"macosx_11_0_{arch}",
        f"macosx_10_15_{arch}",
        "macosx_10_15_universal2",
        "macosx_10_9_universal2",
    ]


def _mac_apps(places: Places) -> list[HostInstall]:
    found = []
    for folder in (Path("/Applications"), places.home / "Applications"):
        for pattern, host in (("GIMP*.app", "gimp"), ("krita*.app", "krita"), ("Krita*.app", "krita")):
            for app in sorted(folder.glob(pattern)):
                if any(f.host == host for f in found):
                    continue
                version = None
                with_info = app / "Contents" / "Info.plist"
                if with_info.is_file():
                    try:
                        version = plistlib.loads(with_info.read_bytes()).get("CFBundleShortVersionString")
                    except Exception:  # noqa: BLE001 - a broken Info.plist only costs us the version
                        version = None
                py_version = _python_version_in(app / "Contents")
                runnable = sorted(app.glob("Contents/*/bin/python3*")) + sorted(
                    app.glob("Contents/MacOS/python3*")
                )
                spec = PythonSpec(
                    f"the Python bundled in {app.name}",
                    [str(runnable[0])] if runnable else None,
                    py_version,
                    _mac_platforms(),
                )
                install = HostInstall(host, "app", f"{LABELS[host]} ({app})", str(app), version, spec)
                if host == "gimp" and version and (_major(version) or 0) < 3:
                    install.blocked = f"{app.name} is GIMP {version}; only GIMP 3 runs Python 3 plug-ins."
                found.append(install)
    return found


def _windows_apps(places: Places) -> list[HostInstall]:
    import platform

    arch = "win_arm64" if platform.machine().lower() in ("arm64", "aarch64") else "win_amd64"
    roots = [os.environ.get(v) for v in ("ProgramFiles", "ProgramW6432", "ProgramFiles(x86)")]
    roots += [str(places.localappdata / "Programs")]
    found = []
    for base in filter(None, roots):
        for folder in sorted(Path(base).glob("GIMP*")):
            exe = next(iter(sorted(folder.glob("bin/gimp-3*.exe"))), None)
            if exe is None or any(f.host == "gimp" for f in found):
                continue
            python = next(
                iter(sorted(folder.glob("bin/python.exe")) + sorted(folder.glob("bin/python3*.exe"))), None
            )
            dll = next(iter(sorted(folder.glob("bin/libpython3.*.dll"))), None)
            version = re.search(r"python(3\.\d+)", dll.name).group(1) if dll else None
            spec = PythonSpec(
                f"the Python bundled with GIMP ({folder})", [str(python)] if python else None, version, [arch]
            )
            found.append(HostInstall("gimp", "windows", f"GIMP 3 ({folder})", str(exe), None, spec))
        for folder in sorted(Path(base).glob("Krita*")):
            exe = folder / "bin" / "krita.exe"
            if not exe.is_file() or any(f.host == "krita" for f in found):
                continue
            dll = next(iter(sorted(folder.glob("bin/python3*.dll"))), None)
            version = None
            if dll is not None:
                digits = re.search(r"python3(\d+)\.dll", dll.name, re.I)
                version = f"3.{digits.group(1)}" if digits else None
            spec = PythonSpec(f"the Python bundled with Krita ({folder})", None, version, [arch])
            found.append(HostInstall("krita", "windows", f"Krita ({folder})", str(exe), None, spec))
    return found


# ---------------------------------------------------------------------------------------------------------


def detect(places: Places, root: Path | None = None) -> list[HostInstall]:
    """Every GIMP 3 and Krita this machine has, for ``places``' OS."""
    if places.os_name == "darwin":
        return _mac_apps(places)
    if places.os_name == "win32":
        return _windows_apps(places)
    found = _linux_system(root)
    if root is None:
        for host in HOSTS:
            for finder in (lambda h=host: _flatpak(places, h), lambda h=host: _snap(h)):
                install = finder()
                if install is not None:
                    found.append(install)
        found += _appimages(places)
    return found


def default_flavor(os_name: str) -> str:
    return {"darwin": "app", "win32": "windows"}.get(os_name, "system")


def select(
    found: list[HostInstall], wanted: list[str] | None, places: Places, root: Path | None
) -> list[HostInstall]:
    """The installs to act on: all found (``wanted`` None) or those named ``gimp``, ``krita``, ``gimp:flatpak``...

    A named host that is not found is still installed (its folders are known), with a note saying so: users
    install the plug-in before the host, and tests install into homes without hosts.
    """
    if not wanted:
        return found
    chosen = []
    for name in wanted:
        host, _, flavor = name.partition(":")
        if host not in HOSTS or (flavor and flavor not in FLAVORS):
            raise ValueError(
                f"unknown host {name!r}: use gimp or krita, optionally with a packaging "
                f"({', '.join(FLAVORS)}), e.g. gimp:flatpak"
            )
        matches = [f for f in found if f.host == host and (not flavor or f.flavor == flavor)]
        if matches:
            chosen += [m for m in matches if m not in chosen]
            continue
        flavor = flavor or default_flavor(places.os_name)
        spec = None
        if flavor == "system" and places.os_name == "linux":
            spec = PythonSpec(
                "the system's /usr/bin/python3", _root_python(root), None, _linux_platforms(), True
            )
        chosen.append(
            HostInstall(
                host,
                flavor,
                f"{LABELS[host]} ({flavor}, not found on this machine)",
                python=spec,
                found=False,
                notes=[
                    f"{LABELS[host]} was not found; the plug-in is installed where it will look once installed."
                ],
            )
        )
    return chosen
