"""One face's preview (hifacegan.pipeline.preview) on real photos with the real embedded weights.

The preview must be the full pipeline's pixels for that face (same path: alignment with context, band merge, colour
match, paste), follow the fidelity, pick the face the user points at, and detect each photo once.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hifacegan.data.files import read_rgb8
from hifacegan.degradations import degrade, rng_for
from hifacegan.evaluation.pipeline_eval import fit_long_side
from hifacegan.imageio import read_photo
from hifacegan.pipeline import FacePreviewer, NoFaceFound, Renovator, side_by_side
from hifacegan.pipeline.preview import choose_face, neighbourhood
from tests.conftest import require


@pytest.fixture(scope="module")
def renovator() -> Renovator:
    # pinned: the CPU and the feathered mask, whatever GPU or parsing weights a machine has (byte-exact tests)
    return Renovator("default", device="cpu", parsing="off", threads=1)


@pytest.fixture(scope="module")
def solvay(solvay_photo: Path) -> np.ndarray:
    return read_photo(solvay_photo).pixels  # 1328x568 RGBA, 29 faces


@pytest.fixture()
def previewer(renovator) -> FacePreviewer:
    return FacePreviewer(renovator)


def _full_run_of_one_face(renovator, previewer, image, index, fidelity) -> np.ndarray:
    """A whole-photo run of ``renovator`` restricted to detection ``index``: its detector finds only that face (a
    region mask would not do: it also multiplies the blend)."""
    detections, _ = previewer.detect(image)
    detector = renovator.detector
    renovator.detector = lambda pixels: [detections[index]]
    try:
        result = renovator(image, fidelity=fidelity)
    finally:
        renovator.detector = detector
    assert result.renovated == 1
    return result.image


def test_fidelity_changes_the_after_and_never_the_before(previewer, solvay):
    low = previewer(solvay, fidelity=0.0)
    high = previewer(solvay, fidelity=1.0)
    assert low.window == high.window and low.index == high.index
    x0, y0, x1, y1 = low.window
    assert np.array_equal(low.before, solvay[y0:y1, x0:x1]) and np.array_equal(high.before, low.before)
    assert low.after.shape == low.before.shape and low.after.dtype == np.uint8
    assert not np.array_equal(low.after, low.before)
    assert np.abs(low.after.astype(int) - high.after.astype(int)).max() > 10
    assert np.array_equal(low.after[..., 3], low.before[..., 3])  # alpha untouched
    # the window is the face box with its margin, inside the photo
    bx0, by0, bx1, by1 = low.box
    assert x0 <= bx0 and y0 <= by0 and x1 >= bx1 and y1 >= by1
    assert low.path["network_size"] == 128 and low.face.renovated
    picture = low.side_by_side(gap=6)
    assert picture.shape == (y1 - y0, 2 * (x1 - x0) + 6, 4)
    assert np.array_equal(picture[:, : x1 - x0], low.before) and np.array_equal(
        picture[:, -(x1 - x0) :], low.after
    )
    assert (picture[:, x1 - x0 : x1 - x0 + 6] == 255).all()


def test_the_after_is_the_full_runs_pixels(renovator, previewer, solvay):
    """Bit for bit: the preview pastes through the same functions, only into a copy of the window."""
    largest = previewer(solvay, fidelity=0.4)
    full = renovator(solvay, fidelity=0.4, faces="largest")
    x0, y0, x1, y1 = largest.window
    assert np.array_equal(largest.after, full.image[y0:y1, x0:x1])

    pointed = previewer(solvay, fidelity=0.7, at=(120, 170))  # a face on the left, not the largest
    assert pointed.index != largest.index
    full = _full_run_of_one_face(renovator, previewer, solvay, pointed.index, 0.7)
    x0, y0, x1, y1 = pointed.window
    assert np.array_equal(pointed.after, full[y0:y1, x0:x1])


def test_a_large_face_goes_through_the_band_merge(renovator, previewer, shared_data):
    folder = shared_data / "faces-hires"
    require(folder.is_dir(), f"{folder} is missing (faces-hires, read from ../shared/data)")
    clean = read_rgb8(folder / "london-1024" / "neutral_021_03.jpg")[0]
    photo = degrade(clean, "full", rng=rng_for(3, "london-1024/neutral_021_03"))
    shown = _preview_is_the_full_run(renovator, previewer, photo)
    assert shown.path["merge"] == "detail"


def test_a_noisy_small_face_is_shown_with_its_surroundings_cleaned(renovator, previewer, shared_data):
    """A noisy face at the network's size pastes over its crop with context: the preview shows that whole paste."""
    folder = shared_data / "faces-hires"
    require(folder.is_dir(), f"{folder} is missing (faces-hires, read from ../shared/data)")
    clean = fit_long_side(read_rgb8(folder / "london-1024" / "neutral_021_03.jpg")[0], 192)
    photo = degrade(clean, "denoise", rng=rng_for(0, "london-1024/neutral_021_03.jpg"))
    shown = _preview_is_the_full_run(renovator, previewer, photo)
    assert shown.path["merge"] == "replace"


def _preview_is_the_full_run(renovator, previewer, photo):
    """The largest face's preview at fidelity 0.5, checked against a full run's pixels and path; returned."""
    shown = previewer(photo, fidelity=0.5)
    full = renovator(photo, fidelity=0.5, faces="largest")
    x0, y0, x1, y1 = shown.window
    assert np.array_equal(shown.after, full.image[y0:y1, x0:x1])
    assert shown.path == next(f.path for f in full.faces if f.renovated)
    return shown


def test_the_point_picks_the_face_under_or_nearest_it(previewer, solvay):
    detections, _ = previewer.detect(solvay)
    shape = solvay.shape[:2]
    for k in (0, 7, 20):
        cx, cy = detections[k].center
        assert choose_face(detections, shape, (cx, cy)) == k
        assert previewer(solvay, 0.5, at=(cx, cy)).index == k
    # outside every box: the face whose box is nearest
    point = (5.0, 5.0)

    def to_box(d):
        x0, y0, x1, y1 = d.box
        return np.hypot(max(x0 - point[0], 0, point[0] - x1), max(y0 - point[1], 0, point[1] - y1))

    nearest = min(range(len(detections)), key=lambda i: to_box(detections[i]))
    assert previewer(solvay, 0.5, at=point).index == nearest
    # no point: the largest
    largest = max(range(len(detections)), key=lambda i: detections[i].width * detections[i].height)
    assert previewer(solvay, 0.5).index == largest


def test_the_same_pixels_are_detected_once(renovator, solvay):
    calls = []
    detector = renovator.detector

    class Counting:
        def __call__(self, image):
            calls.append(image.shape)
            return detector(image)

    previewer = FacePreviewer(renovator)
    renovator.detector = Counting()
    try:
        first = previewer(solvay, 0.2)
        second = previewer(solvay.copy(), 0.8)  # equal pixels, another array: the hash finds them
        assert len(calls) == 1 and not first.cached and second.cached
        edited = solvay.copy()
        edited[0, 0, 0] ^= 1
        previewer(edited, 0.8)
        assert len(calls) == 2  # one pixel changed: detected again
        previewer(solvay, 0.5, key="doc-1")
        previewer(edited, 0.5, key="doc-1")  # the caller's key wins over the pixels
        assert len(calls) == 3 and previewer.detections_run == 3
    finally:
        renovator.detector = detector


def test_a_photo_without_faces_raises_a_typed_error(previewer, shared_data):
    wall = read_photo(shared_data / "photos" / "solvay_conference_1927.png").pixels[
        480:, :260
    ]  # floor, no face
    with pytest.raises(NoFaceFound, match="no face to preview"):
        previewer(wall, 0.5)
    with pytest.raises(NoFaceFound):
        previewer(np.full((200, 300, 3), 128, np.uint8), 0.5)
    assert issubclass(NoFaceFound, ValueError)
    with pytest.raises(ValueError, match="fidelity"):
        previewer(wall, 1.5)


def test_grey_photos_and_the_helpers(previewer, solvay):
    grey = np.ascontiguousarray(solvay[..., 0])
    shown = previewer(grey, 0.5)
    assert shown.before.shape == shown.after.shape and shown.before.ndim == 2
    assert not np.array_equal(shown.before, shown.after)
    assert neighbourhood((10.0, 10.0, 30.0, 40.0), (50, 50), 0.5) == (0, 0, 45, 50)
    with pytest.raises(ValueError):
        side_by_side(shown.before, shown.after[:-1])
