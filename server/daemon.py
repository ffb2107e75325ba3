"""``hifacegan-server``: the resident model server the plug-ins talk to (protocol: ``docs/protocol.md``).

The main thread owns one ROUTER socket and never blocks for longer than a poll tick; it authenticates and
validates every message, keeps track of clients through their heartbeats, and hands jobs to one worker thread
per device. Weights load in the worker, so the server answers ``hello`` at once even while torch imports.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import hmac
import logging
import logging.handlers
import os
import queue
import sys
import threading
import time
import uuid
from typing import Any

import zmq

from hifacegan_server import paths
from hifacegan_server import protocol as P
from hifacegan_server.budget import check_fits
from hifacegan_server.fairqueue import DONE, QUEUED, FairQueue, Job
from hifacegan_server.jobs import Event, Worker
from hifacegan_server.logs import RejectionLog
from hifacegan_server.security import bind_private, secure_socket
from hifacegan_server.supervision import Supervisor
from hifacegan_server.telemetry import device_summary, memory_summary, package_version

log = logging.getLogger("renovate-faces.server")

FINISHED_KEPT = 4096  # finished job ids remembered per server, so a resent id is refused instead of run twice


class Limits:
    """Sizes and clocks the server enforces; ``hello`` tells clients all of them."""

    def __init__(self, args: argparse.Namespace, tcp: bool = False) -> None:
        self.max_pixels = int(args.max_pixels * 1e6)
        self.max_queued = args.max_queue
        self.max_per_client = max(1, min(args.max_queue, args.max_per_client))
        self.job_timeout = float(args.job_timeout)
        self.heartbeat_interval = float(args.heartbeat_interval)
        self.client_timeout = float(args.client_timeout)
        # One frame can hold the largest image at 4 channels of f32 plus 4096 bytes of padding per row (and an
        # image has at most max_pixels rows): nothing larger can be valid, so the socket drops it unread.
        self.max_frame_bytes = self.max_pixels * 16 + 4096 * min(1 << 16, self.max_pixels)
        if tcp:
            # libzmq reads a CURVE handshake command whole, up to this size, before the ZAP handler can refuse a
            # stranger; on tcp the limit is small and clients send big images in chunks of at most this size.
            self.max_frame_bytes = min(self.max_frame_bytes, P.TCP_MAX_FRAME_BYTES)

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
        self.limits = Limits(args, tcp=endpoint.startswith("tcp://"))
        self.token = paths.read_token(create=True).encode()
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        # + 64: on tcp each frame travels inside a CURVE MESSAGE command (33 bytes of box, flags and name).
        self.socket.setsockopt(zmq.MAXMSGSIZE, self.limits.max_frame_bytes + 64)
        self.socket.setsockopt(zmq.ROUTER_MANDATORY, 0)
        self.socket.setsockopt(zmq.SNDHWM, 10000)
        self.socket.setsockopt(zmq.RCVHWM, 1000)
        self.rejected = RejectionLog(log, "rejected requests", "refused %s")
        # Tracebacks of requests that hit a bug: more of them pass, but a request that trips one cannot flood.
        self.failed = RejectionLog(log, "failed requests", "request failed: %s", burst=20)
        self.zap = secure_socket(self.socket, endpoint, self.token.decode(), self.rejected)
        self.wake_endpoint = f"inproc://wake-{uuid.uuid4().hex}"
        self.wake = self.context.socket(zmq.PULL)
        self.wake.bind(self.wake_endpoint)
        self.events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self.queue = FairQueue(self.limits.max_queued, self.limits.max_per_client)
        self.jobs: dict[tuple[str, str], Job] = {}
        self.sessions: dict[str, Session] = {}
        # How recently finished jobs ended, so that a job id sent again is refused rather than run twice.
        self.finished: collections.OrderedDict[tuple[str, str], str] = collections.OrderedDict()
        self.stopping: str | None = None
        self.stop_after = 0.0
        self.started = time.time()
        self.handlers = {
            P.OP_HELLO: self.on_hello,
            P.OP_STATUS: self.on_status,
            P.OP_RENOVATE: self.on_renovate,
            P.OP_PREVIEW: self.on_preview,
            P.OP_CANCEL: self.on_cancel,
            P.OP_HEARTBEAT: self.on_heartbeat,
            P.OP_SHUTDOWN: self.on_shutdown,
        }
        self.stats = {"requests": 0, "errors": 0, "jobs_done": 0, "jobs_failed": 0, "client_gone": 0}
        self.supervisor = Supervisor(self.new_worker, resolve_devices(args.device), self.finish)

    @property
    def workers(self) -> list[Worker]:
        """The live list of workers (the supervisor replaces a dead one in place)."""
        return self.supervisor.workers

    def new_worker(self, index: int, device: str) -> Worker:
        """The worker of slot ``index``: at start, and again whenever its thread has died."""
        return Worker(
            f"worker-{index}-{device}",
            device,
            self.args.weights,
            self.queue,
            self.events,
            self.context,
            self.wake_endpoint,
            threads=self.args.threads,
            precision=getattr(self.args, "precision", "auto"),
            batch_size=getattr(self.args, "batch_size", 0),
        )

    # -- lifecycle --------------------------------------------------------------------------------------------
    def bind(self) -> None:
        bind_private(self.socket, self.endpoint)

    def serve(self) -> None:
        self.supervisor.start()
        poller = zmq.Poller()
        poller.register(self.socket, zmq.POLLIN)
        poller.register(self.wake, zmq.POLLIN)
        if self.zap is not None:
            poller.register(self.zap.socket, zmq.POLLIN)
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
            if self.zap is not None and self.zap.socket in ready:
                self.zap.answer()
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
        """Close the sockets and remove the socket file, even when ``serve`` ended on an exception: the job
        queue is closed first so idle workers close their sockets, and ``context.term()`` (which waits for every
        socket, a busy worker's included) gets 5 s in a helper thread instead of hanging the exit."""
        self.stop("closing")
        self.socket.close(linger=1000)  # let the last replies (shutdown's, shutting_down errors) leave
        self.wake.close(0)
        if self.zap is not None:
            self.zap.close()
        term = threading.Thread(target=self.context.term, name="zmq-term", daemon=True)
        term.start()
        term.join(5.0)
        if term.is_alive():
            log.warning("a worker is still busy; exiting without waiting for it")
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
            if job.state == DONE:  # already ended (a dead worker's job, say): one final event per job
                continue
            session = self.sessions.get(job.session)
            route = session.route if session else job.route
            self.send(route, event.header, event.frames)
            if event.final:
                job.state = DONE
                self.jobs.pop(job.key, None)
                ok = event.header.get("op") in (P.EV_RESULT, P.EV_PREVIEW)
                self.remember_finished(job.key, "done" if ok else f"ended: {event.header.get('code')}")
                self.stats["jobs_done" if ok else "jobs_failed"] += 1
                log.info(
                    "%s %s/%s %s (%dx%d %s)",
                    "job" if job.kind == P.OP_RENOVATE else job.kind,
                    job.session,
                    job.job_id,
                    "done" if ok else f"ended: {event.header.get('code')}",
                    job.spec.width,
                    job.spec.height,
                    job.spec.dtype,
                )

    def remember_finished(self, key: tuple[str, str], outcome: str) -> None:
        """Keep the outcome of the last ``FINISHED_KEPT`` jobs (ids only, never pixels: bounded memory)."""
        self.finished[key] = outcome
        self.finished.move_to_end(key)
        while len(self.finished) > FINISHED_KEPT:
            self.finished.popitem(last=False)

    def job_state(self, session: Session, job_id: Any) -> str:
        """``queued``, ``running``, ``done`` (recently finished) or ``unknown``, for cancel and heartbeat."""
        if not isinstance(job_id, str):
            return "unknown"
        job = self.jobs.get((session.name, job_id))
        if job is not None:
            return job.state
        return DONE if (session.name, job_id) in self.finished else "unknown"

    def finish(self, job: Job, code: str, message: str) -> None:
        """End a job that no worker holds (cancelled or expired while queued, or held by a worker that died)."""
        job.finished = True
        self.events.put(Event(job, P.error_header(code, message, {"job": job.job_id}), final=True))

    # -- requests ---------------------------------------------------------------------------------------------
    def handle(self, frames: list[zmq.Frame]) -> None:
        """Answer one message, whatever it holds. This is the one guard around dispatch: nothing a peer sends,
        and no bug in a handler, may end the serve loop (which would leave a server that holds the lock but
        never answers), so every exception ends here as an error reply."""
        self.stats["requests"] += 1
        route = frames[0].bytes
        seen: dict[str, Any] = {}
        try:
            self.dispatch(route, frames, seen)
        except P.ProtocolError as exc:
            self.reply_error(route, exc.code, exc.message, seen.get("header"))
        except Exception as exc:  # a bug must not take the server down
            header = seen.get("header")
            op = header.get("op") if header else None
            self.failed(
                f"a {P.short(op)} request ({type(exc).__name__}: {P.short(str(exc), 200)})", exc_info=True
            )
            with contextlib.suppress(Exception):  # the reply itself may be what failed
                self.reply_error(
                    route,
                    P.E_INTERNAL,
                    f"The server failed on this request ({type(exc).__name__}); it keeps serving. Retry, and "
                    f"report the traceback in {paths.log_dir() / paths.LOG_FILE} if it happens again.",
                    header,
                )

    def dispatch(self, route: bytes, frames: list[zmq.Frame], seen: dict[str, Any]) -> None:
        """Authenticate, check the envelope and call the op's handler; refusals raise ProtocolError."""
        if len(frames) < 2:
            raise P.ProtocolError(P.E_BAD_REQUEST, "Empty message: every message starts with a header frame.")
        header = P.unpack_header(frames[1].buffer)
        version = header.get("v")
        if version != P.VERSION:
            seen["header"] = header
            raise P.ProtocolError(
                P.E_VERSION,
                f"This server speaks protocol version {P.VERSION}, the client sent {P.short(version)}; install "
                "matching versions of the plug-in and the server.",
            )
        token = header.get("token")
        if not isinstance(token, str) or not hmac.compare_digest(token.encode(), self.token):
            self.rejected(f"an unauthorized {P.short(header.get('op'))} request")
            seen["header"] = header
            raise P.ProtocolError(
                P.E_UNAUTHORIZED,
                f"Unauthorized: the request's token does not match {paths.token_path()}. Make sure the plug-in "
                "and the server run as the same user with the same configuration folder.",
            )
        seen["header"] = header
        op = header.get("op")
        if not isinstance(op, str):
            raise P.ProtocolError(
                P.E_BAD_REQUEST,
                f"The request's 'op' must be a string naming an operation ({', '.join(P.REQUEST_OPS)}), not "
                f"{P.type_name(op)}; upgrade the client.",
            )
        handler = self.handlers.get(op)
        if handler is None:
            raise P.ProtocolError(
                P.E_UNKNOWN_OP,
                f"Unknown operation {P.short(op)}; this server knows {', '.join(P.REQUEST_OPS)}.",
            )
        if op not in P.DATA_OPS and len(frames) > 2:
            raise P.ProtocolError(P.E_BAD_FRAME, f"A {op} request carries no data frames.")
        handler(self.session_for(header, route), header, frames[2:])

    def session_for(self, header: dict[str, Any], route: bytes) -> Session:
        """The request's session (its ``session`` field, else its routing id), marked as heard from now."""
        name = header.get("session")
        if not isinstance(name, str) or not 0 < len(name) <= 64:
            name = route.hex()
        session = self.sessions.get(name)
        if session is None:
            session = self.sessions[name] = Session(name, route)
        session.route = route
        session.last_seen = time.monotonic()
        return session

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
                "options": list(P.OPTIONS),
                "default_weights": self.args.weights,
                "errors": list(P.ERROR_CODES),
            },
            limits=self.limits.to_header(),
            weights=self.weights_summary(),
            state=self.supervisor.health(),
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
                        "kind": j.kind,
                        "client": j.session,
                        "state": j.state,
                        "cancelling": j.cancel_event.is_set(),
                    }
                    for j in self.jobs.values()
                ],
            },
            clients=len(self.sessions),
            state=self.supervisor.health(),
            workers=self.supervisor.summary(),
            stats=dict(self.stats),
            uptime=round(time.time() - self.started, 1),
            pid=os.getpid(),
        )

    def new_job_id(self, session: Session, request: dict[str, Any]) -> str:
        """The request's ``job`` id, checked: new for this session (neither running nor recently finished)."""
        if self.stopping:
            raise P.ProtocolError(P.E_SHUTTING_DOWN, "The server is shutting down; start it again and retry.")
        job_id = request.get("job")
        if not isinstance(job_id, str) or not 0 < len(job_id) <= 128:
            raise P.ProtocolError(
                P.E_BAD_REQUEST, f"A {request['op']} request needs a 'job' id: a string of 1-128 chars."
            )
        if (session.name, job_id) in self.jobs:
            raise P.ProtocolError(P.E_DUPLICATE_JOB, f"Job {job_id!r} is already running; use a new job id.")
        if (session.name, job_id) in self.finished:
            raise P.ProtocolError(
                P.E_ALREADY_DONE,
                f"Job {job_id!r} already finished ({self.finished[(session.name, job_id)]}); a job id runs once, "
                "so send the image again with a new job id.",
            )
        return job_id

    def new_job(self, session: Session, request: dict[str, Any], frames: list[zmq.Frame], **kind: Any) -> Job:
        """A renovate or preview request as a Job: id, geometry, frames and options checked, nothing queued yet."""
        job_id = self.new_job_id(session, request)
        spec = P.parse_image_spec(request, self.limits.max_pixels)
        check_fits(spec)  # before any work starts: refused with its estimate rather than killed halfway
        pixels, mask = P.renovate_buffers(request, spec, [f.buffer for f in frames])
        known = P.PREVIEW_OPTIONS if request["op"] == P.OP_PREVIEW else P.OPTIONS
        options = P.validate_options(request.get("options"), known)
        timeout = min(options.pop("timeout", self.limits.job_timeout), self.limits.job_timeout)
        return Job(session.name, job_id, session.route, spec, pixels, mask, options, timeout, **kind)

    def accept(self, session: Session, request: dict[str, Any], job: Job, position: int) -> None:
        self.jobs[job.key] = job
        self._reply(session, request, op=P.EV_ACCEPTED, job=job.job_id, position=position)

    def on_renovate(self, session: Session, request: dict[str, Any], frames: list[zmq.Frame]) -> None:
        job = self.new_job(session, request, frames)
        self.accept(session, request, job, self.queue.submit(job))

    def on_preview(self, session: Session, request: dict[str, Any], frames: list[zmq.Frame]) -> None:
        """One face before and after (docs/protocol.md): a job in the previews' lane, which workers serve first
        and also between the batches of faces of a running job."""
        if request.get("mask"):
            raise P.ProtocolError(
                P.E_BAD_REQUEST, "A preview carries no selection mask ('mask' must be false)."
            )
        at, key = P.preview_target(request)
        job = self.new_job(session, request, frames, kind=P.OP_PREVIEW, at=at, pixels_key=key)
        self.accept(session, request, job, self.queue.submit_preview(job))

    def on_cancel(self, session: Session, request: dict[str, Any], frames: list[zmq.Frame]) -> None:
        job_id = request.get("job")
        job = self.jobs.get((session.name, job_id)) if isinstance(job_id, str) else None
        state = self.job_state(session, job_id)
        if job is not None:
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
                    states[job_id] = self.job_state(session, job_id)
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
        self.supervisor.check(now, stopping=bool(self.stopping))
        self.rejected.tick(now)
        self.failed.tick(now)
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


def main(argv: list[str] | None = None) -> int:
    """``hifacegan_server.daemon:main``, kept for launchers written before the command line moved to ``hifacegan_server.cli``."""
    from hifacegan_server.cli import main as cli_main

    return cli_main(argv)
