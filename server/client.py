"""The client the GIMP and Krita plug-ins use to reach ``hifacegan-server`` (protocol: ``docs/protocol.md``).

Standard library + pyzmq + msgpack only. The plug-ins copy this file with ``paths.py`` and ``protocol.py``
into their own folder, so it imports its siblings relatively when it sits in a package and absolutely when
it was copied alone.

    c = Client()
    c.ensure_running()                      # starts the daemon detached when nothing answers
    res = c.renovate(pixels, width, height, channels, dtype="u8", progress=print, cancel=event)
    res.pixels                              # memoryview over the received frame (no copy); bytes(res.pixels) copies
    shown = c.preview(pixels, width, height, channels, fidelity=0.3, at=(412, 120))  # one face, before and after

While a job runs the client sends a heartbeat every ``heartbeat_interval`` seconds (0.2 s): if the process dies
(GIMP kills a plug-in whose progress bar is cancelled) the server cancels its job within a second. Progress
callbacks run on the calling thread between heartbeats, so they should return quickly (well under 0.5 s).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq
from zmq.utils import z85

try:  # inside the ``server`` package (or any package the plug-ins copy these files into)
    from . import paths
    from . import protocol as P
except ImportError:  # copied alone into a plug-in folder that is on sys.path
    import paths  # type: ignore[no-redef]
    import protocol as P  # type: ignore[no-redef]

# How the daemon is found and started (detached) lives beside server.json and the log files, in paths.py.
server_command, start_detached = paths.server_command, paths.start_detached

__all__ = ["Cancelled", "Client", "Preview", "Result", "ServerError", "ServerUnavailable", "server_command"]

DEFAULT_HEARTBEAT = 0.2
SERVER_SILENCE = 5.0  # seconds without any message from the server while a job runs: it is gone
CANCEL_GRACE = 5.0  # seconds to wait for the server to confirm a cancel before giving up on it
EXIT_ALREADY_RUNNING = 3  # hifacegan-server's status when another instance serves


class ServerError(Exception):
    """An error a user can act on; ``str(e)`` is the sentence to show, ``e.code`` the protocol's stable code."""

    def __init__(self, message: str, code: str = P.E_INTERNAL) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ServerUnavailable(ServerError):
    """Nothing answers at the endpoint, or the server stopped answering mid-job."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "unavailable")


class Cancelled(ServerError):
    """The job was cancelled (by this client, a time limit or the server shutting down)."""

    def __init__(self, message: str = "The job was cancelled.", code: str = P.E_CANCELLED) -> None:
        super().__init__(message, code)


@dataclass
class Result:
    """A renovated image. ``pixels`` holds ``height`` rows of ``stride`` bytes (packed: ``stride`` is the row size)."""

    pixels: memoryview
    width: int
    height: int
    channels: int
    dtype: str
    stride: int
    faces: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    job: str = ""


@dataclass
class Preview:
    """One face's neighbourhood, ``window`` (x0, y0, x1, y1 in photo pixels), before and after renovation:
    ``before`` and ``after`` each hold ``height`` rows of ``stride`` bytes (packed), the request's channels and
    dtype. ``face``: box, landmarks, score, path; ``index``: its place among the photo's ``face_count`` faces."""

    before: memoryview
    after: memoryview
    width: int
    height: int
    channels: int
    dtype: str
    stride: int
    window: list[int]
    face: dict[str, Any]
    index: int = 0
    face_count: int = 0
    cached: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    job: str = ""


def _token_keypair(label: bytes, token: str) -> tuple[bytes, bytes]:
    secret = z85.encode(hashlib.sha256(label + b"\0" + token.encode()).digest())
    return zmq.curve_public(secret), secret


def token_curve_keys(token: str) -> tuple[bytes, bytes]:
    """The client's CURVE key pair (z85 public, secret), derived from the token: on tcp the server's ZAP handler
    admits only this public key, so a peer without the token is refused in the handshake, before the server
    reads a byte of its messages (the token inside each header is still checked too)."""
    return _token_keypair(b"renovate-faces curve client key", token)


def server_curve_keys(token: str) -> tuple[bytes, bytes]:
    """The server's CURVE key pair (z85 public, secret), derived from the token as well: the token stays the one
    thing a client needs (with the endpoint), wherever its config folder is (a sandboxed or chrooted host, a
    ``--home`` the doctor checks, another machine), and only a holder of the token can pose as the server."""
    return _token_keypair(b"renovate-faces curve server key", token)


class Client:
    """A connection to the model server. Not thread-safe: use one Client per thread."""

    def __init__(
        self,
        endpoint: str | None = None,
        token: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        """``endpoint`` and ``token`` default to what the daemon uses (``server/paths.py``); ``timeout`` bounds
        every request but renovate's wait for a result."""
        try:
            self.endpoint = endpoint or paths.default_endpoint()
        except paths.PathsError as exc:
            raise ServerUnavailable(str(exc)) from None
        self.timeout = float(timeout)
        self.session = uuid.uuid4().hex
        self.heartbeat_interval = DEFAULT_HEARTBEAT
        self.server_silence = SERVER_SILENCE
        self.limits: dict[str, Any] = {}
        self._token = token
        self._context = zmq.Context()
        self._socket: zmq.Socket | None = None
        self._ids = itertools.count(1)
        self._spawned: subprocess.Popen | None = None

    # -- plumbing ---------------------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the socket and the context. ``destroy(linger=0)`` rather than ``term()``: ``term()`` waits for
        every socket of the context to close, forever if one was left open."""
        self._drop_socket()
        self._context.destroy(linger=0)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _drop_socket(self) -> None:
        """Forget the socket and anything queued on it (the 'lazy pirate' reset after a lost reply)."""
        if self._socket is not None:
            self._socket.close(0)
            self._socket = None

    def _sock(self) -> zmq.Socket:
        if self._socket is None:
            # Fail at once, not after the request's timeout, when nothing listens at the endpoint (ZeroMQ would
            # queue the request for a server that is not there: a socket file left by a killed server, say).
            absent = paths.nothing_listens(self.endpoint)
            if absent:
                raise ServerUnavailable(absent)
            s = self._context.socket(zmq.DEALER)
            try:
                s.setsockopt(zmq.LINGER, 0)
                s.setsockopt(zmq.IMMEDIATE, 1)  # queue nothing for a server that is not there
                s.setsockopt(zmq.SNDHWM, 1000)
                if self._needs_curve():
                    self._setup_curve(s)  # raises ServerUnavailable without a token to derive keys from
                s.connect(self.endpoint)
            except BaseException:
                s.close(0)  # a socket left open here would make close() wait for it
                raise
            self._socket = s
        return self._socket

    def _needs_curve(self) -> bool:
        """Every tcp endpoint: the server authenticates clients in the CURVE handshake (see ``token_curve_keys``)."""
        return self.endpoint.startswith("tcp://")

    def _setup_curve(self, s: zmq.Socket) -> None:
        token = self.token()  # both key pairs come from it: no other file to find
        s.curve_serverkey = server_curve_keys(token)[0]
        s.curve_publickey, s.curve_secretkey = token_curve_keys(token)

    def token(self) -> str:
        if self._token is None:
            try:
                self._token = paths.read_token()
            except paths.PathsError as exc:
                raise ServerUnavailable(str(exc)) from None
        return self._token

    def _header(self, op: str, **fields: Any) -> dict[str, Any]:
        return {
            "v": P.VERSION,
            "op": op,
            "id": next(self._ids),
            "token": self.token(),
            "session": self.session,
            **fields,
        }

    def _unavailable(self, what: str) -> ServerUnavailable:
        where = paths.log_dir() / paths.LOG_FILE
        # On tcp a wrong token fails the CURVE handshake, which looks like silence from here.
        token_hint = (
            f" If it runs, check that it uses the same token file ({paths.token_path()}) as this client."
            if self._needs_curve()
            else ""
        )
        return ServerUnavailable(
            f"{what} The renovate-faces server at {self.endpoint} is not answering: start it with "
            f"'hifacegan-server' (its log is {where}).{token_hint}"
        )

    def _send(self, frames: list[Any], timeout: float) -> None:
        sock = self._sock()
        sock.setsockopt(zmq.SNDTIMEO, max(1, int(timeout * 1000)))
        try:
            # Copied: zero-copy starts pyzmq's garbage-collector thread and context in the host for good.
            sock.send_multipart(frames, copy=True)
        except zmq.Again:
            self._drop_socket()
            raise self._unavailable("Could not connect.") from None

    def _recv(self, timeout: float) -> tuple[dict[str, Any], list[zmq.Frame]] | None:
        """One message, or None after ``timeout`` seconds."""
        sock = self._sock()
        if not sock.poll(max(0, int(timeout * 1000)), zmq.POLLIN):
            return None
        frames = sock.recv_multipart(copy=False)
        try:
            header = P.unpack_header(frames[0].buffer)
        except P.ProtocolError as exc:
            raise ServerError(
                f"The server sent a message this client cannot read ({exc.message})", P.E_BAD_REQUEST
            ) from None
        return header, frames[1:]

    @staticmethod
    def _raise(header: dict[str, Any]) -> None:
        code = str(header.get("code") or P.E_INTERNAL)
        message = str(header.get("message") or "The server reported an error without a message.")
        if code == P.E_CANCELLED:
            raise Cancelled(message)
        raise ServerError(message, code)

    def request(self, op: str, timeout: float | None = None, **fields: Any) -> dict[str, Any]:
        """Send one request and return its reply header; errors become exceptions."""
        timeout = self.timeout if timeout is None else timeout
        self._sock()  # a server that is not running is reported before anything else (the token, say)
        header = self._header(op, **fields)
        self._send([P.pack(header)], timeout)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            got = self._recv(remaining) if remaining > 0 else None
            if got is None:
                self._drop_socket()
                raise self._unavailable(f"No answer to '{op}' within {timeout:g} s.")
            reply, _ = got
            if reply.get("id") != header["id"] and not (reply.get("op") == P.EV_ERROR and "id" not in reply):
                continue  # a late reply to an earlier request (an error without id: a request it could not read)
            if reply.get("op") == P.EV_ERROR:
                self._raise(reply)
            return reply

    # -- operations -------------------------------------------------------------------------------------------
    def hello(self, timeout: float | None = None) -> dict[str, Any]:
        """Version, capabilities and limits of the server."""
        reply = self.request(P.OP_HELLO, timeout)
        if reply.get("version") != P.VERSION:
            raise ServerError(
                f"The server speaks protocol version {reply.get('version')} and this client {P.VERSION}; "
                "install matching versions of the plug-in and the server.",
                P.E_VERSION,
            )
        self.limits = dict(reply.get("limits") or {})
        self.heartbeat_interval = float(self.limits.get("heartbeat_interval", DEFAULT_HEARTBEAT))
        return reply

    def status(self, timeout: float | None = None) -> dict[str, Any]:
        """Device, memory, weights and queue of the server."""
        return self.request(P.OP_STATUS, timeout)

    def shutdown(self, timeout: float | None = None) -> dict[str, Any]:
        """Ask the server to cancel its jobs and exit. A server that is gone by the time the reply is due
        counts as stopped (``confirmed`` False)."""
        try:
            return self.request(P.OP_SHUTDOWN, timeout)
        except ServerUnavailable:
            try:
                self.hello(timeout=1.0)
            except ServerUnavailable:
                return {"op": P.OP_SHUTDOWN, "ok": True, "confirmed": False}
            raise

    def ensure_running(self, start: bool = True, wait: float = 60.0) -> dict[str, Any]:
        """``hello`` the server; if nothing answers and ``start``, start the daemon detached and wait for it."""
        sock = paths.ipc_path(self.endpoint)
        if sock is None or sock.exists():
            try:
                return self.hello(timeout=min(self.timeout, 2.0))
            except ServerUnavailable:
                if not start:
                    raise
        elif not start:
            raise self._unavailable(f"No server socket at {sock}.")
        try:
            command = paths.server_command()
        except paths.PathsError as exc:
            raise ServerUnavailable(str(exc)) from None
        if command is None:
            raise ServerUnavailable(
                "Cannot start the renovate-faces server: 'hifacegan-server' is not on PATH and "
                f"{paths.config_dir() / paths.SERVER_CONFIG_FILE} names no command. Run the installer again."
            )
        proc, errfile = self._spawn(command)
        deadline = time.monotonic() + wait
        try:
            while True:
                try:
                    return self.hello(timeout=0.5)
                except ServerUnavailable:
                    pass
                rc = proc.poll()
                if rc is not None and rc != 0 and rc != EXIT_ALREADY_RUNNING:
                    tail = " ".join(line.strip() for line in paths.log_tail(errfile, 3))
                    raise ServerUnavailable(
                        f"The server command {' '.join(command)} exited with status {rc}"
                        + (f": {tail}" if tail else ".")
                    )
                if time.monotonic() > deadline:
                    raise ServerUnavailable(
                        f"The renovate-faces server did not answer within {wait:g} s of starting; see its log "
                        f"{paths.log_dir() / paths.LOG_FILE}."
                    )
                time.sleep(0.1)
        finally:
            if proc.poll() is None:
                self._spawned = proc  # keep a reference: it runs on after this client is gone

    def _spawn(self, command: list[str]) -> tuple[subprocess.Popen, Path]:
        cmd = [*command, "--foreground", "--endpoint", self.endpoint]
        try:
            return start_detached(cmd)
        except OSError as exc:
            raise ServerUnavailable(
                f"Cannot start the server with {' '.join(cmd)}: {exc.strerror}."
            ) from None

    def renovate(
        self,
        pixels: Any,
        width: int,
        height: int,
        channels: int,
        dtype: str = "u8",
        stride: int | None = None,
        mask: Any = None,
        options: dict[str, Any] | None = None,
        progress: Callable[[float, str], Any] | None = None,
        cancel: threading.Event | None = None,
        timeout: float | None = None,
    ) -> Result:
        """Renovate the faces in an image: ``height`` rows of ``stride`` bytes, ``channels`` samples of ``dtype``
        per pixel (little-endian; f32 in [0, 1]). ``mask``: ``width*height`` bytes, 0 leaves a pixel alone.

        Raises Cancelled once ``cancel`` is set, ServerError when the server refuses or fails the job (or it
        takes longer than ``timeout`` seconds; None: the server's own job limit), ServerUnavailable when the
        server cannot be reached or stops answering.
        """
        request = (pixels, width, height, channels, dtype, stride, mask)
        return self._job(P.OP_RENOVATE, request, dict(options or {}), progress, cancel, timeout)

    def preview(
        self,
        pixels: Any,
        width: int,
        height: int,
        channels: int,
        dtype: str = "u8",
        stride: int | None = None,
        fidelity: float = 0.5,
        at: tuple[float, float] | None = None,
        key: str | None = None,
        options: dict[str, Any] | None = None,
        cancel: threading.Event | None = None,
        timeout: float | None = None,
    ) -> Preview:
        """One face of an image (framed as for :meth:`renovate`) renovated at ``fidelity``: the largest, or the one
        at or nearest ``at`` = (x, y) in image pixels; its neighbourhood before and after. ``key`` names the
        pixels so the server reuses its detection of them (change it whenever they change; None: the server
        hashes them); ``options``: ``weights``, ``min_face_size``, ``timeout``.

        Raises ServerError with code ``no_face`` when the image has no face to preview, and as ``renovate``.
        """
        fields = {"at": None if at is None else [float(at[0]), float(at[1])], "key": key}
        options = {**(options or {}), "fidelity": float(fidelity)}
        request = (pixels, width, height, channels, dtype, stride, None)
        return self._job(P.OP_PREVIEW, request, options, None, cancel, timeout, fields)

    def _job(
        self,
        op: str,
        request: tuple[Any, int, int, int, str, int | None, Any],
        opts: dict[str, Any],
        progress: Callable[[float, str], Any] | None,
        cancel: threading.Event | None,
        timeout: float | None,
        fields: dict[str, Any] | None = None,
    ) -> Any:
        """Send a renovate or preview request (pixels, width, height, channels, dtype, stride, mask) and wait."""
        pixels, width, height, channels, dtype, stride, mask = request
        if dtype not in P.DTYPES:
            raise ServerError(
                f"dtype must be one of {', '.join(P.DTYPES)}, got {dtype!r}.", P.E_BAD_REQUEST
            ) from None
        if not self.limits:
            # The server drops a frame over its size limit unread (it cannot answer what it never read), so
            # learn its limits first and refuse such an image here, with the sentence the server would give.
            self.hello()
        row = width * channels * P.DTYPES[dtype]
        stride = row if stride is None else stride
        try:
            spec = P.parse_image_spec(
                {"width": width, "height": height, "channels": channels, "dtype": dtype, "stride": stride},
                int(self.limits.get("max_pixels", 1 << 62)),
            )
            view = memoryview(pixels).cast("B")
            P.check_frame(spec, view.nbytes, "pixel buffer")
        except P.ProtocolError as exc:
            raise ServerError(exc.message, exc.code) from None
        # A server on tcp takes frames of at most 16 MiB (limits.max_frame_bytes): big data goes in chunks.
        size = int(self.limits.get("max_frame_bytes") or view.nbytes or 1)
        frames: list[Any] = [None, *P.split_chunks(view, size)]
        chunks = len(frames) - 1
        if mask is not None:
            mask_view = memoryview(mask).cast("B")
            if mask_view.nbytes != width * height:
                raise ServerError(
                    f"The selection mask has {mask_view.nbytes} bytes; it needs {width * height} (one per pixel).",
                    P.E_BAD_FRAME,
                )
            frames.extend(P.split_chunks(mask_view, size))
        job = uuid.uuid4().hex
        if timeout is not None:
            opts.setdefault("timeout", float(timeout))
        extra = {k: v for k, v in (fields or {}).items() if v is not None}
        if chunks > 1:  # absent when whole: what servers before chunks read
            extra["chunks"] = chunks
        header = self._header(op, job=job, mask=mask is not None, options=opts, **spec.to_header(), **extra)
        frames[0] = P.pack(header)
        self._send(frames, self.timeout)
        return self._wait(
            job, header["id"], progress, cancel, timeout, max(memoryview(f).nbytes for f in frames)
        )

    def _wait(
        self,
        job: str,
        request_id: int,
        progress: Callable[[float, str], Any] | None,
        cancel: threading.Event | None,
        timeout: float | None,
        biggest_frame: int = 0,
    ) -> Any:
        start = time.monotonic()
        last_heard = start
        next_beat = start + self.heartbeat_interval
        cancel_sent: float | None = None
        accepted = False
        timeout = float(self.limits.get("job_timeout", 600.0)) + 30.0 if timeout is None else timeout
        while True:
            now = time.monotonic()
            if cancel is not None and cancel.is_set() and cancel_sent is None:
                self._send_quiet(self._header(P.OP_CANCEL, job=job))
                cancel_sent = now
            self._check_deadlines(job, now, start, timeout, last_heard, cancel_sent)
            if now >= next_beat:
                self._send_quiet(self._header(P.OP_HEARTBEAT, jobs=[job]))
                next_beat = now + self.heartbeat_interval
            got = self._recv(max(0.0, min(next_beat, start + timeout) - time.monotonic()))
            if got is None:
                continue
            last_heard = time.monotonic()
            header, data = got
            op = header.get("op")
            mine = header.get("job") == job or header.get("id") == request_id
            if op == P.EV_ERROR and mine:
                if cancel_sent is not None or header.get("code") == P.E_CANCELLED:
                    raise Cancelled(
                        str(header.get("message") or "The job was cancelled."), str(header.get("code"))
                    )
                self._raise(header)
            elif op == P.EV_ACCEPTED and mine:
                accepted = True
            elif op == P.EV_PROGRESS and header.get("job") == job:
                if progress is not None and cancel_sent is None:
                    progress(float(header.get("fraction", 0.0)), str(header.get("text", "")))
            elif op in (P.EV_RESULT, P.EV_PREVIEW) and header.get("job") == job:
                if cancel_sent is not None:
                    raise Cancelled()
                return self._result(header, data, job)
            elif op == P.OP_HEARTBEAT and (header.get("jobs") or {}).get(job) == "unknown":
                self._drop_socket()
                if not accepted:
                    # One connection keeps order: the request's answer would have come before this heartbeat's.
                    limit = self.limits.get("max_frame_bytes")
                    raise ServerError(P.dropped_message(biggest_frame, limit), P.E_TOO_LARGE)
                raise ServerUnavailable(
                    "The renovate-faces server lost this job (it was restarted); run the command again."
                )

    def _check_deadlines(
        self, job: str, now: float, start: float, timeout: float, heard: float, cancel_sent: float | None
    ) -> None:
        """Give up on the job once its cancel went unconfirmed, its time ran out or the server fell silent."""
        if cancel_sent is not None and now - cancel_sent > CANCEL_GRACE:
            self._drop_socket()
            raise Cancelled("The job was cancelled (the server did not confirm in time).")
        if now - start > timeout and cancel_sent is None:
            self._send_quiet(self._header(P.OP_CANCEL, job=job))
            self._drop_socket()
            raise ServerError(
                f"The server did not finish within {timeout:g} s; the job was cancelled. Try a smaller image "
                "or region.",
                P.E_TIMEOUT,
            )
        if now - heard > self.server_silence:
            self._drop_socket()
            raise ServerUnavailable(
                f"The renovate-faces server at {self.endpoint} stopped answering {now - heard:.1f} s ago "
                f"while renovating (it may have crashed or been stopped); see its log "
                f"{paths.log_dir() / paths.LOG_FILE} and start it again."
            )

    def _send_quiet(self, header: dict[str, Any]) -> None:
        """Best effort: heartbeats and cancels must never block the wait loop."""
        with contextlib.suppress(zmq.Again, zmq.ZMQError):
            self._sock().send(P.pack(header), zmq.NOBLOCK)

    @staticmethod
    def _result(header: dict[str, Any], data: list[zmq.Frame], job: str) -> Result | Preview:
        preview = header.get("op") == P.EV_PREVIEW
        try:
            spec, buffers = P.image_frames(header, data, 2 if preview else 1, str(header.get("op")))
        except P.ProtocolError as exc:
            raise ServerError(f"The server sent a malformed result ({exc.message}).", P.E_BAD_FRAME) from None
        if preview:
            return Preview(
                *buffers,
                **spec.to_header(),
                window=list(header.get("window") or []),
                face=dict(header.get("face") or {}),
                index=int(header.get("index") or 0),
                face_count=int(header.get("face_count") or 0),
                cached=bool(header.get("cached")),
                timings=dict(header.get("timings") or {}),
                seconds=float(header.get("seconds") or 0.0),
                job=job,
            )
        return Result(
            pixels=buffers[0],
            width=spec.width,
            height=spec.height,
            channels=spec.channels,
            dtype=spec.dtype,
            stride=spec.stride,
            faces=list(header.get("faces") or []),
            timings=dict(header.get("timings") or {}),
            warnings=list(header.get("warnings") or []),
            seconds=float(header.get("seconds") or 0.0),
            job=job,
        )
