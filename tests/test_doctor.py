"""``renovate-faces-doctor --json`` against a scratch home set up by the installer, with faults injected one by one:
a missing plug-in, a corrupted weights file, a server that is down and that nothing can start; then the same home
with the real server running. Each fault must show up as a failed check with a fix; the healthy parts must pass,
and a stopped server the plug-ins start on demand is not a fault.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO

from hifacegan_installers import install
from hifacegan_server.paths import loopback_endpoint
from hifacegan_server.testing import free_port, server_argv

pytestmark = pytest.mark.timeout(600)


def free_endpoint() -> str:
    return loopback_endpoint(free_port())


def make_weights(folder: Path, name: str) -> Path:
    """Small random lite weights with a model card: a real file the server loads and the doctor verifies."""
    import torch

    from hifacegan.models import build_generator
    from hifacegan.weights import ModelCard, save_weights

    torch.manual_seed(0)
    generator = build_generator("hifacegan-lite-128", ngf=4).eval()
    card = ModelCard(name=name, config="hifacegan-lite-128", size=128, config_overrides={"ngf": 4})
    path = folder / f"{name}.safetensors"
    save_weights(path, generator, card)
    return path


def corrupt(path: Path) -> None:
    """Flip one byte of the last tensor: the file still parses, its sha256 no longer matches the card."""
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))


class Home:
    def __init__(self, base: Path) -> None:
        self.home = base / "home"
        self.home.mkdir()
        self.weights = base / "weights"
        self.weights.mkdir()
        self.endpoint = free_endpoint()
        self.env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "HIFACEGAN_WEIGHTS_DIR": str(self.weights),
            "RENOVATE_FACES_RUNTIME_DIR": str(base / "run"),
            "RENOVATE_FACES_LOG_DIR": str(base / "log"),
        }
        self.env.pop("RENOVATE_FACES_ENDPOINT", None)
        self.env.pop("RENOVATE_FACES_CONFIG_DIR", None)
        install(self.home, ["gimp", "krita"], autostart=False, endpoint=self.endpoint, say=lambda _: None)
        self.config = self.home / ".config" / "renovate-faces"

    def doctor(self, *extra: str) -> tuple[int, dict]:
        argv = [
            sys.executable,
            "-m",
            "hifacegan_installers.doctor",
            "--json",
            "--home",
            str(self.home),
        ]
        argv += ["--host", "gimp", "--host", "krita", "--timeout", "2", *extra]
        proc = subprocess.run(argv, capture_output=True, text=True, env=self.env, timeout=300, cwd=REPO)
        assert proc.stdout.strip(), proc.stderr
        return proc.returncode, json.loads(proc.stdout)


def by_name(report: dict) -> dict[str, dict]:
    return {check["name"]: check for check in report["checks"]}


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Home:
    return Home(tmp_path_factory.mktemp("doctor"))


def test_doctor_reports_each_injected_fault_with_its_fix(scratch: Home) -> None:
    make_weights(scratch.weights, "hifacegan-lite-fidelity")  # shadows the embedded default
    bad = make_weights(scratch.weights, "broken-download")
    corrupt(bad)
    (scratch.home / ".config/GIMP/3.0/plug-ins/renovate-faces/renovate-faces.py").unlink()  # plug-in missing
    (scratch.config / "token").write_text("f" * 64 + "\n")  # the server ran once; nothing listens now
    os.chmod(scratch.config / "token", 0o600)

    status, report = scratch.doctor()
    checks = by_name(report)
    assert status == 1 and report["ok"] is False

    plugin = checks["plugin:gimp:system"]
    assert plugin["status"] == "fail" and "renovate-faces.py" in plugin["summary"]
    assert "hifacegan-install --host gimp" in plugin["fix"]

    # the server is down, but the Krita plug-in starts it with server.json's command when asked: not a failure
    daemon = checks["daemon"]
    assert daemon["status"] == "ok" and scratch.endpoint in daemon["summary"], daemon
    assert "not running (starts on demand)" in daemon["summary"]
    assert daemon["detail"]["on_demand"] is True and daemon["detail"]["running"] is False

    weights = checks["weights:broken-download"]
    assert weights["status"] == "fail" and "corrupt" in weights["summary"]
    assert str(bad) in weights["fix"] and "download" in weights["fix"]

    # what is not broken says so
    assert checks["weights:hifacegan-lite-fidelity"]["status"] == "ok"
    assert checks["weights:default"]["status"] == "ok"
    assert checks["plugin:krita:system"]["status"] == "ok"
    assert checks["registered:krita:system"]["status"] == "ok"
    assert checks["server-config"]["status"] == "ok"
    assert checks["device"]["status"] in ("ok", "warn")
    if sys.platform.startswith("linux") and Path("/usr/bin/python3").exists():
        python = checks["python:krita:system"]
        assert python["status"] in ("ok", "fail")
        if python["status"] == "fail":  # a machine without python3-zmq: the fix names the packages
            assert "python3-zmq" in python["fix"]


def test_a_server_nothing_can_start_is_a_failure(scratch: Home) -> None:
    """Down, and the plug-ins cannot start it (server.json names a missing program): a failure with the fix."""
    config = scratch.config / "server.json"
    saved = config.read_text(encoding="utf-8")
    data = json.loads(saved)
    config.write_text(json.dumps({**data, "command": [str(scratch.home / "gone" / "hifacegan-server")]}))
    try:
        status, report = scratch.doctor("--skip-weights")
    finally:
        config.write_text(saved)
    daemon = by_name(report)["daemon"]
    assert status == 1 and daemon["status"] == "fail" and scratch.endpoint in daemon["summary"]
    assert "start it" in daemon["fix"] and "hifacegan-server" in daemon["fix"]


def test_home_from_the_environment_is_one_home(scratch: Home) -> None:
    """HOME=X without --home: the plug-ins' folders and server.json both come from X, as with --home X."""
    argv = [sys.executable, "-m", "hifacegan_installers.doctor", "--json", "--skip-weights", "--timeout", "2"]
    argv += ["--host", "gimp", "--host", "krita"]
    env = {**scratch.env, "HOME": str(scratch.home)}
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        env.pop(name, None)
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, cwd=REPO)
    assert proc.stdout.strip(), proc.stderr
    checks = by_name(json.loads(proc.stdout))
    home = str(scratch.home)
    assert checks["plugin:krita:system"]["detail"]["folder"].startswith(home)
    assert checks["registered:krita:system"]["detail"]["kritarc"].startswith(home)
    assert checks["server-config"]["status"] == "ok"
    assert checks["server-config"]["detail"]["path"] == str(scratch.config / "server.json")
    assert scratch.endpoint in checks["daemon"]["summary"]  # the endpoint from X's server.json
    _, explicit = scratch.doctor("--skip-weights")
    assert {n: c["status"] for n, c in checks.items()} == {c["name"]: c["status"] for c in explicit["checks"]}


def test_doctor_with_the_server_running(scratch: Home) -> None:
    # repair what the first test broke, then run the real server for this home
    install(scratch.home, ["gimp", "krita"], autostart=False, endpoint=scratch.endpoint, say=lambda _: None)
    for path in scratch.weights.glob("broken-*"):
        path.unlink()
    if not (scratch.weights / "hifacegan-lite-fidelity.safetensors").exists():
        make_weights(scratch.weights, "hifacegan-lite-fidelity")
    (scratch.config / "token").unlink(missing_ok=True)
    env = {**scratch.env, "RENOVATE_FACES_CONFIG_DIR": str(scratch.config)}
    log = open(scratch.home.parent / "server.out", "wb")  # noqa: SIM115 - closed below
    weights = str(scratch.weights / "hifacegan-lite-fidelity.safetensors")
    server = subprocess.Popen(
        server_argv("--foreground", "--endpoint", scratch.endpoint)
        + ["--device", "cpu", "--weights", weights],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while not (scratch.config / "token").exists():
            assert server.poll() is None, (scratch.home.parent / "server.out").read_text()[-3000:]
            assert time.monotonic() < deadline, "the server wrote no token"
            time.sleep(0.2)
        status, report = scratch.doctor()
        checks = by_name(report)
        daemon = checks["daemon"]
        assert daemon["status"] == "ok", daemon
        assert daemon["detail"]["pid"] == server.pid
        device = checks["device"]
        assert device["status"] == "ok" and "cpu" in device["summary"], device
        assert checks["plugin:gimp:system"]["status"] == "ok"
        assert checks["weights:hifacegan-lite-fidelity"]["status"] == "ok"
        failures = [c for c in report["checks"] if c["status"] == "fail"]
        python_only = all(c["name"].startswith("python:") for c in failures)
        assert (status == 0 and not failures) or (status == 1 and python_only), failures
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def test_doctor_human_output_lists_fixes(scratch: Home) -> None:
    argv = [
        sys.executable,
        "-m",
        "hifacegan_installers.doctor",
        "--home",
        str(scratch.home),
        "--skip-weights",
    ]
    argv += ["--host", "krita", "--timeout", "1", "--endpoint", free_endpoint()]
    proc = subprocess.run(argv, capture_output=True, text=True, env=scratch.env, timeout=300, cwd=REPO)
    assert proc.returncode == 1
    assert "[FAIL]" in proc.stdout and "fix: start it" in proc.stdout
