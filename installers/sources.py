"""Find the files to install: the two plug-ins, the three client files they carry, and the words they share.

The client files come from the ``hifacegan_server`` package (the ``server/`` folder, importable wherever
``hifacegan`` is installed). The plug-ins live outside any package (``plugin_gimp/``, ``plugin_krita/`` at the
repository root), so they are looked up:

1. ``RENOVATE_FACES_PLUGIN_SOURCE`` (a folder holding ``plugin_gimp/`` and ``plugin_krita/``);
2. the repository this package runs from (a checkout or an editable install);
3. ``<prefix>/share/renovate-faces/`` (where a wheel's data files land).
"""

from __future__ import annotations

import os
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from hifacegan_installers.journal import InstallError
from hifacegan_installers.places import GIMP_PLUGIN, KRITA_PLUGIN

CLIENT_FILES = ("client.py", "paths.py", "protocol.py")
# What both plug-ins say and send alike: part of the Krita package, copied beside the GIMP plug-in too.
SHARED_FILES = ("common.py",)


@dataclass(frozen=True)
class Sources:
    gimp_script: Path  # plugin_gimp/renovate-faces/renovate-faces.py
    krita_desktop: Path  # plugin_krita/renovate_faces.desktop
    krita_package: Path  # plugin_krita/renovate_faces/
    krita_action: Path  # plugin_krita/renovate_faces.action
    client_files: tuple[Path, ...]  # hifacegan_server's client.py, paths.py, protocol.py

    @property
    def shared_files(self) -> tuple[Path, ...]:
        """The Krita package's files the GIMP plug-in loads too (plugin_krita/renovate_faces/common.py)."""
        return tuple(self.krita_package / name for name in SHARED_FILES)

    def krita_package_files(self) -> list[Path]:
        """The package's files, relative to it, without caches."""
        return sorted(
            p.relative_to(self.krita_package)
            for p in self.krita_package.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")
        )


def _candidates() -> list[Path]:
    found = []
    override = os.environ.get("RENOVATE_FACES_PLUGIN_SOURCE")
    if override:
        found.append(Path(override))
    found.append(Path(__file__).resolve().parents[1])
    for prefix in {sys.prefix, sys.base_prefix, sysconfig.get_paths().get("data", sys.prefix)}:
        found.append(Path(prefix) / "share" / "renovate-faces")
    return found


def server_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("hifacegan_server")
    if spec is None or not spec.submodule_search_locations:
        raise InstallError(
            "The 'hifacegan_server' package is not importable: reinstall hifacegan (pip install hifacegan)."
        )
    return Path(next(iter(spec.submodule_search_locations)))


def find_sources() -> Sources:
    """The files to install, or an InstallError naming every place looked at."""
    server = server_dir()
    client_files = tuple(server / name for name in CLIENT_FILES)
    missing = [str(p) for p in client_files if not p.is_file()]
    if missing:
        raise InstallError(f"The client files are missing from the installed package: {', '.join(missing)}.")
    looked = []
    for base in _candidates():
        gimp = base / "plugin_gimp" / GIMP_PLUGIN / f"{GIMP_PLUGIN}.py"
        krita = base / "plugin_krita"
        looked.append(str(base))
        if gimp.is_file() and (krita / KRITA_PLUGIN / "__init__.py").is_file():
            return Sources(
                gimp_script=gimp,
                krita_desktop=krita / f"{KRITA_PLUGIN}.desktop",
                krita_package=krita / KRITA_PLUGIN,
                krita_action=krita / f"{KRITA_PLUGIN}.action",
                client_files=client_files,
            )
    raise InstallError(
        "Cannot find the plug-in files (plugin_gimp/, plugin_krita/). Looked in: "
        + "; ".join(looked)
        + ". Run the installer from a source checkout, or set RENOVATE_FACES_PLUGIN_SOURCE to the folder "
        "that holds plugin_gimp/ and plugin_krita/."
    )
