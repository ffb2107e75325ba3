"""The preview operation end to end (issue #23): a real daemon, real photos from ``../shared/data/photos``, the
embedded weights (fidelity must change the face) and the ``identity`` weights where only the plumbing is tested."""

from __future__ import annotations

import subprocess
from pathlib import Path

import msgpack
import numpy as np
import pytest

from hifacegan_server import protocol as P
from hifacegan_server.client import ServerError
from hifacegan_server.testing import DaemonProcess, ask_raw, client_argv, raw_dealer


def _pixels(path: Path) -> np.ndarray:
    from hifacegan.imageio import read_photo

    return np.ascontiguousarray(read_photo(path).pixels)


def _crops(shown, dtype) -> tuple[np.ndarray, np.ndarray]:
    shape = (shown.height, shown.width, shown.channels)
    return tuple(np.frombuffer(buf, dtype=dtype).reshape(shape) for buf in (shown.before, shown.after))


@pytest.fixture(scope="module")
def daemon():
    with DaemonProcess(weights="default", threads=1) as d:
        yield d


@pytest.fixture(scope="module")
def identity():
    with DaemonProcess(weights="identity", threads=1) as d:
        yield d


@pytest.fixture(scope="module")
def solvay(solvay_photo: Path) -> np.ndarray:
    return _pixels(solvay_photo)


def _preview(d: DaemonProcess, image: np.ndarray, **kwargs):
    height, width, channels = image.shape
    with d.client() as c:
        return c.preview(image, width, height, channels, **kwargs)


def _inside(point, box) -> bool:
    x, y = point
    return box[0] <= x <= box[2] and box[1] <= y <= box[3]


def test_largest_face_and_the_face_at_a_point(daemon, solvay):
    largest = _preview(daemon, solvay, fidelity=0.5)
    x0, y0, x1, y1 = largest.window
    assert (largest.width, largest.height) == (x1 - x0, y1 - y0) and largest.channels == solvay.shape[2]
    before, after = _crops(largest, np.uint8)
    np.testing.assert_array_equal(before, solvay[y0:y1, x0:x1])  # the photo's own pixels, untouched
    assert not np.array_equal(before, after)
    box = largest.face["box"]
    assert _inside(((box[0] + box[2]) / 2, (box[1] + box[3]) / 2), largest.window)
    assert largest.face_count >= 20 and isinstance(largest.face["path"], dict)  # 29 faces in the Solvay photo

    at = (400.0, 230.0)
    other = _preview(daemon, solvay, fidelity=0.5, at=at, key="solvay")
    assert other.index != largest.index and other.face_count == largest.face_count
    x0, y0, x1, y1 = other.window
    ob = other.face["box"]
    # the face under the point (or the nearest one), smaller than the largest
    assert _inside(at, other.window)
    assert (ob[2] - ob[0]) * (ob[3] - ob[1]) <= (box[2] - box[0]) * (box[3] - box[1])
    np.testing.assert_array_equal(_crops(other, np.uint8)[0], solvay[y0:y1, x0:x1])
    again = _preview(daemon, solvay, fidelity=0.5, at=at, key="solvay")
    assert again.cached and again.window == other.window


def test_fidelity_0_and_1_give_different_afters(daemon, solvay):
    low = _preview(daemon, solvay, fidelity=0.0)
    high = _preview(daemon, solvay, fidelity=1.0)
    assert low.window == high.window and high.cached
    (before_low, after_low), (before_high, after_high) = _crops(low, np.uint8), _crops(high, np.uint8)
    np.testing.assert_array_equal(before_low, before_high)
    assert np.abs(after_low.astype(int) - after_high.astype(int)).mean() > 0.1


def test_grey_16_bit_photo_keeps_its_dtype_and_channels(identity, solvay):
    grey = (solvay[..., :3].mean(axis=2) * 257).astype(np.uint16)[..., None]
    shown = _preview(identity, np.ascontiguousarray(grey), dtype="u16")
    assert shown.dtype == "u16" and shown.channels == 1 and shown.stride == shown.width * 2
    x0, y0, x1, y1 = shown.window
    np.testing.assert_array_equal(_crops(shown, np.uint16)[0], grey[y0:y1, x0:x1])


def test_a_photo_without_a_face_gets_no_face(identity, shared_data):
    scenery = _pixels(shared_data / "photos" / "solvay_conference_1927.png")[:60, :60]  # a corner: no face
    blank = np.full((240, 320, 3), 128, np.uint8)
    for image in (blank, np.ascontiguousarray(scenery)):
        with pytest.raises(ServerError) as err:
            _preview(identity, image)
        assert err.value.code == P.E_NO_FACE, err.value
        assert "no face" in str(err.value).lower() and str(err.value).endswith(".")
    with identity.client() as c:
        assert P.E_NO_FACE in c.hello()["capabilities"]["errors"]
        assert P.OP_PREVIEW in c.hello()["capabilities"]["ops"]


@pytest.mark.parametrize(
    ("fields", "frames", "code"),
    [
        ({"at": "the middle"}, None, P.E_BAD_REQUEST),
        ({"at": [1.0]}, None, P.E_BAD_REQUEST),
        ({"at": [float("nan"), 3.0]}, None, P.E_BAD_REQUEST),
        ({"key": 12}, None, P.E_BAD_REQUEST),
        ({"mask": True}, None, P.E_BAD_REQUEST),
        ({"job": None}, None, P.E_BAD_REQUEST),
        ({"options": {"faces": "all"}}, None, P.E_BAD_OPTION),
        ({"options": {"fidelity": 2}}, None, P.E_BAD_OPTION),
        ({}, [b"short"], P.E_BAD_FRAME),
        ({"chunks": 3}, None, P.E_BAD_FRAME),
    ],
)
def test_malformed_previews_are_refused_and_the_daemon_keeps_serving(identity, solvay, fields, frames, code):
    height, width, channels = solvay.shape
    header = {
        "v": 1,
        "op": "preview",
        "id": 7,
        "token": identity.token,
        "session": "malformed",
        "job": f"bad-{code}-{sorted(fields)}",
        "width": width,
        "height": height,
        "channels": channels,
        "dtype": "u8",
        **fields,
    }
    with raw_dealer(identity.endpoint, identity) as sock:
        reply = ask_raw(sock, [msgpack.packb(header), *(frames or [solvay.tobytes()])], want_id=7)
    assert reply["op"] == "error" and reply["code"] == code, reply
    assert reply["message"].endswith(".")
    assert _preview(identity, solvay).width > 0  # still serving


def test_cli_writes_a_before_after_png_whose_halves_differ(daemon, solvay_photo, tmp_path):
    from PIL import Image

    out = tmp_path / "preview.png"
    cmd = client_argv("--endpoint", daemon.endpoint, "preview", str(solvay_photo))
    run = subprocess.run(
        [*cmd, "-o", str(out), "--fidelity", "0.3", "--at", "700,220"],
        env=daemon.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert "before | after" in run.stdout
    picture = np.asarray(Image.open(out))
    half = (picture.shape[1] - 8) // 2
    before, gap, after = picture[:, :half], picture[:, half : half + 8], picture[:, half + 8 :]
    assert before.shape == after.shape and (gap == 255).all()
    changed = np.any(before != after, axis=-1) if before.ndim == 3 else before != after
    assert changed.mean() > 0.1, changed.mean()  # the face in the window, not a stray pixel


def test_progress_tells_the_faces_in_the_order_they_happen(identity, solvay):
    height, width, channels = solvay.shape
    texts: list[str] = []
    with identity.client() as c:
        c.renovate(solvay, width, height, channels, progress=lambda fraction, text: texts.append(text))
    faces = [t for t in texts if t.startswith(("Renovating", "Blending"))]
    assert texts[0] == "Loading weights" and texts[1] == "Detecting faces" and texts[-1].startswith("Done: ")
    assert faces and all(" of " in t for t in faces), texts
    assert faces[0].startswith("Renovating faces 1-") and faces[1].startswith("Blending faces 1-")
