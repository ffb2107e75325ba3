"""The GIMP 3.0 plug-in, run inside real GIMP (Debian trixie root, ``gimp-console-3.0`` batch mode).

GIMP runs in a chroot (``tests/hosts/trixie_root.sh gimp`` builds and caches it); the real Renovate Faces
server runs here on the host, on a ``tcp://127.0.0.1`` port the chroot reaches because a chroot shares the
network namespace. The plug-in is installed into a scratch HOME inside the root the way the installer does
it (plug-in folder + the bundled client files), with the server's endpoint and token in that HOME's config.

Each test runs one GIMP batch session driven by ``tests/hosts/gimp_batch.py``, which writes a JSON report
and raw pixel dumps; the numeric checks happen here with numpy. The pixels the plug-in writes are compared
with what the same server returns to a direct client call: the plug-in must neither lose nor shift a pixel.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, REQUIRE_ALL, require

from hifacegan_server.testing import free_port, server_argv

pytestmark = [pytest.mark.gimp, pytest.mark.slow, pytest.mark.timeout(900)]

CACHE = Path(os.environ.get("RENOVATE_CACHE_DIR", Path.home() / ".cache" / "renovate-faces"))
ROOT = Path(os.environ.get("RENOVATE_TRIXIE_ROOT", CACHE / "trixie-root"))
BUILD_SCRIPT = REPO / "tests" / "hosts" / "trixie_root.sh"
BATCH_SCRIPT = REPO / "tests" / "hosts" / "gimp_batch.py"
PLUGIN = REPO / "plugin_gimp" / "renovate-faces" / "renovate-faces.py"
BUNDLED = ("client.py", "paths.py", "protocol.py")  # what the installer copies beside the plug-in, and
COMMON = REPO / "plugin_krita" / "renovate_faces" / "common.py"  # the words both plug-ins share
PROCEDURE_MENU = "<Image>/Filters/Enhance"
GIMP_TIMEOUT = 300


# ---------------------------------------------------------------------------------------------------------
# The root, the scratch HOME, GIMP itself
# ---------------------------------------------------------------------------------------------------------


def _root_ready() -> bool:
    return (ROOT / ".renovate-base-ok").is_file() and (ROOT / ".renovate-host-gimp-ok").is_file()


@pytest.fixture(scope="session")
def trixie_root() -> Path:
    """The cached trixie root with GIMP 3.0; built here only under CI (or RENOVATE_BUILD_HOSTS=1)."""
    require(sys.platform.startswith("linux"), "GIMP 3 host tests run on Linux only (debootstrap + chroot)")
    is_root = os.geteuid() == 0
    if is_root and (REQUIRE_ALL or os.environ.get("RENOVATE_BUILD_HOSTS") == "1"):
        # Idempotent: a tenth of a second when the cached root is complete, minutes when it must be built.
        subprocess.run(["bash", str(BUILD_SCRIPT), "gimp"], check=True, timeout=900)
    require(
        _root_ready(),
        f"no GIMP 3 root at {ROOT}; build it once (as root, ~1-3 min) with: bash tests/hosts/trixie_root.sh gimp",
    )
    require(is_root, "running GIMP inside the trixie root needs chroot, i.e. root")
    return ROOT


class Gimp:
    """One scratch HOME inside the root with the plug-in installed; runs batch cases in gimp-console-3.0."""

    def __init__(self, root: Path) -> None:
        self.root = root
        for stale in (root / "tmp").glob("rf-gimp-*"):  # left by an interrupted session
            if time.time() - stale.stat().st_mtime > 6 * 3600:
                shutil.rmtree(stale, ignore_errors=True)
        self.scratch = Path(tempfile.mkdtemp(prefix="rf-gimp-", dir=root / "tmp"))
        self.home = self.scratch / "home"
        self.plugin_dir = self.home / ".config" / "GIMP" / "3.0" / "plug-ins" / "renovate-faces"
        self.config_dir = self.home / ".config" / "renovate-faces"
        self.plugin_dir.mkdir(parents=True)
        self.config_dir.mkdir(parents=True, mode=0o700)
        shutil.copy2(PLUGIN, self.plugin_dir / PLUGIN.name)
        os.chmod(self.plugin_dir / PLUGIN.name, 0o755)
        for name in BUNDLED:  # the queries and the checks before the first server call work without them
            if (REPO / "server" / name).is_file():
                shutil.copy2(REPO / "server" / name, self.plugin_dir / name)
        shutil.copy2(COMMON, self.plugin_dir / COMMON.name)
        self.runs = 0

    def inside(self, path: Path) -> str:
        """``path`` as GIMP in the chroot sees it."""
        return "/" + str(path.resolve().relative_to(self.root.resolve()))

    def connect_to(self, endpoint: str, token_file: Path) -> None:
        """What the installer writes: the endpoint in server.json and the daemon's token, both owner-only."""
        _write_private(self.config_dir / "server.json", json.dumps({"endpoint": endpoint}))
        _write_private(self.config_dir / "token", token_file.read_text())

    def stage(self, source: Path) -> str:
        """Copy an input file into the root; returns its path inside."""
        target = self.scratch / "inputs" / source.name
        target.parent.mkdir(exist_ok=True)
        shutil.copy2(source, target)
        return self.inside(target)

    def run(self, case: dict, env: dict[str, str] | None = None) -> tuple[dict, Path]:
        """Run one case; returns the report and the folder holding the pixel dumps."""
        self.runs += 1
        out = self.scratch / f"run-{self.runs}"
        out.mkdir()
        case = {**case, "out_dir": self.inside(out)}
        (out / "case.json").write_text(json.dumps(case))
        variables = {
            "HOME": self.inside(self.home),
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "RF_CASE": self.inside(out / "case.json"),
            **(env or {}),
        }
        command = ["chroot", str(self.root), "env", "-i", *(f"{k}={v}" for k, v in variables.items())]
        command += ["gimp-console-3.0", "-i", "--batch-interpreter=python-fu-eval", "-b", "-", "--quit"]
        started = time.monotonic()
        with open(BATCH_SCRIPT, "rb") as script:
            proc = subprocess.run(command, stdin=script, capture_output=True, timeout=GIMP_TIMEOUT)
        log = proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
        (out / "gimp.log").write_text(log)
        report_file = out / "result.json"
        assert report_file.is_file(), f"GIMP wrote no report (exit {proc.returncode}):\n{log[-4000:]}"
        report = json.loads(report_file.read_text())
        assert "harness_error" not in report, report["harness_error"]
        assert proc.returncode == 0, f"gimp-console exited {proc.returncode}:\n{log[-4000:]}"
        report["seconds"] = time.monotonic() - started
        report["log"] = log
        return report, out

    def close(self) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


@pytest.fixture(scope="session")
def gimp(trixie_root: Path):
    host = Gimp(trixie_root)
    yield host
    host.close()


# ---------------------------------------------------------------------------------------------------------
# The real server, on the host
# ---------------------------------------------------------------------------------------------------------


class Server:
    """``python -m hifacegan_server --foreground`` on a loopback TCP port with private folders; the lite weights."""

    def __init__(self, folder: Path, weights: str) -> None:
        self.folder = folder
        self.weights = weights
        self.endpoint = f"tcp://127.0.0.1:{free_port()}"
        self.env = {
            **os.environ,
            "RENOVATE_FACES_CONFIG_DIR": str(folder / "config"),
            "RENOVATE_FACES_RUNTIME_DIR": str(folder / "run"),
            "RENOVATE_FACES_LOG_DIR": str(folder / "log"),
            "RENOVATE_FACES_ENDPOINT": self.endpoint,
        }
        self.log = open(folder / "server.out", "wb")  # noqa: SIM115 - kept open for the server's lifetime
        self.process = subprocess.Popen(
            server_argv("--foreground", "--endpoint", self.endpoint)
            + ["--device", "cpu", "--weights", weights],
            cwd=REPO,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.client = self._wait_until_ready()

    def weights_state(self) -> tuple[str, str]:
        """(state, error) of the weights the worker loads: "loading", "ready", "failed"."""
        weights = next(iter(self.client.status()["weights"].values()))
        return str(weights.get("state")), str(weights.get("error") or "")

    def _wait_until_ready(self):
        from hifacegan_server.client import Client, ServerUnavailable

        deadline = time.monotonic() + 120
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited {self.process.returncode}:\n{self.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the server did not answer in 120 s:\n{self.output()}")
            if self.token_file.is_file():  # the daemon writes it at start
                client = Client(endpoint=self.endpoint, token=self.token_file.read_text().strip(), timeout=10)
                try:
                    client.status()
                    return client
                except ServerUnavailable:
                    client.close()
            time.sleep(0.5)

    @property
    def token_file(self) -> Path:
        return self.folder / "config" / "token"

    def output(self) -> str:
        self.log.flush()
        return (self.folder / "server.out").read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        self.client.close()  # an open zmq socket would block the interpreter's exit
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@pytest.fixture(scope="session")
def test_weights(tmp_path_factory) -> str:
    """The default lite weights; where none are installed yet, seeded random lite weights of the same family.

    The tests check the plug-in's pixel path (what it sends, where the result lands), which any real network
    exercises; RENOVATE_GIMP_TEST_WEIGHTS picks other weights.
    """
    chosen = os.environ.get("RENOVATE_GIMP_TEST_WEIGHTS")
    if chosen:
        return chosen
    from hifacegan.weights import WeightsError, resolve

    try:
        resolve("default")
        return "default"
    except WeightsError as error:
        import warnings

        import torch

        from hifacegan.models import build_generator
        from hifacegan.weights import ModelCard, save_weights

        warnings.warn(f"GIMP tests use random lite weights: {error}", stacklevel=1)
        torch.manual_seed(0)
        generator = build_generator("hifacegan-lite-128").eval()  # a narrower one barely changes faces
        card = ModelCard(name="gimp-test-random", config="hifacegan-lite-128", size=128)
        path = tmp_path_factory.mktemp("weights") / "gimp-test-random.safetensors"
        save_weights(path, generator, card)
        return str(path)


@pytest.fixture(scope="session")
def server(tmp_path_factory, gimp: Gimp, test_weights: str):
    assert all((REPO / "server" / name).is_file() for name in BUNDLED), "server/client.py is missing"
    running = Server(tmp_path_factory.mktemp("server"), test_weights)
    deadline = time.monotonic() + 180
    while (state := running.weights_state())[0] not in ("ready", "failed") and time.monotonic() < deadline:
        time.sleep(0.5)
    if state[0] != "ready":
        running.stop()
        raise AssertionError(f"the server cannot load the weights {test_weights!r}: {state[1] or state[0]}")
    gimp.connect_to(running.endpoint, running.token_file)
    yield running
    running.stop()


# ---------------------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def degraded_face(tmp_path_factory, shared_data: Path) -> Path:
    """An FFHQ face, 4x down-sampled and blurred by the project's degradations, on a wider plain canvas."""
    from PIL import Image

    from hifacegan.degradations import degrade

    clean = (
        Image.open(shared_data / "faces-eval" / "ffhq-1024" / "00000.png").convert("RGB").resize((256, 256))
    )
    face = degrade(np.asarray(clean), "sr4x", seed=7)
    canvas = np.full((320, 448, 3), (96, 120, 140), np.uint8)  # plain margins: nothing to renovate there
    canvas[32:288, 96:352] = face
    path = tmp_path_factory.mktemp("inputs") / "degraded_face.png"
    Image.fromarray(canvas).save(path)
    return path


@pytest.fixture(scope="session")
def degraded_face_16bit(degraded_face: Path) -> Path:
    """The same face as a 16-bit PNG: GIMP opens it at 16-bit precision."""
    import cv2

    bgr = cv2.imread(str(degraded_face), cv2.IMREAD_COLOR).astype(np.uint16) * 257
    path = degraded_face.with_name("degraded_face_16bit.png")
    cv2.imwrite(str(path), bgr)
    return path


def _load_dump(folder: Path, info: dict, channels: int, dtype=np.uint8) -> np.ndarray:
    data = np.fromfile(folder / info["file"], dtype=dtype)
    return data.reshape(info["height"], info["width"], channels)


_DIRECT: dict[tuple, tuple] = {}


def _direct(server: Server, rgba: np.ndarray, dtype: str = "u8", **options):
    """What the server returns for these pixels when called directly (the reference for the plug-in)."""
    key = (rgba.tobytes(), rgba.shape, dtype, tuple(sorted(options.items())))
    if key not in _DIRECT:
        _DIRECT[key] = _call_server(server, rgba, dtype, **options)
    return _DIRECT[key]


def _call_server(server: Server, rgba: np.ndarray, dtype: str = "u8", **options):
    height, width, channels = rgba.shape
    result = server.client.renovate(
        np.ascontiguousarray(rgba).tobytes(),
        width,
        height,
        channels,
        dtype=dtype,
        options={"fidelity": 0.5, "faces": "all", **options},
    )
    np_dtype = {"u8": np.uint8, "u16": np.uint16, "f32": np.float32}[dtype]
    pixels = np.frombuffer(bytes(result.pixels), dtype=np_dtype).reshape(height, width, channels)
    return pixels, result.faces


_FACES: dict[bytes, list[dict]] = {}


def _detected(server: Server, pixels: np.ndarray) -> list[dict]:
    """The faces the server finds, without running the network (the ``identity`` weights): seconds, not minutes."""
    key = pixels.tobytes()
    if key not in _FACES:
        _FACES[key] = _direct(server, pixels, weights="identity")[1]
    return _FACES[key]


def _inside_boxes(shape: tuple[int, int], faces: list[dict], grow: float = 1.0) -> np.ndarray:
    """Pixels within the faces' boxes, grown by ``grow`` of their size on each side (the aligned crop is wider)."""
    inside = np.zeros(shape, bool)
    for face in faces:
        x0, y0, x1, y1 = face["box"]
        gx, gy = grow * (x1 - x0), grow * (y1 - y0)
        ys, xs = slice(max(0, int(y0 - gy)), int(y1 + gy) + 1), slice(max(0, int(x0 - gx)), int(x1 + gx) + 1)
        inside[ys, xs] = True
    return inside


def _changed_faces(changed: np.ndarray, faces: list[dict], share: float = 0.2) -> int:
    """How many faces have at least ``share`` of their box's pixels changed."""
    count = 0
    for face in faces:
        x0, y0, x1, y1 = (int(round(v)) for v in face["box"])
        box = changed[max(0, y0) : y1, max(0, x0) : x1]
        count += box.size > 0 and box.mean() >= share
    return count


# ---------------------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------------------


def test_registered_under_filters_enhance(gimp: Gimp) -> None:
    report, _ = gimp.run({"query": True})
    assert report["found"], f"plug-in-renovate-faces is not registered; GIMP said:\n{report['log'][-3000:]}"
    assert PROCEDURE_MENU in report["menu_paths"]
    assert report["menu_label"] == "Renovate _Faces…"
    # Scripts may pass arguments by position: the new ones come after the old ones, in this order.
    names = ("fidelity", "faces", "output", "convert-indexed", "keep-grain", "remove-damage")
    assert [name for name in report["arguments"] if name in names] == list(names), report["arguments"]
    assert "renovated-faces" in report["return_values"]


def test_indexed_image_is_refused_with_advice(gimp: Gimp, degraded_face: Path) -> None:
    report, folder = gimp.run({"image": gimp.stage(degraded_face), "indexed": True})
    assert report["status"] == "execution-error"
    assert "indexed" in report["error"] and "RGB" in report["error"]
    assert report["base_type_after"] == "indexed" and not report["dirty"]
    assert report["layers_after"] == report["layers_before"]


def test_solvay_photo_new_layer(gimp: Gimp, server: Server, solvay_photo: Path, test_weights: str) -> None:
    report, folder = gimp.run({"image": gimp.stage(solvay_photo), "args": {"fidelity": 0.5}})
    assert report["status"] == "success", report["error"]
    before = _load_dump(folder, report["source_before"], 4)
    after = _load_dump(folder, report["source_after"], 4)
    new = _load_dump(folder, report["new_layer"], 4)
    np.testing.assert_array_equal(after, before)  # the source layer is untouched
    src, layer = report["source_before"], report["new_layer"]
    assert (layer["x"], layer["y"], layer["width"], layer["height"]) == (src["x"], src["y"], 1328, 568)
    assert report["new_layer_position"] == report["source_position"] - 1  # right above the source
    assert report["dirty"]
    assert layer["name"] == "Renovated faces (all faces, fidelity 0.50)"  # the Krita plug-in's scheme
    faces = _detected(server, before)
    assert len(faces) >= 20  # the 1927 Solvay photo shows 29 people
    reference, reference_faces = _direct(server, before)
    # The count is of faces whose pixels changed (a sharp face is renovated yet keeps its pixels).
    assert report["renovated_faces"] == sum(1 for face in reference_faces if face.get("changed")) > 0
    # The source stays active: Filters > Repeat renovates the photo again, not the result.
    assert report["selected_after"] == [report["source_before"]["name"]], report["selected_after"]
    np.testing.assert_array_equal(new, reference)
    changed = np.any(new != before, axis=2)
    if test_weights == "default":  # random stand-in weights make faces the parsing mask mostly rejects
        assert _changed_faces(changed, faces) >= 0.9 * len(faces), "faces were left unrenovated"
    assert changed.any()
    assert not changed[~_inside_boxes(changed.shape, faces)].any(), "pixels changed away from every face"
    np.testing.assert_array_equal(new[:, :, 3], before[:, :, 3])  # alpha travels untouched


def test_degraded_face_with_layer_offsets(gimp: Gimp, server: Server, degraded_face: Path) -> None:
    # A wider canvas moves the layer to (40, 24): the result must land at the same offsets.
    case = {"image": gimp.stage(degraded_face), "canvas": [520, 380, 40, 24], "args": {"fidelity": 0.3}}
    report, folder = gimp.run(case)
    assert report["status"] == "success", report["error"]
    assert report["renovated_faces"] == 1
    new_info, src_info = report["new_layer"], report["source_before"]
    assert (new_info["x"], new_info["y"], new_info["width"], new_info["height"]) == (40, 24, 448, 320)
    assert (src_info["x"], src_info["y"]) == (40, 24)
    assert new_info["name"] == "Renovated faces (all faces, fidelity 0.30)"
    before = _load_dump(folder, src_info, 4)
    new = _load_dump(folder, new_info, 4)
    reference, faces = _direct(server, before[:, :, :3], fidelity=0.3)
    np.testing.assert_array_equal(new[:, :, :3], reference)
    assert (new[:, :, 3] == 255).all()
    diff = np.abs(new[:, :, :3].astype(int) - before[:, :, :3]).max(axis=2)
    assert (diff[40:280, 110:340] > 0).any(), "the face was not renovated"
    assert (diff[:, :24] == 0).all() and (diff[:, -24:] == 0).all(), "plain margins changed"


def test_grain_and_damage_check_boxes_reach_the_server(
    gimp: Gimp, server: Server, degraded_face: Path
) -> None:
    # Both unlike their defaults: the faces stay smooth (grain=remove) and scratches are looked for (damage=faces).
    args = {"keep-grain": False, "remove-damage": True}
    report, folder = gimp.run({"image": gimp.stage(degraded_face), "args": args})
    assert report["status"] == "success", report["error"]
    before = _load_dump(folder, report["source_before"], 4)
    new = _load_dump(folder, report["new_layer"], 4)
    reference, _ = _direct(server, before[:, :, :3], grain="remove", damage="faces")
    np.testing.assert_array_equal(new[:, :, :3], reference)


@pytest.fixture(scope="session")
def sharp_face(tmp_path_factory, shared_data: Path) -> Path:
    """A sharp, clean small face (an FFHQ portrait at 128 px) on a plain canvas: renovated, no pixel changed."""
    from PIL import Image

    face = Image.open(shared_data / "faces-hires" / "ffhq-1024" / "01001.jpg").convert("RGB")
    canvas = np.full((320, 448, 3), (96, 120, 140), np.uint8)
    canvas[96:224, 160:288] = np.asarray(face.resize((128, 128), Image.Resampling.BOX))
    path = tmp_path_factory.mktemp("inputs") / "sharp_small_face.png"
    Image.fromarray(canvas).save(path)
    return path


def test_a_run_that_changes_no_pixel_adds_no_layer(gimp: Gimp, server: Server, sharp_face: Path) -> None:
    report, folder = gimp.run({"image": gimp.stage(sharp_face)})
    assert report["status"] == "success", report["error"]
    _, faces = _direct(server, _load_dump(folder, report["source_before"], 4))
    assert len(faces) == 1 and faces[0]["renovated"] and not faces[0]["changed"], faces
    assert report["renovated_faces"] == 0
    assert report["layers_after"] == report["layers_before"] and "new_layer" not in report
    assert not report["dirty"]


def test_elliptical_selection_leaves_outside_faces_alone(
    gimp: Gimp, server: Server, solvay_photo: Path
) -> None:
    # An ellipse over the left of the group: faces elsewhere must keep every pixel.
    ellipse = [0, 150, 450, 420]
    report, folder = gimp.run({"image": gimp.stage(solvay_photo), "ellipse": ellipse})
    assert report["status"] == "success", report["error"]
    before = _load_dump(folder, report["source_before"], 4)
    new = _load_dump(folder, report["new_layer"], 4)
    selection = _load_dump(folder, report["selection"], 1)[:, :, 0]
    changed = np.any(new != before, axis=2)
    assert changed[selection == 0].sum() == 0, "pixels outside the ellipse changed"
    faces = _detected(server, before)
    inside = [
        f
        for f in faces
        if selection[int(f["box"][1] + f["box"][3]) // 2, int(f["box"][0] + f["box"][2]) // 2]
    ]
    assert 0 < len(inside) < len(faces)
    assert 0 < report["renovated_faces"] < len(faces)
    assert changed[selection > 0].any(), "no face inside the ellipse was renovated"


@pytest.mark.parametrize(
    ("faces", "words"), [("largest", "largest face"), ("center", "face nearest the centre")]
)
def test_one_face_only(gimp: Gimp, server: Server, solvay_photo: Path, faces: str, words: str) -> None:
    report, folder = gimp.run({"image": gimp.stage(solvay_photo), "args": {"faces": faces}})
    assert report["status"] == "success", report["error"]
    assert report["renovated_faces"] == 1
    assert report["new_layer"]["name"] == f"Renovated faces ({words}, fidelity 0.50)"
    before = _load_dump(folder, report["source_before"], 4)
    new = _load_dump(folder, report["new_layer"], 4)
    found = _detected(server, before)
    mid = np.array([before.shape[1], before.shape[0]]) / 2
    if faces == "largest":
        chosen = max(found, key=lambda f: (f["box"][2] - f["box"][0]) * (f["box"][3] - f["box"][1]))
    else:
        chosen = min(found, key=lambda f: np.hypot(*(np.add(f["box"][:2], f["box"][2:]) / 2 - mid)))
    changed = np.any(new != before, axis=2)
    assert changed.any()
    assert not changed[~_inside_boxes(changed.shape, [chosen])].any(), "another face changed"


def test_in_place_through_an_elliptical_selection(gimp: Gimp, server: Server, degraded_face: Path) -> None:
    case = {
        "image": gimp.stage(degraded_face),
        "ellipse": [110, 20, 230, 280],
        "args": {"output": "in-place"},
    }
    report, folder = gimp.run(case)
    assert report["status"] == "success", report["error"]
    assert "new_layer" not in report and report["dirty"]
    before = _load_dump(folder, report["source_before"], 4)
    after = _load_dump(folder, report["source_after"], 4)
    selection = _load_dump(folder, report["selection"], 1)[:, :, 0]
    changed = np.any(after != before, axis=2)
    assert not changed[selection == 0].any(), "in place, pixels outside the selection changed"
    assert changed[selection == 255].any()


def test_sixteen_bit_image_in_place(gimp: Gimp, server: Server, degraded_face_16bit: Path) -> None:
    case = {
        "image": gimp.stage(degraded_face_16bit),
        "args": {"output": "in-place"},
        "dump_format": "R'G'B' u16",
    }
    report, folder = gimp.run(case)
    assert report["precision"].startswith("u16")
    assert report["status"] == "success", report["error"]
    assert "new_layer" not in report and len(report["layers_after"]) == 1
    before = _load_dump(folder, report["source_before"], 3, np.uint16)
    after = _load_dump(folder, report["source_after"], 3, np.uint16)
    reference, _ = _direct(server, before, dtype="u16")
    np.testing.assert_array_equal(after, reference)
    diff = np.abs(after.astype(int) - before).max(axis=2)
    assert (diff[40:280, 110:340] > 0).any()
    assert (diff[:, :24] == 0).all()
    # 16-bit really travelled: the result is not an 8-bit image scaled up.
    assert (after[diff > 0] % 257 != 0).any()


def test_float_image(gimp: Gimp, server: Server, degraded_face: Path) -> None:
    case = {
        "image": gimp.stage(degraded_face),
        "precision": "FLOAT_NON_LINEAR",
        "dump_format": "R'G'B' float",
    }
    report, folder = gimp.run(case)
    assert report["precision"] == "float-non-linear"
    assert report["status"] == "success", report["error"]
    before = _load_dump(folder, report["source_before"], 3, np.float32)
    new = _load_dump(folder, report["new_layer"], 3, np.float32)
    reference, _ = _direct(server, before, dtype="f32")
    np.testing.assert_allclose(new, reference, atol=1e-6)
    assert (np.abs(new - before).max(axis=2)[40:280, 110:340] > 0).any()
    assert (new[:, :24] == before[:, :24]).all()


def test_indexed_image_converted_on_request(gimp: Gimp, server: Server, degraded_face: Path) -> None:
    case = {"image": gimp.stage(degraded_face), "indexed": True, "args": {"convert-indexed": True}}
    report, folder = gimp.run(case)
    assert report["base_type"] == "indexed"
    assert report["status"] == "success", report["error"]
    before = _load_dump(folder, report["source_before"], 4)  # the palette colours, as RGB
    reference, faces = _direct(server, before[:, :, :3])
    assert len(faces) == 1 and faces[0]["renovated"], faces
    if not faces[0]["changed"]:
        # The palette's flat colours read as a sharp face, which keeps its pixels: nothing to write, so the
        # image is not converted either (no change at all, and no layer equal to its source).
        assert report["renovated_faces"] == 0 and report["base_type_after"] == "indexed"
        assert "new_layer" not in report and not report["dirty"]
        return
    assert report["base_type_after"] == "rgb" and report["renovated_faces"] == 1
    new = _load_dump(folder, report["new_layer"], 4)
    np.testing.assert_array_equal(new[:, :, :3], reference)


def test_grayscale_image_with_alpha(gimp: Gimp, server: Server, degraded_face: Path) -> None:
    case = {"image": gimp.stage(degraded_face), "gray": True, "alpha": True, "dump_format": "Y'A u8"}
    report, folder = gimp.run(case)
    assert report["base_type"] == "gray"
    assert report["status"] == "success", report["error"]
    before = _load_dump(folder, report["source_before"], 2)
    new = _load_dump(folder, report["new_layer"], 2)
    reference, _ = _direct(server, before)
    np.testing.assert_array_equal(new, reference)
    assert (new[40:280, 110:340, 0] != before[40:280, 110:340, 0]).any()
    assert (new[:, :24] == before[:, :24]).all()


def test_server_down_and_not_startable(gimp: Gimp, degraded_face: Path) -> None:
    assert all((REPO / "server" / name).is_file() for name in BUNDLED), "server/client.py is missing"
    # Its own config dir: a dead endpoint, and a start command that cannot run.
    config = gimp.scratch / "dead-config"
    config.mkdir(mode=0o700, exist_ok=True)
    dead = f"tcp://127.0.0.1:{free_port()}"
    _write_private(config / "server.json", json.dumps({"endpoint": dead, "command": ["/nonexistent/server"]}))
    _write_private(config / "token", "0" * 64 + "\n")
    env = {"RENOVATE_FACES_CONFIG_DIR": gimp.inside(config), "RENOVATE_FACES_ENDPOINT": dead}
    started = time.monotonic()
    report, folder = gimp.run({"image": gimp.stage(degraded_face)}, env=env)
    assert report["status"] == "execution-error"
    assert "server" in report["error"].lower() and "start" in report["error"].lower(), report["error"]
    # One plain sentence saying what to do; the command, endpoint and errno go to the plug-in's log.
    assert "installer again" in report["error"], report["error"]
    for raw in ("`", "tcp://", "ipc://", "/nonexistent", "No such file", "Errno"):
        assert raw not in report["error"], report["error"]
    assert not report["dirty"] and report["layers_after"] == report["layers_before"]
    before = _load_dump(folder, report["source_before"], 4)
    after = _load_dump(folder, report["source_after"], 4)
    np.testing.assert_array_equal(after, before)
    assert time.monotonic() - started < 120
