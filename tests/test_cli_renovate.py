"""``hifacegan renovate`` as users run it: a real process, real files, exit codes and the JSON summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter
from test_pipeline import make_lite_weights

from hifacegan.imageio import Photo, read_photo, write_photo

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def weights_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("weights")
    make_lite_weights(folder)
    return folder


@pytest.fixture
def env(weights_folder, monkeypatch, capsys):
    """Environment for in-process runs of the command (same code path as the console script, minus start-up)."""
    monkeypatch.setenv("HIFACEGAN_WEIGHTS_DIR", str(weights_folder))
    monkeypatch.setenv("HIFACEGAN_OFFLINE", "1")  # straight to the offline detector, no download attempt
    return capsys


def renovate(capsys, *args: str) -> subprocess.CompletedProcess:
    """Run ``hifacegan renovate ARGS`` in this process; returns its exit code and output like a subprocess."""
    from hifacegan.cli import main

    capsys.readouterr()
    code = main(["renovate", *args])
    out = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out.out, out.err)


@pytest.fixture(scope="module")
def small(shared_data) -> Path:
    return shared_data / "photos" / "codeformer_01.jpg"


def test_folder_in_folder_out_with_json_and_faces(env, small, tmp_path):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    write_photo(read_photo(small), src / "sub" / "group.png")
    noise = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    Image.fromarray(noise).filter(ImageFilter.GaussianBlur(3)).save(src / "empty.png")
    out = tmp_path / "not" / "yet" / "there"
    summary = tmp_path / "summary.json"
    faces = tmp_path / "faces"
    proc = renovate(
        env,
        str(src),
        "-o",
        str(out),
        "--weights",
        "test-lite",
        "--fidelity",
        "0.7",
        "--json",
        str(summary),
        "--save-faces",
        str(faces),
    )
    assert proc.returncode == 0, proc.stderr
    assert (out / "sub" / "group.png").is_file() and (out / "empty.png").is_file()
    data = json.loads(summary.read_text())
    by_name = {Path(p["input"]).name: p for p in data["photos"]}
    group = by_name["group.png"]
    assert group["found"] >= 3 and group["renovated"] == group["found"]
    assert all(len(f["box"]) == 4 and len(f["landmarks"]) == 5 for f in group["faces"])
    assert set(data["seconds_per_stage"]) == {"decode", "detect", "align", "network", "paste", "encode"}
    assert data["totals"]["faces_renovated"] == group["renovated"]
    assert len(list(faces.glob("group_face*.png"))) == group["renovated"]
    # the photo without faces: a clear message and an identical output
    assert "no face found" in proc.stderr
    assert (out / "empty.png").read_bytes() == (src / "empty.png").read_bytes()
    assert "seconds per stage" in proc.stderr


def test_single_file_keeps_mode_alpha_and_depth(env, small, tmp_path):
    rgb = read_photo(small).pixels
    alpha = np.random.default_rng(1).integers(0, 256, rgb.shape[:2], dtype=np.uint8)
    deep = np.dstack([rgb, alpha]).astype(np.uint16) * 257
    write_photo(Photo(deep), tmp_path / "deep.png")
    proc = renovate(
        env, str(tmp_path / "deep.png"), "-o", str(tmp_path / "deep-out.png"), "--weights", "test-lite"
    )
    assert proc.returncode == 0, proc.stderr
    back = read_photo(tmp_path / "deep-out.png").pixels
    assert back.dtype == np.uint16 and back.shape == deep.shape
    assert np.array_equal(back[..., 3], deep[..., 3])
    assert not np.array_equal(back, deep)


def test_grayscale_file_stays_grayscale(env, small, tmp_path):
    Image.open(small).convert("L").save(tmp_path / "gray.jpg", quality=95)
    proc = renovate(
        env, str(tmp_path / "gray.jpg"), "-o", str(tmp_path / "gray-out.jpg"), "--weights", "test-lite"
    )
    assert proc.returncode == 0, proc.stderr
    assert Image.open(tmp_path / "gray-out.jpg").mode == "L"


def test_corrupt_input_fails_clearly_and_writes_nothing(env, small, tmp_path):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    out = tmp_path / "out"
    proc = renovate(env, str(tmp_path / "broken.png"), str(small), "-o", str(out), "--weights", "test-lite")
    assert proc.returncode == 1
    assert "broken.png" in proc.stderr and "corrupt" in proc.stderr
    assert not (out / "broken.png").exists()
    assert (out / small.name).is_file()  # the good photo is still written
    assert not list(out.glob(".*.part"))


def test_unsupported_output_and_missing_inputs_are_refused(env, small, tmp_path):
    proc = renovate(env, str(small), "-o", str(tmp_path / "out.xyz"), "--weights", "test-lite")
    assert proc.returncode == 2 and "unsupported extension" in proc.stderr
    assert not (tmp_path / "out.xyz").exists()
    proc = renovate(env, str(tmp_path / "missing.jpg"), "-o", str(tmp_path / "o"), "--weights", "test-lite")
    assert proc.returncode == 2 and "no such file" in proc.stderr
    proc = renovate(env, str(small), "-o", str(tmp_path / "o.jpg"), "--fidelity", "3")
    assert proc.returncode == 2 and "fidelity" in proc.stderr


def test_missing_weights_exit_3_with_a_hint(env, small, tmp_path):
    proc = renovate(env, str(small), "-o", str(tmp_path / "o.jpg"), "--weights", "nothing-here")
    assert proc.returncode == 3
    assert "hifacegan weights" in proc.stderr
    assert not (tmp_path / "o.jpg").exists()


def test_rgba_to_jpeg_is_refused_without_a_file(env, tmp_path, shared_data):
    src = shared_data / "photos" / "oldphotos_old_w_scratch_b.png"  # RGBA
    proc = renovate(env, str(src), "-o", str(tmp_path / "o.jpg"), "--weights", "test-lite")
    assert proc.returncode == 1 and "transparency" in proc.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_solvay_with_python_dash_m(weights_folder, solvay_photo, tmp_path):
    """The real console entry point in its own process, on the photo the issue names."""
    environ = dict(
        os.environ,
        HIFACEGAN_WEIGHTS_DIR=str(weights_folder),
        HIFACEGAN_OFFLINE="1",
        PYTHONPATH=str(REPO),
        OMP_NUM_THREADS="2",
    )
    summary = tmp_path / "s.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "hifacegan",
            "renovate",
            str(solvay_photo),
            "-o",
            str(tmp_path / "solvay.png"),
            "--weights",
            "test-lite",
            "--json",
            str(summary),
        ],
        env=environ,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    photo = json.loads(summary.read_text())["photos"][0]
    assert photo["renovated"] >= 25 and len(photo["faces"]) >= 25
    out = read_photo(tmp_path / "solvay.png")
    source = read_photo(solvay_photo)
    assert out.pixels.shape == source.pixels.shape and out.icc_profile == source.icc_profile


def test_the_cli_counts_faces_changed_not_faces_visited(tmp_path):
    """A clean, sharp portrait: its face is visited and kept whole, so the CLI says 0 changed, in plain words."""
    from hifacegan.data.files import read_rgb8, write_png_atomic
    from hifacegan.evaluation.pipeline_eval import fit_long_side

    portrait = REPO.parent / "shared" / "data" / "faces-hires" / "london-1024" / "neutral_021_03.jpg"
    photo = tmp_path / "portrait.png"
    write_png_atomic(photo, fit_long_side(read_rgb8(portrait)[0], 384))
    summary = tmp_path / "summary.json"
    proc = subprocess.run(
        [sys.executable, "-m", "hifacegan", "renovate", str(photo), "-o", str(tmp_path / "out"), "--device", "cpu",
         "--damage", "off", "--json", str(summary)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    totals = json.loads(summary.read_text())["totals"]
    assert totals["faces_renovated"] == 1 and totals["faces_changed"] == 0
    assert "1 face found, 0 changed (1 already looked sharp and clean, so kept every pixel)" in proc.stderr
    assert "0 of 1 face changed" in proc.stderr and "(s)" not in proc.stderr


def test_sigterm_stops_between_photos_and_writes_nothing_half_done(weights_folder, solvay_photo, tmp_path):
    """SIGTERM cancels the run's CancelToken: the photo in progress stops between batches of faces and is not
    written, the photos before it are whole, the summary so far is kept, and the exit code says not all were."""
    import signal
    import time

    folder = tmp_path / "in"
    folder.mkdir()
    for k in range(4):
        (folder / f"solvay-{k}.png").write_bytes(solvay_photo.read_bytes())
    out = tmp_path / "out"
    environ = dict(
        os.environ, HIFACEGAN_WEIGHTS_DIR=str(weights_folder), HIFACEGAN_OFFLINE="1", PYTHONPATH=str(REPO)
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "hifacegan", "renovate", str(folder), "-o", str(out), "--weights", "test-lite",
         "--batch-size", "2", "--json", str(tmp_path / "s.json")],
        env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while not (out / "solvay-0.png").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=300)
    written = sorted(p.name for p in out.iterdir())
    assert proc.returncode == 1, stderr
    assert "was not written (the run was terminated)" in stderr
    assert 1 <= len(written) < 4 and all(name.endswith(".png") for name in written)  # no temporary file left
    for name in written:  # what was written is whole
        assert read_photo(out / name).pixels.shape == read_photo(solvay_photo).pixels.shape
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["totals"]["written"] == len(written)
