"""The damage detector's network, training, weights, and the fill that removes damage (issue #33)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hifacegan.damage import DamageDetector, build_detector, detector_path
from hifacegan.damage.data import DamageSamples, film_grain, make_sample
from hifacegan.damage.removal import clean_photo, face_window, fill, find_damage, thin_parts
from hifacegan.damage.train import DetectorTraining, f1_score, train_detector
from hifacegan.data.files import read_rgb8
from hifacegan.degradations import degrade_with_mask, fit_to_size, rng_for
from hifacegan.pipeline import Renovator
from hifacegan.weights import WeightsError
from hifacegan.weights.store import resolve


def require_detector() -> None:
    """The embedded detector ships with the package: its absence is a packaging fault, not a skip."""
    detector_path()  # raises WeightsError naming what exists


@pytest.fixture(scope="module")
def portrait(shared_data: Path) -> np.ndarray:
    path = sorted((shared_data / "faces-hires" / "ffhq-1024").glob("*"))[3]
    return fit_to_size(read_rgb8(path)[0], 256)


@pytest.mark.parametrize("size", [(37, 53), (128, 128), (200, 96)])
def test_the_network_runs_at_any_size(size):
    network = build_detector("damage-unet-8").eval()
    assert network(torch.rand(2, 3, *size)).shape == (2, 1, *size)
    assert (
        sum(p.numel() for p in build_detector().parameters()) * 2 < 5 * 2**20
    )  # under 5 MB in half precision
    with pytest.raises(ValueError, match="damage-unet-16"):
        build_detector("unet-huge")


def test_fill_keeps_every_pixel_outside_the_grown_mask(portrait):
    damaged, mask, params = degrade_with_mask(portrait, "damage", rng=rng_for(0, "face-3"))
    grown = np.zeros_like(mask)
    ys, xs = np.nonzero(mask)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            grown[np.clip(ys + dy, 0, 255), np.clip(xs + dx, 0, 255)] = True
    layouts = {
        "rgb8": damaged,
        "rgba8": np.dstack([damaged, np.full(mask.shape, 200, np.uint8)]),
        "grey16": damaged[..., 0].astype(np.uint16) * 257,
        "rgb-float": damaged.astype(np.float32) / 255,
    }
    for name, pixels in layouts.items():
        out = fill(pixels, mask)
        assert out.dtype == pixels.dtype and out.shape == pixels.shape, name
        assert np.array_equal(out[~grown], pixels[~grown]), name
        assert not np.array_equal(out[mask], pixels[mask]), name
    assert np.array_equal(fill(layouts["rgba8"], mask)[..., 3], layouts["rgba8"][..., 3])  # alpha kept
    if "fade" not in params and "cast" not in params:
        before = np.abs(damaged.astype(float) - portrait)[mask].mean()
        after = np.abs(fill(damaged, mask).astype(float) - portrait)[mask].mean()
        assert after < 0.35 * before


def test_a_face_window_is_its_box_grown_and_clipped():
    assert face_window((10, 20, 50, 100), (90, 60)) == (0, 0, 60, 90)
    assert face_window((100, 100, 140, 160), (400, 400)) == (90, 85, 150, 175)


def test_clean_photo_fills_only_around_chosen_faces_and_within_the_selection(portrait, monkeypatch):
    import hifacegan.damage.removal as removal

    damaged, mask, _ = degrade_with_mask(portrait, "damage", rng=rng_for(2, "face-3"))
    monkeypatch.setattr(
        removal,
        "find_damage",
        lambda photo, w, detector: removal.DamageFound(w, mask[w[1] : w[3], w[0] : w[2]]),
    )
    box = (96.0, 96.0, 160.0, 160.0)
    photo = damaged.copy()
    (found,) = clean_photo(photo, [box], detector=None, scope="faces")
    x0, y0, x1, y1 = face_window(box, mask.shape)
    outside = np.ones(mask.shape, bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(photo[outside], damaged[outside])  # nothing away from the face changes
    assert found.area == int(mask[y0:y1, x0:x1].sum()) and 0 < found.share < 1
    selected = np.zeros(mask.shape, bool)
    selected[:, :128] = True
    photo = damaged.copy()
    clean_photo(photo, [box], detector=None, scope="faces", region=selected)
    assert np.array_equal(photo[:, 128:], damaged[:, 128:])
    photo = damaged.copy()
    assert clean_photo(photo, [box], detector=None, scope="off")[0].area == 0 and np.array_equal(
        photo, damaged
    )


def test_training_samples_mix_negatives_and_damage(shared_data):
    rng = np.random.default_rng(0)
    clean = read_rgb8(sorted((shared_data / "faces-val").glob("*"))[0])[0]
    looks = [make_sample(clean, 64, rng)[2] for _ in range(60)]
    assert sum("+damage" in look for look in looks) > 25 and sum("+damage" not in look for look in looks) > 10
    grainy = film_grain(clean, np.random.default_rng(1))
    assert grainy.shape == clean.shape and 2 < np.abs(grainy.astype(float) - clean).mean() < 15
    samples = DamageSamples([shared_data / "faces-val"], 64, seed=3, start=10, count=4)
    again = DamageSamples([shared_data / "faces-val"], 64, seed=3, start=12, count=2)
    assert torch.equal(
        samples[2]["image"], again[0]["image"]
    )  # sample 12 is sample 12, wherever a run starts


def test_f1_pools_pixels():
    truth = np.zeros((4, 4), bool)
    truth[0] = True
    predicted = np.zeros((4, 4), bool)
    predicted[0, :2] = predicted[1, 0] = True
    f1, precision, recall = f1_score(predicted, truth)
    assert (precision, recall) == (2 / 3, 0.5) and f1 == pytest.approx(4 / 7)


def test_a_short_run_exports_a_detector_that_loads_and_resumes(tmp_path, shared_data):
    settings = DetectorTraining(
        sources=[str(shared_data / "faces-val")],
        held_out=[str(shared_data / "faces-val")],
        config="damage-unet-8",
        size=64,
        batch_size=2,
        steps=4,
        eval_every=2,
        eval_samples=4,
    )
    run = tmp_path / "run"
    train_detector(
        run, settings, max_minutes=1e-6, log=lambda line: None, progress=False
    )  # stops after its first step
    assert torch.load(run / "checkpoints" / "last.pt", weights_only=True)["step"] == 1
    with pytest.raises(FileExistsError, match="--resume"):
        train_detector(run, settings)
    scores = train_detector(
        run, resume=True, log=lambda line: None, progress=False
    )  # the stored settings: only the folder
    assert torch.load(run / "checkpoints" / "last.pt", weights_only=True)["step"] == 4
    assert set(scores) == {"f1", "precision", "recall", "clean_marked"}
    detector = DamageDetector(run / "damage-unet.safetensors")
    assert detector.card.role == "damage-detector" and detector.card.training["samples"] == 8
    assert detector(np.zeros((50, 70, 3), np.uint8)).shape == (50, 70)
    assert (run / "scalars.csv").read_text().count("\n") == 3  # a header and the evaluations at steps 2 and 4


def test_face_weights_are_not_a_detector():
    with pytest.raises(WeightsError, match="not a damage detector"):
        DamageDetector(resolve("hifacegan-lite-fidelity").path)
    with pytest.raises(WeightsError, match="no damage detector"):
        detector_path("no-such-detector")


def test_only_thin_marks_count_as_damage():
    mask = np.zeros((200, 200), bool)
    mask[20:23, 10:190] = True  # a scratch 3 px wide
    mask[100:130, 60:120] = True  # a blob 30 px thick: a mouth the detector mistook
    mask[170, 170] = True  # a speck
    kept = thin_parts(mask, max_width=8)
    assert kept[21, 100] and kept[170, 170] and not kept[115, 90]
    assert kept.sum() == 3 * 180 + 1


@pytest.fixture(scope="module")
def sharp_portrait(shared_data: Path) -> np.ndarray:
    """A clean studio portrait (London face set, CC BY 4.0) at long side 512: a sharp face of about 250 px."""
    from hifacegan.evaluation.pipeline_eval import fit_long_side

    return fit_long_side(
        read_rgb8(shared_data / "faces-hires" / "london-1024" / "neutral_021_03.jpg")[0], 512
    )


def draw_scratch(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A light crack 3 px wide across the cheek, nose and brow, as on a scanned print; and its mask."""
    import cv2

    mask = np.zeros(image.shape[:2], np.uint8)
    points = np.array([[170, 330], [215, 290], [250, 262], [290, 230], [335, 205], [360, 170]], np.int32)
    cv2.polylines(mask, [points.reshape(-1, 1, 2)], False, 255, thickness=3, lineType=cv2.LINE_AA)
    alpha = mask.astype(np.float32)[..., None] / 255.0
    scratched = np.rint(image * (1 - alpha) + 235.0 * alpha).astype(np.uint8)
    return scratched, mask > 0


def test_a_sharp_face_with_a_drawn_scratch_comes_back_without_it(sharp_portrait):
    import cv2

    require_detector()
    scratched, mask = draw_scratch(sharp_portrait)
    renovator = Renovator("default", "cpu", damage="faces")
    result = renovator(scratched, fidelity=0.5)
    (face,) = [f for f in result.faces if f.renovated]
    assert face.path["damage"]["area"] > 0.5 * mask.sum()
    before = np.abs(scratched.astype(float) - sharp_portrait)[mask].mean()
    after = np.abs(result.image.astype(float) - sharp_portrait)[mask].mean()
    assert after < 0.25 * before, (before, after)  # the crack is gone
    near = cv2.dilate(mask.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    x0, y0, x1, y1 = (int(v) for v in face.box)
    rest = ~near[y0:y1, x0:x1]
    same = (result.image[y0:y1, x0:x1] == scratched[y0:y1, x0:x1]).all(axis=2)[rest]
    # The rest of the face's box keeps its bytes but where the detector marked a few stray pixels (measured: 183
    # of 36,215 changed, 99.5% identical, 42.8 dB), and the face is kept: it looked sharp once the crack was gone.
    assert same.mean() > 0.99 and face.path["degradation"] == 0
    error = np.abs(result.image.astype(float) - scratched)[y0:y1, x0:x1][rest]
    assert 10 * np.log10(255**2 / max(float(np.mean(error**2)), 1e-12)) > 40
    kept = Renovator("default", "cpu", damage="off")(scratched, fidelity=0.5).image
    assert np.abs(kept.astype(float) - sharp_portrait)[mask].mean() > 0.8 * before  # off: the crack stays


def test_a_clean_sharp_portrait_stays_byte_for_byte(shared_data):
    """At 1024 px, where the issue's clean portraits are scored: the detector's stray marks stay under the gate."""
    require_detector()
    portrait = read_rgb8(shared_data / "faces-hires" / "london-1024" / "neutral_021_03.jpg")[0]
    result = Renovator("default", "cpu", damage="faces")(portrait, fidelity=0.5)
    assert np.array_equal(result.image, portrait)
    assert [f.changed for f in result.faces] == [False]


def test_stray_marks_seen_at_one_scale_only_are_not_damage(shared_data):
    """FFHQ 01086, clean, at 1024 px: at its own resolution the detector marks over 10,000 pixels of hair and skin
    around the face (measured: 10,447 after the width filter), which a second look at the whole face shrunk to
    256 px does not confirm. The pipeline's two looks leave the face alone."""
    from hifacegan.face.detection import FaceDetector

    require_detector()
    photo = read_rgb8(shared_data / "faces-hires" / "ffhq-1024" / "01086.jpg")[0]
    face = max(FaceDetector("auto")(photo), key=lambda f: f.size)
    window = face_window(tuple(face.box), photo.shape[:2])
    detector = DamageDetector()
    assert find_damage(photo, window, detector, face=False).area > 3000  # one look: a clean face "damaged"
    assert find_damage(photo, window, detector).area == 0


def test_the_full_resolution_look_runs_only_around_the_coarse_marks(shared_data):
    """The second look at a face's window runs the network near the first look's marks only, and marks what one
    pass over the whole window marks (FFHQ 01086 at 1024 px: measured 0.59 of the window's pixels run, against
    1.18 for tiles laid over the window, and the same 1,880 marks)."""
    from hifacegan.damage.detector import COARSE_AGREEMENT
    from hifacegan.face.detection import FaceDetector

    require_detector()
    photo = read_rgb8(shared_data / "faces-hires" / "ffhq-1024" / "01086.jpg")[0]
    face = max(FaceDetector("auto")(photo), key=lambda f: f.size)
    x0, y0, x1, y1 = face_window(tuple(face.box), photo.shape[:2])
    window = np.ascontiguousarray(photo[y0:y1, x0:x1])
    detector = DamageDetector()
    marks = detector.coarse_probability(window) >= detector.threshold * COARSE_AGREEMENT
    assert 0 < marks.mean() < 0.2
    pixels_run = []
    hook = detector.network.register_forward_pre_hook(
        lambda _module, inputs: pixels_run.append(inputs[0].shape[-2] * inputs[0].shape[-1])
    )
    try:
        near = detector.probability_near(window, marks)
    finally:
        hook.remove()
    assert sum(pixels_run) < 0.75 * marks.size
    assert not near[~marks].any()
    with torch.inference_mode():
        whole = torch.from_numpy(window.transpose(2, 0, 1).copy()).float().div(255.0)[None]
        reference = torch.sigmoid(detector.network(whole))[0, 0].numpy() >= detector.threshold
    found = near >= detector.threshold
    assert (found ^ (reference & marks)).sum() <= max(5, 0.01 * (reference & marks).sum())
