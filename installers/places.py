"""Where a home folder keeps things on each OS: the hosts' plug-in folders, kritarc, our config, login items.

Everything is computed from a home folder and an OS name, so that tests can lay out a macOS or Windows home
inside a scratch folder on Linux. The user's environment (``XDG_CONFIG_HOME``, ``APPDATA``...) is honoured only
for the real home: a scratch ``--home`` must never send files into the real one.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

APP = "renovate-faces"
GIMP_PLUGIN = "renovate-faces"
KRITA_PLUGIN = "renovate_faces"
SYSTEMD_UNIT = "renovate-faces.service"
LAUNCH_AGENT = "org.renovate-faces.server"
WINDOWS_TASK = "Renovate Faces server"
MANIFEST = "install-manifest.json"
ELSEWHERE = (
    "installs-elsewhere.json"  # in the account home's config: manifests of installs into another $HOME
)

FLATPAK_GIMP = "org.gimp.GIMP"
FLATPAK_KRITA = "org.kde.krita"


def real_home() -> Path:
    """The home the installer, the doctor and the server all serve: ``$HOME`` (one rule for the three; the hosts
    and the plug-ins they start read ``$HOME`` too). See :func:`account_home` for the password database's."""
    return Path(os.path.expanduser("~"))


def account_home() -> Path:
    """The account's home from the password database (where ``$HOME`` normally points; ``sudo -E``, sandboxes
    and scripts may set another). An install into another ``$HOME`` leaves a pointer here (:data:`ELSEWHERE`), so
    that an uninstall run with the usual ``$HOME`` still finds it."""
    try:
        import pwd

        return Path(pwd.getpwuid(os.getuid()).pw_dir)
    except (ImportError, KeyError):
        return real_home()


def current_os() -> str:
    """``linux``, ``darwin`` or ``win32``."""
    if sys.platform.startswith("linux"):
        return "linux"
    return sys.platform


def same_path(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


@dataclass(frozen=True)
class Places:
    """The folders of one home on one OS."""

    home: Path
    os_name: str = current_os()
    is_real_home: bool = False
    config_override: Path | None = None  # our config folder elsewhere (tests keep it beside a scratch HOME)

    @classmethod
    def for_home(
        cls, home: Path | str | None = None, os_name: str | None = None, config_dir: Path | str | None = None
    ) -> Places:
        target = Path(home).expanduser() if home else real_home()
        target = target.absolute()
        os_name = os_name or current_os()
        real = same_path(target, real_home()) and os_name == current_os()
        return cls(target, os_name, real, Path(config_dir).absolute() if config_dir else None)

    def _env(self, name: str) -> Path | None:
        """An environment folder, only for the real home (a scratch home must stay self-contained)."""
        if not self.is_real_home:
            return None
        value = os.environ.get(name)
        return Path(value) if value else None

    # ---- generic per-OS folders ---------------------------------------------------------------------------

    @property
    def xdg_config(self) -> Path:
        return self._env("XDG_CONFIG_HOME") or self.home / ".config"

    @property
    def xdg_data(self) -> Path:
        return self._env("XDG_DATA_HOME") or self.home / ".local" / "share"

    @property
    def appdata(self) -> Path:
        return self._env("APPDATA") or self.home / "AppData" / "Roaming"

    @property
    def localappdata(self) -> Path:
        return self._env("LOCALAPPDATA") or self.home / "AppData" / "Local"

    @property
    def app_support(self) -> Path:
        return self.home / "Library" / "Application Support"

    # ---- ours -------------------------------------------------------------------------------------------

    @property
    def config_dir(self) -> Path:
        """Where the daemon and the client read ``server.json`` and the token (same rules as server/paths.py)."""
        if self.config_override is not None:
            return self.config_override
        if self.is_real_home:
            from hifacegan_server import paths

            return paths.config_dir()
        if self.os_name == "win32":
            return self.appdata / APP
        if self.os_name == "darwin":
            return self.app_support / APP
        return self.xdg_config / APP

    @property
    def log_dir(self) -> Path:
        if self.is_real_home:
            from hifacegan_server import paths

            return paths.log_dir()
        if self.os_name == "win32":
            return self.localappdata / APP / "Logs"
        if self.os_name == "darwin":
            return self.home / "Library" / "Logs" / APP
        return self.home / ".local" / "state" / APP / "log"

    @property
    def manifest(self) -> Path:
        return self.config_dir / MANIFEST

    # ---- GIMP 3 -----------------------------------------------------------------------------------------

    def gimp_config(self, flavor: str = "system") -> Path:
        if flavor == "flatpak":
            return self.home / ".var" / "app" / FLATPAK_GIMP / "config" / "GIMP" / "3.0"
        if flavor == "snap":
            return self.home / "snap" / "gimp" / "current" / ".config" / "GIMP" / "3.0"
        if self.os_name == "win32":
            return self.appdata / "GIMP" / "3.0"
        if self.os_name == "darwin":
            return self.app_support / "GIMP" / "3.0"
        return self.xdg_config / "GIMP" / "3.0"

    def gimp_plugin_dir(self, flavor: str = "system") -> Path:
        return self.gimp_config(flavor) / "plug-ins" / GIMP_PLUGIN

    # ---- Krita ------------------------------------------------------------------------------------------

    def krita_data(self, flavor: str = "system") -> Path:
        if flavor == "flatpak":
            return self.home / ".var" / "app" / FLATPAK_KRITA / "data" / "krita"
        if flavor == "snap":
            return self.home / "snap" / "krita" / "current" / ".local" / "share" / "krita"
        if self.os_name == "win32":
            return self.appdata / "krita"
        if self.os_name == "darwin":
            return self.app_support / "krita"
        return self.xdg_data / "krita"

    def kritarc(self, flavor: str = "system") -> Path:
        if flavor == "flatpak":
            return self.home / ".var" / "app" / FLATPAK_KRITA / "config" / "kritarc"
        if flavor == "snap":
            return self.home / "snap" / "krita" / "current" / ".config" / "kritarc"
        if self.os_name == "win32":
            return self.localappdata / "kritarc"
        if self.os_name == "darwin":
            return self.home / "Library" / "Preferences" / "kritarc"
        return self.xdg_config / "kritarc"

    # ---- sandboxes: the config folder the plug-in sees from inside ---------------------------------------

    def sandbox_config_dir(self, host: str, flavor: str) -> Path | None:
        """Our config folder as a Flatpak or Snap app sees it (its XDG_CONFIG_HOME is private), else None."""
        if flavor == "flatpak":
            app = FLATPAK_GIMP if host == "gimp" else FLATPAK_KRITA
            return self.home / ".var" / "app" / app / "config" / APP
        if flavor == "snap":
            return self.home / "snap" / host / "current" / ".config" / APP
        return None

    # ---- login items ------------------------------------------------------------------------------------

    @property
    def systemd_user_dir(self) -> Path:
        return self.xdg_config / "systemd" / "user"

    @property
    def launch_agent(self) -> Path:
        return self.home / "Library" / "LaunchAgents" / f"{LAUNCH_AGENT}.plist"

    @property
    def windows_startup_dir(self) -> Path:
        return self.appdata / "Microsoft" / "Windows" / "Start Menu" / "Programs" / "Startup"
