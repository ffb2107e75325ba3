"""The GIMP 3.0 plug-in through GIMP's real GUI (Xvfb in the Debian trixie root), as a user runs it.

Batch mode (tests/test_gimp_plugin.py) calls the procedure non-interactively and never builds the dialog. Here
GIMP opens a photo, ``tests/hosts/gimp_gui.sh`` opens Filters > Enhance > Renovate Faces... by its menu keys,
drags the fidelity slider with the mouse (xdotool), grabs the dialog and presses OK; the real server renovates
the face; ``tests/hosts/gimp_gui_watch.py``, a batch command inside the same GIMP, reports the image's layers and
quits GIMP. ``RENOVATE_SCREENSHOTS=DIR`` keeps the grabs (docs/results/gimp-dialog.png is one).
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

import pytest
from conftest import REPO
from test_gimp_plugin import (  # noqa: F401 - the session fixtures: the trixie root, the real server
    Gimp,
    Server,
    degraded_face,
    gimp,
    server,
    test_weights,
    trixie_root,
)

pytestmark = [pytest.mark.gimp, pytest.mark.slow, pytest.mark.timeout(900)]

SCRIPTS = ("gimp_gui.sh", "gimp_gui_watch.py")
GIMPRC = "(show-welcome-dialog no)\n(color-profile-policy keep)\n(show-tips no)\n"
LAYER = re.compile(r"Renovated faces \(all faces, fidelity (\d\.\d\d)\)")


@pytest.fixture(scope="module")
def gui_session(trixie_root: Path, server: Server, degraded_face: Path) -> dict:  # noqa: F811 (imported fixtures)
    host = Gimp(trixie_root)  # a HOME of its own: the GUI writes its profile there
    host.connect_to(server.endpoint, server.token_file)
    (host.home / ".config" / "GIMP" / "3.0" / "gimprc").write_text(GIMPRC)
    for name in SCRIPTS:
        shutil.copy2(REPO / "tests" / "hosts" / name, host.scratch / name)
    out = host.scratch / "gui"
    out.mkdir()
    env = {
        "HOME": host.inside(host.home),
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "RF_IMAGE": host.stage(degraded_face),
        "RF_OUT": host.inside(out),
    }
    command = ["chroot", str(trixie_root), "env", "-i", *(f"{k}={v}" for k, v in env.items())]
    command += ["xvfb-run", "-a", "-n", str(random.randint(100, 30000))]
    command += ["-s", "-screen 0 1400x900x24 -nolisten tcp", "sh", host.inside(host.scratch / SCRIPTS[0])]
    started = time.monotonic()
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600, errors="replace")
    seconds = time.monotonic() - started
    steps = (out / "steps.txt").read_text() if (out / "steps.txt").is_file() else ""
    log = (out / "gimp.log").read_text(errors="replace")[-3000:] if (out / "gimp.log").is_file() else ""
    report = json.loads((out / "report.json").read_text()) if (out / "report.json").is_file() else {}
    keep = os.environ.get("RENOVATE_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        for png in out.glob("*.png"):
            shutil.copy2(png, Path(keep) / f"gimp-{png.name}")
    print(f"GIMP GUI session {seconds:.1f} s (exit {proc.returncode}); steps:\n{steps}")
    yield {
        "proc": proc,
        "steps": steps,
        "log": log,
        "report": report,
        "out": out,
        "why": f"exit {proc.returncode}\nsteps:\n{steps}\nstderr:\n{proc.stderr[-2000:]}\nGIMP:\n{log}",
    }
    host.close()


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
    geometry = dict(
        line.split("=", 1) for line in (gui_session["out"] / "dialog_geometry.txt").read_text().split()
    )
    assert int(geometry["WIDTH"]) > 300 and int(geometry["HEIGHT"]) > 150, geometry
    assert (gui_session["out"] / "dialog.png").stat().st_size > 10_000
