"""Hostile and broken input against a real daemon (issue #21): nothing may hang it, crash its loop, fill its
memory or its disk, or run a job twice."""

from __future__ import annotations

import sys
import uuid

import pytest

from server import protocol as P
from server.testing import DaemonProcess, ask_raw, raw_dealer

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
from server import daemon, protocol

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
from server.cli import main
raise SystemExit(main())
"""


class FaultyDaemon(DaemonProcess):
    """The real daemon process, started through ``FAULTY_MAIN`` with faults armed in ``FAULT_TARGETS``."""

    def command(self) -> list[str]:
        cmd = super().command()
        return [sys.executable, "-c", FAULTY_MAIN, ",".join(FAULT_TARGETS), *cmd[3:]]


@pytest.fixture(scope="module")
def daemon():
    d = FaultyDaemon(weights="identity", device="cpu", threads=1)
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
