"""Start the daemon at login: a systemd user unit (Linux), a LaunchAgent (macOS), a logon task (Windows).

The files come from ``installers/templates/``. Service managers are only ever called for the real home of the
user running the installer on its own OS: a scratch ``--home`` (tests) gets the files and nothing else.
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path
from string import Template
from xml.sax.saxutils import escape

from hifacegan_installers.journal import InstallError, Journal
from hifacegan_installers.places import LAUNCH_AGENT, SYSTEMD_UNIT, WINDOWS_TASK, Places, current_os

TASK_XML = "windows-task.xml"
STARTUP_CMD = f"{WINDOWS_TASK}.cmd"


def template(name: str) -> Template:
    return Template(
        resources.files("hifacegan_installers").joinpath("templates", name).read_text(encoding="utf-8")
    )


def server_command(os_name: str | None = None, windowless: bool = False) -> list[str]:
    """This install's ``hifacegan-server``: this interpreter running ``-m hifacegan_server`` (absolute, so a login item
    or a host's plug-in starts the same install whatever its PATH)."""
    python = Path(sys.executable)
    if windowless and (os_name or current_os()) == "win32":
        pythonw = python.with_name("pythonw.exe")
        if pythonw.is_file():
            python = pythonw
    return [str(python), "-m", "hifacegan_server"]


def check_server_importable() -> None:
    """Fail early when ``python -m hifacegan_server`` would not start from a login item (cwd ``/``, no PYTHONPATH)."""
    code = "import importlib.util, sys; sys.exit(importlib.util.find_spec('hifacegan_server.daemon') is None)"
    proc = subprocess.run(
        [sys.executable, "-I", "-c", code], cwd=os.path.abspath(os.sep), capture_output=True
    )
    if proc.returncode != 0:
        raise InstallError(
            f"{sys.executable} cannot import the 'hifacegan_server' package from outside the source folder, so the "
            "plug-ins could not start it. Install the project first: pip install -e . (or pip install hifacegan)."
        )


# ---------------------------------------------------------------------------------------------------------
# Rendering (pure: the tests check these)
# ---------------------------------------------------------------------------------------------------------


def systemd_quote(arg: str) -> str:
    """One ExecStart word: quoted when needed, ``%`` and ``$`` escaped (systemd.service(5), "Command lines")."""
    text = arg.replace("%", "%%").replace("$", "$$")
    if text and not any(c in text for c in " \t\"'\\;"):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_systemd_unit(command: list[str]) -> str:
    exec_start = " ".join(systemd_quote(a) for a in [*command, "--foreground"])
    return template("renovate-faces.service").substitute(exec_start=exec_start)


def render_launch_agent(command: list[str], log: Path) -> str:
    arguments = "\n".join(f"\t\t<string>{escape(a)}</string>" for a in [*command, "--foreground"])
    return template("launch-agent.plist").substitute(
        label=LAUNCH_AGENT, arguments=arguments, log=escape(str(log))
    )


def windows_quote(arg: str) -> str:
    """Quote one argument the way CommandLineToArgvW reads it back."""
    if arg and not any(c in arg for c in ' \t"'):
        return arg
    out, slashes = [], 0
    for c in arg:
        if c == "\\":
            slashes += 1
            continue
        if c == '"':
            out.append("\\" * (2 * slashes + 1) + '"')
        else:
            out.append("\\" * slashes + c)
        slashes = 0
    out.append("\\" * (2 * slashes))
    return '"' + "".join(out) + '"'


def windows_user() -> str:
    user = os.environ.get("USERNAME") or getpass.getuser()
    domain = os.environ.get("USERDOMAIN")
    return f"{domain}\\{user}" if domain else user


def render_windows_task(command: list[str], user: str | None = None) -> bytes:
    """The task as Task Scheduler's XML, in UTF-16 (what ``schtasks /Create /XML`` reads)."""
    arguments = " ".join(windows_quote(a) for a in [*command[1:], "--foreground"])
    text = template(TASK_XML).substitute(
        task_name=escape(WINDOWS_TASK),
        user=escape(user or windows_user()),
        command=escape(command[0]),
        arguments=escape(arguments),
    )
    return text.replace("\n", "\r\n").encode("utf-16")


def render_startup_cmd(command: list[str]) -> str:
    line = " ".join(windows_quote(a) for a in [*command, "--foreground"])
    return template("windows-startup.cmd").substitute(command_line=line).replace("\n", "\r\n")


# ---------------------------------------------------------------------------------------------------------
# Installing
# ---------------------------------------------------------------------------------------------------------


def may_call_service_manager(places: Places) -> bool:
    return (
        places.is_real_home
        and places.os_name == current_os()
        and not os.environ.get("RENOVATE_FACES_NO_SERVICE")
    )


def install_autostart(places: Places, journal: Journal, problems: list[str]) -> list[Path]:
    """Add the login item for ``places``' OS; returns the files written."""
    if places.os_name == "darwin":
        return _launch_agent(places, journal, problems)
    if places.os_name == "win32":
        return _windows(places, journal, problems)
    return _systemd(places, journal, problems)


def _systemd(places: Places, journal: Journal, problems: list[str]) -> list[Path]:
    unit = places.systemd_user_dir / SYSTEMD_UNIT
    wants = places.systemd_user_dir / "default.target.wants" / SYSTEMD_UNIT
    live = may_call_service_manager(places) and shutil.which("systemctl") is not None
    if live and journal.find("command", Path("systemctl --user daemon-reload")) is None:
        journal.on_uninstall(["systemctl", "--user", "daemon-reload"])  # undone last: after the unit is gone
    journal.write_file(unit, render_systemd_unit(server_command()).encode())
    journal.symlink(
        wants, f"../{SYSTEMD_UNIT}"
    )  # what `systemctl --user enable` does, recorded for uninstall
    if live:
        reload = journal.command(["systemctl", "--user", "daemon-reload"], None, "make systemd read the unit")
        start = ["systemctl", "--user", "start", SYSTEMD_UNIT]
        started = journal.command(
            start, ["systemctl", "--user", "stop", SYSTEMD_UNIT], "start the server now"
        )
        if reload is not None and (reload.returncode != 0 or started is None or started.returncode != 0):
            problems.append(
                "systemd did not start the server now (no user session bus?); it starts at your next login, "
                f"or run: systemctl --user daemon-reload && systemctl --user start {SYSTEMD_UNIT}"
            )
    return [unit, wants]


def _launch_agent(places: Places, journal: Journal, problems: list[str]) -> list[Path]:
    plist = places.launch_agent
    log = places.log_dir / "launchd.log"
    journal.ensure_dir(places.log_dir)
    journal.write_file(plist, render_launch_agent(server_command(), log).encode())
    if may_call_service_manager(places) and shutil.which("launchctl"):
        domain = f"gui/{os.getuid()}"
        journal.command(["launchctl", "bootout", f"{domain}/{LAUNCH_AGENT}"], None, "unload an older copy")
        loaded = journal.command(
            ["launchctl", "bootstrap", domain, str(plist)],
            ["launchctl", "bootout", f"{domain}/{LAUNCH_AGENT}"],
            "start the server now",
        )
        if loaded is not None and loaded.returncode != 0:
            problems.append(f"launchctl did not load {plist}; it loads at your next login.")
    return [plist]


def _windows(places: Places, journal: Journal, problems: list[str]) -> list[Path]:
    command = server_command("win32", windowless=True)
    xml = places.config_dir / TASK_XML
    journal.write_file(xml, render_windows_task(command))
    if may_call_service_manager(places) and shutil.which("schtasks"):
        created = journal.command(
            ["schtasks", "/Create", "/TN", WINDOWS_TASK, "/XML", str(xml), "/F"],
            ["schtasks", "/Delete", "/TN", WINDOWS_TASK, "/F"],
            "start the server at logon",
        )
        if created is not None and created.returncode == 0:
            journal.command(["schtasks", "/Run", "/TN", WINDOWS_TASK], None, "start the server now")
            return [xml]
        problems.append("schtasks refused the logon task; a Startup-folder entry starts the server instead.")
    startup = places.windows_startup_dir / STARTUP_CMD
    journal.write_file(startup, render_startup_cmd(command).encode())
    return [xml, startup]
