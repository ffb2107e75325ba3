"""One real daemon (``python -m hifacegan_server``, identity weights, real pipeline) and real clients over a real socket."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid

import msgpack
import numpy as np
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hifacegan_server import protocol as P
from hifacegan_server.client import Cancelled, ServerError
from hifacegan_server.testing import EXAMPLE_PHOTO, DaemonProcess, ask_raw, raw_dealer, sample_photo

NUMPY = {"u8": np.uint8, "u16": np.uint16, "f32": np.float32}


@pytest.fixture(scope="module")
def daemon():
    d = DaemonProcess(weights="identity", device="cpu", threads=2, extra_args=["--max-pixels", "20"])
    d.start()
    yield d
    assert d.stop() == 0, d.stderr()  # SIGTERM is a clean exit
    assert not (d.root / "run" / "server.sock").exists(), "the socket file outlived the server"
    d.cleanup()


@pytest.fixture
def client(daemon):
    c = daemon.client(timeout=10)
    yield c
    c.close()


@pytest.fixture(scope="module")
def big_photo():
    """The whole Solvay photo doubled: a job that runs for seconds on a CPU, long enough to cancel."""
    from PIL import Image

    photo = Image.open(EXAMPLE_PHOTO).convert("RGBA")
    photo = photo.resize((photo.width * 2, photo.height * 2), Image.Resampling.BILINEAR)
    return np.ascontiguousarray(np.asarray(photo))


def as_array(res, like: np.ndarray) -> np.ndarray:
    return np.frombuffer(res.pixels, dtype=like.dtype).reshape(like.shape)


def check_pass_through(image: np.ndarray, far: tuple[int, int], res) -> None:
    """Identity weights: same geometry, every pixel far from the faces untouched, faces nearly so."""
    assert (res.width, res.height, res.channels) == (image.shape[1], image.shape[0], image.shape[2])
    out = as_array(res, image)
    untouched = np.ones(image.shape[:2], bool)
    untouched[: far[0], : far[1]] = False
    np.testing.assert_array_equal(out[untouched], image[untouched])
    scale = {np.uint8: 255.0, np.uint16: 65535.0, np.float32: 1.0}[image.dtype.type]
    assert np.abs(out.astype(np.float64) - image).mean() / scale < 0.02
    assert sum(f["renovated"] for f in res.faces) >= 3
    assert all(len(f["box"]) == 4 and 0 < f["score"] <= 1 for f in res.faces)


def test_hello_and_status(client, daemon):
    hello = client.hello()
    assert hello["version"] == P.VERSION
    assert set(hello["capabilities"]["dtypes"]) == {"u8", "u16", "f32"}
    assert hello["limits"]["max_pixels"] == 20_000_000
    assert hello["limits"]["client_timeout"] <= 1.0
    status = client.status()
    assert status["device"]["resolved"] == ["cpu"]
    assert status["weights"]["cpu"]["state"] == "ready"
    assert status["queue"]["queued"] == 0 and status["memory"]["rss_bytes"] > 0


@pytest.mark.parametrize(
    "channels,dtype", [(4, "u8"), (3, "u16"), (1, "u8"), (3, "u8"), (2, "u16"), (4, "f32")], ids=str
)
def test_round_trip(client, channels, dtype):
    image, far = sample_photo(channels, dtype, seed=channels)
    seen = []
    res = client.renovate(
        image.tobytes(),
        image.shape[1],
        image.shape[0],
        channels,
        dtype=dtype,
        progress=lambda f, t: seen.append(f),
    )
    assert res.dtype == dtype and res.stride == image.shape[1] * channels * image.itemsize
    check_pass_through(image, far, res)
    if channels in (2, 4):
        np.testing.assert_array_equal(as_array(res, image)[..., -1], image[..., -1])  # alpha, exactly
    assert seen and seen == sorted(seen) and seen[-1] == 1.0


def test_padded_rows_and_selection_mask(client):
    image, far = sample_photo(3, "u8", seed=7)
    h, w, _ = image.shape
    stride = w * 3 + 13
    padded = np.zeros((h, stride), np.uint8)
    padded[:, : w * 3] = image.reshape(h, w * 3)
    mask = np.zeros((h, w), np.uint8)
    mask[:, :150] = 255  # only the left half of the faces region
    res = client.renovate(padded.tobytes(), w, h, 3, stride=stride, mask=mask.tobytes())
    out = as_array(res, image)
    np.testing.assert_array_equal(out[:, 150:], image[:, 150:])  # outside the selection: untouched
    assert any(f["renovated"] for f in res.faces) and not all(f["renovated"] for f in res.faces)


def test_options_reach_the_pipeline(client):
    image, _ = sample_photo(3, "u8", seed=3)
    res = client.renovate(image.tobytes(), image.shape[1], image.shape[0], 3, options={"faces": "largest"})
    assert sum(f["renovated"] for f in res.faces) == 1
    with pytest.raises(ServerError) as err:
        client.renovate(image.tobytes(), image.shape[1], image.shape[0], 3, options={"fidelity": 3})
    assert err.value.code == P.E_BAD_OPTION and "fidelity" in str(err.value)


def test_four_concurrent_clients(daemon):
    results, errors = {}, []

    def run(seed: int) -> None:
        image, far = sample_photo(4 if seed % 2 else 3, "u8", seed=100 + seed)
        try:
            with daemon.client(timeout=30) as c:
                res = c.renovate(image.tobytes(), image.shape[1], image.shape[0], image.shape[2])
                check_pass_through(image, far, res)
                results[seed] = res.job
        except Exception as exc:  # reported below with the seed
            errors.append((seed, exc))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert len(set(results.values())) == 4


def _first_progress_then(event: threading.Event):
    def progress(fraction: float, text: str) -> None:
        event.set()

    return progress


def test_cancel_mid_job(daemon, big_photo):
    h, w, _ = big_photo.shape
    cancel = threading.Event()
    with daemon.client(timeout=10) as c:
        start = time.monotonic()
        with pytest.raises(Cancelled):
            c.renovate(big_photo, w, h, 4, progress=_first_progress_then(cancel), cancel=cancel, timeout=60)
        assert time.monotonic() - start < 30
        # The worker is free again and the next job is answered.
        image, far = sample_photo(4, "u8", seed=11)
        check_pass_through(image, far, c.renovate(image.tobytes(), image.shape[1], image.shape[0], 4))
        assert c.status()["queue"]["jobs"] == []


def test_cancel_while_queued(daemon, big_photo):
    """B's job waits behind A's; cancelling it answers at once without touching A's."""
    h, w, _ = big_photo.shape
    started = threading.Event()
    a_result = {}

    def run_a() -> None:
        with daemon.client(timeout=10) as a:
            a_result["res"] = a.renovate(
                big_photo, w, h, 4, progress=_first_progress_then(started), timeout=120
            )

    thread = threading.Thread(target=run_a)
    thread.start()
    assert started.wait(30)
    cancel = threading.Event()
    with daemon.client(timeout=10) as b:
        image, _ = sample_photo(3, "u8")
        timer = threading.Timer(0.3, cancel.set)
        timer.start()
        t0 = time.monotonic()
        with pytest.raises(Cancelled):
            b.renovate(image.tobytes(), image.shape[1], image.shape[0], 3, cancel=cancel)
        assert time.monotonic() - t0 < 2.0
    thread.join(120)
    assert a_result["res"].height == h and len(a_result["res"].faces) > 20


VANISHING_CLIENT = """
import sys, numpy as np
from PIL import Image
from hifacegan_server.client import Client
photo = Image.open(sys.argv[3]).convert("RGBA")
photo = np.asarray(photo.resize((photo.width * 2, photo.height * 2)))
def progress(fraction, text):
    print("running", flush=True)
# The real default weights: 58 faces through the network keep the job running for seconds, so the client
# surely dies mid-job (with the identity network a fast machine can finish before the server notices).
Client(endpoint=sys.argv[1], token=sys.argv[2]).renovate(photo.tobytes(), photo.shape[1], photo.shape[0], 4,
                                                         options={"weights": "default"}, progress=progress)
"""


def test_vanished_client_job_cancelled_within_a_second(daemon, client):
    before = client.status()["stats"]["client_gone"]
    proc = subprocess.Popen(
        [sys.executable, "-c", VANISHING_CLIENT, daemon.endpoint, daemon.token, str(EXAMPLE_PHOTO)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "running"
        assert client.status()["queue"]["running"] == 1
    finally:
        proc.kill()  # what GIMP does to a plug-in whose progress bar is cancelled
        proc.wait()
    killed = time.monotonic()
    while True:
        jobs = client.status()["queue"]["jobs"]
        if not jobs or all(j["cancelling"] for j in jobs):
            break
        assert time.monotonic() - killed < 1.0, f"job not cancelled 1 s after its client died: {jobs}"
        time.sleep(0.02)
    assert time.monotonic() - killed < 1.0
    deadline = time.monotonic() + 30
    while client.status()["queue"]["jobs"]:
        assert time.monotonic() < deadline, "the cancelled job never ended"
        time.sleep(0.1)
    assert client.status()["stats"]["client_gone"] == before + 1


def test_job_timeout(client, big_photo):
    h, w, _ = big_photo.shape
    with pytest.raises(ServerError) as err:
        client.renovate(big_photo, w, h, 4, options={"timeout": 0.3})
    assert err.value.code == P.E_TIMEOUT and "time limit" in str(err.value)


# -- hostile peers -------------------------------------------------------------------------------------------


@pytest.fixture
def raw(daemon):
    with raw_dealer(daemon.endpoint) as sock:
        yield sock


ask = ask_raw


def request(daemon, op="renovate", **fields):
    header = {"v": 1, "op": op, "id": uuid.uuid4().hex, "token": daemon.token, "session": "raw"}
    header.update(fields)
    return header


def renovate_header(daemon, **fields):
    base = {"job": uuid.uuid4().hex, "width": 8, "height": 4, "channels": 3, "dtype": "u8"}
    return request(daemon, **{**base, **fields})


@pytest.mark.parametrize(
    "case,code",
    [
        ("no_token", P.E_UNAUTHORIZED),
        ("wrong_token", P.E_UNAUTHORIZED),
        ("garbage", P.E_BAD_REQUEST),
        ("not_a_map", P.E_BAD_REQUEST),
        ("old_version", P.E_VERSION),
        ("unknown_op", P.E_UNKNOWN_OP),
        ("huge", P.E_TOO_LARGE),
        ("short_frame", P.E_BAD_FRAME),
        ("long_frame", P.E_BAD_FRAME),
        ("wrong_dtype", P.E_BAD_REQUEST),
        ("dtype_mismatch", P.E_BAD_FRAME),
        ("no_frame", P.E_BAD_FRAME),
        ("extra_frame", P.E_BAD_FRAME),
        ("bad_mask", P.E_BAD_FRAME),
        ("no_job_id", P.E_BAD_REQUEST),
    ],
)
def test_hostile_messages_get_errors(daemon, raw, client, case, code):
    before = client.status()["stats"]
    ok_pixels = bytes(8 * 4 * 3)
    header = renovate_header(daemon)
    frames = {
        "no_token": lambda: [P.pack({k: v for k, v in header.items() if k != "token"}), ok_pixels],
        "wrong_token": lambda: [P.pack({**header, "token": "0" * 64}), ok_pixels],
        "garbage": lambda: [b"\xc1\xff\x00garbage", ok_pixels],
        "not_a_map": lambda: [msgpack.packb([1, 2, 3])],
        "old_version": lambda: [P.pack({**header, "v": 0}), ok_pixels],
        "unknown_op": lambda: [P.pack({**header, "op": "format_disk"})],
        "huge": lambda: [P.pack({**header, "width": 100_000, "height": 100_000}), ok_pixels],
        "short_frame": lambda: [P.pack(header), ok_pixels[:-1]],
        "long_frame": lambda: [P.pack(header), ok_pixels + b"\0" * 7],
        "wrong_dtype": lambda: [P.pack({**header, "dtype": "f64"}), ok_pixels],
        "dtype_mismatch": lambda: [P.pack({**header, "dtype": "u16"}), ok_pixels],
        "no_frame": lambda: [P.pack(header)],
        "extra_frame": lambda: [P.pack(header), ok_pixels, ok_pixels, ok_pixels],
        "bad_mask": lambda: [P.pack({**header, "mask": True}), ok_pixels, b"\xff" * 31],
        "no_job_id": lambda: [P.pack({**header, "job": None}), ok_pixels],
    }[case]()
    reply = ask(raw, frames, want_id=header["id"])
    assert reply["op"] == "error" and reply["code"] == code, reply
    assert reply["message"][0].isupper() and reply["message"].rstrip().endswith((".", ")"))
    after = client.status()
    assert after["stats"]["jobs_done"] == before["jobs_done"]  # nothing ran
    assert after["queue"]["jobs"] == []


def test_unauthorized_shutdown_is_refused(daemon, raw, client):
    reply = ask(raw, [P.pack({**request(daemon, op="shutdown"), "token": "nope"})])
    assert reply["code"] == P.E_UNAUTHORIZED and "token" in reply["message"]
    assert client.hello()["version"] == P.VERSION


def test_client_with_wrong_token_gets_the_sentence(daemon):
    with daemon.client(token="f" * 64, timeout=5) as c, pytest.raises(ServerError) as err:
        c.hello()
    assert err.value.code == P.E_UNAUTHORIZED and "token" in str(err.value)


def test_client_checks_buffers_before_sending(client):
    with pytest.raises(ServerError, match="needs 96"):
        client.renovate(bytes(95), 8, 4, 3)
    with pytest.raises(ServerError, match="dtype"):
        client.renovate(bytes(96), 8, 4, 3, dtype="f64")


values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=True)
    | st.text(max_size=20)
    | st.binary(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8,
)
fields = st.sampled_from(
    [
        "v",
        "op",
        "id",
        "job",
        "width",
        "height",
        "channels",
        "dtype",
        "stride",
        "mask",
        "options",
        "jobs",
        "session",
    ]
)
ops = st.sampled_from(
    ["hello", "status", "renovate", "cancel", "heartbeat", "bogus", "", None, 3, ["hello"], {"op": "hello"}]
)


@st.composite
def hostile_messages(draw):
    kind = draw(st.sampled_from(["bytes", "header"]))
    if kind == "bytes":
        frames = draw(st.lists(st.binary(max_size=200), min_size=1, max_size=4))
        return frames, None
    header = draw(st.dictionaries(fields, values, max_size=8))
    header["op"] = draw(ops)
    header["id"] = uuid.uuid4().hex
    header.setdefault("v", draw(st.sampled_from([1, 1, 1, 2, "1"])))
    if draw(st.booleans()):
        header["width"] = draw(st.integers(-2, 70_000))
        header["height"] = draw(st.integers(-2, 70_000))
        header["channels"] = draw(st.integers(0, 5))
        header["dtype"] = draw(st.sampled_from(["u8", "u16", "f32", "i8"]))
    data = draw(st.lists(st.binary(max_size=300), max_size=3))
    return header, data


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(message=hostile_messages())
def test_fuzzed_framing_is_answered_and_harmless(daemon, message):
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(daemon.endpoint)
    try:
        header, data = message
        if data is None:  # raw bytes
            reply = ask(sock, header)
            assert reply["op"] == "error"
        else:
            header["token"] = daemon.token
            reply = ask(sock, [msgpack.packb(header, use_bin_type=True), *data], want_id=header["id"])
            assert reply["op"] in ("error", "accepted", header["op"])
            if reply["op"] == "error":
                assert reply["code"] in P.ERROR_CODES and reply["message"]
    finally:
        sock.close(0)


def test_healthy_after_fuzz(client):
    """Runs after the fuzz (file order): the server still answers and still renovates correctly."""
    image, far = sample_photo(4, "u8", seed=5)
    check_pass_through(image, far, client.renovate(image.tobytes(), image.shape[1], image.shape[0], 4))
    assert client.status()["weights"]["cpu"]["state"] == "ready"
