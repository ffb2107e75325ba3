"""Who may talk to the server: loopback-only endpoints and the CURVE keys of ``--allow-remote``."""

from __future__ import annotations

import os

import zmq

from server import paths

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}


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
