"""Wire format, folders, token and the fair queue: the parts of the server that need no running daemon."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import msgpack
import pytest

from hifacegan_server import paths
from hifacegan_server import protocol as P
from hifacegan_server.fairqueue import FairQueue, Job

REPO = Path(__file__).resolve().parents[1]


def spec_header(**overrides):
    header = {"width": 640, "height": 480, "channels": 4, "dtype": "u8"}
    header.update(overrides)
    return header


class TestImageSpec:
    def test_defaults_to_packed_rows(self):
        spec = P.parse_image_spec(spec_header(), max_pixels=10**6)
        assert spec.stride == 640 * 4 and spec.frame_bytes == 640 * 4 * 480

    def test_u16_and_f32_sizes(self):
        assert P.parse_image_spec(spec_header(dtype="u16", channels=3), 10**6).row_bytes == 640 * 3 * 2
        assert P.parse_image_spec(spec_header(dtype="f32", channels=1), 10**6).row_bytes == 640 * 4

    def test_lying_size_refused_before_allocation(self):
        with pytest.raises(P.ProtocolError) as err:
            P.parse_image_spec(spec_header(width=100_000, height=100_000), max_pixels=100 * 10**6)
        assert err.value.code == P.E_TOO_LARGE

    def test_pixel_budget(self):
        with pytest.raises(P.ProtocolError) as err:
            P.parse_image_spec(spec_header(width=2000, height=2000), max_pixels=10**6)
        assert err.value.code == P.E_TOO_LARGE and "megapixels" in err.value.message

    @pytest.mark.parametrize(
        "field,value",
        [("width", 0), ("height", -3), ("channels", 5), ("channels", 0), ("width", 1.5), ("height", True)],
    )
    def test_bad_geometry(self, field, value):
        with pytest.raises(P.ProtocolError) as err:
            P.parse_image_spec(spec_header(**{field: value}), 10**6)
        assert err.value.code in (P.E_BAD_REQUEST, P.E_TOO_LARGE)

    @pytest.mark.parametrize("dtype", ["f64", "uint8", None, 3])
    def test_unknown_dtype(self, dtype):
        with pytest.raises(P.ProtocolError) as err:
            P.parse_image_spec(spec_header(dtype=dtype), 10**6)
        assert err.value.code == P.E_BAD_REQUEST and "u8, u16, f32" in err.value.message

    def test_stride_shorter_than_a_row(self):
        with pytest.raises(P.ProtocolError):
            P.parse_image_spec(spec_header(stride=100), 10**6)

    def test_padded_stride_and_frame_length(self):
        spec = P.parse_image_spec(spec_header(width=3, height=2, channels=3, stride=12), 10**6)
        P.check_frame(spec, 12 + 9)  # last row unpadded
        P.check_frame(spec, 24)  # or padded
        for wrong in (20, 25, 0):
            with pytest.raises(P.ProtocolError) as err:
                P.check_frame(spec, wrong)
            assert err.value.code == P.E_BAD_FRAME


class TestHeaders:
    def test_round_trip(self):
        header = {"v": 1, "op": "hello", "id": 7, "token": "x" * 64}
        assert P.unpack_header(P.pack(header)) == header

    @pytest.mark.parametrize(
        "frame",
        [b"", b"\xc1", b"\xff" * 10, msgpack.packb([1, 2]), msgpack.packb("op"), msgpack.packb({1: 2})[:-1]],
    )
    def test_garbage(self, frame):
        with pytest.raises(P.ProtocolError) as err:
            P.unpack_header(frame)
        assert err.value.code == P.E_BAD_REQUEST

    def test_oversized_header_not_decoded(self):
        with pytest.raises(P.ProtocolError) as err:
            P.unpack_header(b"\x80" + b"\x00" * P.MAX_HEADER_BYTES)
        assert err.value.code == P.E_TOO_LARGE

    def test_error_echoes_ids(self):
        header = P.error_header(P.E_BUSY, "Busy.", {"id": 3, "job": "j", "token": "secret"})
        assert header["id"] == 3 and header["job"] == "j" and "token" not in header

    def test_options(self):
        assert P.validate_options({"fidelity": 1, "faces": "largest", "timeout": 5}) == {
            "fidelity": 1.0,
            "faces": "largest",
            "timeout": 5.0,
        }
        for bad in (
            {"fidelity": 2},
            {"faces": "some"},
            {"colour": 1},
            {"max_faces": 0},
            "fast",
            {"timeout": -1},
        ):
            with pytest.raises(P.ProtocolError) as err:
                P.validate_options(bad)
            assert err.value.code == P.E_BAD_OPTION


class TestPaths:
    def test_env_overrides(self, tmp_path, monkeypatch):
        for name in ("RUNTIME", "CONFIG", "LOG"):
            monkeypatch.setenv(f"RENOVATE_FACES_{name}_DIR", str(tmp_path / name.lower()))
        monkeypatch.delenv("RENOVATE_FACES_ENDPOINT", raising=False)
        assert paths.runtime_dir() == tmp_path / "runtime"
        assert paths.config_dir() == tmp_path / "config"
        assert paths.log_dir() == tmp_path / "log"
        if os.name != "nt":
            assert paths.default_endpoint() == f"ipc://{tmp_path / 'runtime' / 'server.sock'}"

    def test_xdg_conventions(self, monkeypatch, tmp_path):
        if sys.platform in ("win32", "darwin"):
            pytest.skip("XDG folders are the Linux convention")  # not a missing prerequisite: another OS
        for name in ("RUNTIME", "CONFIG", "LOG"):
            monkeypatch.delenv(f"RENOVATE_FACES_{name}_DIR", raising=False)
        monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
        monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
        monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
        assert paths.config_dir() == tmp_path / "cfg" / "renovate-faces"
        assert paths.log_dir() == tmp_path / "state" / "renovate-faces" / "log"
        assert paths.runtime_dir() == tmp_path / "renovate-faces"

    def test_long_socket_path_falls_back_to_loopback_tcp(self, monkeypatch, tmp_path):
        monkeypatch.delenv("RENOVATE_FACES_ENDPOINT", raising=False)
        monkeypatch.setenv("RENOVATE_FACES_CONFIG_DIR", str(tmp_path / "cfg"))
        monkeypatch.setenv("RENOVATE_FACES_RUNTIME_DIR", str(tmp_path / ("x" * 120)))
        assert paths.default_endpoint().startswith("tcp://127.0.0.1:")

    def test_endpoint_from_server_json(self, monkeypatch, tmp_path):
        monkeypatch.delenv("RENOVATE_FACES_ENDPOINT", raising=False)
        monkeypatch.setenv("RENOVATE_FACES_CONFIG_DIR", str(tmp_path))
        (tmp_path / "server.json").write_text('{"endpoint": "tcp://127.0.0.1:5999", "command": ["x"]}')
        assert paths.default_endpoint() == "tcp://127.0.0.1:5999"
        (tmp_path / "server.json").write_text("{not json")
        with pytest.raises(paths.PathsError, match="server.json"):
            paths.default_endpoint()

    @pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
    def test_private_runtime_dir(self, tmp_path):
        made = paths.ensure_private_dir(tmp_path / "run")
        assert stat.S_IMODE(made.stat().st_mode) == 0o700
        loose = tmp_path / "loose"
        loose.mkdir(mode=0o755)
        os.chmod(loose, 0o755)
        with pytest.raises(paths.PathsError, match="chmod 700"):
            paths.ensure_private_dir(loose)
        assert stat.S_IMODE(loose.stat().st_mode) == 0o755  # never changed behind the user's back

    @pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
    def test_token_created_private_once(self, tmp_path, monkeypatch):
        monkeypatch.setenv("RENOVATE_FACES_CONFIG_DIR", str(tmp_path / "cfg"))
        with pytest.raises(paths.PathsError, match="start the server"):
            paths.read_token()
        tokens = []
        threads = [
            threading.Thread(target=lambda: tokens.append(paths.read_token(create=True))) for _ in range(8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(set(tokens)) == 1 and len(tokens[0]) == 64
        assert stat.S_IMODE(paths.token_path().stat().st_mode) == 0o600
        assert [p.name for p in paths.token_path().parent.iterdir()] == ["token"]  # no temp files left
        os.chmod(paths.token_path(), 0o644)
        with pytest.raises(paths.PathsError, match="chmod 600"):
            paths.read_token()


def _job(session: str, name: str) -> Job:
    spec = P.ImageSpec(1, 1, 1, "u8", 1)
    return Job(session, name, b"", spec, b"\0", None, {}, 60.0)


class TestFairQueue:
    def test_round_robin_between_clients(self):
        q = FairQueue(max_queued=10, max_per_session=5)
        for i in range(3):
            q.submit(_job("a", f"a{i}"))
        q.submit(_job("b", "b0"))
        q.submit(_job("c", "c0"))
        order = [q.take(0).job_id for _ in range(5)]
        assert order == ["a0", "b0", "c0", "a1", "a2"]
        assert q.take(0.01) is None

    def test_bounded(self):
        q = FairQueue(max_queued=3, max_per_session=2)
        q.submit(_job("a", "1"))
        q.submit(_job("a", "2"))
        with pytest.raises(P.ProtocolError) as err:
            q.submit(_job("a", "3"))
        assert err.value.code == P.E_BUSY and "This client" in err.value.message
        q.submit(_job("b", "1"))
        with pytest.raises(P.ProtocolError) as err:
            q.submit(_job("c", "1"))
        assert err.value.code == P.E_BUSY

    def test_remove_and_close(self):
        q = FairQueue(max_queued=10, max_per_session=5)
        a, b = _job("a", "1"), _job("b", "1")
        q.submit(a)
        q.submit(b)
        assert q.remove(a) and not q.remove(a)
        assert q.close() == [b]
        assert q.take() is None  # closed: workers exit
        with pytest.raises(P.ProtocolError) as err:
            q.submit(_job("a", "2"))
        assert err.value.code == P.E_SHUTTING_DOWN


def test_client_imports_standalone(tmp_path):
    """The plug-ins copy client.py, paths.py and protocol.py alone: they must import nothing else heavy."""
    for name in ("client.py", "paths.py", "protocol.py"):
        (tmp_path / name).write_bytes((REPO / "server" / name).read_bytes())
    code = (
        "import sys; import client; "
        "bad = sorted(m for m in ('numpy', 'torch', 'hifacegan', 'platformdirs', 'PIL', 'server') if m in sys.modules); "
        "assert not bad, bad; "
        "assert {'Client', 'ServerError', 'ServerUnavailable', 'Cancelled'} <= set(dir(client)); "
        "print('ok')"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(tmp_path)!r}); {code}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_client_module_imports_only_stdlib_zmq_msgpack():
    allowed = set(sys.stdlib_module_names) | {"zmq", "msgpack", "paths", "protocol", "__future__"}
    import ast

    for name in ("client.py", "paths.py", "protocol.py"):
        tree = ast.parse((REPO / "server" / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                roots = {(node.module or "").split(".")[0]} if node.level == 0 else set()
            else:
                continue
            assert roots <= allowed, f"{name} imports {roots - allowed}"


def test_rejection_log_logs_a_burst_then_counts_and_summarises(caplog):
    """A flood of refusals costs a few lines a minute: the first ``burst`` in full, then one summary line."""
    import logging

    from hifacegan_server.logs import RejectionLog

    logger = logging.getLogger("renovate-faces.test-rejections")
    noise = RejectionLog(logger, "rejected requests", "refused %s", burst=3, window=60.0)
    with caplog.at_level(logging.WARNING, logger=logger.name):
        for i in range(1000):
            noise(f"request {i} " + "x" * 10_000)
        noise.tick(noise.started + 61.0)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 5, lines
    assert lines[3] == "more rejected requests follow; counting them instead of logging each"
    assert lines[4] == "1000 rejected requests in the last minute"
    assert noise.count == 0  # a new window


@pytest.mark.parametrize(
    ("endpoint", "loopback"),
    [
        ("tcp://127.0.0.1:47315", True),
        ("tcp://localhost:1", True),
        ("tcp://[::1]:5555", True),
        ("tcp://0.0.0.0:5555", False),
        ("tcp://192.168.1.2:5555", False),
        ("tcp://*:5555", False),
        ("ipc:///tmp/x.sock", False),
    ],
)
def test_the_one_loopback_list(endpoint, loopback):
    """paths.py holds the loopback hosts; the daemon's endpoint check and the installer's default use them."""
    from hifacegan_installers.install import SANDBOX_ENDPOINT
    from hifacegan_server.security import check_endpoint

    assert paths.is_loopback(endpoint) is loopback
    assert paths.is_loopback(SANDBOX_ENDPOINT) and paths.is_loopback(paths.loopback_endpoint(1))
    if endpoint.startswith("tcp://"):
        if loopback:
            check_endpoint(endpoint, allow_remote=False)
        else:
            with pytest.raises(SystemExit, match="--allow-remote"):
                check_endpoint(endpoint, allow_remote=False)
