"""The paper's degradation tasks and ``hifacegan degrade``, on real faces from ../shared/data."""

from __future__ import annotations

import doctest
import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from hifacegan.cli import main as cli_main
from hifacegan.data.files import read_rgb8
from hifacegan.degradations import (
    TASKS,
    _ops,
    _seeding,
    _tasks,
    degrade,
    degrade_with_params,
    fit_to_size,
    list_tasks,
    rng_for,
)

RANDOM_TASKS = ["sr4x8x", "denoise", "deblur", "jpeg", "full", "web", "damage", "old"]
FIXED_TASKS = ["sr4x", "mosaic16x"]


@pytest.fixture(scope="module")
def face_files(shared_data: Path) -> list[Path]:
    files = sorted((shared_data / "faces-train").glob("*.jpg"))[:400:50]
    assert len(files) == 8
    return files


@pytest.fixture(scope="module")
def faces200(face_files: list[Path]) -> list[np.ndarray]:
    """Real faces at their native 200 x 200 (no resampling: full high-frequency content)."""
    return [read_rgb8(path)[0] for path in face_files]


@pytest.fixture(scope="module")
def sharp_faces(shared_data: Path) -> list[np.ndarray]:
    """FFHQ faces area-downscaled to 256: sharp to the last pixel, unlike many UTKFace crops (upscaled, blurry)."""
    files = sorted((shared_data / "faces-eval" / "ffhq-1024").glob("*.png"))[:4]
    assert len(files) == 4
    return [fit_to_size(read_rgb8(path)[0], 256) for path in files]


@pytest.fixture(scope="module")
def face128(faces200: list[np.ndarray]) -> np.ndarray:
    return fit_to_size(faces200[0], 128)


def luma(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float64)


def digest(image: np.ndarray) -> str:
    return hashlib.sha256(image.tobytes()).hexdigest()


# --- registry and API -----------------------------------------------------------------------------------------


def test_registry_lists_the_papers_tasks_in_order():
    assert list_tasks()[:7] == ["sr4x", "sr4x8x", "denoise", "deblur", "jpeg", "mosaic16x", "full"]
    assert list(TASKS) == list_tasks()
    assert all(TASKS[name].summary for name in list_tasks())


def test_unknown_task_names_the_valid_ones(face128):
    with pytest.raises(ValueError, match="unknown degradation task 'blur'.*sr4x, sr4x8x, denoise"):
        degrade(face128, "blur", seed=0)


def test_release_names_are_aliases(face128):
    assert np.array_equal(degrade(face128, "face_renov", seed=3), degrade(face128, "full", seed=3))
    assert np.array_equal(degrade(face128, "16x"), degrade(face128, "mosaic16x"))


@pytest.mark.parametrize(
    "bad",
    [np.zeros((8, 8), np.uint8), np.zeros((8, 8, 4), np.uint8), np.zeros((8, 8, 3), np.float32), [[0, 0, 0]]],
    ids=["gray", "rgba", "float", "list"],
)
def test_rejects_anything_but_uint8_rgb(bad):
    with pytest.raises((ValueError, TypeError), match="uint8 RGB"):
        degrade(bad, "jpeg", seed=0)


def test_seed_and_rng_are_exclusive(face128):
    with pytest.raises(ValueError, match="either seed= or rng="):
        degrade(face128, "jpeg", seed=0, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="non-negative"):
        degrade(face128, "jpeg", seed=-1)


# --- determinism ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("task", list(TASKS))
def test_same_seed_same_bytes_and_input_untouched(face128, task):
    before = face128.copy()
    first = degrade(face128, task, seed=11)
    assert first.dtype == np.uint8 and first.shape == face128.shape and first.flags.c_contiguous
    assert np.array_equal(first, degrade(face128, task, seed=11))
    assert np.array_equal(first, degrade(face128, task, rng=np.random.default_rng(11)))
    assert np.array_equal(face128, before)
    assert not np.array_equal(first, face128)


@pytest.mark.parametrize("task", RANDOM_TASKS)
def test_random_tasks_differ_across_seeds(face128, task):
    outputs = {digest(degrade(face128, task, seed=seed)) for seed in range(6)}
    assert len(outputs) >= 4


@pytest.mark.parametrize("task", FIXED_TASKS)
def test_fixed_tasks_ignore_the_seed(face128, task):
    assert np.array_equal(degrade(face128, task, seed=1), degrade(face128, task, seed=2))
    assert np.array_equal(degrade(face128, task, seed=1), degrade(face128, task))


def test_a_shared_generator_advances(face128):
    rng = np.random.default_rng(5)
    assert not np.array_equal(degrade(face128, "denoise", rng=rng), degrade(face128, "denoise", rng=rng))


def test_rng_for_is_stable_and_keyed():
    # Pinned: changing the derivation would silently change every saved validation set.
    assert rng_for(0, "00001").integers(1 << 30) == rng_for(0, "00001").integers(1 << 30)
    assert rng_for(0, "00001").integers(1 << 30) == 722411224
    assert rng_for(0, "00001").integers(1 << 30) != rng_for(0, "00002").integers(1 << 30)
    assert rng_for(0, "00001").integers(1 << 30) != rng_for(1, "00001").integers(1 << 30)


def test_docstring_examples_run():
    for module in (_tasks, _ops, _seeding, __import__("hifacegan.degradations", fromlist=["x"])):
        failures, _ = doctest.testmod(module)
        assert failures == 0, module.__name__


# --- each task changes the image in its own way ---------------------------------------------------------------


def block_edge_ratio(gray: np.ndarray) -> float:
    """Mean |horizontal + vertical step| across 8x8 block boundaries over the same inside blocks."""
    dx = np.abs(np.diff(gray, axis=1))
    dy = np.abs(np.diff(gray, axis=0))
    edge_x = (np.arange(dx.shape[1]) % 8) == 7
    edge_y = (np.arange(dy.shape[0]) % 8) == 7
    boundary = dx[:, edge_x].mean() + dy[edge_y, :].mean()
    interior = dx[:, ~edge_x].mean() + dy[~edge_y, :].mean()
    return boundary / interior


def test_jpeg_shows_8x8_blocks(faces200):
    for index, face in enumerate(faces200[:4]):
        clean = fit_to_size(face, 192)
        assert block_edge_ratio(luma(clean)) < 1.1
        out, params = degrade_with_params(clean, "jpeg", seed=index)
        assert 17 <= params["quality"] <= 51
        assert block_edge_ratio(luma(out)) > 1.25, params


def test_jpeg_quality_range_is_17_to_51(face128):
    qualities = {degrade_with_params(face128, "jpeg", seed=s)[1]["quality"] for s in range(300)}
    assert min(qualities) == 17 and max(qualities) == 51


@pytest.mark.parametrize("width, block", [(512, 16), (128, 4), (200, 6)])
def test_mosaic_is_constant_per_block(faces200, width, block):
    clean = fit_to_size(faces200[1], width)
    out, params = degrade_with_params(clean, "mosaic16x")
    assert params["block"] == block
    for top in range(0, width, block):
        for left in range(0, width, block):
            tile = out[top : top + block, left : left + block].reshape(-1, 3)
            assert (tile == tile[0]).all()
            mean = clean[top : top + block, left : left + block].reshape(-1, 3).mean(axis=0)
            assert np.abs(tile[0] - mean).max() <= 0.5 + 1e-9


def high_frequency_energy(gray: np.ndarray, cutoff: float) -> float:
    """Spectral energy above ``cutoff`` x Nyquist (radially), after a Hann window.

    The window matters: without it the jump between opposite image borders puts a cross of energy at every
    frequency that no blur removes.
    """
    window = np.outer(np.hanning(gray.shape[0]), np.hanning(gray.shape[1]))
    spectrum = np.abs(np.fft.fft2((gray - gray.mean()) * window)) ** 2
    fy = np.fft.fftfreq(gray.shape[0])[:, None] * 2
    fx = np.fft.fftfreq(gray.shape[1])[None, :] * 2
    return float(spectrum[np.hypot(fx, fy) > cutoff].sum())


@pytest.mark.parametrize("task", ["sr4x", "sr4x8x"])
def test_resampling_removes_high_frequencies(sharp_faces, task):
    for seed, face in enumerate(sharp_faces):
        out, params = degrade_with_params(face, task, seed=seed)
        ratio = high_frequency_energy(luma(out), 0.3) / high_frequency_energy(luma(face), 0.3)
        assert ratio < 0.1, params  # measured 0.004-0.04
        low = high_frequency_energy(luma(out), 0.0) / high_frequency_energy(luma(face), 0.0)
        assert low > 0.8  # the face itself (low frequencies) survives
        assert 4.0 <= params["factor"] <= 8.0


def expected_noise_std(params: dict) -> float:
    if params["kind"] == "gaussian":
        return params["sigma"]
    if params["kind"] == "laplace":
        return params["scale"] * np.sqrt(2.0)
    return float(np.sqrt(params["lambda"] ** 2 + params["lambda"]))


def test_denoise_adds_noise_of_the_expected_strength(faces200):
    seen = set()
    for seed in range(12):
        face = faces200[seed % len(faces200)]
        out, params = degrade_with_params(face, "denoise", seed=seed)
        seen.add(params["kind"])
        residual = out.astype(np.float64) - face
        # Judge where the clean value leaves room on both sides: clipping at 0 / 255 shrinks the rest.
        room = expected_noise_std(params) * 2.5
        mask = (face > room) & (face < 255 - room)
        if mask.mean() < 0.2:
            continue
        measured = residual[mask].std()
        assert measured == pytest.approx(expected_noise_std(params), rel=0.12), params
        assert abs(residual[mask].mean()) < 2.0
        # Per pixel and channel: the channels' noise is uncorrelated.
        r, g = residual[..., 0][mask[..., 0] & mask[..., 1]], residual[..., 1][mask[..., 0] & mask[..., 1]]
        assert abs(np.corrcoef(r, g)[0, 1]) < 0.1
    assert seen == {"gaussian", "laplace", "poisson"}
    ranges = {"gaussian": ("sigma", 20, 40), "laplace": ("scale", 20, 40), "poisson": ("lambda", 15, 30)}
    for seed in range(60):
        params = degrade_with_params(faces200[0][:16, :16], "denoise", seed=seed)[1]
        key, low, high = ranges[params["kind"]]
        assert low <= params[key] <= high


def gradient_energy(gray: np.ndarray) -> float:
    return float((np.diff(gray, axis=0) ** 2).mean() + (np.diff(gray, axis=1) ** 2).mean())


def test_deblur_reduces_gradient_energy(sharp_faces):
    seen = set()
    for seed in range(10):
        face = fit_to_size(sharp_faces[seed % len(sharp_faces)], 128)
        out, params = degrade_with_params(face, "deblur", seed=seed)
        seen.add(params["kind"])
        # Measured 0.18-0.37 (Gaussian) and 0.40-0.59 (motion: blurs one direction only).
        assert gradient_energy(luma(out)) < 0.7 * gradient_energy(luma(face)), params
        if params["kind"] == "motion":
            assert 10 * 0.25 <= params["length"] <= 20 * 0.25 and 0 <= params["angle"] < 180
        else:
            assert 3 * 0.25 <= params["sigma"] <= 8 * 0.25
    assert seen == {"motion", "gaussian"}


def test_blur_sizes_scale_with_width(faces200):
    for seed in range(20):
        params = degrade_with_params(fit_to_size(faces200[0], 512), "deblur", seed=seed)[1]
        key, low, high = ("length", 10, 20) if params["kind"] == "motion" else ("sigma", 3, 8)
        assert low <= params[key] <= high


def test_horizontal_motion_kernel_is_the_pixel_integrated_box():
    kernel = _ops.motion_kernel(4.0, 0.0)
    centre = kernel.shape[0] // 2
    row = kernel[centre]
    assert np.allclose(row[row > 0], np.array([1, 2, 2, 2, 1]) / 8, atol=1e-6)
    assert kernel.sum() == pytest.approx(row.sum())


@pytest.mark.parametrize("angle", [0.0, 90.0, 45.0, 137.0])
def test_motion_kernel_is_a_normalised_line(angle):
    kernel = _ops.motion_kernel(15.0, angle)
    assert kernel.sum() == pytest.approx(1.0, abs=1e-5)
    assert np.allclose(kernel, kernel[::-1, ::-1], atol=1e-6)  # point-symmetric: correlation == convolution
    ys, xs = np.mgrid[: kernel.shape[0], : kernel.shape[1]] - kernel.shape[0] // 2
    theta = np.radians(angle)
    along = xs * np.cos(theta) - ys * np.sin(
        theta
    )  # rows grow downwards: +angle is counter-clockwise on screen
    across = xs * np.sin(theta) + ys * np.cos(theta)
    # Spread along the line: a uniform 15 px path (variance L^2/12) plus the bilinear splat (1/6).
    assert np.sqrt((kernel * along**2).sum()) == pytest.approx(np.sqrt(15**2 / 12 + 1 / 6), rel=0.02)
    assert np.sqrt((kernel * across**2).sum()) < 0.5


@pytest.mark.parametrize("angle, along, across", [(0.0, 1, 0), (90.0, 0, 1)])
def test_motion_blur_smears_along_its_direction(sharp_faces, angle, along, across):
    clean = luma(sharp_faces[0])
    blurred = luma(_ops.motion_blur(sharp_faces[0], 12.0, angle))

    def kept(axis: int) -> float:
        return float((np.diff(blurred, axis=axis) ** 2).mean() / (np.diff(clean, axis=axis) ** 2).mean())

    # Differences along the motion are smeared away far more than those across it.
    assert kept(along) < 0.5 * kept(across)


def test_full_applies_all_four_in_random_orders(face128):
    orders = set()
    for seed in range(12):
        out, params = degrade_with_params(face128, "full", seed=seed)
        assert sorted(params["order"]) == ["deblur", "denoise", "jpeg", "sr4x8x"]
        assert [step["task"] for step in params["steps"]] == params["order"]
        orders.add(tuple(params["order"]))
        assert gradient_energy(luma(out)) != gradient_energy(luma(face128))
    assert len(orders) >= 6


def test_tiny_and_odd_sizes_work(faces200):
    for height, width in [(7, 5), (33, 61), (1, 1)]:
        image = np.ascontiguousarray(faces200[2][:height, :width])
        for task in TASKS:
            assert degrade(image, task, seed=0).shape == (height, width, 3)


# --- hifacegan degrade ----------------------------------------------------------------------------------------


@pytest.fixture()
def clean_dir(tmp_path: Path, face_files: list[Path]) -> Path:
    folder = tmp_path / "clean"
    (folder / "sub").mkdir(parents=True)
    for path in face_files[:4]:
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "sub" / "nested.jpg").write_bytes(face_files[4].read_bytes())
    return folder


def run_cli(*args: object) -> int:
    return cli_main(["degrade", *map(str, args)])


def test_cli_writes_lossless_pngs_with_the_same_names(clean_dir, tmp_path):
    out = tmp_path / "out"
    assert run_cli("--task", "full", "--seed", "0", "--size", "64", "--workers", "1", clean_dir, out) == 0
    inputs = sorted(p.relative_to(clean_dir).with_suffix(".png") for p in clean_dir.rglob("*.jpg"))
    outputs = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert outputs == inputs  # same stems and sub-folders, .png, no temporary files left behind
    for rel in inputs:
        written = cv2.cvtColor(cv2.imread(str(out / rel)), cv2.COLOR_BGR2RGB)
        clean = fit_to_size(read_rgb8(next(clean_dir.glob(f"{rel.with_suffix('')}.*")))[0], 64)
        expected = degrade(clean, "full", rng=rng_for(0, rel.with_suffix("").as_posix()))
        assert np.array_equal(written, expected)  # lossless: exactly the degraded pixels


def test_cli_is_byte_deterministic_whatever_the_order_workers_or_other_files(clean_dir, tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    assert run_cli("--task", "denoise", "--seed", "3", "--workers", "1", clean_dir, a) == 0
    assert run_cli("--task", "denoise", "--seed", "3", "--workers", "2", clean_dir, b) == 0
    files = sorted(p.relative_to(a) for p in a.rglob("*.png"))
    assert [(a / f).read_bytes() for f in files] == [(b / f).read_bytes() for f in files]
    # Fewer files present: the survivors are unchanged.
    for path in sorted(clean_dir.glob("*.jpg"))[:2]:
        path.unlink()
    assert run_cli("--task", "denoise", "--seed", "3", clean_dir, c) == 0
    for rel in (p.relative_to(c) for p in c.rglob("*.png")):
        assert (c / rel).read_bytes() == (a / rel).read_bytes()
    # Another seed, other bytes.
    assert run_cli("--task", "denoise", "--seed", "4", "--workers", "1", clean_dir, tmp_path / "d") == 0
    rel = files[-1]
    assert (tmp_path / "d" / rel).read_bytes() != (a / rel).read_bytes()


def test_cli_skips_unreadable_files_and_counts_them(clean_dir, tmp_path, capsys):
    (clean_dir / "broken.jpg").write_bytes(next(clean_dir.glob("*.jpg")).read_bytes()[:300])
    (clean_dir / "notes.png").write_text("not an image")
    out = tmp_path / "out"
    assert run_cli("--task", "jpeg", "--workers", "1", clean_dir, out) == 0
    err = capsys.readouterr().err
    assert "wrote 5 degraded PNGs" in err and "skipped 2 unreadable files" in err
    assert "broken" in err and "notes" in err
    assert not (out / "broken.png").exists() and not (out / "notes.png").exists()


def test_cli_clear_errors(tmp_path, clean_dir, capsys):
    assert run_cli(tmp_path / "missing", tmp_path / "out") == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    assert run_cli(tmp_path / "empty", tmp_path / "out") == 2
    assert "holds no images" in capsys.readouterr().err
    assert run_cli(clean_dir, clean_dir) == 2
    assert "overwrite the clean images" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        run_cli("--task", "sharpen", clean_dir, tmp_path / "out")
    assert stop.value.code == 2
    assert "valid tasks: sr4x, sr4x8x, denoise, deblur, jpeg, mosaic16x, full" in capsys.readouterr().err
    (clean_dir / "sub" / "dup.png").write_bytes(b"")
    (clean_dir / "sub" / "dup.jpg").write_bytes(b"")
    assert run_cli(clean_dir, tmp_path / "out") == 2
    assert "would both be written as sub/dup.png" in capsys.readouterr().err


def test_cli_help_explains_names_and_tasks(capsys):
    with pytest.raises(SystemExit):
        cli_main(["degrade", "--help"])
    text = capsys.readouterr().out
    assert ".png" in text and "same bytes" in text
    for task in TASKS:
        assert task in text


@pytest.mark.parametrize("lam", [15.0, 22.5, 30.0])
def test_table_poisson_matches_the_poisson_distribution(lam):
    counts = _ops.poisson_counts(lam, (400_000,), np.random.default_rng(0))
    reference = np.random.default_rng(1).poisson(lam, 400_000)
    assert counts.mean() == pytest.approx(lam, abs=0.05) and counts.var() == pytest.approx(lam, rel=0.02)
    histogram = np.bincount(counts.astype(int), minlength=120)[:120] / counts.size
    expected = np.bincount(reference, minlength=120)[:120] / reference.size
    assert np.abs(histogram - expected).max() < 0.003


def test_laplace_noise_has_laplace_tails(face128):
    flat = np.full((256, 256, 3), 128, np.uint8)
    residual = _ops.add_laplace_noise(flat, 10.0, np.random.default_rng(0)).astype(float) - 128
    # Laplace(b): P(|x| > 3b) = exp(-3) ~ 0.0498; a Gaussian of the same std would give ~0.034.
    assert (np.abs(residual) > 30.5).mean() == pytest.approx(np.exp(-3.05), rel=0.08)
    assert abs(residual.mean()) < 0.1


def test_cli_skip_existing_resumes_without_rewriting(clean_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert run_cli("--task", "sr4x", "--workers", "1", clean_dir, out) == 0
    victim = sorted(out.glob("*.png"))[0]
    victim.unlink()
    kept = sorted(out.glob("*.png"))[0]
    stamp = kept.stat().st_mtime_ns
    capsys.readouterr()
    assert run_cli("--task", "sr4x", "--skip-existing", clean_dir, out) == 0
    err = capsys.readouterr().err
    assert "wrote 1 degraded PNGs" in err and "kept 4 existing" in err
    assert victim.exists() and kept.stat().st_mtime_ns == stamp
