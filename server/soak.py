"""A soak run against a real daemon: fuzzed messages, clients running jobs, and faults, all at once, bounded.

Shared by ``tests/test_server_soak.py`` (seconds) and ``benchmarks/bench_server_soak.py`` (minutes), so both
measure the same thing: every fuzzed message answered, no job lost, the daemon alive, its memory and its logs
barely grown.
"""

from __future__ import annotations

import os
import random
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import zmq

from hifacegan_server import paths
from hifacegan_server import protocol as P
from hifacegan_server.client import ServerError
from hifacegan_server.testing import DaemonProcess, raw_dealer

FUZZ_OPS: tuple[Any, ...] = (
    "hello",
    "status",
    "renovate",
    "cancel",
    "heartbeat",
    "bogus",
    "",
    None,
    7,
    ["hello"],
)
FUZZ_FIELDS = ("job", "width", "height", "channels", "dtype", "stride", "mask", "options", "jobs", "session")


def process_memory(pid: int) -> dict[str, int]:
    """Resident (VmRSS) and peak resident (VmHWM) memory of a process, in bytes (Linux)."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key = {"VmRSS:": "rss", "VmHWM:": "peak_rss"}.get(line.split(":")[0] + ":")
        if key:
            out[key] = int(line.split()[1]) * 1024
    return out


def log_bytes(d: DaemonProcess) -> int:
    """Every byte the daemon logged: its log folder and the stderr file it was started with."""
    files = [*(d.root / "log").glob("*"), d.root / "stderr.log"]
    return sum(f.stat().st_size for f in files if f.is_file())


def _value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(10 if depth < 2 else 7)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.choice(
            [0, -1, 1, 3, 4, 8, 65536, 65537, -(2**63), 2**64 - 1, rng.randrange(-(10**6), 10**6)]
        )
    if kind == 3:
        return rng.choice([float("nan"), float("inf"), -0.0, 0.5, 1e308])
    if kind == 4:
        return "".join(chr(rng.randrange(32, 0x2FFF)) for _ in range(rng.randrange(0, 20)))
    if kind == 5:
        return rng.randbytes(rng.randrange(0, 40))
    if kind == 6:
        return rng.choice(["u8", "u16", "f32", "f64", "x" * rng.choice([1, 1000, 100_000])])
    if kind in (7, 8):
        return [_value(rng, depth + 1) for _ in range(rng.randrange(0, 4))]
    return {str(_value(rng, depth + 1))[:8]: _value(rng, depth + 1) for _ in range(rng.randrange(0, 4))}


def fuzz_message(rng: random.Random, token: str, msg_id: int) -> list[bytes]:
    """One hostile message: raw bytes, or a header of random fields and types (valid token most of the time, so
    the handlers see it), with data frames of random sizes. Never a valid ``shutdown``."""
    if rng.random() < 0.1:
        return [rng.randbytes(rng.randrange(0, 300)) for _ in range(rng.randrange(1, 4))]
    header: dict[str, Any] = {f: _value(rng) for f in rng.sample(FUZZ_FIELDS, rng.randrange(0, 6))}
    header.update(v=rng.choice([1, 1, 1, 1, 2, "1", None]), op=rng.choice(FUZZ_OPS), id=msg_id)
    header["token"] = rng.choice([token] * 8 + ["0" * 64, None])
    if rng.random() < 0.3:
        header.update(
            job=f"fuzz-{msg_id}",
            width=rng.randrange(-1, 20),
            height=rng.randrange(-1, 20),
            channels=3,
            dtype="u8",
        )
    data = [rng.randbytes(rng.choice([0, 1, 96, 300, 1200])) for _ in range(rng.randrange(0, 3))]
    return [msgpack.packb(header, use_bin_type=True), *data]


def fuzz(d: DaemonProcess, messages: int, seed: int = 0, window: int = 200) -> dict[str, int]:
    """Send ``messages`` fuzzed messages in windows, counting the direct answers (one per message is due)."""
    rng = random.Random(seed)
    sent = answered = 0
    with raw_dealer(d.endpoint, d) as sock:
        while sent < messages:
            pending = set()
            for _ in range(min(window, messages - sent)):
                sent += 1
                pending.add(sent)
                sock.send_multipart(fuzz_message(rng, d.token, sent))
            expected, got = len(pending), 0
            deadline = time.monotonic() + 10.0
            while got < expected and sock.poll(max(1, int((deadline - time.monotonic()) * 1000))):
                header = msgpack.unpackb(sock.recv_multipart()[0], raw=False)
                if header.get("id") in pending or (
                    header["op"] == P.EV_ERROR and "id" not in header and "job" not in header
                ):
                    got += 1
                    pending.discard(header.get("id"))
            answered += got
    return {"sent": sent, "answered": answered}


@dataclass
class Load:
    """``clients`` threads, each renovating ``jobs`` small noise images and checking every pixel came back."""

    d: DaemonProcess
    clients: int
    jobs: int
    side: int = 64
    done: list[str] = field(default_factory=list)  # lists: appends from several threads are atomic
    lost: list[str] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Load:
        for i in range(self.clients):
            self.threads.append(threading.Thread(target=self._run, args=(i,), daemon=True))
            self.threads[-1].start()
        return self

    def _run(self, seed: int) -> None:
        rng = random.Random(1000 + seed)
        with self.d.client(timeout=30) as c:
            for n in range(self.jobs):
                pixels = rng.randbytes(self.side * self.side * 3)
                try:
                    res = c.renovate(pixels, self.side, self.side, 3, timeout=300)
                    if bytes(res.pixels) != pixels:  # identity weights, no face in noise: the same bytes
                        raise ServerError("the pixels came back changed")
                    self.done.append(res.job)
                except ServerError as exc:
                    self.lost.append(f"client {seed} job {n}: {exc}")

    def join(self, timeout: float) -> None:
        end = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, end - time.monotonic()))
        if any(t.is_alive() for t in self.threads):
            self.lost.append("some clients did not finish in time")


KILLED_CLIENT = """
import sys
from hifacegan_server.client import Client
c = Client(endpoint=sys.argv[1], token=sys.argv[2])
side = int(sys.argv[3])
c.renovate(bytes(side * side * 3), side, side, 3, progress=lambda f, t: print("running", flush=True))
"""


KILLED_SIDE = 1000  # pixels: a job long enough to be killed mid-way


def warm_up(d: DaemonProcess) -> None:
    """Run each kind of work once (fuzz, and a job the size of the killed client's, to its end), so that what
    is measured afterwards is growth, not the first use of the detector and the allocator's pools."""
    fuzz(d, 200)
    with d.client(timeout=30) as c:
        c.renovate(bytes(KILLED_SIDE * KILLED_SIDE * 3), KILLED_SIDE, KILLED_SIDE, 3, timeout=300)


def kill_client_mid_job(d: DaemonProcess) -> bool:
    """A client killed (-9) while its job runs, as GIMP kills a plug-in: the server must cancel and go on.
    True when the kill came mid-job (the client had reported progress)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_CLIENT, d.endpoint, d.token, str(KILLED_SIDE)],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1])),
    )
    try:
        running = proc.stdout.readline().strip() == "running"
    finally:
        proc.kill()
        proc.wait(10)
    return running


def unauthorized_flood(d: DaemonProcess, megabytes: int) -> None:
    """``megabytes`` of requests with a 500 KB op and a wrong token, then a hello that answers after all of them."""
    noise = P.pack({"v": 1, "op": "x" * 500_000, "id": 0, "token": "0" * 64})
    with raw_dealer(d.endpoint, d) as sock:
        for _ in range(megabytes * 2):
            sock.send(noise)
        sock.send(P.pack({"v": 1, "op": "hello", "id": "last", "token": d.token}))
        deadline = time.monotonic() + 120
        while sock.poll(max(1, int((deadline - time.monotonic()) * 1000))):
            if msgpack.unpackb(sock.recv_multipart()[0], raw=False).get("id") == "last":
                return
    raise TimeoutError("the daemon did not answer after the flood")


def tcp_stranger_flood(d: DaemonProcess, megabytes: int, chunk_mb: int = 64) -> None:
    """Send ``megabytes`` without the token over tcp, as a bare ZeroMQ peer, in ``chunk_mb`` frames."""
    big = bytes(chunk_mb << 20)
    header = P.pack({"v": 1, "op": "renovate", "id": 1, "token": "0" * 64, "job": "x"})
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(d.endpoint)
    try:
        for _ in range(max(1, megabytes // chunk_mb)):
            sock.send_multipart([header, big], copy=False)
        time.sleep(3.0)  # what the daemon would read, it reads in this time over loopback
    finally:
        sock.close(0)
        ctx.term()


def handshake_flood(d: DaemonProcess, megabytes: int) -> None:
    """A raw tcp peer that speaks ZMTP 3.0 with the CURVE mechanism and sends one handshake command of
    ``megabytes``: libzmq reads a command whole (up to the frame limit) before the ZAP handler can refuse it."""
    greeting = b"\xff" + bytes(8) + b"\x7f" + bytes([3, 0]) + b"CURVE".ljust(20, b"\0") + bytes(32)
    chunk = bytes(1 << 20)
    port = int(d.endpoint.rsplit(":", 1)[1])
    with socket.create_connection((paths.LOOPBACK_HOST, port), timeout=10) as s:
        try:
            s.sendall(greeting + b"\x06" + struct.pack(">Q", megabytes << 20))
            for _ in range(megabytes):
                s.sendall(chunk)
        except OSError:  # the server closed the connection: the command is over its limit
            pass


def wait_idle(d: DaemonProcess, timeout: float = 15.0) -> bool:
    """Wait until the daemon holds no job (a killed client's job ends 0.8 s after its last heartbeat, then at
    the pipeline's next check); True if it got there within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    with d.client(timeout=5) as c:
        while c.status()["queue"]["jobs"]:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
    return True


def alive(d: DaemonProcess) -> bool:
    """The daemon process runs and answers ``hello`` within 5 s."""
    if d.proc is None or d.proc.poll() is not None:
        return False
    try:
        with d.client(timeout=5) as c:
            return c.hello()["version"] == P.VERSION
    except ServerError:
        return False
