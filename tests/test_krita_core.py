"""The Krita plug-in's core inside real Krita 5.1 (kritarunner, offscreen) against the real daemon.

One kritarunner session runs every scenario of ``tests/krita/kr_core.py`` (Krita's start-up dominates) and
writes a JSON report plus raw composites; these tests assert on them with numpy. kritarunner exits 0 even when
the script fails, so a missing or failed scenario is found in the report, never in the exit status.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent / "krita"))

from conftest import require  # noqa: E402
from krita_harness import (  # noqa: E402
    FACELESS,
    FIXTURE,
    HERE,
    MIN_CHANGED,
    PHOTO_SIZE,
    SELECTION,
    KritaHost,
    Profile,
    bookworm_krita_missing,
    daemon,
    free_tcp_endpoint,
    krita_weights,
    read_report,
    run_kritarunner,
)

CHANNEL_DTYPES = {"U8": np.uint8, "U16": np.uint16, "F16": np.float16, "F32": np.float32}

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def core_run(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    require(bookworm_krita_missing() is None, str(bookworm_krita_missing()))
    photo = shared_data / "photos" / FIXTURE
    require(photo.is_file(), f"{photo} is missing")
    host = KritaHost("Krita 5.1 (bookworm)")
    profile = Profile.create(host, free_tcp_endpoint())
    out = profile.home.parent / "out"
    out.mkdir()
    fixture = profile.home.parent / FIXTURE
    fixture.write_bytes(photo.read_bytes())
    layout = profile.home.parent / "layout.png"
    im = Image.new("RGBA", (2, 1), (255, 0, 0, 255))
    im.putpixel((1, 0), (0, 0, 255, 128))
    im.save(layout)
    case = {
        "out_dir": str(out),
        "fixture": str(fixture),
        "layout_fixture": str(layout),
        "selection": SELECTION,
        "faceless": FACELESS,
        "dead_endpoint": free_tcp_endpoint(),
    }
    case_file = profile.home.parent / "case.json"
    case_file.write_text(json.dumps(case))
    weights = os.environ.get("RENOVATE_KRITA_TEST_WEIGHTS") or krita_weights(
        tmp_path_factory.mktemp("weights")
    )
    with daemon(profile, weights):
        proc, seconds = run_kritarunner(profile, HERE / "kr_core.py", "main", [str(case_file)])
    report = read_report(out / "report.json", proc.stdout + proc.stderr)
    report["out"] = out
    report["kritarunner_seconds"] = seconds
    walls = {name: round(info.get("wall", 0.0), 1) for name, info in report["scenarios"].items()}
    print(f"kritarunner core scenarios: {seconds:.1f} s in {report.get('krita_version')}: {walls}")
    yield report
    profile.remove()


def scenario(report: dict, name: str) -> dict:
    info = report["scenarios"].get(name)
    assert info is not None, f"scenario {name} did not run; report: {json.dumps(report, default=str)[:2000]}"
    assert info.get("outcome") != "script_error", info.get("traceback")
    return info


def composite(report: dict, info: dict, key: str) -> np.ndarray:
    """A raw ``Document.pixelData`` dump as an (H, W, C) array in Krita's own channel order."""
    w, h = PHOTO_SIZE
    channels = 4 if info["model"] == "RGBA" else 2
    data = (report["out"] / info[key]).read_bytes()
    return np.frombuffer(data, CHANNEL_DTYPES[info["depth"]]).reshape(h, w, channels).astype(np.float64)


def changed_mask(report: dict, info: dict) -> np.ndarray:
    return np.any(composite(report, info, "before") != composite(report, info, "after"), axis=2)


def test_runs_in_krita_5_1(core_run: dict) -> None:
    assert core_run["krita_version"].startswith("5.1"), core_run["krita_version"]
    assert core_run.get("finished"), "kr_core.py stopped before its last scenario"


def test_wire_layout_is_rgba_for_every_depth(core_run: dict) -> None:
    """Krita stores integer RGB as B,G,R,A and float RGB as R,G,B,A: the wire must be R,G,B,A for all."""
    layout = scenario(core_run, "layout")
    expected = {
        "RGBA/U8": ("u8", [255, 0, 0, 255, 0, 0, 255, 128]),
        "RGBA/U16": ("u16", [65535, 0, 0, 65535, 0, 0, 65535, 128 * 257]),
        "RGBA/F16": ("f32", [1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 128 / 255]),
        "RGBA/F32": ("f32", [1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 128 / 255]),
    }
    for key, (dtype, values) in expected.items():
        entry = layout[key]
        assert entry["dtype"] == dtype and entry["channels"] == 4, entry
        wire = np.frombuffer(
            bytes.fromhex(entry["wire"]), {"u8": np.uint8, "u16": np.uint16, "f32": "<f4"}[dtype]
        )
        np.testing.assert_allclose(wire, values, atol=2e-3 if dtype == "f32" else 1, err_msg=key)
    gray = layout["GRAYA/U8"]
    assert gray["channels"] == 2 and gray["dtype"] == "u8"


def test_result_is_a_new_layer_right_above_the_active_one(core_run: dict) -> None:
    info = scenario(core_run, "rgba_u8")
    assert info["outcome"] == "done", info.get("traceback")
    before, after = info["layers_before"], info["layers_after"]
    assert len(after) == len(before) + 1
    index = before.index(info["active"])
    assert after[index] == info["active"]
    assert after[index + 1] == info["layer"] and info["layer"].startswith("Renovated faces")
    assert info["layer_parent_is_root"]


def test_faces_change_and_pixels_away_from_faces_do_not(core_run: dict) -> None:
    info = scenario(core_run, "rgba_u8")
    assert info["renovated_faces"] >= 6, info["faces"]
    changed = changed_mask(core_run, info)
    assert changed.sum() > MIN_CHANGED, f"only {changed.sum()} pixels changed"
    # Every changed pixel lies near a renovated face (within twice its box around its centre), and most faces
    # have changed pixels around them.
    near = np.zeros_like(changed)
    touched = 0
    for face in info["faces"]:
        x0, y0, x1, y1 = face["box"]
        cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0)
        window = np.s_[max(0, int(cy - 2 * r)) : int(cy + 2 * r), max(0, int(cx - 2 * r)) : int(cx + 2 * r)]
        near[window] = True
        touched += bool(changed[window].any())
    assert touched >= len(info["faces"]) // 2, f"only {touched} of {len(info['faces'])} faces changed"
    assert not (changed & ~near).any(), f"{(changed & ~near).sum()} pixels changed far from every face"
    x, y, w, h = FACELESS
    assert not changed[y : y + h, x : x + w].any()
    # The layer holds only the changed area, not a copy of the whole photo.
    lx, ly, lw, lh = info["layer_bounds"]
    assert lw * lh < 0.8 * PHOTO_SIZE[0] * PHOTO_SIZE[1]


@pytest.mark.parametrize("name", ["rgba_u16", "rgba_f16", "rgba_f32", "graya_u8"])
def test_other_depths_and_grayscale(core_run: dict, name: str) -> None:
    info = scenario(core_run, name)
    assert info["outcome"] == "done", info.get("traceback")
    assert len(info["layers_after"]) == len(info["layers_before"]) + 1
    assert info["renovated_faces"] >= 6
    changed = changed_mask(core_run, info)
    assert changed.sum() > MIN_CHANGED
    x, y, w, h = FACELESS
    assert not changed[y : y + h, x : x + w].any()


def test_cmyk_is_refused_with_instructions(core_run: dict) -> None:
    info = scenario(core_run, "cmyk_u8")
    assert info["outcome"] == "UnsupportedImage"
    assert "Convert Image Color Space" in info["message"] and "CMYK" in info["message"]
    assert info["layers_after"] == info["layers_before"]


def test_only_faces_inside_the_selection_change(core_run: dict) -> None:
    info = scenario(core_run, "selection")
    assert info["outcome"] == "done", info.get("traceback")
    changed = changed_mask(core_run, info)
    x, y, w, h = SELECTION
    inside = np.zeros_like(changed)
    inside[y : y + h, x : x + w] = True
    assert changed.sum() > MIN_CHANGED // 4
    assert not (changed & ~inside).any(), f"{(changed & ~inside).sum()} pixels changed outside the selection"
    assert info["renovated_faces"] == 2, info["faces"]


def test_a_selection_without_faces_changes_nothing(core_run: dict) -> None:
    info = scenario(core_run, "selection_no_face")
    assert info["outcome"] == "NothingToDo", info
    assert "selection" in info["message"] or "none was renovated" in info["message"]
    assert info["layers_after"] == info["layers_before"]
    assert not changed_mask(core_run, info).any()


def test_cancel_stops_the_server_job_and_leaves_the_document(core_run: dict) -> None:
    info = scenario(core_run, "cancel")
    assert info["outcome"] == "Cancelled", info
    assert info["layers_after"] == info["layers_before"]
    assert not changed_mask(core_run, info).any()


def test_a_missing_server_is_explained(core_run: dict) -> None:
    info = scenario(core_run, "no_server")
    assert info["outcome"] == "ServerUnavailable", info
    assert "installer" in info["message"] or "hifacegan-server" in info["message"], info["message"]
    assert info["seconds"] < 30
