"""`hifacegan eval` end to end on real faces, the classical baseline and the report format."""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import require

from hifacegan.cli import main
from hifacegan.evaluation import ROW_KEYS, classical_restore, estimate_noise_sigma, markdown_table
from hifacegan.evaluation._report import make_row
from hifacegan.metrics import (
    FaceAnalyzer,
    InceptionFeatures,
    fed,
    fid_from_features,
    lle,
    ms_ssim,
    niqe,
    psnr,
    ssim,
    to_batch,
)


def _celeba_dir(shared_data: Path) -> Path:
    folder = shared_data / "faces-eval" / "celeba-test-128"
    require(folder.is_dir(), f"{folder} is missing")
    return folder


def _read(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def test_noise_estimate_and_baseline_on_a_real_face(shared_data: Path) -> None:
    clean = _read(sorted(_celeba_dir(shared_data).glob("*.png"))[0])
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, 20, clean.shape), 0, 255).astype(np.uint8)
    assert estimate_noise_sigma(noisy) == pytest.approx(20, abs=5)
    assert estimate_noise_sigma(clean) < 8
    restored = classical_restore(noisy)
    assert restored.dtype == np.uint8 and restored.shape == clean.shape
    gain = psnr(to_batch(restored), to_batch(clean)) - psnr(to_batch(noisy), to_batch(clean))
    assert gain.item() > 2.0


def test_rows_and_markdown_keep_the_issue_layout() -> None:
    row = make_row("degraded input", n=3, faces_missed=1, psnr=21.5, fid=float("nan"), niqe=None)
    assert tuple(row) == ROW_KEYS
    assert row["fid"] is None and row["niqe"] is None and row["psnr"] == 21.5
    with pytest.raises(ValueError, match="unknown metric"):
        make_row("x", n=1, faces_missed=0, sharpness=1.0)
    text = markdown_table([row], "title", ["LPIPS unavailable: because"])
    header = next(line for line in text.splitlines() if line.startswith("| Method"))
    for name in ("PSNR", "SSIM", "MS-SSIM", "FED", "LLE", "FID", "LPIPS", "NIQE", "faces missed", "n"):
        assert name in header
    assert "| degraded input | 21.50 | n/a |" in text and "LPIPS unavailable: because" in text


def _random_weights(tmp_path: Path, name: str = "random-lite-128", seed: int = 0) -> Path:
    from hifacegan.models import build_generator
    from hifacegan.weights import ModelCard, save_weights

    torch.manual_seed(seed)
    generator = build_generator("hifacegan-lite-128")
    card = ModelCard(name=name, config="hifacegan-lite-128", size=128, description="untrained, for tests")
    path = tmp_path / f"{name}.safetensors"
    save_weights(path, generator, card)
    return path


def test_eval_cli_writes_both_reports_with_every_method(shared_data: Path, tmp_path: Path) -> None:
    from hifacegan.degradations import degrade, fit_to_size, rng_for

    data = _celeba_dir(shared_data)
    weights = _random_weights(tmp_path)
    out = tmp_path / "report"
    argv = ["eval", "--data", str(data), "--task", "full", "--size", "128", "--seed", "3", "--limit", "3"]
    argv += ["--weights", str(weights), "--out", str(out), "--save-images", "--workers", "0", "--quiet"]
    assert main(argv) == 0
    rows = json.loads((out / "metrics.json").read_text())
    assert [r["method"] for r in rows] == ["degraded input", "classical (NLM + bicubic)", "random-lite-128"]
    for row in rows:
        assert tuple(row) == ROW_KEYS and row["n"] == 3
        assert row["lpips"] is None  # no AlexNet offline: unavailable, not replaced
        for key in ("psnr", "ssim", "ms_ssim", "fid", "niqe"):
            assert isinstance(row[key], float), key
        assert 0 <= row["faces_missed"] <= 3
    report = (out / "report.md").read_text()
    assert "LPIPS unavailable" in report and "| random-lite-128 |" in report
    # The saved degraded inputs are lossless and exactly `degrade(fit_to_size(clean), rng_for(seed, key))`.
    first = sorted(data.glob("*.png"))[0]
    expected = degrade(fit_to_size(_read(first), 128), "full", rng=rng_for(3, first.stem))
    saved = _read(out / "images" / "degraded-input" / f"{first.stem}.png")
    np.testing.assert_array_equal(saved, expected)
    assert (out / "images" / "random-lite-128" / f"{first.stem}.png").is_file()
    assert not list(out.rglob("*.tmp"))
    # The recorded PSNR of the degraded input is the one recomputed from the saved files.
    clean_saved = _read(out / "images" / "clean" / f"{first.stem}.png")
    details = json.loads((out / "per_image.json").read_text())
    value = details["images"][0]["methods"]["degraded input"]["psnr"]
    assert value == pytest.approx(psnr(to_batch(saved), to_batch(clean_saved)).item(), abs=1e-4)


def test_reuse_keeps_earlier_rows_and_refuses_other_inputs(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _celeba_dir(shared_data)
    weights = _random_weights(tmp_path)
    common = ["eval", "--data", str(data), "--task", "full", "--size", "128", "--seed", "3", "--workers", "0"]
    common += ["--quiet"]
    full, base = tmp_path / "full", tmp_path / "base"
    assert main([*common, "--limit", "3", "--weights", str(weights), "--out", str(full)]) == 0
    assert main([*common, "--limit", "3", "--out", str(base)]) == 0
    reused = tmp_path / "reused"
    argv = [*common, "--limit", "3", "--weights", str(weights), "--reuse", str(base)]
    assert main([*argv, "--out", str(reused), "--save-images"]) == 0
    saved = {p.name for p in (reused / "images").iterdir()}
    assert saved == {"clean", "degraded-input", "random-lite-128"}
    full_rows = json.loads((full / "metrics.json").read_text())
    reused_rows = json.loads((reused / "metrics.json").read_text())
    assert [r["method"] for r in reused_rows] == [r["method"] for r in full_rows]
    for a, b in zip(full_rows, reused_rows, strict=True):
        for key, value in a.items():
            assert b[key] == (pytest.approx(value, abs=1e-6) if isinstance(value, float) else value), key
    details = json.loads((reused / "per_image.json").read_text())
    assert set(details["images"][0]["methods"]) == {r["method"] for r in full_rows}
    assert "reused from" in (reused / "report.md").read_text()
    # Adding weights to a report: the old rows stay, the new one comes last; scoring a method again
    # replaces its row in place.
    second = _random_weights(tmp_path, "second-lite-128", seed=1)
    added = tmp_path / "added"
    assert (
        main([*common, "--limit", "3", "--weights", str(second), "--reuse", str(full), "--out", str(added)])
        == 0
    )
    added_rows = json.loads((added / "metrics.json").read_text())
    assert [r["method"] for r in added_rows] == [r["method"] for r in full_rows] + ["second-lite-128"]
    assert added_rows[:3] == full_rows and added_rows[3]["psnr"] != full_rows[2]["psnr"]
    again = tmp_path / "again"
    assert (
        main([*common, "--limit", "3", "--weights", str(weights), "--reuse", str(added), "--out", str(again)])
        == 0
    )
    again_rows = json.loads((again / "metrics.json").read_text())
    assert [r["method"] for r in again_rows] == [r["method"] for r in added_rows]
    assert again_rows[2]["psnr"] == pytest.approx(full_rows[2]["psnr"], abs=1e-6)
    again_notes = json.loads((again / "per_image.json").read_text())["notes"]
    assert len(again_notes) == len(set(again_notes))  # a chain of reuses says each thing once
    capsys.readouterr()
    # Same names, other pixels: a copy of the three faces with one of them darkened.
    other = tmp_path / "other"
    other.mkdir()
    for k, path in enumerate(sorted(data.glob("*.png"))[:3]):
        image = _read(path)
        cv2.imwrite(str(other / path.name), cv2.cvtColor(image // 2 if k == 1 else image, cv2.COLOR_RGB2BGR))
    # A few clean pixels two levels off move a degraded input's PSNR by far less than the tolerance, as OpenCV's
    # per-CPU rounding does: the rows are kept and the report says why.
    nudged = tmp_path / "nudged"
    nudged.mkdir()
    for k, path in enumerate(sorted(data.glob("*.png"))[:3]):
        image = _read(path)
        if k == 2:
            patch = image[56:72, 56:72].astype(np.int16)
            image[56:72, 56:72] = np.where(patch < 254, patch + 2, patch - 2).astype(np.uint8)
        cv2.imwrite(str(nudged / path.name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    kept = tmp_path / "kept"
    argv = [*common, "--data", str(nudged), "--limit", "3", "--weights", str(weights), "--reuse", str(base)]
    assert main([*argv, "--out", str(kept)]) == 0
    kept_details = json.loads((kept / "per_image.json").read_text())
    assert kept_details["inputs_sha256"] != json.loads((base / "per_image.json").read_text())["inputs_sha256"]
    assert any("last bits only: the input PSNR of 1 of 3 images moved" in n for n in kept_details["notes"])
    kept_rows = json.loads((kept / "metrics.json").read_text())
    assert kept_rows[:2] == json.loads((base / "metrics.json").read_text())
    # Other files, other pixels, another seed, no weights to score, or no reference: refused, nothing written.
    for extra, reason in (
        (["--limit", "2", "--weights", str(weights)], "scored 3 images"),
        (["--limit", "3", "--seed", "4", "--weights", str(weights)], "was run with"),
        (["--limit", "3", "--data", str(other), "--weights", str(weights)], "scored other pixels"),
        (["--limit", "3"], "give --weights"),
        (["--limit", "3", "--no-reference", "--weights", str(weights)], "drop --no-reference"),
    ):
        out = tmp_path / f"refused-{len(extra)}-{reason[:4]}"
        assert main([*common, *extra, "--reuse", str(base), "--out", str(out)]) == 2
        assert reason in capsys.readouterr().err and not out.exists()
    # A report whose FED and LLE were measured the old way (where dlib detected a face in each method's image)
    # is not mixed with rows measured at the clean face's box.
    older = tmp_path / "older"
    older.mkdir()
    (older / "metrics.json").write_text((base / "metrics.json").read_text())
    older_details = json.loads((base / "per_image.json").read_text())
    del older_details["fed_lle_at"]
    (older / "per_image.json").write_text(json.dumps(older_details))
    out = tmp_path / "refused-older"
    assert (
        main([*common, "--limit", "3", "--weights", str(weights), "--reuse", str(older), "--out", str(out)])
        == 2
    )
    assert "run that evaluation again without --reuse" in capsys.readouterr().err and not out.exists()


def test_fed_and_lle_are_measured_at_the_clean_face_even_where_no_face_is_detected(shared_data: Path) -> None:
    from hifacegan.evaluation import _workers

    _workers.init_worker()
    for path in sorted((shared_data / "faces-val").glob("*.jpg"))[:10]:
        clean = _read(path)
        blurred = cv2.GaussianBlur(clean, (0, 0), 1.5)
        blank = np.full_like(clean, 128)
        scores = _workers.score_image((0, clean, [clean, blurred, blank]))
        if scores.reference_found:
            break
    require(scores.reference_found, "dlib should find a face in one of the first 10 faces-val photos")
    # The blank image has no face to detect, yet it is scored (badly) instead of being left out of the mean.
    assert scores.found == [True, True, False]
    assert scores.fed[0] == pytest.approx(0.0, abs=1e-6) and scores.lle[0] == pytest.approx(0.0, abs=1e-6)
    assert 0 < scores.fed[1] < scores.fed[2]
    assert scores.lle[1] > 0 and np.isfinite(scores.lle[2])


def test_eval_cli_explains_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--data", str(tmp_path), "--size", "128", "--out", str(tmp_path / "r")]) == 2
    assert "--task is required" in capsys.readouterr().err
    assert (
        main(["eval", "--data", str(tmp_path / "nope"), "--task", "full", "--out", str(tmp_path / "r")]) == 2
    )
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "r" / "metrics.json").exists()


def test_no_reference_mode_scores_photos_in_worker_processes(shared_data: Path, tmp_path: Path) -> None:
    photos = shared_data / "photos"
    require(photos.is_dir(), f"{photos} is missing")
    small = tmp_path / "photos"
    small.mkdir()
    # Two real photos, shrunk so the test stays quick.
    for source in sorted(photos.glob("*.jpg"))[:2]:
        image = cv2.imread(str(source))
        scale = 400 / max(image.shape[:2])
        cv2.imwrite(
            str(small / f"{source.stem}.png"),
            cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA),
        )
    out = tmp_path / "report"
    assert (
        main(["eval", "--no-reference", "--data", str(small), "--out", str(out), "--workers", "1", "--quiet",
              "--save-images"])
        == 0
    )  # fmt: skip
    assert sorted(p.name for p in (out / "images" / "input-photo").iterdir()) == sorted(
        p.name for p in small.iterdir()
    )  # photos without ground truth have no clean set to save
    rows = json.loads((out / "metrics.json").read_text())
    assert len(rows) == 1 and rows[0]["method"] == "input photo" and rows[0]["n"] == 2
    assert rows[0]["psnr"] is None and rows[0]["niqe"] > 0
    details = json.loads((out / "per_image.json").read_text())
    assert sum(img["methods"]["input photo"]["faces"] for img in details["images"]) >= 1


@pytest.mark.slow
def test_stronger_degradation_scores_worse_on_every_metric(shared_data: Path) -> None:
    folder = shared_data / "faces-val"
    files = sorted(folder.glob("*.jpg"))[:50]
    require(len(files) == 50, f"{folder} should hold 50 faces")
    clean = [_read(f) for f in files]
    rng = np.random.default_rng(0)

    def degraded(blur: float, noise: float) -> list[np.ndarray]:
        out = []
        for img in clean:
            soft = cv2.GaussianBlur(img, (0, 0), blur)
            out.append(np.clip(soft + rng.normal(0, noise, img.shape), 0, 255).astype(np.uint8))
        return out

    levels = {"mild": degraded(1.0, 5.0), "strong": degraded(2.5, 20.0)}
    analyzer = FaceAnalyzer()
    extractor = InceptionFeatures(batch_size=10)
    reference_feats = extractor(to_batch(np.stack(clean)))
    references = [analyzer.measure(img) for img in clean]
    scores: dict[str, dict[str, float]] = {}
    for name, images in levels.items():
        pred, target = to_batch(np.stack(images)), to_batch(np.stack(clean))
        feds, lles, missed = [], [], 0
        for ref, img in zip(references, images, strict=True):
            if ref is None:
                continue
            measure = analyzer.measure(img, near=ref.box)
            if measure is None:
                missed += 1
                continue
            feds.append(fed(ref, measure))
            lles.append(lle(ref, measure, img.shape[1]))
        scores[name] = {
            "psnr": psnr(pred, target).mean().item(),
            "ssim": ssim(pred, target).mean().item(),
            "ms_ssim": ms_ssim(pred, target).mean().item(),
            "fed": float(np.mean(feds)),
            "lle": float(np.mean(lles)),
            "fid": fid_from_features(reference_feats, extractor(pred)),
            "niqe": float(np.mean([niqe(img) for img in images])),
            "missed": missed,
        }
    mild, strong = scores["mild"], scores["strong"]
    for higher_is_better in ("psnr", "ssim", "ms_ssim"):
        assert strong[higher_is_better] < mild[higher_is_better], (higher_is_better, scores)
    for lower_is_better in ("fed", "lle", "fid", "niqe"):
        assert strong[lower_is_better] > mild[lower_is_better], (lower_is_better, scores)
    assert strong["missed"] >= mild["missed"]


@pytest.mark.slow
def test_issue_command_on_100_celeba_faces_runs_under_10_minutes(shared_data: Path, tmp_path: Path) -> None:
    data = _celeba_dir(shared_data)
    out = tmp_path / "report"
    started = time.perf_counter()
    argv = ["eval", "--data", str(data), "--task", "full", "--size", "128", "--seed", "0", "--limit", "100"]
    assert main([*argv, "--out", str(out), "--quiet"]) == 0
    elapsed = time.perf_counter() - started
    print(f"hifacegan eval on 100 faces: {elapsed:.0f} s")
    rows = json.loads((out / "metrics.json").read_text())
    assert [r["n"] for r in rows] == [100, 100]
    assert (out / "report.md").is_file()
    assert elapsed < 600


def test_weights_option_may_be_repeated() -> None:
    """`--weights a --weights b` scores both, as `--weights a b` does: argparse's default kept only b."""
    from hifacegan.cli import build_parser

    args = build_parser("eval").parse_args(
        ["eval", "--data", "d", "--out", "o", "--weights", "a", "--weights", "b", "c"]
    )
    assert args.weights == ["a", "b", "c"]
