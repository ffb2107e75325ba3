"""Run the Krita plug-in inside real Krita for the tests: scratch profiles, the real daemon, kritarunner, Xvfb.

Two Krita builds are covered:

- Krita 5.1.5 from this machine's Debian bookworm (``tests/krita/install_krita.sh``);
- Krita 5.2.9 from the Debian trixie root that ``tests/hosts/trixie_root.sh krita`` builds and caches. It runs
  under ``chroot`` in a private mount namespace (``unshare -m``) with ``/proc`` mounted only there, so nothing is
  left mounted when it exits. Files Krita must see (profile, fixture, report) live inside the root's ``/tmp``.

Krita (and kritarunner) exit 0 even when a script raises, so every run writes a JSON report that the tests assert
on. The daemon runs here, in the project's venv, on a ``tcp://127.0.0.1`` port that a chroot reaches too (a chroot
shares the network); its folders come from the ``RENOVATE_FACES_*_DIR`` overrides, which the plug-in's copy of
``server/paths.py`` reads the same way.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hifacegan_server.paths import loopback_endpoint
from hifacegan_server.testing import free_port, server_argv

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PLUGIN_SRC = REPO / "plugin_krita"
PLUGIN = "renovate_faces"
DRIVER = "renovate_faces_testdriver"
CLIENT_FILES = ("client.py", "paths.py", "protocol.py")  # what the installer copies into the plug-in package
CACHE = Path(os.environ.get("RENOVATE_CACHE_DIR", Path.home() / ".cache" / "renovate-faces"))
TRIXIE_ROOT = Path(os.environ.get("RENOVATE_TRIXIE_ROOT", CACHE / "trixie-root"))
SYSTEM_PYQT = Path("/usr/lib/python3/dist-packages/PyQt5")

# The fixture photo (from ../shared/data/photos): 640x480, eight frontal faces well apart, a face-free caption.
FIXTURE = "historic_1920sFamilyPhoto.jpg"
SELECTION = [60, 40, 100, 190]  # two faces on the left
FACELESS = [0, 420, 640, 60]  # the handwritten caption: no face
PHOTO_SIZE = (640, 480)
# Pixels the test weights change at least on the fixture (random lite weights change ~900, identity ~15,000).
MIN_CHANGED = 300


def krita_weights(tmp: Path) -> str:
    """Small random lite weights: a real network whose output differs from its input (faces visibly change)."""
    import torch

    from hifacegan.models import build_generator
    from hifacegan.weights import ModelCard, save_weights

    torch.manual_seed(0)
    generator = build_generator("hifacegan-lite-128", ngf=4).eval()
    card = ModelCard(
        name="krita-test-random", config="hifacegan-lite-128", size=128, config_overrides={"ngf": 4}
    )
    path = tmp / "krita-test-random.safetensors"
    save_weights(path, generator, card)
    return str(path)


def free_tcp_endpoint() -> str:
    return loopback_endpoint(free_port())


def bookworm_krita_missing() -> str | None:
    """Why Krita 5.1 cannot run here, or None when it can."""
    for tool in ("krita", "kritarunner", "xvfb-run", "xauth"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed: run tests/krita/install_krita.sh (as root)"
    if not SYSTEM_PYQT.is_dir():
        return "python3-pyqt5 is missing, so Krita has no Python: run tests/krita/install_krita.sh"
    return None


def trixie_krita_missing(root: Path = TRIXIE_ROOT) -> str | None:
    """Why Krita 5.2 in the trixie root cannot run here, or None when it can."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        return "Krita 5.2 runs in a chroot, which needs root on Linux"
    if not (root / ".renovate-host-krita-ok").is_file():
        return f"no trixie root with Krita at {root}: run 'bash tests/hosts/trixie_root.sh krita' (as root)"
    if not (root / "usr/lib/python3/dist-packages/PyQt5").is_dir():
        return (
            f"the trixie root {root} has Krita without python3-pyqt5 (a Recommends of krita), so Krita has no "
            "Python: tests/hosts/trixie_root.sh must install python3-pyqt5 with krita"
        )
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is missing"
    return None


def build_trixie_root() -> subprocess.CompletedProcess:
    """Build or reuse the cached trixie root (the GIMP helper's script; minutes the first time)."""
    return subprocess.run(
        ["bash", str(REPO / "tests/hosts/trixie_root.sh"), "krita"],
        capture_output=True,
        text=True,
        timeout=900,
    )


@dataclass
class KritaHost:
    """Where a Krita lives: this machine (``root`` None) or a chroot; translates paths and builds commands."""

    label: str
    root: Path | None = None

    def scratch(self, prefix: str) -> Path:
        """A fresh folder both this machine and Krita can see."""
        base = None if self.root is None else self.root / "tmp"
        return Path(tempfile.mkdtemp(prefix=prefix, dir=base))

    def inside(self, path: Path) -> str:
        """``path`` as Krita sees it."""
        if self.root is None:
            return str(path)
        return "/" + str(Path(path).resolve().relative_to(self.root.resolve()))

    def command(self, argv: list[str], env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
        if self.root is None:
            return argv, {**host_environment(), **env}
        root = str(self.root)
        inner = ["env", "-i", *(f"{k}={v}" for k, v in env.items()), *argv]
        script = (
            'mount -t proc proc "$1/proc" && mount -t tmpfs tmpfs "$1/dev/shm" 2>/dev/null; '
            'r="$1"; shift; exec chroot "$r" "$@"'
        )
        return ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", root, *inner], {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin")
        }


def host_environment() -> dict[str, str]:
    """This process's environment minus what would point Krita at another Qt.

    Importing OpenCV's wheel (as the pipeline tests do, in the same pytest process) sets QT_QPA_PLATFORM_PLUGIN_PATH
    to the Qt plug-ins inside cv2; Krita then loads that xcb plug-in against its own Qt and aborts.
    """
    return {k: v for k, v in os.environ.items() if not k.startswith(("QT_QPA_", "QT_PLUGIN_PATH"))}


@dataclass
class Profile:
    """A scratch HOME with the plug-in installed the way the installer does it, and the daemon's folders."""

    host: KritaHost
    home: Path
    config: Path
    runtime: Path
    logs: Path
    endpoint: str
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(cls, host: KritaHost, endpoint: str, driver: bool = False) -> Profile:
        base = host.scratch("rf-krita-")
        home, config, runtime, logs = (base / n for n in ("home", "config", "runtime", "logs"))
        for folder in (home, config, runtime, logs):
            folder.mkdir(mode=0o700, parents=True)
        pykrita = home / ".local/share/krita/pykrita"
        install_plugin(pykrita, home / ".local/share/krita/actions")
        enabled = [PLUGIN]
        if driver:
            shutil.copytree(HERE / "driver" / DRIVER, pykrita / DRIVER)
            shutil.copy2(HERE / "driver" / f"{DRIVER}.desktop", pykrita)
            enabled.append(DRIVER)
        (home / ".config").mkdir(parents=True, exist_ok=True)
        lines = ["[python]", *(f"enable_{name}=true" for name in enabled), ""]
        (home / ".config/kritarc").write_text("\n".join(lines), encoding="utf-8")
        profile = cls(host, home, config, runtime, logs, endpoint)
        profile.env = {
            "HOME": host.inside(home),
            "XDG_RUNTIME_DIR": host.inside(runtime),
            "XDG_CONFIG_HOME": host.inside(home / ".config"),
            "XDG_DATA_HOME": host.inside(home / ".local/share"),
            "RENOVATE_FACES_CONFIG_DIR": host.inside(config),
            "RENOVATE_FACES_RUNTIME_DIR": host.inside(runtime),
            "RENOVATE_FACES_LOG_DIR": host.inside(logs),
            "RENOVATE_FACES_ENDPOINT": endpoint,
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        return profile

    @property
    def daemon_env(self) -> dict[str, str]:
        """The same folders, as this machine sees them."""
        return {
            "RENOVATE_FACES_CONFIG_DIR": str(self.config),
            "RENOVATE_FACES_RUNTIME_DIR": str(self.runtime),
            "RENOVATE_FACES_LOG_DIR": str(self.logs),
            "RENOVATE_FACES_ENDPOINT": self.endpoint,
        }

    def remove(self) -> None:
        shutil.rmtree(self.home.parent, ignore_errors=True)


def install_plugin(pykrita: Path, actions: Path) -> None:
    """Copy the plug-in like the installer: desktop file, package (+ the client's three files), action file."""
    pykrita.mkdir(parents=True, exist_ok=True)
    actions.mkdir(parents=True, exist_ok=True)
    shutil.copy2(PLUGIN_SRC / f"{PLUGIN}.desktop", pykrita)
    shutil.copytree(PLUGIN_SRC / PLUGIN, pykrita / PLUGIN, ignore=shutil.ignore_patterns("__pycache__"))
    for name in CLIENT_FILES:
        shutil.copy2(REPO / "server" / name, pykrita / PLUGIN / name)
    shutil.copy2(PLUGIN_SRC / f"{PLUGIN}.action", actions)


@contextlib.contextmanager
def daemon(profile: Profile, weights: str, start_timeout: float = 120.0) -> Iterator[subprocess.Popen]:
    """The real ``python -m hifacegan_server --foreground`` for this profile; waits until it answers ``hello``."""
    env = {**os.environ, **profile.daemon_env, "PYTHONPATH": str(REPO)}
    log = open(profile.logs / "daemon-stdout.log", "wb")  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(
        server_argv("--foreground", "--device", "cpu", "--weights", weights),
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_daemon(proc, profile, start_timeout)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def wait_for_daemon(proc: subprocess.Popen, profile: Profile, timeout: float) -> None:
    saved = {k: os.environ.get(k) for k in profile.daemon_env}
    os.environ.update(profile.daemon_env)
    try:
        from hifacegan_server.client import Client, ServerUnavailable

        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                text = (profile.logs / "daemon-stdout.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"the daemon exited with status {proc.returncode}:\n{text}")
            try:
                with Client(timeout=2.0) as c:
                    c.hello(timeout=1.0)
                return
            except ServerUnavailable:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the daemon did not answer within {timeout:g} s") from None
                time.sleep(0.2)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def read_report(path: Path, log: str) -> dict:
    if not path.is_file():
        raise AssertionError(f"Krita wrote no report at {path}; its output ends with:\n{log[-4000:]}")
    return json.loads(path.read_text(encoding="utf-8"))


def run_kritarunner(
    profile: Profile, module_file: Path, function: str, args: list[str], timeout: float = 300
) -> tuple[subprocess.CompletedProcess, float]:
    """``kritarunner -s module -f function args...`` offscreen (no X); returns the process and its seconds.

    The module is copied into the profile, so a chrooted Krita sees it too.
    """
    host = profile.host
    modules = profile.home.parent / "modules"
    modules.mkdir(exist_ok=True)
    shutil.copy2(module_file, modules)
    pykrita = profile.home / ".local/share/krita/pykrita"
    env = {
        **profile.env,
        "QT_QPA_PLATFORM": "offscreen",
        "PYTHONPATH": f"{host.inside(modules)}:{host.inside(pykrita)}",
    }
    argv = ["kritarunner", "-s", Path(module_file).stem, "-f", function, *args]
    argv, full_env = host.command(argv, env)
    started = time.monotonic()
    proc = subprocess.run(
        argv, env=full_env, capture_output=True, text=True, timeout=timeout, errors="replace"
    )
    return proc, time.monotonic() - started


def run_krita_gui(
    profile: Profile, fixture: Path, case_file: Path, timeout: float = 420
) -> tuple[subprocess.CompletedProcess, float]:
    """Krita's full GUI under Xvfb on ``fixture``; the driver plug-in acts and quits Krita.

    ``xvfb-run -a`` picks a display by probing lock files, which races with other Xvfb users on a shared
    machine; the search starts at a random display number, and a run whose X server vanished is retried.
    """
    host = profile.host
    env = {**profile.env, "RF_KRITA_CASE": host.inside(case_file), "QT_QPA_PLATFORM": "xcb"}
    started = time.monotonic()
    for attempt in range(3):
        argv = [
            "xvfb-run",
            "-a",
            "-n",
            str(random.randint(100, 30000)),
            "-s",
            "-screen 0 1600x1000x24 -nolisten tcp",
            "krita",
            "--nosplash",
            host.inside(fixture),
        ]
        argv, full_env = host.command(argv, env)
        proc = subprocess.run(
            argv, env=full_env, capture_output=True, text=True, timeout=timeout, errors="replace"
        )
        if "could not connect to display" not in proc.stderr or attempt == 2:
            break
    return proc, time.monotonic() - started
