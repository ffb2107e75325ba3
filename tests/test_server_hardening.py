"""Hostile and broken input against a real daemon (issue #21): nothing may hang it, crash its loop, fill its
memory or its disk, or run a job twice."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import msgpack
import numpy as np
import pytest
import zmq

from hifacegan_server import protocol as P
from hifacegan_server import soak
from hifacegan_server.client import ServerError
from hifacegan_server.testing import DaemonProcess, ask_raw, client_argv, raw_dealer, server_argv

# Runs the real daemon with one fault armed per target: the target raises when the request names it, so a test
# can make any handler (or the header decoder) fail on demand and then check the server still answers.
FAULT_TARGETS = (
    "on_hello",
    "on_status",
    "on_renovate",
    "on_cancel",
    "on_heartbeat",
    "on_shutdown",
    "session_for",
    "unpack_header",
)
FAULTY_MAIN = """
import sys
from hifacegan_server import daemon, protocol

def armed(name, fn):
    marker = "fault:" + name
    def wrapper(*args, **kwargs):
        for a in args:
            if isinstance(a, dict) and a.get("inject_fault") == marker:
                raise RuntimeError("injected fault in " + name)
            if isinstance(a, memoryview) and marker.encode() in bytes(a):
                raise RuntimeError("injected fault in " + name)
        return fn(*args, **kwargs)
    return wrapper

for name in sys.argv.pop(1).split(","):
    if name == "unpack_header":
        protocol.unpack_header = armed(name, protocol.unpack_header)
    elif hasattr(daemon.Server, name):  # a target the code under test lacks fails its test, not the start
        setattr(daemon.Server, name, armed(name, getattr(daemon.Server, name)))
try:
    from hifacegan_server.cli import main
except ImportError:  # the code before the command line moved out of daemon.py
    from hifacegan_server.daemon import main
raise SystemExit(main())
"""


class FaultyDaemon(DaemonProcess):
    """The real daemon process, started through ``FAULTY_MAIN`` with faults armed in ``FAULT_TARGETS``."""

    def command(self) -> list[str]:
        cmd = super().command()
        return [sys.executable, "-c", FAULTY_MAIN, ",".join(FAULT_TARGETS), *cmd[3:]]


@pytest.fixture(scope="module")
def daemon():
    d = FaultyDaemon(weights="identity", device="cpu", threads=1, extra_args=["--max-pixels", "0.001"])
    d.start()
    yield d
    assert d.stop() == 0, d.stderr()
    d.cleanup()


@pytest.fixture
def raw(daemon):
    with raw_dealer(daemon.endpoint) as sock:
        yield sock


def request(daemon: DaemonProcess, op: object = "hello", **fields: object) -> dict:
    return {"v": 1, "op": op, "id": uuid.uuid4().hex, "token": daemon.token, "session": "hardening", **fields}


def check_sentence(reply: dict) -> None:
    message = reply["message"]
    assert message[0].isupper() and message.rstrip().endswith("."), message


def ping(daemon: DaemonProcess) -> None:
    with daemon.client(timeout=5) as c:
        assert c.hello()["version"] == P.VERSION


@pytest.mark.parametrize("op", [["hello"], {"op": "hello"}, None, 3, b"hello", 1.5], ids=repr)
def test_mistyped_op_is_answered_and_the_server_keeps_serving(daemon, raw, op):
    """Reproduction: a list op raised TypeError outside the handler's try, the serve loop ended and every
    client then waited 60 s for a server that held the lock but no longer listened."""
    header = request(daemon, op)
    reply = ask_raw(raw, [P.pack(header)], want_id=header["id"])
    assert reply["code"] == P.E_BAD_REQUEST and "'op'" in reply["message"], reply
    check_sentence(reply)
    ping(daemon)


@pytest.mark.parametrize("target", FAULT_TARGETS)
def test_a_failure_in_any_handler_is_answered_then_the_server_pings(daemon, raw, target):
    op = target[3:] if target.startswith("on_") else "hello"
    fields = {"job": uuid.uuid4().hex} if op in ("renovate", "cancel") else {}
    header = request(daemon, op, inject_fault=f"fault:{target}", **fields)
    frames = [P.pack(header)]
    if op == "renovate":
        header.update(width=8, height=4, channels=3, dtype="u8")
        frames = [P.pack(header), bytes(96)]
    reply = ask_raw(raw, frames, want_id=header["id"])
    assert reply["op"] == "error" and reply["code"] == P.E_INTERNAL, reply
    assert "keeps serving" in reply["message"]
    check_sentence(reply)
    if target != "unpack_header":  # a header that could not be read has no id to echo
        assert reply["id"] == header["id"]
    ping(daemon)
    assert f"injected fault in {target}" in daemon.log_path.read_text()


# Over the frame limit of the old daemon's formula (268,451,456 bytes at --max-pixels 0.001) and of today's.
OVERSIZED = (65536, 4097)


@pytest.fixture(scope="module")
def oversized_pixels():
    return bytes(OVERSIZED[0] * OVERSIZED[1])  # zero pages: costs address space, not memory, until read


@pytest.mark.parametrize(
    "told", [None, {"max_pixels": 10**9}], ids=["fresh client", "client told a larger limit"]
)
def test_a_frame_over_the_limit_is_answered_not_timed_out(daemon, oversized_pixels, told):
    """Reproduction: the socket dropped a frame over ``max_frame_bytes`` unread and the client waited for its
    whole time limit. Now a fresh client learns the limits first, and a client that sent it anyway (told another
    limit) notices within a heartbeat that the request was dropped."""
    with daemon.client(timeout=5) as c:
        if told:
            c.limits = dict(told)
        t0 = time.monotonic()
        with pytest.raises(ServerError) as err:
            c.renovate(oversized_pixels, *OVERSIZED, 1, timeout=15)
        assert time.monotonic() - t0 < 5.0
    assert err.value.code == P.E_TOO_LARGE, err.value
    assert "smaller region" in str(err.value)
    ping(daemon)


def test_ping_against_a_stale_socket_fails_within_two_seconds():
    """Reproduction: ``hifacegan-client ping`` waited 30 s on a socket file a killed server left behind."""
    root = Path(tempfile.mkdtemp(prefix="rf-", dir="/tmp"))
    try:
        stale = root / "server.sock"
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.bind(str(stale))  # bound, never listening, closed: what SIGKILL leaves
        (root / "config").mkdir(mode=0o700)
        (root / "config" / "token").write_text("a" * 64)
        os.chmod(root / "config" / "token", 0o600)
        env = dict(
            os.environ, RENOVATE_FACES_CONFIG_DIR=str(root / "config"), RENOVATE_FACES_LOG_DIR=str(root)
        )
        t0 = time.monotonic()
        try:
            out = subprocess.run(
                client_argv("--endpoint", f"ipc://{stale}", "ping"),
                env=env,
                capture_output=True,
                text=True,
                timeout=10,
            )
        except subprocess.TimeoutExpired:
            pytest.fail("ping against a stale socket still waited after 10 s")
        elapsed = time.monotonic() - t0
    finally:
        shutil.rmtree(root, ignore_errors=True)
    assert out.returncode == 1
    assert "not running" in out.stderr and "hifacegan-server" in out.stderr, out.stderr
    assert elapsed < 2.0, f"ping took {elapsed:.1f} s"


def test_a_client_that_cannot_set_up_its_socket_still_closes(tmp_path, monkeypatch):
    """Reproduction: on tcp the client made its socket, then failed to set up CURVE (no token to derive the key
    from) and left that socket open: ``close()`` then waited for it in ``Context.term()`` forever (the doctor
    hung, and so did the GIMP tests' first client)."""
    import threading

    from hifacegan_server.client import Client, ServerUnavailable

    monkeypatch.setenv("RENOVATE_FACES_CONFIG_DIR", str(tmp_path / "config"))  # no token there
    raised: list[BaseException] = []

    def ask(endpoint: str) -> None:
        try:
            with Client(endpoint=endpoint, timeout=1.0) as client:  # closed while the error is in flight
                client.hello()
        except ServerUnavailable as exc:
            raised.append(exc)

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        asker = threading.Thread(
            target=ask, args=(f"tcp://127.0.0.1:{listener.getsockname()[1]}",), daemon=True
        )
        asker.start()
        asker.join(5.0)
    assert not asker.is_alive(), "Client.close() hangs after a failed socket setup"
    assert raised and re.search("token|key", str(raised[0])), raised


def wait_end(sock, job: str, timeout: float = 30.0) -> dict:
    """Read until ``job``'s end (its result or error) arrives."""
    deadline = time.monotonic() + timeout
    while sock.poll(max(1, int((deadline - time.monotonic()) * 1000))):
        header = msgpack.unpackb(sock.recv_multipart()[0], raw=False)
        if header.get("job") == job and header["op"] in ("result", "error"):
            return header
    raise AssertionError(f"job {job} did not end within {timeout} s")


def test_a_resent_finished_job_id_is_refused_not_run_twice(daemon, raw):
    """Reproduction: a job id sent again after its job ended ran the job again."""
    job = uuid.uuid4().hex
    geometry = {"job": job, "width": 8, "height": 4, "channels": 3, "dtype": "u8"}
    first = request(daemon, "renovate", **geometry)
    assert ask_raw(raw, [P.pack(first), bytes(96)], want_id=first["id"])["op"] == "accepted"
    assert wait_end(raw, job)["op"] == "result"
    again = request(daemon, "renovate", **geometry)
    reply = ask_raw(raw, [P.pack(again), bytes(96)], want_id=again["id"])
    assert reply["op"] == "error" and reply["code"] == P.E_ALREADY_DONE, reply
    assert job in reply["message"] and "new job id" in reply["message"]
    cancel = request(daemon, "cancel", job=job)
    assert ask_raw(raw, [P.pack(cancel)], want_id=cancel["id"])["state"] == "done"


def peak_rss(pid: int) -> int:
    """Peak resident memory (VmHWM): catches an allocation that was freed again."""
    return soak.process_memory(pid)["peak_rss"]


@pytest.fixture(scope="module")
def tcp_daemon():
    from hifacegan_server.testing import free_port

    d = DaemonProcess(weights="identity", device="cpu", threads=1)
    d.endpoint = f"tcp://127.0.0.1:{free_port()}"
    with d:
        yield d


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_strangers_over_tcp_cannot_make_the_daemon_allocate(tcp_daemon):
    """Reproduction: a peer without the token sent 1 GiB over the tcp fallback and the daemon's memory grew by
    as much, because frames were received whole before the token was checked. Here 2 x 192 MB (bounded)."""
    d = tcp_daemon
    before = peak_rss(d.proc.pid)
    big = bytes(192 << 20)
    header = P.pack({"v": 1, "op": "renovate", "id": 1, "token": "0" * 64, "job": "x", "width": 8})
    ctx = zmq.Context()
    bare = ctx.socket(zmq.DEALER)  # no security at all, as the old daemon expected on loopback
    # CURVE with the server's public key (any key before it had one) but a client key not made from the token
    forged = ctx.socket(zmq.DEALER)
    forged.curve_publickey, forged.curve_secretkey = zmq.curve_keypair()
    forged.curve_serverkey = d.server_key.encode() or zmq.curve_keypair()[0]
    try:
        for sock in (bare, forged):
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(d.endpoint)
            sock.send_multipart([header, big], copy=False)
        time.sleep(4.0)  # loopback moves 384 MB in well under a second when the server reads it
        grown = peak_rss(d.proc.pid) - before
        answered = bool(bare.poll(0) or forged.poll(0))
    finally:
        bare.close(0)
        forged.close(0)
        ctx.term()
    assert grown < 64 << 20, f"peak RSS grew by {grown / 2**20:.0f} MB"
    assert not answered, "a stranger got an answer"
    with d.client(timeout=5) as c:
        assert c.hello()["version"] == P.VERSION
    assert "refused a CURVE handshake" in d.log_path.read_text()


def test_an_unauthenticated_flood_barely_grows_the_logs(daemon, raw):
    """Reproduction: 60 unauthorized requests with a 500 KB op grew the logs by 30 MB (the op was logged whole),
    pushed the job history out of the rotated server.log, and the files were readable by other users."""
    job = uuid.uuid4().hex
    first = request(daemon, "renovate", job=job, width=8, height=4, channels=3, dtype="u8")
    assert ask_raw(raw, [P.pack(first), bytes(96)], want_id=first["id"])["op"] == "accepted"
    assert wait_end(raw, job)["op"] == "result"
    before = soak.log_bytes(daemon)
    soak.unauthorized_flood(daemon, megabytes=100)  # 200 requests with a 500 KB op, then an answered hello
    grown = soak.log_bytes(daemon) - before
    assert grown < 5 << 20, f"the logs grew by {grown / 2**20:.1f} MB"
    logs = "".join(f.read_text() for f in (daemon.root / "log").glob("server.log*"))
    assert f"/{job} done" in logs, "the job history was pushed out of the log"
    assert "more rejected requests follow" in logs
    assert (daemon.root / "log").stat().st_mode & 0o777 == 0o700
    assert daemon.log_path.stat().st_mode & 0o777 == 0o600


def test_starting_a_server_never_truncates_a_live_servers_stderr(monkeypatch):
    """Reproduction: a client starting a server while one ran truncated ``server-stderr.log`` under the live
    server, which then wrote at its old offset: a sparse file of NULs, its start lost."""
    from hifacegan_server.client import Client, server_command

    d = DaemonProcess(weights="identity", device="cpu", threads=1)
    for key, value in d.env.items():
        if key.startswith("RENOVATE_FACES_"):
            monkeypatch.setenv(key, value)
    cmd = server_argv("--weights", "identity", "--device", "cpu", "--threads", "1")
    out = subprocess.run(
        cmd, env=d.env, capture_output=True, text=True, timeout=120
    )  # detached: stderr to file
    assert out.returncode == 0, out.stderr
    errlog = d.root / "log" / "server-stderr.log"
    pid = json.loads((d.root / "run" / "server-info.json").read_text())["pid"]
    try:
        started = errlog.read_bytes()
        assert b"serving" in started
        with Client(endpoint=d.endpoint, token=d.token) as c:
            proc, _ = c._spawn(server_command())  # what ensure_running does when hello goes unanswered
            assert proc.wait(60) == 3  # "already running"
        with raw_dealer(d.endpoint) as sock:  # the live server writes on: a refusal it logs
            reply = ask_raw(sock, [P.pack({"v": 1, "op": "hello", "id": 1, "token": "0" * 64})], want_id=1)
            assert reply["code"] == P.E_UNAUTHORIZED
        time.sleep(0.2)
        now = errlog.read_bytes()
        mode = errlog.stat().st_mode & 0o777
    finally:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while (d.root / "run" / "server-info.json").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        d.cleanup()
    assert b"\0" not in now, "the stderr log has a hole of NULs"
    assert now.startswith(started) and b"already running" in now and b"refused" in now
    assert mode == 0o600


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_handmade_handshake_cannot_make_the_daemon_allocate(tcp_daemon):
    """A stranger who writes ZMTP by hand gets past no check, but libzmq reads its handshake command whole:
    on tcp the frame limit is 16 MiB (big images travel in chunks), so such a command costs at most that."""
    before = peak_rss(tcp_daemon.proc.pid)
    soak.handshake_flood(tcp_daemon, 256)
    time.sleep(0.5)
    grown = peak_rss(tcp_daemon.proc.pid) - before
    assert grown < 64 << 20, f"peak RSS grew by {grown / 2**20:.0f} MB"
    ping(tcp_daemon)


def test_big_images_travel_over_tcp_in_chunks(tcp_daemon):
    """Pixels and a mask each over the 16 MiB tcp frame limit come back whole (identity weights, no face)."""
    width, height = 4200, 4000  # 16.8 MB of grey pixels and as much mask
    rng = np.random.default_rng(5)
    pixels = rng.integers(0, 256, width * height, dtype=np.uint8).tobytes()
    mask = bytes([255]) * (width * height)
    with tcp_daemon.client(timeout=30) as c:
        assert c.hello()["limits"]["max_frame_bytes"] == P.TCP_MAX_FRAME_BYTES
        res = c.renovate(pixels, width, height, 1, mask=mask, timeout=300)
    assert (res.width, res.height) == (width, height) and bytes(res.pixels) == pixels


def test_a_client_with_only_the_endpoint_and_token_passes_the_tcp_handshake(
    tcp_daemon, tmp_path, monkeypatch
):
    """Reproduction: the server's CURVE public key lived only in the server's own config folder, so a client
    with another one (GIMP in a chroot or a sandbox, ``renovate-faces-doctor --home``) could not connect over tcp.
    What the installer gives such a client, the endpoint and the token, is enough; a wrong token is not."""
    import json

    from hifacegan_server.client import Client, ServerUnavailable

    config = tmp_path / "host-config"  # as the installer writes it for a sandboxed host: no server key
    config.mkdir(mode=0o700)
    (config / "server.json").write_text(json.dumps({"endpoint": tcp_daemon.endpoint}))
    (config / "token").write_text(tcp_daemon.token + "\n")
    os.chmod(config / "token", 0o600)
    monkeypatch.setenv("RENOVATE_FACES_CONFIG_DIR", str(config))
    monkeypatch.delenv("RENOVATE_FACES_ENDPOINT", raising=False)
    with Client(timeout=10) as client:
        assert client.endpoint == tcp_daemon.endpoint
        assert client.hello()["version"] == P.VERSION
    stranger = "0" * 64
    with (
        Client(token=stranger, timeout=1.0) as client,
        pytest.raises(ServerUnavailable, match="not answering"),
    ):
        client.hello()
    ping(tcp_daemon)
