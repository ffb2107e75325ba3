"""A private daemon in throw-away folders, for tests, benchmarks and the demo.

It starts the real ``python -m hifacegan_server --foreground`` as a subprocess with its own runtime, config and log folders
(through the ``RENOVATE_FACES_*`` overrides), waits until it answers ``hello`` and always stops it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import zmq

from hifacegan_server import paths
from hifacegan_server.client import Client, ServerUnavailable, server_curve_keys, token_curve_keys


class DaemonProcess:
    """``with DaemonProcess(weights="identity") as d: d.client().renovate(...)``."""

    def __init__(
        self,
        weights: str = "identity",
        device: str = "cpu",
        extra_args: list[str] | None = None,
        threads: int | None = None,  # None: the daemon's default (all cores but one)
        root: Path | None = None,
        wait_ready: bool = True,
        extra_env: dict[str, str] | None = None,  # more environment for the daemon (a fault to inject, say)
    ) -> None:
        self._own_root = root is None
        # Short paths: an ipc socket path must stay under ~100 bytes.
        self.root = (
            Path(root)
            if root
            else Path(tempfile.mkdtemp(prefix="rf-", dir="/tmp" if os.name != "nt" else None))
        )
        self.weights = weights
        self.device = device
        self.extra_args = list(extra_args or [])
        self.threads = threads
        self.wait_ready = wait_ready
        self.extra_env = dict(extra_env or {})
        self.proc: subprocess.Popen | None = None
        if os.name == "nt":
            self.endpoint = paths.loopback_endpoint(free_port())
        else:
            self.endpoint = f"ipc://{self.root / 'run' / paths.SOCKET_FILE}"

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            RENOVATE_FACES_RUNTIME_DIR=str(self.root / "run"),
            RENOVATE_FACES_CONFIG_DIR=str(self.root / "config"),
            RENOVATE_FACES_LOG_DIR=str(self.root / "log"),
            RENOVATE_FACES_ENDPOINT=self.endpoint,
            PYTHONUNBUFFERED="1",
        )
        if self.threads:
            env.update(OMP_NUM_THREADS=str(self.threads), MKL_NUM_THREADS=str(self.threads))
        env.update(self.extra_env)
        return env

    @property
    def token(self) -> str:
        return (self.root / "config" / paths.TOKEN_FILE).read_text().strip()

    @property
    def log_path(self) -> Path:
        return self.root / "log" / paths.LOG_FILE

    def command(self) -> list[str]:
        cmd = server_argv("--foreground", "--weights", self.weights, "--device", self.device)
        if self.threads:
            cmd += ["--threads", str(self.threads)]
        return cmd + self.extra_args

    def start(self, timeout: float = 120.0) -> DaemonProcess:
        self.proc = subprocess.Popen(
            self.command(),
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(self.root / "stderr.log", "wb"),  # noqa: SIM115 - the child owns it
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the daemon exited with {self.proc.returncode}:\n{self.stderr()}")
            try:
                with self.client(timeout=1.0) as c:
                    hello = c.hello()
                    if not self.wait_ready or self._ready(hello):
                        return self
            except (ServerUnavailable, OSError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the daemon did not get ready in {timeout:.0f} s:\n{self.stderr()}")
            time.sleep(0.1)

    @staticmethod
    def _ready(hello: dict[str, Any]) -> bool:
        states = [w.get("state") for w in (hello.get("weights") or {}).values()]
        if "failed" in states:
            raise RuntimeError(f"the daemon could not load its weights: {hello['weights']}")
        return bool(states) and all(s == "ready" for s in states)

    def client(self, **kwargs: Any) -> Client:
        kwargs.setdefault("endpoint", self.endpoint)
        kwargs.setdefault("token", self.token)
        return Client(**kwargs)

    @property
    def server_key(self) -> str:
        """The public CURVE key a tcp server uses (derived from its token; "" before it wrote one)."""
        with contextlib.suppress(FileNotFoundError):
            return server_curve_keys(self.token)[0].decode()
        return ""

    def stderr(self) -> str:
        with contextlib.suppress(OSError):
            return (self.root / "stderr.log").read_text(errors="replace")[-4000:]
        return ""

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL if it lingers; returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def cleanup(self) -> None:
        self.stop()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> DaemonProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


@contextlib.contextmanager
def raw_dealer(endpoint: str, daemon: DaemonProcess | None = None) -> Iterator[zmq.Socket]:
    """A bare DEALER socket at ``endpoint``, for tests that send what no Client would; closed on exit. On tcp,
    given the ``daemon``, it passes the CURVE handshake with the daemon's token key (else it is turned away)."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    if daemon is not None and endpoint.startswith("tcp://"):
        sock.curve_publickey, sock.curve_secretkey = token_curve_keys(daemon.token)
        sock.curve_serverkey = daemon.server_key.encode()
    sock.connect(endpoint)
    try:
        yield sock
    finally:
        sock.close(0)
        ctx.term()


def ask_raw(sock: zmq.Socket, frames: list[Any], want_id: Any = None, timeout: float = 5.0) -> dict[str, Any]:
    """Send ``frames``; the first reply header with ``want_id`` (or an error without id, the answer to a request
    the server could not read). Raises AssertionError after ``timeout`` s: a server that hangs or drops it."""
    import msgpack

    sock.send_multipart(frames)
    deadline = time.monotonic() + timeout
    while sock.poll(max(1, int((deadline - time.monotonic()) * 1000))):
        header = msgpack.unpackb(sock.recv_multipart()[0], raw=False)
        if want_id is None or header.get("id") == want_id or (header["op"] == "error" and "id" not in header):
            return header
    raise AssertionError(f"no reply within {timeout} s: the server hangs or dropped the message")


def server_argv(*options: str) -> list[str]:
    """``python -m hifacegan_server OPTIONS`` in this interpreter (how the tests and benchmarks start a daemon)."""
    return [sys.executable, "-m", "hifacegan_server", *options]


def client_argv(*options: str) -> list[str]:
    """``python -m hifacegan_server.client_cli OPTIONS`` (``hifacegan-client``) in this interpreter."""
    return [sys.executable, "-m", "hifacegan_server.client_cli", *options]


def free_port() -> int:
    """A loopback TCP port that nothing listens on now (the OS picks it)."""
    import socket

    with socket.socket() as s:
        s.bind((paths.LOOPBACK_HOST, 0))
        return s.getsockname()[1]


REPO = Path(__file__).resolve().parents[1]
EXAMPLE_PHOTO = REPO / "examples" / "solvay_conference_1927.png"


def sample_photo(
    channels: int = 4,
    dtype: str = "u8",
    seed: int = 0,
    faces_box: tuple[int, int, int, int] = (50, 690, 270, 880),
) -> tuple[Any, tuple[int, int]]:
    """A real group-photo crop (a few faces) in the top-left of a seeded noise canvas, as the client would send it.

    Returns ``(array, (rows, cols))``: pixels at row >= rows or column >= cols are far from every face, so a
    pass-through (identity) renovation must return them bit for bit.
    """
    import numpy as np
    from PIL import Image

    y0, x0, y1, x1 = faces_box
    photo = Image.open(EXAMPLE_PHOTO).convert("RGBA")
    crop = np.asarray(photo)[y0:y1, x0:x1]
    rng = np.random.default_rng(seed)
    height, width = (y1 - y0) + 140, (x1 - x0) + 170
    canvas = rng.integers(0, 256, (height, width, 4), dtype=np.uint8)
    canvas[: y1 - y0, : x1 - x0] = crop
    canvas[..., 3] = rng.integers(128, 256, (height, width), dtype=np.uint8)  # alpha must survive everywhere
    if channels == 1:
        image = np.asarray(Image.fromarray(canvas[..., :3]).convert("L"))[..., None]
    elif channels == 2:
        gray = np.asarray(Image.fromarray(canvas[..., :3]).convert("L"))
        image = np.stack([gray, canvas[..., 3]], axis=-1)
    else:
        image = canvas[..., :channels]
    if dtype == "u16":
        image = image.astype(np.uint16) * 257 + rng.integers(0, 257, image.shape, dtype=np.uint16)
    elif dtype == "f32":
        image = image.astype(np.float32) / 255.0
    return np.ascontiguousarray(image), ((y1 - y0) + 100, (x1 - x0) + 120)


def run_worker_jobs(
    factory: Any,
    count: int = 1,
    device: str = "cpu",
    options: dict[str, Any] | None = None,
    images: list[Any] | None = None,
) -> list[Any]:
    """``count`` jobs (8x8 black images, or ``images``: uint8 RGB arrays), one after another, through one real
    ``Worker`` thread whose renovators come from ``factory(weights, device)``; their final events (results or
    errors), for tests of the worker alone."""
    import queue
    import uuid

    from hifacegan_server import protocol as P
    from hifacegan_server.fairqueue import FairQueue, Job
    from hifacegan_server.jobs import Event, Worker

    context = zmq.Context()
    wake_endpoint = f"inproc://wake-{uuid.uuid4().hex}"
    wake = context.socket(zmq.PULL)
    wake.bind(wake_endpoint)
    events: queue.SimpleQueue[Event] = queue.SimpleQueue()
    jobs = FairQueue(8, 8)
    worker = Worker(
        "worker-test", device, "default", jobs, events, context, wake_endpoint, renovator_factory=factory
    )
    worker.start()
    finals = []
    try:
        for index in range(len(images) if images is not None else count):
            pixels = images[index].tobytes() if images is not None else bytes(192)
            height, width = images[index].shape[:2] if images is not None else (8, 8)
            spec = P.ImageSpec(width, height, 3, "u8", width * 3)
            job = Job(
                "session", f"job-{index}", b"route", spec, memoryview(pixels), None,
                P.validate_options(options), 600.0,
            )  # fmt: skip
            jobs.submit(job)
            while not (event := events.get(timeout=60)).final:
                pass
            finals.append(event)
        return finals
    finally:
        jobs.close()
        worker.join(10)
        wake.close(0)
        context.term()
