"""The installer against scratch homes: layouts for Linux, macOS and Windows, idempotence, dry run, and an
uninstall that leaves the home byte-for-byte as it was. The login items are checked by their own parsers
(``systemd-analyze verify``, plistlib, an XML parser). Nothing here touches the real home or calls systemctl.
"""

from __future__ import annotations

import json
import os
import plistlib
import shutil
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import REPO

from hifacegan_installers import install, kritarc, uninstall
from hifacegan_installers.autostart import (
    render_systemd_unit,
    render_windows_task,
    systemd_quote,
    windows_quote,
)
from hifacegan_installers.places import Places

CLIENT = ("client.py", "paths.py", "protocol.py")
SERVER_COMMAND = [sys.executable, "-m", "hifacegan_server"]
KRITA_FILES = sorted(
    str(p.relative_to(REPO / "plugin_krita" / "renovate_faces"))
    for p in (REPO / "plugin_krita" / "renovate_faces").rglob("*.py")
    if "__pycache__" not in p.parts
)


def snapshot(home: Path) -> dict[str, tuple]:
    """Every entry under ``home``: type, permission bits, and the bytes of files or the target of links."""
    tree = {}
    for path in sorted(home.rglob("*")):
        rel = str(path.relative_to(home))
        mode = stat.S_IMODE(path.lstat().st_mode)
        if path.is_symlink():
            tree[rel] = ("link", os.readlink(path))
        elif path.is_dir():
            tree[rel] = ("dir", mode)
        else:
            tree[rel] = ("file", mode, path.read_bytes())
    return tree


def lived_in_home(tmp_path: Path) -> Path:
    """A home with things of the user's own that the installer must keep: kritarc, another plug-in, configs."""
    home = tmp_path / "home"
    (home / ".config" / "GIMP" / "3.0" / "plug-ins" / "other").mkdir(parents=True)
    (home / ".config" / "GIMP" / "3.0" / "plug-ins" / "other" / "other.py").write_text(
        "#!/usr/bin/env python3\n"
    )
    (home / ".config" / "GIMP" / "3.0" / "gimprc").write_text('(theme "Dark")\n')
    (home / ".config" / "kritarc").write_bytes(
        b"[General]\nLastPreset=Basic\n\n[python]\nenable_other_plugin=true\nenable_renovate_faces=false\n"
    )
    (home / ".local" / "share" / "krita" / "pykrita").mkdir(parents=True)
    (home / ".local" / "share" / "krita" / "pykrita" / "other.desktop").write_text("[Desktop Entry]\n")
    return home


def quiet(_: str) -> None:
    pass


# ---------------------------------------------------------------------------------------------------------
# Linux
# ---------------------------------------------------------------------------------------------------------


def test_linux_layout_and_byte_exact_uninstall(tmp_path: Path) -> None:
    home = lived_in_home(tmp_path)
    before = snapshot(home)
    report = install(home, ["gimp", "krita"], autostart=True, os_name="linux", say=quiet)
    assert [h.installed for h in report.hosts] == [True, True], report.to_dict()

    gimp = home / ".config/GIMP/3.0/plug-ins/renovate-faces"
    script = gimp / "renovate-faces.py"
    assert script.read_bytes() == (REPO / "plugin_gimp/renovate-faces/renovate-faces.py").read_bytes()
    assert stat.S_IMODE(script.stat().st_mode) == 0o755  # GIMP skips files that are not executable
    for name in CLIENT:
        assert (gimp / name).read_bytes() == (REPO / "server" / name).read_bytes()

    krita = home / ".local/share/krita"
    package = krita / "pykrita/renovate_faces"
    assert (krita / "pykrita/renovate_faces.desktop").is_file()
    assert (krita / "actions/renovate_faces.action").is_file()
    for name in [*KRITA_FILES, *CLIENT]:
        assert (package / name).is_file(), name
    assert not list(package.rglob("__pycache__"))
    rc = (home / ".config/kritarc").read_text()
    assert kritarc.get_value(rc, "python", "enable_renovate_faces") == "true"
    assert kritarc.get_value(rc, "python", "enable_other_plugin") == "true"
    assert kritarc.get_value(rc, "General", "LastPreset") == "Basic"

    config = json.loads((home / ".config/renovate-faces/server.json").read_text())
    assert config["command"] == SERVER_COMMAND
    assert stat.S_IMODE((home / ".config/renovate-faces/server.json").stat().st_mode) == 0o600
    unit = home / ".config/systemd/user/renovate-faces.service"
    assert unit.is_file()
    wants = home / ".config/systemd/user/default.target.wants/renovate-faces.service"
    assert os.readlink(wants) == "../renovate-faces.service"
    manifest = json.loads(report.manifest.read_text())
    assert not [e for e in manifest["entries"] if e["kind"] == "command"], (
        "a scratch home must never run systemctl"
    )

    assert uninstall(home, os_name="linux", say=quiet) > 0
    assert snapshot(home) == before


def test_second_install_changes_nothing(tmp_path: Path) -> None:
    home = lived_in_home(tmp_path)
    before = snapshot(home)
    install(home, ["gimp", "krita"], autostart=True, os_name="linux", say=quiet)
    once = snapshot(home)
    lines: list[str] = []
    install(home, ["gimp", "krita"], autostart=True, os_name="linux", say=lines.append)
    twice = snapshot(home)
    manifest = "/".join([".config", "renovate-faces", "install-manifest.json"])
    assert {k: v for k, v in once.items() if k != manifest} == {
        k: v for k, v in twice.items() if k != manifest
    }
    assert not [line for line in lines if line.startswith(("create", "update", "set", "link"))], lines
    uninstall(home, os_name="linux", say=quiet)
    assert snapshot(home) == before


def test_dry_run_prints_every_action_and_writes_nothing(tmp_path: Path) -> None:
    home = lived_in_home(tmp_path)
    before = snapshot(home)
    lines: list[str] = []
    install(home, ["gimp", "krita"], autostart=True, dry_run=True, os_name="linux", say=lines.append)
    assert snapshot(home) == before
    text = "\n".join(lines)
    for expected in (
        "would create folder " + str(home / ".config/GIMP/3.0/plug-ins/renovate-faces"),
        "would create " + str(home / ".config/GIMP/3.0/plug-ins/renovate-faces/renovate-faces.py"),
        "would create " + str(home / ".local/share/krita/pykrita/renovate_faces/client.py"),
        "would create " + str(home / ".local/share/krita/actions/renovate_faces.action"),
        "would set [python] enable_renovate_faces=true in " + str(home / ".config/kritarc"),
        "would create " + str(home / ".config/renovate-faces/server.json"),
        "would create " + str(home / ".config/systemd/user/renovate-faces.service"),
    ):
        assert expected in text, f"missing {expected!r} in:\n{text}"
    # and a real install does exactly what the dry run announced
    done: list[str] = []
    install(home, ["gimp", "krita"], autostart=True, os_name="linux", say=done.append)
    announced = {line[len("would ") :] for line in lines if line.startswith("would ")}
    performed = {line for line in done if line.startswith(("create", "set", "link"))}
    assert performed <= announced, performed - announced
    dry: list[str] = []
    uninstall(home, dry_run=True, os_name="linux", say=dry.append)
    assert any(line.startswith("would remove") for line in dry)
    assert (home / ".config/renovate-faces/install-manifest.json").is_file()
    uninstall(home, os_name="linux", say=quiet)
    assert snapshot(home) == before


def test_user_files_in_the_way_are_backed_up_and_restored(tmp_path: Path) -> None:
    home = lived_in_home(tmp_path)
    old = home / ".config/GIMP/3.0/plug-ins/renovate-faces/renovate-faces.py"
    old.parent.mkdir()
    old.write_text("#!/usr/bin/env python3\n# an older hand-installed copy\n")
    config = home / ".config/renovate-faces"
    config.mkdir(mode=0o700)
    (config / "server.json").write_text('{"endpoint": "tcp://127.0.0.1:5999"}')
    os.chmod(config / "server.json", 0o600)
    before = snapshot(home)
    install(home, ["gimp"], autostart=False, os_name="linux", say=quiet)
    assert old.read_bytes() == (REPO / "plugin_gimp/renovate-faces/renovate-faces.py").read_bytes()
    merged = json.loads((config / "server.json").read_text())
    assert merged == {"endpoint": "tcp://127.0.0.1:5999", "command": SERVER_COMMAND}  # the user's key is kept
    uninstall(home, os_name="linux", say=quiet)
    assert snapshot(home) == before


def test_uninstall_after_krita_rewrote_kritarc_only_reverts_our_key(tmp_path: Path) -> None:
    home = lived_in_home(tmp_path)
    install(home, ["krita"], autostart=False, os_name="linux", say=quiet)
    rc = home / ".config/kritarc"
    rc.write_text(rc.read_text() + "\n[MainWindow]\nState=abc\n")  # Krita saved its settings meanwhile
    uninstall(home, os_name="linux", say=quiet)
    text = rc.read_text()
    assert (
        kritarc.get_value(text, "python", "enable_renovate_faces") == "false"
    )  # its value before the install
    assert kritarc.get_value(text, "MainWindow", "State") == "abc"


def test_flatpak_host_gets_its_own_config_with_a_tcp_endpoint_and_the_token(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    report = install(home, ["gimp:flatpak", "krita:flatpak"], autostart=True, os_name="linux", say=quiet)
    app = home / ".var/app/org.gimp.GIMP"
    assert (app / "config/GIMP/3.0/plug-ins/renovate-faces/renovate-faces.py").is_file()
    assert (home / ".var/app/org.kde.krita/data/krita/pykrita/renovate_faces/client.py").is_file()
    assert (home / ".var/app/org.kde.krita/config/kritarc").is_file()
    sandbox = json.loads((app / "config/renovate-faces/server.json").read_text())
    assert sandbox["endpoint"].startswith("tcp://127.0.0.1:")
    host = json.loads((home / ".config/renovate-faces/server.json").read_text())
    assert host["endpoint"] == sandbox["endpoint"]  # the daemon listens where the sandbox can reach it
    token = (home / ".config/renovate-faces/token").read_bytes()
    assert (app / "config/renovate-faces/token").read_bytes() == token and len(token.strip()) == 64
    assert report.hosts[0].key == "gimp:flatpak"
    uninstall(home, os_name="linux", say=quiet)
    assert snapshot(home) == {}


def test_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    from conftest import require

    require(analyze is not None, "systemd-analyze is missing: apt-get install systemd")
    home = tmp_path / "home"
    home.mkdir()
    install(home, ["gimp"], autostart=True, os_name="linux", say=quiet)
    unit = home / ".config/systemd/user/renovate-faces.service"
    proc = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr
    exec_start = next(line for line in unit.read_text().splitlines() if line.startswith("ExecStart="))
    assert exec_start == "ExecStart=" + " ".join([*SERVER_COMMAND, "--foreground"])
    # a broken unit does fail the same check (the test can fail)
    broken = tmp_path / "broken.service"
    broken.write_text(unit.read_text().replace(sys.executable, "/nonexistent/python"))
    assert subprocess.run([analyze, "verify", str(broken)], capture_output=True, timeout=60).returncode != 0


def test_systemd_quoting_survives_spaces_and_specifiers(tmp_path: Path) -> None:
    text = render_systemd_unit(["/opt/My Apps/python", "-m", "hifacegan_server", "100%", "$HOME"])
    line = next(line for line in text.splitlines() if line.startswith("ExecStart="))
    assert line == 'ExecStart="/opt/My Apps/python" -m hifacegan_server 100%% $$HOME --foreground'
    assert systemd_quote('a"b') == '"a\\"b"'


# ---------------------------------------------------------------------------------------------------------
# macOS and Windows layouts (built in a scratch home on any OS; no launchctl, no schtasks)
# ---------------------------------------------------------------------------------------------------------


def test_macos_layout_and_launch_agent(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    install(home, ["gimp", "krita"], autostart=True, os_name="darwin", say=quiet)
    support = home / "Library/Application Support"
    assert (support / "GIMP/3.0/plug-ins/renovate-faces/renovate-faces.py").is_file()
    assert (support / "krita/pykrita/renovate_faces/client.py").is_file()
    assert (support / "krita/actions/renovate_faces.action").is_file()
    prefs = (home / "Library/Preferences/kritarc").read_text()
    assert kritarc.get_value(prefs, "python", "enable_renovate_faces") == "true"
    assert json.loads((support / "renovate-faces/server.json").read_text())["command"] == SERVER_COMMAND
    plist = plistlib.loads((home / "Library/LaunchAgents/org.renovate-faces.server.plist").read_bytes())
    assert plist["Label"] == "org.renovate-faces.server"
    assert plist["ProgramArguments"] == [*SERVER_COMMAND, "--foreground"]
    assert plist["RunAtLoad"] is True
    assert plist["StandardErrorPath"] == str(home / "Library/Logs/renovate-faces/launchd.log")
    uninstall(home, os_name="darwin", say=quiet)
    assert snapshot(home) == {}


def test_windows_layout_and_logon_task(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    install(home, ["gimp", "krita"], autostart=True, os_name="win32", say=quiet)
    roaming, local = home / "AppData/Roaming", home / "AppData/Local"
    assert (roaming / "GIMP/3.0/plug-ins/renovate-faces/renovate-faces.py").is_file()
    assert (roaming / "krita/pykrita/renovate_faces/client.py").is_file()
    assert kritarc.get_value((local / "kritarc").read_text(), "python", "enable_renovate_faces") == "true"
    xml = (roaming / "renovate-faces/windows-task.xml").read_bytes()
    assert xml.startswith(b"\xff\xfe")  # UTF-16 with a byte order mark, as schtasks /XML wants
    root = ET.fromstring(xml)
    ns = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}
    assert root.tag == "{http://schemas.microsoft.com/windows/2004/02/mit/task}Task"
    assert root.find("t:Actions/t:Exec/t:Command", ns).text == sys.executable
    assert root.find("t:Actions/t:Exec/t:Arguments", ns).text == "-m hifacegan_server --foreground"
    assert root.find("t:Triggers/t:LogonTrigger/t:Enabled", ns).text == "true"
    assert root.find("t:Settings/t:ExecutionTimeLimit", ns).text == "PT0S"  # runs as long as the session
    startup = roaming / "Microsoft/Windows/Start Menu/Programs/Startup/Renovate Faces server.cmd"
    assert sys.executable in startup.read_text()  # no schtasks here: the Startup-folder entry instead
    uninstall(home, os_name="win32", say=quiet)
    assert snapshot(home) == {}


def test_windows_task_escapes_paths() -> None:
    xml = render_windows_task(
        [r"C:\Program Files\Py & Co\pythonw.exe", "-m", "hifacegan_server"], user="PC\\Zoë"
    )
    root = ET.fromstring(xml)
    ns = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}
    assert root.find("t:Actions/t:Exec/t:Command", ns).text == r"C:\Program Files\Py & Co\pythonw.exe"
    assert root.find("t:Principals/t:Principal/t:UserId", ns).text == "PC\\Zoë"
    assert windows_quote(r"C:\a b\\") == '"C:\\a b\\\\\\\\"'


def test_places_never_follow_the_real_environment_for_a_scratch_home(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "elsewhere"))
    places = Places.for_home(tmp_path / "home", "linux")
    assert not places.is_real_home
    assert places.gimp_plugin_dir() == tmp_path / "home/.config/GIMP/3.0/plug-ins/renovate-faces"
    assert places.config_dir == tmp_path / "home/.config/renovate-faces"


# ---------------------------------------------------------------------------------------------------------
# kritarc editing keeps every other byte
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        "[General]\nfoo=1",
        "[General]\r\nfoo=1\r\n\r\n[python]\r\nenable_x=true\r\n",
        "[python]\nenable_renovate_faces=false\n[Other]\na=b\n",
        "; comment\n[python]\n\n[Other]\n",
    ],
)
def test_kritarc_set_then_remove_round_trips(text: str) -> None:
    changed = kritarc.set_value(text, "python", "enable_renovate_faces", "true")
    assert kritarc.get_value(changed, "python", "enable_renovate_faces") == "true"
    previous = kritarc.get_value(text, "python", "enable_renovate_faces")
    if previous is None:
        created = kritarc._section_bounds(text.splitlines(), "python") is None
        restored = kritarc.remove_key(changed, "python", "enable_renovate_faces", drop_empty_section=created)
    else:
        restored = kritarc.set_value(changed, "python", "enable_renovate_faces", previous)
    # byte-exact, except that a file without a final newline may gain one
    assert restored == text or (not text.endswith("\n") and restored == text + "\n")


def test_cli_help_and_json(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    helped = subprocess.run(
        [sys.executable, "-m", "hifacegan_installers", "--help"], capture_output=True, text=True, env=env
    )
    assert helped.returncode == 0 and "--uninstall" in helped.stdout and "--no-autostart" in helped.stdout
    home = tmp_path / "home"
    home.mkdir()
    argv = [
        sys.executable,
        "-m",
        "hifacegan_installers",
        "--home",
        str(home),
        "--host",
        "krita",
        "--no-autostart",
        "--json",
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode in (0, 1), proc.stderr
    report = json.loads(proc.stdout)
    assert report["hosts"][0]["installed"] and report["autostart"] == []
    proc = subprocess.run(
        [sys.executable, "-m", "hifacegan_installers", "--home", str(home), "--uninstall"],
        capture_output=True,
        env=env,
    )
    assert proc.returncode == 0
    assert snapshot(home) == {}


def test_home_set_elsewhere_is_the_one_home_and_uninstall_finds_it(tmp_path: Path, monkeypatch) -> None:
    """``HOME`` set to a folder other than the account's (``sudo -E``, sandboxes, scripts): the installer serves
    ``$HOME`` as the doctor and the server do, and an uninstall run with the account's usual HOME still finds it."""
    import importlib

    from hifacegan_installers.diagnose import doctor_home
    from hifacegan_installers.places import ELSEWHERE

    elsewhere = lived_in_home(tmp_path)
    account = tmp_path / "account"
    account.mkdir()
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "RENOVATE_FACES_CONFIG_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(elsewhere))
    installer = importlib.import_module("hifacegan_installers.install")
    monkeypatch.setattr(installer, "account_home", lambda: account)  # the password database's, kept in tmp
    planned = install(None, ["gimp", "krita"], autostart=False, os_name="linux", say=quiet, dry_run=True)
    assert planned.home == elsewhere and planned.manifest.is_relative_to(elsewhere)  # before: the account's
    before, account_before = snapshot(elsewhere), snapshot(account)

    report = install(None, ["gimp", "krita"], autostart=False, os_name="linux", say=quiet)
    assert [h.installed for h in report.hosts] == [True, True], report.to_dict()
    assert doctor_home() == elsewhere
    assert (elsewhere / ".local/share/krita/pykrita/renovate_faces").is_dir()
    assert (
        kritarc.get_value((elsewhere / ".config/kritarc").read_text(), "python", "enable_renovate_faces")
        == "true"
    )
    assert (elsewhere / ".config/renovate-faces/server.json").is_file() and report.manifest.is_file()
    assert (account / ".config/renovate-faces" / ELSEWHERE).is_file()

    monkeypatch.setenv("HOME", str(account))  # uninstall with the usual HOME
    assert uninstall(None, os_name="linux", say=quiet) > 0
    assert snapshot(elsewhere) == before and snapshot(account) == account_before
