"""Starting, refusing, stopping and killing the real daemon; the client starting it on demand."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time

import pytest

from hifacegan_server import paths
from hifacegan_server.client import Client, ServerUnavailable
from hifacegan_server.testing import DaemonProcess, sample_photo, server_argv

pytestmark = pytest.mark.skipif(os.name != "posix", reason="signals and ipc sockets are POSIX")


@pytest.fixture
def daemon():
    d = DaemonProcess(weights="identity", device="cpu", threads=2)
    yield d
    d.cleanup()


def test_second_server_refused_then_sigterm_cleans_up(daemon):
    daemon.wait_ready = False  # weights may still be loading: SIGTERM must not wait for them
    daemon.start()
    sock = daemon.root / "run" / paths.SOCKET_FILE
    assert sock.exists() and oct(sock.stat().st_mode & 0o777) == "0o600"
    assert oct((daemon.root / "run").stat().st_mode & 0o777) == "0o700"
    second = subprocess.run(
        server_argv("--foreground", "--weights", "identity"),
        env=daemon.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 3
    assert f"pid {daemon.proc.pid}" in second.stderr and daemon.endpoint in second.stderr
    # The detached launcher refuses the same way, before spawning anything.
    again = subprocess.run(server_argv(), env=daemon.env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 3 and "already running" in again.stderr
    t0 = time.monotonic()
    assert daemon.stop() == 0
    # torch's import holds the GIL for seconds; the stop itself waits for no weights.
    assert time.monotonic() - t0 < 30
    assert not sock.exists(), "SIGTERM must remove the socket file"
    assert not (daemon.root / "run" / paths.INFO_FILE).exists()
    log = daemon.log_path.read_text()
    assert "serving" in log and "stopping: signal SIGTERM" in log


def test_killed_server_gives_waiting_client_a_clear_error(daemon):
    daemon.start()
    from PIL import Image

    from hifacegan_server.testing import EXAMPLE_PHOTO

    photo = Image.open(EXAMPLE_PHOTO).convert("RGBA")
    photo = photo.resize((photo.width * 2, photo.height * 2))
    pixels = photo.tobytes()
    running = threading.Event()
    threading.Thread(target=lambda: running.wait(30) and os.kill(daemon.proc.pid, signal.SIGKILL)).start()
    with daemon.client(timeout=10) as c:
        start = time.monotonic()
        with pytest.raises(ServerUnavailable) as err:
            c.renovate(pixels, photo.width, photo.height, 4, progress=lambda f, t: running.set(), timeout=60)
        waited = time.monotonic() - start
    assert running.is_set()
    assert waited < 15, f"the client noticed only after {waited:.1f} s"
    assert "stopped answering" in str(err.value) and "start it again" in str(err.value)
    # The stale socket file left by SIGKILL does not stop the next server.
    daemon.proc.wait(10)
    assert (daemon.root / "run" / paths.SOCKET_FILE).exists()
    daemon.start()
    with daemon.client() as c:
        assert c.hello()["pid"] == daemon.proc.pid


def test_client_starts_the_daemon_and_shuts_it_down(daemon, monkeypatch):
    for key, value in daemon.env.items():
        if key.startswith("RENOVATE_FACES_"):
            monkeypatch.setenv(key, value)
    config = daemon.root / "config"
    config.mkdir(parents=True)
    command = server_argv("--weights", "identity", "--device", "cpu", "--threads", "1")
    (config / paths.SERVER_CONFIG_FILE).write_text(json.dumps({"command": command}))
    with Client(timeout=5) as c:
        with pytest.raises(ServerUnavailable, match="start it with"):
            c.ensure_running(start=False)
        hello = c.ensure_running(start=True, wait=120)
        pid = hello["pid"]
        assert c.ensure_running(start=True)["pid"] == pid  # already up: nothing new started
        info = json.loads((daemon.root / "run" / paths.INFO_FILE).read_text())
        assert info["pid"] == pid and info["endpoint"] == daemon.endpoint
        assert c.shutdown()["ok"]
    deadline = time.monotonic() + 30
    while (daemon.root / "run" / paths.SOCKET_FILE).exists():
        assert time.monotonic() < deadline, "the daemon did not stop after shutdown"
        time.sleep(0.1)
    # The daemon is this test's child (the client started it): reap it and check it exited cleanly.
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            break
        assert time.monotonic() < deadline, "the daemon did not exit after shutdown"
        time.sleep(0.1)


def test_detached_start_prints_endpoint(daemon):
    out = subprocess.run(
        server_argv("--weights", "identity", "--device", "cpu"),
        env=daemon.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert daemon.endpoint in out.stdout
    info = json.loads((daemon.root / "run" / paths.INFO_FILE).read_text())
    try:
        with daemon.client(timeout=10) as c:
            assert c.hello()["pid"] == info["pid"]
    finally:
        os.kill(info["pid"], signal.SIGTERM)
    deadline = time.monotonic() + 30
    while (daemon.root / "run" / paths.INFO_FILE).exists():
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_refuses_remote_endpoint_without_allow_remote(daemon):
    env = dict(daemon.env, RENOVATE_FACES_ENDPOINT="tcp://0.0.0.0:47999")
    out = subprocess.run(
        server_argv("--foreground"),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0 and "--allow-remote" in out.stderr


def test_tcp_loopback_round_trip(daemon):
    from hifacegan_server.testing import free_port

    daemon.endpoint = f"tcp://127.0.0.1:{free_port()}"
    daemon.start()
    image, _ = sample_photo(3, "u8")
    with daemon.client(timeout=10) as c:
        res = c.renovate(image.tobytes(), image.shape[1], image.shape[0], 3)
    assert res.width == image.shape[1] and sum(f["renovated"] for f in res.faces) >= 3
