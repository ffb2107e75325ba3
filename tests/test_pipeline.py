"""Renovator end to end on real photos, with small random lite weights (the checks are geometry, not beauty)."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from hifacegan.imageio import read_photo
from hifacegan.pipeline import Cancelled, Renovator, WeightsUnavailable


def make_lite_weights(
    folder: Path, ngf: int = 4, seed: int = 0, configs: tuple[str, str] = ("hifacegan-lite-128",) * 2
) -> tuple[Path, Path]:
    """A perceptual/fidelity pair of random lite weights (``configs``) that name each other as partners."""
    from hifacegan.models import build_generator
    from hifacegan.weights import FFHQ_TEMPLATE_512, ModelCard, save_weights, scale_template

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, (name, role, partner) in enumerate(
        [("test-lite", "perceptual", "test-lite-fidelity"), ("test-lite-fidelity", "fidelity", "test-lite")]
    ):
        torch.manual_seed(seed + k)
        generator = build_generator(configs[k], ngf=ngf)
        with torch.no_grad():  # the release's init (gain 0.02) outputs a flat gray: make the two ends differ
            for param in generator.parameters():
                if param.dim() == 4:
                    torch.nn.init.xavier_normal_(param, gain=1.0)
        card = ModelCard(
            name=name,
            config=configs[k],
            config_overrides={"ngf": ngf},
            size=128,
            template=scale_template(FFHQ_TEMPLATE_512, 512, 128),
            role=role,
            partner=partner,
        )
        path = folder / f"{name}.safetensors"
        save_weights(path, generator, card)
        paths.append(path)
    return paths[0], paths[1]


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("weights")
    make_lite_weights(folder)
    old = os.environ.get("HIFACEGAN_WEIGHTS_DIR")
    os.environ["HIFACEGAN_WEIGHTS_DIR"] = str(folder)
    yield folder
    if old is None:
        os.environ.pop("HIFACEGAN_WEIGHTS_DIR", None)
    else:
        os.environ["HIFACEGAN_WEIGHTS_DIR"] = old


@pytest.fixture(scope="module")
def renovator(weights_dir) -> Renovator:
    return Renovator("test-lite", device="cpu", detector="retinaface_mobile0.25", batch_size=8, parsing="off")


@pytest.fixture(scope="module")
def identity() -> Renovator:
    """The whole pipeline without the network: for checks of face choice, regions and cancelling."""
    return Renovator("identity", device="cpu", detector="retinaface_mobile0.25", parsing="off")


@pytest.fixture(scope="module")
def small_photo(shared_data) -> np.ndarray:
    return read_photo(shared_data / "photos" / "codeformer_01.jpg").pixels  # 248x189, 4 faces


def _far_from_faces(shape, boxes) -> np.ndarray:
    """Pixels farther than a face box's own size from every face box."""
    ys, xs = np.mgrid[: shape[0], : shape[1]]
    far = np.ones(shape[:2], bool)
    for x0, y0, x1, y1 in boxes:
        size = max(x1 - x0, y1 - y0)
        dx = np.maximum(np.maximum(x0 - xs, xs - x1), 0)
        dy = np.maximum(np.maximum(y0 - ys, ys - y1), 0)
        far &= np.hypot(dx, dy) > size
    return far


def test_solvay_photo(renovator, solvay_photo):
    photo = read_photo(solvay_photo)
    stages = []
    result = renovator(photo.pixels, fidelity=0.3, report=lambda state: stages.append(state.stage))
    image, original = result.image, photo.pixels
    assert image.shape == original.shape and image.dtype == original.dtype
    renovated = [f for f in result.faces if f.renovated]
    assert len(result.faces) >= 25 and len(renovated) >= 25
    boxes = [f.box for f in result.faces]
    far = _far_from_faces(original.shape, boxes)
    assert far.mean() > 0.2  # the check covers a real part of the photo
    assert np.array_equal(image[far], original[far])
    assert np.array_equal(image[..., 3], original[..., 3])  # alpha bit for bit
    for face in renovated:
        x0, y0, x1, y1 = (int(round(v)) for v in face.box)
        assert not np.array_equal(image[y0:y1, x0:x1], original[y0:y1, x0:x1])
    # black-and-white photo stays black and white
    rgb = image[..., :3].astype(int)
    assert (
        np.abs(rgb[..., 0] - rgb[..., 1]).max()
        <= np.abs(original[..., 0].astype(int) - original[..., 1]).max() + 2
    )
    assert set(stages) == {"detect", "renovate", "paste", "done"} and stages[-1] == "done"
    assert set(result.timings) >= {"detect", "align", "network", "paste"}


def test_grayscale_photo_stays_grayscale(renovator, small_photo):
    gray = cv2.cvtColor(small_photo, cv2.COLOR_RGB2GRAY)
    result = renovator(gray)
    assert result.image.shape == gray.shape and result.image.dtype == np.uint8
    assert result.renovated >= 3
    assert not np.array_equal(result.image, gray)


def test_rgba_keeps_alpha_exactly(renovator, small_photo):
    alpha = np.random.default_rng(0).integers(0, 256, small_photo.shape[:2], dtype=np.uint8)
    rgba = np.dstack([small_photo, alpha])
    result = renovator(rgba)
    assert result.renovated >= 3
    assert np.array_equal(result.image[..., 3], alpha)


def test_16_bit_comes_back_16_bit(renovator, small_photo):
    deep = small_photo.astype(np.uint16) * 257
    result = renovator(deep)
    assert result.image.dtype == np.uint16 and result.renovated >= 3
    changed = result.image != deep
    assert changed.any()
    # renovated values use the full 16-bit range, not just multiples of 257
    assert (result.image[changed] % 257 != 0).any()


def test_float_images_work(renovator, small_photo):
    image = small_photo.astype(np.float32) / 255
    result = renovator(image)
    assert result.image.dtype == np.float32 and result.renovated >= 3


def test_photo_without_faces_is_returned_unchanged(identity):
    noise = cv2.GaussianBlur(
        np.random.default_rng(2).integers(0, 255, (200, 300, 3), dtype=np.uint8), (0, 0), 3
    )
    result = identity(noise)
    assert result.faces == [] and np.array_equal(result.image, noise)
    assert any("no face" in note for note in result.notes)


def test_face_choices(identity, small_photo):
    largest = identity(small_photo, faces="largest")
    assert largest.renovated == 1
    assert all("largest" in f.reason for f in largest.faces if not f.renovated)
    centre = identity(small_photo, faces="center", max_faces=None)
    assert centre.renovated == 1
    two = identity(small_photo, max_faces=2)
    assert two.renovated == 2
    none = identity(small_photo, min_face_size=10_000)
    assert none.renovated == 0 and np.array_equal(none.image, small_photo)
    assert all("min_face_size" in f.reason for f in none.faces)


def test_region_limits_faces_and_pixels(identity, small_photo):
    all_faces = identity(small_photo).faces
    target = all_faces[0]
    x0, y0, x1, y1 = (int(round(v)) for v in target.box)
    region = np.zeros(small_photo.shape[:2], np.uint8)
    region[max(0, y0 - 5) : y1 + 5, max(0, x0 - 5) : x1 + 5] = 255
    result = identity(small_photo, region=region)
    assert result.renovated >= 1
    skipped = [f for f in result.faces if not f.renovated]
    assert len(skipped) >= 2 and all("region" in f.reason for f in skipped)
    assert np.array_equal(result.image[region == 0], small_photo[region == 0])
    with pytest.raises(ValueError, match="region"):
        identity(small_photo, region=np.zeros((5, 5), np.uint8))


def test_fidelity_blends_two_networks_and_caches_them(renovator, small_photo):
    blender = renovator.blender
    assert blender.has_slider
    low, mid, high = (renovator(small_photo, fidelity=f).image for f in (0.0, 0.5, 1.0))
    assert not np.array_equal(low, high) and not np.array_equal(mid, low) and not np.array_equal(mid, high)
    net = blender.network(0.5)
    assert blender.network(0.5) is net  # cached per value
    ends = (blender.network(0.0).state_dict(), blender.network(1.0).state_dict())
    for key, value in net.state_dict().items():
        if value.is_floating_point():
            assert torch.allclose(value, (ends[0][key] + ends[1][key]) / 2, atol=1e-6)


def test_slider_refuses_a_partner_built_differently(tmp_path, small_photo, caplog):
    """A residual and a plain generator share every tensor name: blending them must not happen silently."""
    folder = tmp_path / "mixed"
    make_lite_weights(folder, configs=("hifacegan-lite-128", "hifacegan-lite-128-residual"))
    old = os.environ.get("HIFACEGAN_WEIGHTS_DIR")
    os.environ["HIFACEGAN_WEIGHTS_DIR"] = str(folder)
    try:
        mixed = Renovator("test-lite", device="cpu", detector="retinaface_mobile0.25", parsing="off")
    finally:
        if old is None:
            os.environ.pop("HIFACEGAN_WEIGHTS_DIR", None)
        else:
            os.environ["HIFACEGAN_WEIGHTS_DIR"] = old
    assert not mixed.blender.has_slider and mixed.partner_name is None
    assert "different network" in caplog.text
    low, high = (mixed(small_photo, fidelity=f).image for f in (0.0, 1.0))
    np.testing.assert_array_equal(low, high)  # one network whatever the slider says


def test_one_cancel_token_stops_between_faces_and_leaves_the_photo(identity, small_photo):
    from hifacegan.pipeline import CancelToken, Progress

    small_batches = Renovator.__new__(Renovator)
    small_batches.__dict__.update(identity.__dict__)
    small_batches.batch_size = 1
    token = CancelToken()
    seen: list[Progress] = []

    def report(state: Progress) -> None:  # a host's Cancel pressed while the second face is blended
        seen.append(state)
        if state.stage == "paste" and state.first == 2:
            token.cancel("the user pressed Cancel")

    before = small_photo.copy()
    with pytest.raises(Cancelled, match="after 2 of"):
        small_batches(small_photo, cancel=token, report=report)
    assert np.array_equal(small_photo, before) and token.reason == "the user pressed Cancel"
    assert [s.stage for s in seen][-1] == "paste"  # stopped before the third batch began
    with pytest.raises(Cancelled, match="before it started"):
        identity(small_photo, cancel=token)


def test_the_older_stop_and_progress_callbacks_still_work_with_a_warning(identity, small_photo):
    calls = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) > 1

    small_batches = Renovator.__new__(Renovator)
    small_batches.__dict__.update(identity.__dict__)
    small_batches.batch_size = 1
    with pytest.warns(DeprecationWarning, match="CancelToken"), pytest.raises(Cancelled):
        small_batches(small_photo, cancel=cancel)
    stages = []
    with pytest.warns(DeprecationWarning, match="report="):
        identity(small_photo, progress=lambda stage, fraction: stages.append(stage))
    assert stages[0] == "detect" and stages[-1] == "paste"


def test_bad_inputs_are_refused_clearly(identity):
    with pytest.raises(ValueError, match="fidelity"):
        identity(np.zeros((10, 10, 3), np.uint8), fidelity=2)
    with pytest.raises(ValueError, match="uint8"):
        identity(np.zeros((10, 10, 3), np.int32))
    with pytest.raises(ValueError, match="faces"):
        identity(np.zeros((10, 10, 3), np.uint8), faces="biggest")


def test_missing_weights_say_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("HIFACEGAN_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(WeightsUnavailable, match="hifacegan weights"):
        Renovator("no-such-weights", device="cpu")


def test_identity_weights_skip_the_network(identity, small_photo):
    result = identity(small_photo)
    assert identity.blender is None and result.renovated >= 3
    assert result.timings["network"] < 0.01
    # faces pass through unchanged: only resampling differences remain, where the faces were pasted
    difference = np.abs(result.image.astype(int) - small_photo)
    pasted = difference.max(axis=2) > 0
    assert 0 < pasted.mean() < 0.8
    # measured 2.25 with the context crop on 26k pixels, 2.28 with the tight crop on 17k (bicubic up, area down)
    assert difference[pasted].mean() < 2.5


def test_device_selection_is_explicit_about_what_is_missing():
    from hifacegan.devices import inference_dtype, select_device

    assert select_device("cpu").type == "cpu"
    assert select_device("auto").type in ("cpu", "cuda", "mps")
    assert inference_dtype(torch.device("cpu")) == torch.float32
    with pytest.raises(ValueError, match="not a device"):
        select_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            select_device("cuda")


def test_progress_follows_the_work_in_order(renovator, solvay_photo):
    """Stages are reported in the order they happen, with "faces n of N" counts that only rise and reach N."""
    from hifacegan.pipeline import Progress

    photo = read_photo(solvay_photo)
    legacy: list[tuple[str, float]] = []
    states: list[Progress] = []
    with pytest.warns(DeprecationWarning):
        result = renovator(
            photo.pixels, fidelity=0.5, progress=lambda s, f: legacy.append((s, f)), report=states.append
        )
    total = sum(1 for f in result.faces if f.renovated)
    assert total >= 25
    stages = [s.stage for s in states]
    batches = -(-total // renovator.batch_size)
    assert stages == ["detect"] + ["renovate", "paste"] * batches + ["done"]
    faces = [s for s in states if s.stage in ("renovate", "paste")]
    assert all(s.total == total for s in faces)
    assert [s.done for s in states] == sorted(s.done for s in states)  # never backwards
    assert [(s.first, s.last) for s in faces[::2]] == [
        (k + 1, min(k + renovator.batch_size, total)) for k in range(0, total, renovator.batch_size)
    ]
    assert states[-1].done == total and states[-1].fraction == 1.0
    assert faces[0].text == f"Renovating faces 1-{renovator.batch_size} of {total}"
    assert faces[1].text.startswith(f"Blending faces 1-{renovator.batch_size} of {total} back")
    assert faces[2].remaining is not None and faces[0].remaining is None
    # the older callback: the stages end in order, each fraction within a stage rising to 1
    order = [s for k, (s, _) in enumerate(legacy) if k == 0 or legacy[k - 1][0] != s]
    assert order == ["detect", "renovate", "paste"]
    for stage in ("detect", "renovate", "paste"):
        fractions = [f for s, f in legacy if s == stage]
        assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert Progress("renovate", 0, 29, 3, 3, 1.0, 40.0).text == "Renovating face 3 of 29 (about 40 s left)"
    assert Progress("done").text == "Done: no face to renovate"


def test_folding_spectral_norm_keeps_the_eval_output_and_removes_every_hook() -> None:
    import torch
    from torch.nn.utils.spectral_norm import SpectralNorm

    from hifacegan.pipeline.fidelity import fold_spectral_norm

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.utils.spectral_norm(torch.nn.Conv2d(3, 4, 3)), torch.nn.ReLU(), torch.nn.Conv2d(4, 2, 1)
    )
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        model.train()(x)  # one power iteration, as training leaves it
        expected = model.eval()(x)
    folded = fold_spectral_norm(model)
    hooks = [
        h for m in folded.modules() for h in m._forward_pre_hooks.values() if isinstance(h, SpectralNorm)
    ]
    assert hooks == []
    assert any(isinstance(h, SpectralNorm) for h in model[0]._forward_pre_hooks.values()), (
        "the original is kept"
    )
    with torch.no_grad():
        torch.testing.assert_close(folded(x), expected)


def test_a_renovator_leaves_the_process_thread_count_alone():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert Renovator("identity", "cpu", damage="off").threads == 2
        assert torch.get_num_threads() == 2  # the program that owns the process sets it, not the constructor
        Renovator("identity", "cpu", damage="off", threads=1)
        assert torch.get_num_threads() == 1  # unless asked to
    finally:
        torch.set_num_threads(before)


def test_the_slider_takes_more_of_the_network_face_toward_its_perceptual_end():
    """From the middle of the slider up, a face takes the share its degradation sets; toward 0 more, up to all of
    it; a face measured as sharp keeps every pixel wherever the slider is."""
    from hifacegan.pipeline.fidelity import slider_share

    assert slider_share(0.0, 0.0) == slider_share(0.0, 1.0) == 0.0
    assert slider_share(0.3, 1.0) == slider_share(0.3, 0.5) == pytest.approx(0.3)
    assert slider_share(0.3, 0.25) == pytest.approx(0.65)
    assert slider_share(0.3, 0.0) == pytest.approx(1.0) and slider_share(1.0, 0.0) == 1.0


def test_each_face_reports_the_share_it_took_at_the_slider(renovator, small_photo):
    low, high = (renovator(small_photo, fidelity=f) for f in (0.0, 1.0))
    for face_low, face_high in zip(low.faces, high.faces, strict=True):
        if face_low.renovated:
            path_low, path_high = face_low.path, face_high.path
            assert path_high["share"] == path_high["degradation"]
            assert path_low["share"] == (1.0 if path_low["degradation"] > 0 else 0.0)
