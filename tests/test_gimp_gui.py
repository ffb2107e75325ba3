"""The GIMP 3.0 plug-in through GIMP's real GUI (Xvfb in the Debian trixie root), as a user runs it.

Batch mode (tests/test_gimp_plugin.py) calls the procedure non-interactively and never builds the dialog. Here
GIMP opens a photo, ``tests/hosts/gimp_gui.sh`` opens Filters > Enhance > Renovate Faces... by its menu keys,
waits for the dialog's face preview, drags the fidelity slider with the mouse (xdotool), waits for the preview
to follow it, grabs the dialog and presses OK; the real server renovates the face;
``tests/hosts/gimp_gui_watch.py``, a batch command inside the same GIMP, reports the image's layers and quits
GIMP. The plug-in's own log (``gimp-plugin.log`` in the scratch HOME's log folder) has a line per preview answer
(fidelity, caption, where the picture sits), which the test reads. ``RENOVATE_SCREENSHOTS=DIR`` keeps the grabs, and the dialog cut out of the last
one before OK (``gimp-dialog-window.png``: docs/results/gimp-dialog.png).
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO
from test_gimp_plugin import (  # noqa: F401 - the session fixtures: the trixie root, the real server
    Gimp,
    Server,
    _write_private,
    degraded_face,
    gimp,
    server,
    sharp_face,
    test_weights,
    trixie_root,
)

from hifacegan_server.paths import loopback_endpoint
from hifacegan_server.testing import free_port

pytestmark = [pytest.mark.gimp, pytest.mark.slow, pytest.mark.timeout(900)]

SCRIPTS = ("gimp_gui.sh", "gimp_gui_watch.py")
GIMPRC = "(show-welcome-dialog no)\n(color-profile-policy keep)\n(show-tips no)\n"
LAYER = re.compile(r"Renovated faces \(all faces, fidelity (\d\.\d\d)\)")


def _geometry(out: Path) -> dict[str, int]:
    """The dialog's X, Y, WIDTH and HEIGHT on the screen (xdotool getwindowgeometry --shell)."""
    text = (out / "dialog_geometry.txt").read_text()
    return {key: int(value) for key, value in (line.split("=", 1) for line in text.split())}


@pytest.fixture(scope="module")
def gui_session(trixie_root: Path, server: Server, degraded_face: Path) -> dict:  # noqa: F811 (imported fixtures)
    host = Gimp(trixie_root)  # a HOME of its own: the GUI writes its profile there
    host.connect_to(server.endpoint, server.token_file)
    yield _drive(host, degraded_face, {}, "")
    host.close()


@pytest.fixture(scope="module")
def no_server_session(trixie_root: Path, degraded_face: Path) -> dict:  # noqa: F811 (imported fixtures)
    """The dialog when nothing listens at the configured endpoint: the preview must say so, in a sentence."""
    host = Gimp(trixie_root)
    dead = loopback_endpoint(free_port())
    _write_private(host.config_dir / "server.json", json.dumps({"endpoint": dead}))
    _write_private(host.config_dir / "token", "0" * 64 + "\n")
    yield _drive(host, degraded_face, {"RF_MODE": "preview_only"}, "no-server")
    host.close()


@pytest.fixture(scope="module")
def sharp_session(trixie_root: Path, server: Server, sharp_face: Path) -> dict:  # noqa: F811
    """The dialog on a sharp, clean small face (an FFHQ portrait at 128 px on a plain canvas)."""
    host = Gimp(trixie_root)
    host.connect_to(server.endpoint, server.token_file)
    yield _drive(host, sharp_face, {"RF_MODE": "preview_only"}, "sharp")
    host.close()


def _drive(host: Gimp, image: Path, extra_env: dict[str, str], label: str) -> dict:
    """Run tests/hosts/gimp_gui.sh in ``host``'s GIMP on ``image``; what it saw, logged and grabbed (grabs kept
    under RENOVATE_SCREENSHOTS as gimp-[LABEL-]*.png)."""
    (host.home / ".config" / "GIMP" / "3.0" / "gimprc").write_text(GIMPRC)
    for name in SCRIPTS:
        shutil.copy2(REPO / "tests" / "hosts" / name, host.scratch / name)
    out = host.scratch / "gui"
    out.mkdir()
    plugin_log = host.home / ".local" / "state" / "renovate-faces" / "log" / "gimp-plugin.log"
    env = {
        "HOME": host.inside(host.home),
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "RF_IMAGE": host.stage(image),
        "RF_OUT": host.inside(out),
        "RF_PLUGIN_LOG": host.inside(plugin_log),
        **extra_env,
    }
    command = ["chroot", str(host.root), "env", "-i", *(f"{k}={v}" for k, v in env.items())]
    command += ["xvfb-run", "-a", "-n", str(random.randint(100, 30000))]
    command += ["-s", "-screen 0 1400x900x24 -nolisten tcp", "sh", host.inside(host.scratch / SCRIPTS[0])]
    started = time.monotonic()
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600, errors="replace")
    seconds = time.monotonic() - started
    steps = (out / "steps.txt").read_text() if (out / "steps.txt").is_file() else ""
    log = (out / "gimp.log").read_text(errors="replace")[-3000:] if (out / "gimp.log").is_file() else ""
    report = json.loads((out / "report.json").read_text()) if (out / "report.json").is_file() else {}
    lines = plugin_log.read_text().splitlines() if plugin_log.is_file() else []
    previews = [json.loads(line.split(" preview ", 1)[1]) for line in lines if " preview {" in line]
    keep = os.environ.get("RENOVATE_SCREENSHOTS")
    prefix = f"gimp-{label}-" if label else "gimp-"  # gimp-dialog.png, gimp-no-server-dialog.png
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        for png in out.glob("*.png"):
            shutil.copy2(png, Path(keep) / f"{prefix}{png.name}")
        if (out / "dialog.png").is_file() and (out / "dialog_geometry.txt").is_file():
            from PIL import Image  # the dialog alone (docs/results/gimp-dialog.png is one)

            box = _geometry(out)
            with Image.open(out / "dialog.png") as grab:
                left, top = box["X"], box["Y"]
                grab.crop((left, top, left + box["WIDTH"], top + box["HEIGHT"])).save(
                    Path(keep) / f"{prefix}dialog-window.png"
                )
    print(f"GIMP GUI session {seconds:.1f} s (exit {proc.returncode}); steps:\n{steps}")
    print("previews:\n" + "\n".join(json.dumps(entry) for entry in previews))
    return {
        "proc": proc,
        "steps": steps,
        "log": log,
        "report": report,
        "previews": previews,
        "out": out,
        "why": f"exit {proc.returncode}\nsteps:\n{steps}\nstderr:\n{proc.stderr[-2000:]}\nGIMP:\n{log}\n"
        f"previews: {previews}",
    }


def test_the_dialog_runs_and_adds_the_result_layer(gui_session: dict) -> None:
    report = gui_session["report"]
    assert report.get("found"), gui_session["why"]
    names = [layer["name"] for layer in report["layers"]]
    assert len(names) == 2, names  # the source and the result above it
    match = LAYER.fullmatch(names[0])
    assert match, names
    # The slider was dragged from its default 0.50 to about four fifths of its length.
    assert 0.6 <= float(match.group(1)) <= 0.95, names[0]
    assert (report["layers"][0]["width"], report["layers"][0]["height"]) == (448, 320)
    assert report["dirty"]


def test_the_session_ends_cleanly_with_a_dialog_grab(gui_session: dict) -> None:
    assert gui_session["proc"].returncode == 0, gui_session["why"]
    assert "GIMP quit" in gui_session["steps"], gui_session["why"]
    geometry = _geometry(gui_session["out"])
    assert geometry["WIDTH"] > 300 and geometry["HEIGHT"] > 150, geometry
    assert (gui_session["out"] / "dialog.png").stat().st_size > 10_000


def test_the_preview_follows_the_slider(gui_session: dict) -> None:
    shown = [entry for entry in gui_session["previews"] if not entry["stale"]]
    assert len(shown) >= 2, gui_session["why"]
    first, last = shown[0], shown[-1]
    # Shown when the dialog opens, at the default fidelity and check boxes; the photo holds one face (large enough
    # for the 256 px rung, whose two ends are embedded).
    assert first["options"] == {"grain": "keep", "damage": "off"}, first
    assert first["caption"] == "Before | after at fidelity 0.50: the only face found.", first
    # The last one shown is at the fidelity the run used (the result layer's name) and differs from the first.
    layer = LAYER.fullmatch(gui_session["report"]["layers"][0]["name"])
    assert layer, gui_session["why"]
    assert last["caption"] == f"Before | after at fidelity {layer.group(1)}: the only face found.", last
    assert last["settled"] and last["outcome"] == "picture", last
    # Ticking "Remove scratches and dust" asked again with the damage step on.
    assert last["options"] == {"grain": "keep", "damage": "faces"}, last
    assert last["digest"] != first["digest"], "the after picture did not change with the fidelity"


def test_the_grab_shows_the_preview(gui_session: dict) -> None:
    from PIL import Image

    shown = [entry for entry in gui_session["previews"] if not entry["stale"]]
    assert shown, gui_session["why"]
    last = shown[-1]
    x, y, width, height = last["rect"]
    assert width >= 300 and height >= 150, last
    geometry = _geometry(gui_session["out"])
    left, top = geometry["X"] + x, geometry["Y"] + y
    with Image.open(gui_session["out"] / "dialog.png") as grab:
        area = np.asarray(grab.convert("RGB").crop((left, top, left + width, top + height)), dtype=np.float32)
    # A face, not the dialog's plain background: many distinct colours, and a spread of brightness.
    assert len(np.unique(area.reshape(-1, 3), axis=0)) > 500, (left, top, width, height)
    assert area.std() > 15, area.std()


def test_the_preview_says_plainly_that_the_server_is_not_running(no_server_session: dict) -> None:
    session = no_server_session
    assert "dialog cancelled" in session["steps"], session["why"]
    (answer,) = session["previews"]  # one request, one sentence, and no retry storm
    assert answer["outcome"] == "error" and answer["settled"], answer
    assert answer["caption"] == "No preview: the Renovate Faces server is not running (OK starts it).", answer
    assert (session["out"] / "dialog.png").is_file()


def test_a_sharp_small_face_is_previewed_as_kept(sharp_session: dict) -> None:
    session = sharp_session
    assert "dialog cancelled" in session["steps"], session["why"]
    answer = session["previews"][0]
    assert answer["outcome"] == "picture", answer
    expected = "The only face found already looks sharp: it keeps its pixels at any fidelity."
    assert answer["caption"] == expected, answer
