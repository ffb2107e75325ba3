"""``hifacegan-server``: the resident model server the plug-ins talk to (protocol: ``docs/protocol.md``).

The main thread owns one ROUTER socket and never blocks for longer than a poll tick; it authenticates and
validates every message, keeps track of clients through their heartbeats, and hands jobs to one worker thread
per device. Weights load in the worker, so the server answers ``hello`` at once even while torch imports.
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import json
import logging
import logging.handlers
import os
import queue
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import zmq

from server import paths
from server import protocol as P
from server.jobs import DONE, QUEUED, Event, FairQueue, Job, Worker

log = logging.getLogger("renovate-faces.server")

EXIT_ALREADY_RUNNING = 3
EXIT_CONFIG = 2
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}


class Limits:
    """Sizes and clocks the server enforces; ``hello`` tells clients all of them."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.max_pixels = int(args.max_pixels * 1e6)
        self.max_queued = args.max_queue
        self.max_per_client = max(1, min(args.max_queue, args.max_per_client))
        self.job_timeout = float(args.job_timeout)
        self.heartbeat_interval = float(args.heartbeat_interval)
        self.client_timeout = float(args.client_timeout)
        # One frame can hold the largest image at 4 channels of f32 plus row padding.
        self.max_frame_bytes = self.max_pixels * 16 + 4096 * 65536

    def to_header(self) -> dict[str, Any]:
        return {
            "max_pixels": self.max_pixels,
            "max_side": 1 << 16,
            "max_frame_bytes": self.max_frame_bytes,
            "max_header_bytes": P.MAX_HEADER_BYTES,
            "max_queued": self.max_queued,
            "max_queued_per_client": self.max_per_client,
            "job_timeout": self.job_timeout,
            "heartbeat_interval": self.heartbeat_interval,
            "client_timeout": self.client_timeout,
        }


class Session:
    """A client as the server knows it: its latest routing id and when it last spoke."""

    __slots__ = ("name", "route", "last_seen")

    def __init__(self, name: str, route: bytes) -> None:
        self.name = name
        self.route = route
        self.last_seen = time.monotonic()


class SingleInstance:
    """An exclusive lock in the runtime folder: one server per user, released by the OS if the server dies."""

    def __init__(self, runtime: Path) -> None:
        self.lock_path = runtime / paths.LOCK_FILE
        self.info_path = runtime / paths.INFO_FILE
        self._fh: Any = None

    def acquire(self) -> bool:
        fh = open(self.lock_path, "a+")  # noqa: SIM115 - held for the life of the server
        try:
            if os.name == "nt":
                import msvcrt

                msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            return False
        self._fh = fh
        return True

    def holder(self) -> dict[str, Any]:
        try:
            return json.loads(self.info_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def publish(self, info: dict[str, Any]) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".info.", dir=self.info_path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(info, fh)
        os.replace(tmp, self.info_path)

    def release(self) -> None:
        with contextlib.suppress(OSError):
            self.info_path.unlink()
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def check_endpoint(endpoint: str, allow_remote: bool) -> None:
    """Refuse to listen beyond loopback unless ``--allow-remote`` (which turns CURVE encryption on)."""
    if endpoint.startswith("ipc://"):
        if os.name == "nt":
            raise SystemExit("ipc:// endpoints are not available on Windows; use tcp://127.0.0.1:PORT.")
        return
    if not endpoint.startswith("tcp://"):
        raise SystemExit(f"Unsupported endpoint {endpoint!r}: use ipc://PATH or tcp://127.0.0.1:PORT.")
    host = endpoint[len("tcp://") :].rsplit(":", 1)[0]
    if host not in LOOPBACK_HOSTS and not allow_remote:
        raise SystemExit(
            f"Refusing to listen on {endpoint}: it is reachable from other machines. Use tcp://127.0.0.1:PORT, "
            "or pass --allow-remote to listen there with CURVE encryption."
        )


def curve_keys() -> tuple[bytes, bytes]:
    """The server's CURVE key pair, created on first use in ``<config>/curve/`` (secret key mode 0600)."""
    folder = paths.ensure_private_dir(paths.curve_dir())
    public, secret = folder / "server.key", folder / "server.key_secret"
    if not secret.exists():
        pub, sec = zmq.curve_keypair()
        paths._write_private_new(secret, sec.decode() + "\n")
        paths._write_private_new(public, pub.decode() + "\n")
    return public.read_text().strip().encode(), secret.read_text().strip().encode()


def device_summary(devices: list[str], torch: Any) -> dict[str, Any]:
    info: dict[str, Any] = {"requested": devices}
    if torch is not None:
        info["cuda"] = bool(torch.cuda.is_available())
        if info["cuda"]:
            info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


def memory_summary(resolved: list[str], torch: Any) -> dict[str, Any]:
    mem: dict[str, Any] = {}
    try:
        with open("/proc/self/statm") as fh:
            mem["rss_bytes"] = int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        with contextlib.suppress(ImportError):
            import resource

            scale = 1 if sys.platform == "darwin" else 1024
            mem["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    if torch is not None and torch.cuda.is_available():
        gpus = {}
        for device in resolved:
            if device.startswith("cuda"):
                free, total = torch.cuda.mem_get_info(device)
                gpus[device] = {
                    "allocated_bytes": int(torch.cuda.memory_allocated(device)),
                    "reserved_bytes": int(torch.cuda.memory_reserved(device)),
                    "free_bytes": int(free),
                    "total_bytes": int(total),
                }
        mem["gpu"] = gpus
    return mem


def package_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("hifacegan")
    except metadata.PackageNotFoundError:
        return "unknown"


def resolve_devices(spec: str) -> list[str]:
    """``auto`` -> the best device present; ``cuda:0,cuda:1`` -> one worker each. Imports torch only if asked."""
    devices = [d.strip() for d in spec.split(",") if d.strip()]
    if devices != ["auto"]:
        return devices
    return ["auto"]  # the Renovator resolves "auto" itself, in the worker, so startup stays fast


class Server:
    def __init__(self, args: argparse.Namespace, endpoint: str) -> None:
        self.args = args
        self.endpoint = endpoint
        self.limits = Limits(args)
        self.token = paths.read_token(create=True).encode()
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.MAXMSGSIZE, self.limits.max_frame_bytes)
        self.socket.setsockopt(zmq.ROUTER_MANDATORY, 0)
        self.socket.setsockopt(zmq.SNDHWM, 10000)
        self.socket.setsockopt(zmq.RCVHWM, 1000)
        if args.allow_remote and endpoint.startswith("tcp://"):
            public, secret = curve_keys()
            self.socket.curve_server = True
            self.socket.curve_secretkey = secret
            self.socket.curve_publickey = public
            log.info("CURVE on; clients need the public key in %s", paths.curve_dir() / "server.key")
        self.wake_endpoint = f"inproc://wake-{uuid.uuid4().hex}"
        self.wake = self.context.socket(zmq.PULL)
        self.wake.bind(self.wake_endpoint)
        self.events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self.queue = FairQueue(self.limits.max_queued, self.limits.max_per_client)
        self.jobs: dict[tuple[str, str], Job] = {}
        self.sessions: dict[str, Session] = {}
        self.stopping: str | None = None
        self.stop_after = 0.0
        self.started = time.time()
        self.stats = {"requests": 0, "errors": 0, "jobs_done": 0, "jobs_failed": 0, "client_gone": 0}
        self.workers = [
            Worker(
                f"worker-{i}-{device}",
                device,
                args.weights,
                self.queue,
                self.events,
                self.context,
                self.wake_endpoint,
                threads=args.threads,
            )
            for i, device in enumerate(resolve_devices(args.device))
        ]

    # -- lifecycle --------------------------------------------------------------------------------------------
    def bind(self) -> None:
        sock = paths.ipc_path(self.endpoint)
        if sock is not None:
            paths.ensure_private_dir(sock.parent)
            with contextlib.suppress(FileNotFoundError):
                sock.unlink()  # stale: we hold the single-instance lock, so nobody else serves it
        try:
            self.socket.bind(self.endpoint)
        except zmq.ZMQError as exc:
            raise SystemExit(
                f"Cannot listen on {self.endpoint}: {exc.strerror}. If another program uses this port, "
                f"set another endpoint with --endpoint or 'endpoint' in {paths.config_dir() / 'server.json'}."
            ) from None
        if sock is not None:
            os.chmod(sock, 0o600)

    def serve(self) -> None:
        for worker in self.workers:
            worker.start()
        poller = zmq.Poller()
        poller.register(self.socket, zmq.POLLIN)
        poller.register(self.wake, zmq.POLLIN)
        tick_ms = max(10, int(min(0.1, self.limits.client_timeout / 4) * 1000))
        next_housekeeping = 0.0
        while True:
            before_poll = time.monotonic()
            ready = dict(poller.poll(tick_ms))
            if self.wake in ready:
                with contextlib.suppress(zmq.Again):
                    while True:
                        self.wake.recv(zmq.NOBLOCK)
            self.forward_events()
            if self.socket in ready:
                for _ in range(256):  # bounded, so events and housekeeping keep flowing under load
                    try:
                        frames = self.socket.recv_multipart(zmq.NOBLOCK, copy=False)
                    except zmq.Again:
                        break
                    self.handle(frames)
                    self.forward_events()
            now = time.monotonic()
            if now >= next_housekeeping:
                # Read what arrived meanwhile first: heartbeats waiting unread in the socket (the GIL was busy
                # with a worker) must not make their sender look silent.
                self.drain()
                now = time.monotonic()
                self.housekeeping(
                    now, stalled=now - before_poll > tick_ms / 1000 + self.limits.client_timeout / 2
                )
                next_housekeeping = now + tick_ms / 1000
            if (
                self.stopping
                and now >= self.stop_after
                and not any(w.is_alive() and w.current is not None for w in self.workers)
            ):
                self.forward_events()
                break

    def drain(self) -> None:
        with contextlib.suppress(zmq.Again):
            for _ in range(1024):
                self.handle(self.socket.recv_multipart(zmq.NOBLOCK, copy=False))
        self.forward_events()

    def stop(self, reason: str) -> None:
        """Refuse new work, cancel what waits, ask running jobs to stop; ``serve`` returns once workers exit."""
        if self.stopping:
            return
        self.stopping = reason
        self.stop_after = time.monotonic() + 0.2  # time for the last replies to leave
        log.info("stopping: %s", reason)
        for job in self.queue.close():
            job.stop("shutting_down")
            self.finish(job, *job.stop_error())
        for job in list(self.jobs.values()):
            job.stop("shutting_down")

    def close(self) -> None:
        self.socket.close(linger=1000)  # let the last replies (shutdown's, shutting_down errors) leave
        self.wake.close(0)
        self.context.term()
        sock = paths.ipc_path(self.endpoint)
        if sock is not None:
            with contextlib.suppress(FileNotFoundError):
                sock.unlink()

    # -- sending ----------------------------------------------------------------------------------------------
    def send(self, route: bytes, header: dict[str, Any], frames: list[Any] = ()) -> None:
        parts = [route, P.pack(header), *frames]
        big = any(memoryview(f).nbytes > 65536 for f in frames)
        try:
            self.socket.send_multipart(parts, zmq.NOBLOCK, copy=not big)
        except zmq.Again:
            log.warning("dropped a %s event: the client is not reading", header.get("op"))
        except zmq.ZMQError as exc:
            log.warning("could not send a %s event: %s", header.get("op"), exc)

    def reply_error(
        self, route: bytes, code: str, message: str, request: dict[str, Any] | None = None
    ) -> None:
        self.stats["errors"] += 1
        self.send(route, P.error_header(code, message, request))

    def forward_events(self) -> None:
        while True:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return
            job = event.job
            session = self.sessions.get(job.session)
            route = session.route if session else job.route
            self.send(route, event.header, event.frames)
            if event.final:
                job.state = DONE
                self.jobs.pop(job.key, None)
                ok = event.header.get("op") == P.EV_RESULT
                self.stats["jobs_done" if ok else "jobs_failed"] += 1
                log.info(
                    "job %s/%s %s (%dx%d %s)",
                    job.session,
                    job.job_id,
                    "done" if ok else f"ended: {event.header.get('code')}",
                    job.spec.width,
                    job.spec.height,
                    job.spec.dtype,
                )

    def finish(self, job: Job, code: str, message: str) -> None:
        """End a job that no worker holds (cancelled or expired while queued)."""
        self.events.put(Event(job, P.error_header(code, message, {"job": job.job_id}), final=True))

    # -- requests ---------------------------------------------------------------------------------------------
    def handle(self, frames: list[zmq.Frame]) -> None:
        self.stats["requests"] += 1
        route = frames[0].bytes
        if len(frames) < 2:
            self.reply_error(
                route, P.E_BAD_REQUEST, "Empty message: every message starts with a header frame."
            )
            return
        try:
            header = P.unpack_header(frames[1].buffer)
        except P.ProtocolError as exc:
            self.reply_error(route, exc.code, exc.message)
            return
        version = header.get("v")
        if version != P.VERSION:
            self.reply_error(
                route,
                P.E_VERSION,
                f"This server speaks protocol version {P.VERSION}, the client sent {version!r}; install matching "
                "versions of the plug-in and the server.",
                header,
            )
            return
        token = header.get("token")
        if not isinstance(token, str) or not hmac.compare_digest(token.encode(), self.token):
            log.warning("unauthorized %r request refused", header.get("op"))
            self.reply_error(
                route,
                P.E_UNAUTHORIZED,
                f"Unauthorized: the request's token does not match {paths.token_path()}. Make sure the plug-in "
                "and the server run as the same user with the same configuration folder.",
                header,
            )
            return
        name = header.get("session")
        if not isinstance(name, str) or not 0 < len(name) <= 64:
            name = route.hex()
        session = self.sessions.get(name)
        if session is None:
            session = self.sessions[name] = Session(name, route)
        session.route = route
        session.last_seen = time.monotonic()
        op = header.get("op")
        handler = {
            P.OP_HELLO: self.on_hello,
            P.OP_STATUS: self.on_status,
            P.OP_RENOVATE: self.on_renovate,
            P.OP_CANCEL: self.on_cancel,
            P.OP_HEARTBEAT: self.on_heartbeat,
            P.OP_SHUTDOWN: self.on_shutdown,
        }.get(op)
        if handler is None:
            self.reply_error(
                route,
                P.E_UNKNOWN_OP,
                f"Unknown operation {op!r}; this server knows {', '.join(P.REQUEST_OPS)}.",
                header,
            )
            return
        if op != P.OP_RENOVATE and len(frames) > 2:
            self.reply_error(route, P.E_BAD_FRAME, f"A {op} request carries no data frames.", header)
            return
        try:
            handler(session, header, frames[2:])
        except P.ProtocolError as exc:
            self.reply_error(route, exc.code, exc.message, header)
        except Exception as exc:  # a bug must not take the server down
            log.exception("request %r failed", op)
            self.reply_error(route, P.E_INTERNAL, f"The server failed on this request ({exc}).", header)

    def _reply(self, session: Session, request: dict[str, Any], **fields: Any) -> None:
        header = {"v": P.VERSION, "op": request["op"], **fields}
        if isinstance(request.get("id"), (int, str)):
            header["id"] = request["id"]
        self.send(session.route, header)

    def weights_summary(self) -> dict[str, Any]:
        return {w.device: dict(w.weights_state) for w in self.workers}

    def on_hello(self, session: Session, request: dict[str, Any], frames: list[zmq.Frame]) -> None:
        self._reply(
            session,
            request,
            ok=True,
            version=P.VERSION,
            server=f"renovate-faces {package_version()}",
            pid=os.getpid(),
            endpoint=self.endpoint,
            capabilities={
                "ops": list(P.REQUEST_OPS),
                "dtypes": list(P.DTYPES),
                "channels": [1, 2, 3, 4],
                "mask": True,
                "faces": list(P.FACE_CHOICES),
                "options": ["weights", "fidelity", "faces", "max_faces", "min_face_size", "timeout"],
                "default_weights": self.args.weights,
            },
            limits=self.limits.to_header(),
            weights=self.weights_summary(),
        )

    def on_status(self, session: Session, request: dict[str, Any], frames: list[zmq.Frame]) -> None:
        resolved = [str(w.resolved_device or w.device) for w in self.workers]
        # torch is imported by the workers; touch it only once every import has finished.
        torch = sys.modules.get("torch") if all(w.preloaded.is_set() for w in self.workers) else None
        running = [w.current for w in self.workers if w.current is not None]
        self._reply(
            session,
            request,
            ok=True,
            device={**device_summary([w.device for w in self.workers], torch), "resolved": resolved},
            memory=memory_summary(resolved, torch),
            weights=self.weights_summary(),
            queue={
                "queued": len(self.queue),
                "running": len(running),
                "max_queued": self.limits.max_queued,
                "jobs": [
                    {
                        "job": j.job_id,
                        "client": j.session,
                        "state": j.state,
                        "cancelling": j.cancel_event.is_set(),
                    }
                    for j in self.jobs.values()
                ],
            },
            clients=len(self.sessions),
            stats=dict(self.stats),
            uptime=round(time.time() - self.started, 1),
            pid=os.getpid(),
        )

    def on_renovate(self, session: Session, request: dict[str, Any], frames: list[zmq.Frame]) -> None:
        if self.stopping:
            raise P.ProtocolError(P.E_SHUTTING_DOWN, "The server is shutting down; start it again and retry.")
        job_id = request.get("job")
        if not isinstance(job_id, str) or not 0 < len(job_id) <= 128:
            raise P.ProtocolError(
                P.E_BAD_REQUEST, "A renovate request needs a 'job' id: a string of 1-128 chars."
            )
        if (session.name, job_id) in self.jobs:
            raise P.ProtocolError(P.E_DUPLICATE_JOB, f"Job {job_id!r} is already running; use a new job id.")
        spec = P.parse_image_spec(request, self.limits.max_pixels)
        has_mask = bool(request.get("mask", False))
        if len(frames) != 1 + has_mask:
            raise P.ProtocolError(
                P.E_BAD_FRAME,
                f"A renovate request carries {1 + has_mask} data frame(s) (pixels{', mask' if has_mask else ''}), "
                f"this one has {len(frames)}.",
            )
        pixels = frames[0].buffer
        P.check_frame(spec, pixels.nbytes)
        mask = None
        if has_mask:
            mask = frames[1].buffer
            if mask.nbytes != spec.width * spec.height:
                raise P.ProtocolError(
                    P.E_BAD_FRAME,
                    f"The selection mask has {mask.nbytes} bytes; a {spec.width}x{spec.height} image needs "
                    f"{spec.width * spec.height} (one byte per pixel).",
                )
        options = P.validate_options(request.get("options"))
        timeout = min(options.pop("timeout", self.limits.job_timeout), self.limits.job_timeout)
        job = Job(session.name, job_id, session.route, spec, pixels, mask, options, timeout)
        position = self.queue.submit(job)
        self.jobs[job.key] = job
        self._reply(session, request, op=P.EV_ACCEPTED, job=job_id, position=position)

    def on_cancel(self, session: Session, request: dict[str, Any], frames: list[zmq.Frame]) -> None:
        job_id = request.get("job")
        job = self.jobs.get((session.name, job_id)) if isinstance(job_id, str) else None
        state = "unknown"
        if job is not None:
            state = job.state
            job.stop("cancelled")
            if job.state == QUEUED and self.queue.remove(job):
                self.finish(job, *job.stop_error())
        self._reply(session, request, ok=True, job=job_id, state=state)

    def on_heartbeat(self, session: Session, request: dict[str, Any], frames: list[zmq.Frame]) -> None:
        asked = request.get("jobs") or []
        states = {}
        if isinstance(asked, list):
            for job_id in asked[:64]:
                if isinstance(job_id, str):
                    job = self.jobs.get((session.name, job_id))
                    states[job_id] = job.state if job else "unknown"
        self._reply(session, request, ok=True, jobs=states)

    def on_shutdown(self, session: Session, request: dict[str, Any], frames: list[zmq.Frame]) -> None:
        self._reply(session, request, ok=True, pid=os.getpid())
        self.stop("shutdown requested by a client")

    # -- clocks -----------------------------------------------------------------------------------------------
    def housekeeping(self, now: float, stalled: bool = False) -> None:
        """Cancel jobs of silent clients and jobs past their time limit; forget idle clients.

        A client counts as silent only if this loop itself kept running: when a worker holds the GIL (a C
        extension's import, say) heartbeats wait unread in the socket, and their senders are not to blame.
        """
        if stalled:
            log.debug("main loop stalled: client silence not judged this round")
        active = {job.session for job in self.jobs.values()}
        for job in list(self.jobs.values()):
            session = self.sessions.get(job.session)
            silent = not stalled and (session is None or now - session.last_seen > self.limits.client_timeout)
            reason = None
            if silent and job.cancel_reason is None:
                reason = "client_gone"
                self.stats["client_gone"] += 1
                log.warning("client %s went silent: cancelling job %s", job.session, job.job_id)
            elif now > job.deadline and job.cancel_reason is None:
                reason = "timeout"
                log.warning("job %s/%s passed its %.0f s limit", job.session, job.job_id, job.timeout)
            if reason:
                job.stop(reason)
                if job.state == QUEUED and self.queue.remove(job):
                    self.finish(job, *job.stop_error())
        for name, session in list(self.sessions.items()):
            if name not in active and now - session.last_seen > 60.0:
                del self.sessions[name]
        if len(self.sessions) > 10000:  # a flood of one-shot clients: keep only those with jobs
            for name in [n for n in self.sessions if n not in active]:
                del self.sessions[name]


# -- command line ---------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hifacegan-server",
        description="Renovate Faces model server: keeps the HiFaceGAN weights loaded and renovates photos sent by "
        "the GIMP and Krita plug-ins (protocol: docs/protocol.md). Without --foreground it detaches and returns "
        "once the server answers.",
    )
    p.add_argument(
        "--foreground", action="store_true", help="stay attached (for systemd, launchd, a terminal)"
    )
    p.add_argument(
        "--endpoint", help="where to listen (default: ipc socket in the runtime folder; tcp on Windows)"
    )
    p.add_argument(
        "--device", default="auto", help="auto, cpu, cuda, cuda:1, mps; a comma list runs one worker each"
    )
    p.add_argument(
        "--weights", default="default", help="weights name or file loaded at start (default: default)"
    )
    p.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a non-loopback tcp endpoint; turns on CURVE encryption (keys in <config>/curve/)",
    )
    p.add_argument(
        "--max-pixels", type=float, default=100.0, help="largest image in megapixels (default 100)"
    )
    p.add_argument("--max-queue", type=int, default=32, help="jobs waiting at most, all clients (default 32)")
    p.add_argument(
        "--max-per-client", type=int, default=8, help="jobs waiting at most per client (default 8)"
    )
    p.add_argument("--job-timeout", type=float, default=600.0, help="seconds a job may take (default 600)")
    p.add_argument("--heartbeat-interval", type=float, default=0.2, help="seconds between client heartbeats")
    p.add_argument(
        "--client-timeout",
        type=float,
        default=0.8,
        help="cancel a client's jobs after this many seconds without a heartbeat (default 0.8)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="CPU threads for the network (default: all cores but one, leaving one for GIMP or Krita)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    return p


def setup_logging(foreground: bool, verbose: bool) -> Path:
    folder = paths.log_dir()
    folder.mkdir(parents=True, exist_ok=True)
    logfile = folder / paths.LOG_FILE
    root = logging.getLogger("renovate-faces")
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.handlers.clear()
    fmt = logging.Formatter("%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
    handler = logging.handlers.RotatingFileHandler(logfile, maxBytes=1 << 20, backupCount=3, encoding="utf-8")
    handler.setFormatter(fmt)
    root.addHandler(handler)
    if foreground:
        console = logging.StreamHandler(sys.stderr)
        console.setFormatter(fmt)
        root.addHandler(console)
    return logfile


def already_running_message(info: dict[str, Any], runtime: Path) -> str:
    if info.get("pid"):
        return (
            f"hifacegan-server is already running (pid {info['pid']}, serving {info.get('endpoint')}). "
            f"Stop it with 'hifacegan-client shutdown' or 'kill {info['pid']}'."
        )
    return f"hifacegan-server is already running (it holds {runtime / paths.LOCK_FILE})."


def preimport() -> None:
    """Import the pipeline (torch, OpenCV) before serving. Importing C extensions holds the GIL for seconds; done
    in a worker later it would freeze the main loop, so heartbeats would go unanswered mid-job. A failure here
    is only logged: the worker retries and reports it in ``hello`` and in each job's error."""
    t0 = time.monotonic()
    try:
        import hifacegan.pipeline  # noqa: F401
    except Exception as exc:
        log.error(
            "cannot import the pipeline (%s: %s); jobs will fail until this is fixed", type(exc).__name__, exc
        )
        return
    log.info("pipeline imported in %.1f s", time.monotonic() - t0)


def run_foreground(args: argparse.Namespace) -> int:
    runtime = paths.ensure_private_dir(paths.runtime_dir())
    instance = SingleInstance(runtime)
    if not instance.acquire():
        print(already_running_message(instance.holder(), runtime), file=sys.stderr)
        return EXIT_ALREADY_RUNNING
    try:
        logfile = setup_logging(True, args.verbose)
        endpoint = args.endpoint or paths.default_endpoint()
        check_endpoint(endpoint, args.allow_remote)
        preimport()
        server = Server(args, endpoint)
        server.bind()
        instance.publish(
            {"pid": os.getpid(), "endpoint": endpoint, "log": str(logfile), "started": time.time()}
        )

        def on_signal(signum: int, frame: Any) -> None:
            server.stop(f"signal {signal.Signals(signum).name}")

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        log.info(
            "serving %s (pid %d, device %s, weights %s, log %s)",
            endpoint,
            os.getpid(),
            args.device,
            args.weights,
            logfile,
        )
        try:
            server.serve()
        finally:
            server.close()
        log.info("stopped")
        for worker in server.workers:
            worker.join(timeout=2.0)
        if any(w.is_alive() for w in server.workers):
            # A worker still importing torch or loading weights: nothing to finish there, so leave now rather
            # than wait for it (daemon threads would otherwise be frozen mid-import at interpreter exit).
            logging.shutdown()
            instance.release()
            os._exit(0)
        return 0
    except paths.PathsError as exc:
        print(f"hifacegan-server: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    finally:
        instance.release()


def spawn_detached(args: argparse.Namespace, argv: list[str]) -> int:
    """Start the server in its own session and return once it publishes its endpoint (or fails)."""
    runtime = paths.ensure_private_dir(paths.runtime_dir())
    instance = SingleInstance(runtime)
    if not instance.acquire():
        print(already_running_message(instance.holder(), runtime), file=sys.stderr)
        return EXIT_ALREADY_RUNNING
    instance.release()
    log_folder = paths.log_dir()
    log_folder.mkdir(parents=True, exist_ok=True)
    stderr_path = log_folder / "server-stderr.log"
    cmd = [sys.executable, "-m", "server", "--foreground", *argv]
    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, **detach_kwargs()
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        info = instance.holder()
        if info.get("pid") == proc.pid:
            print(f"hifacegan-server: serving {info['endpoint']} (pid {proc.pid}); log: {info.get('log')}")
            return 0
        rc = proc.poll()
        if rc is not None:
            tail = stderr_path.read_text(errors="replace").strip().splitlines()[-5:]
            print("\n".join(tail) or f"hifacegan-server exited with status {rc}", file=sys.stderr)
            return rc or 1
        time.sleep(0.05)
    print(f"hifacegan-server did not start within 60 s; see {stderr_path}", file=sys.stderr)
    return 1


def detach_kwargs() -> dict[str, Any]:
    """Popen arguments that let the server outlive the process that started it (and its terminal)."""
    if os.name == "nt":
        flags = (
            subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.DETACHED_PROCESS | subprocess.CREATE_NO_WINDOW
        )
        return {"creationflags": flags, "close_fds": True}
    return {"start_new_session": True, "close_fds": True}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    if args.foreground:
        return run_foreground(args)
    return spawn_detached(args, argv)


if __name__ == "__main__":
    raise SystemExit(main())
