"""Who may talk to the server: loopback-only endpoints, and on tcp CURVE with key pairs derived from the token."""

from __future__ import annotations

import contextlib
import hmac
import logging
import os
from collections.abc import Callable

import zmq
from zmq.utils import z85

from hifacegan_server import paths
from hifacegan_server.client import server_curve_keys, token_curve_keys

log = logging.getLogger("renovate-faces.server")


def check_endpoint(endpoint: str, allow_remote: bool) -> None:
    """Refuse to listen beyond loopback unless ``--allow-remote`` (which turns CURVE encryption on)."""
    if endpoint.startswith("ipc://"):
        if os.name == "nt":
            raise SystemExit("ipc:// endpoints are not available on Windows; use tcp://127.0.0.1:PORT.")
        return
    if not endpoint.startswith("tcp://"):
        raise SystemExit(f"Unsupported endpoint {endpoint!r}: use ipc://PATH or tcp://127.0.0.1:PORT.")
    if not paths.is_loopback(endpoint) and not allow_remote:
        raise SystemExit(
            f"Refusing to listen on {endpoint}: it is reachable from other machines. Use tcp://127.0.0.1:PORT, "
            "or pass --allow-remote to listen there with CURVE encryption."
        )


def secure_socket(
    socket: zmq.Socket, endpoint: str, token: str, on_refused: Callable[[str], None]
) -> ZapHandler | None:
    """On a tcp endpoint (which any local user can reach) make ``socket`` a CURVE server with the key pair derived
    from the token, and answer its handshakes with a :class:`ZapHandler`, so a peer is authenticated before a
    frame of it is read; returns the handler, whose socket the serve loop polls. None on ipc (the 0700 folder
    and 0600 socket file keep other users out)."""
    if not endpoint.startswith("tcp://"):
        return None
    zap = ZapHandler(socket.context, token, on_refused)
    public, secret = server_curve_keys(token)
    socket.zap_domain = b"renovate-faces"
    socket.curve_server = True
    socket.curve_secretkey = secret
    socket.curve_publickey = public
    log.info("CURVE on; clients derive the keys from the token in %s", paths.token_path())
    return zap


def bind_private(socket: zmq.Socket, endpoint: str) -> None:
    """Bind ``socket`` to ``endpoint``; an ipc socket file is created owner-only (0600) in its private folder,
    replacing a stale one (the caller holds the single-instance lock, so nobody else serves it)."""
    sock = paths.ipc_path(endpoint)
    if sock is not None:
        paths.ensure_private_dir(sock.parent)
        with contextlib.suppress(FileNotFoundError):
            sock.unlink()
    try:
        socket.bind(endpoint)
    except zmq.ZMQError as exc:
        raise SystemExit(
            f"Cannot listen on {endpoint}: {exc.strerror}. If another program uses this port, set another "
            f"endpoint with --endpoint or 'endpoint' in {paths.config_dir() / paths.SERVER_CONFIG_FILE}."
        ) from None
    if sock is not None:
        os.chmod(sock, 0o600)


class ZapHandler:
    """The ZAP handler of the server's context: during the CURVE handshake libzmq asks it whether the client's
    public key may connect, and it says yes only to the key derived from the token (``token_curve_keys``).

    So on tcp a peer without the token is turned away in the handshake, before the server reads or allocates
    any message of its: a NULL-mechanism peer after its 64-byte greeting, a CURVE peer with another key after
    its HELLO and INITIATE commands. It is answered from the server's own poll loop (no thread)."""

    ENDPOINT = "inproc://zeromq.zap.01"  # fixed by RFC 27

    def __init__(self, context: zmq.Context, token: str, on_refused: Callable[[str], None]) -> None:
        self.allowed = z85.decode(token_curve_keys(token)[0])
        self.on_refused = on_refused
        self.socket = context.socket(zmq.REP)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.bind(self.ENDPOINT)

    def answer(self, budget: int = 256) -> None:
        """Answer the ZAP requests waiting (at most ``budget``, so the loop keeps turning under a flood)."""
        for _ in range(budget):
            try:
                request = self.socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            version, request_id = (request + [b"", b""])[:2]
            mechanism = request[5] if len(request) > 5 else b""
            key = request[6] if len(request) > 6 else b""
            ok = mechanism == b"CURVE" and hmac.compare_digest(key, self.allowed)
            if not ok:
                address = request[3].decode(errors="replace") if len(request) > 3 else "?"
                self.on_refused(f"a {mechanism.decode(errors='replace') or 'bare'} handshake from {address}")
            status = (b"200", b"OK") if ok else (b"400", b"This key does not match the server's token.")
            self.socket.send_multipart([version, request_id, *status, b"", b""])

    def close(self) -> None:
        self.socket.close(0)
