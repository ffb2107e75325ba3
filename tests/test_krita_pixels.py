"""The Krita plug-in's pure parts (byte layouts, change detection, options), in the project's Python: no Krita.

The same modules run inside Krita (Python 3.11 in bookworm, 3.13 in trixie), with the standard library only.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugin_krita"))

from renovate_faces import core  # noqa: E402
from renovate_faces.pixels import (  # noqa: E402
    PixelFormat,
    UnsupportedImage,
    changed_region,
    host_to_wire,
    mask_is_empty,
    wire_to_host,
    wire_to_rgba8,
)

rng = np.random.default_rng(0)


def test_u8_bgra_becomes_rgba_and_back() -> None:
    fmt = PixelFormat.check("RGBA", "U8")
    host = bytes([10, 20, 30, 40, 1, 2, 3, 4])  # B G R A
    wire = host_to_wire(host, fmt, 2, 1)
    assert list(wire) == [30, 20, 10, 40, 3, 2, 1, 4]
    assert wire_to_host(wire, fmt, 2, 1) == host
    assert (fmt.channels, fmt.wire_dtype) == (4, "u8")


def test_u16_swaps_whole_samples() -> None:
    fmt = PixelFormat.check("RGBA", "U16")
    bgra = rng.integers(0, 65536, (3, 5, 4), dtype=np.uint16)
    wire = np.frombuffer(host_to_wire(bgra.tobytes(), fmt, 5, 3), np.uint16).reshape(3, 5, 4)
    np.testing.assert_array_equal(wire, bgra[..., [2, 1, 0, 3]])
    assert wire_to_host(wire.tobytes(), fmt, 5, 3) == bgra.tobytes()


def test_f16_is_sent_as_f32_in_rgba_order() -> None:
    fmt = PixelFormat.check("RGBA", "F16")
    rgba = rng.random((4, 3, 4)).astype(np.float16)
    wire = np.frombuffer(host_to_wire(rgba.tobytes(), fmt, 3, 4), "<f4").reshape(4, 3, 4)
    np.testing.assert_array_equal(wire, rgba.astype(np.float32))
    assert fmt.wire_dtype == "f32"
    assert wire_to_host(wire.tobytes(), fmt, 3, 4) == rgba.tobytes()


def test_f16_clamps_values_beyond_half_range() -> None:
    fmt = PixelFormat.check("RGBA", "F16")
    wire = np.array([1e6, 0.5, -1e6, 1.0], np.float32).tobytes()
    assert struct.unpack("<4e", wire_to_host(wire, fmt, 1, 1)) == (65504.0, 0.5, -65504.0, 1.0)


@pytest.mark.parametrize("depth", ["U8", "U16", "F32"])
def test_gray_and_float_rgba_pass_through(depth: str) -> None:
    for model in ("GRAYA", "RGBA"):
        if model == "RGBA" and depth != "F32":
            continue
        fmt = PixelFormat.check(model, depth)
        data = rng.integers(0, 256, 2 * 2 * fmt.host_bytes_per_pixel, dtype=np.uint8).tobytes()
        assert host_to_wire(data, fmt, 2, 2) == data
        assert wire_to_host(data, fmt, 2, 2) == data


@pytest.mark.parametrize(
    ("model", "depth"), [("CMYKA", "U8"), ("LABA", "U16"), ("XYZA", "F32"), ("RGBA", "F64")]
)
def test_other_colour_spaces_are_refused_with_instructions(model: str, depth: str) -> None:
    with pytest.raises(UnsupportedImage, match="Convert Image Color Space"):
        PixelFormat.check(model, depth)


def test_wrong_sizes_are_caught() -> None:
    fmt = PixelFormat.check("RGBA", "U8")
    with pytest.raises(ValueError, match="2x2 region needs 16"):
        host_to_wire(bytes(15), fmt, 2, 2)
    with pytest.raises(ValueError, match="server's result"):
        wire_to_host(bytes(17), fmt, 2, 2)


def test_changed_region_keeps_only_what_changed() -> None:
    h, w = 40, 50
    original = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    result = original.copy()
    result[10:20, 5:15] ^= 1
    result[25, 30] ^= 8
    region = changed_region(original.tobytes(), result.tobytes(), w, h, 4)
    assert region is not None
    assert (region.x, region.y, region.width, region.height) == (5, 10, 26, 16)
    layer = np.frombuffer(region.data, np.uint8).reshape(16, 26, 4)
    np.testing.assert_array_equal(layer[0:10, 0:10], result[10:20, 5:15])
    assert layer[0:10, 10:].max() == 0 and layer[11:15].max() == 0  # unchanged: transparent
    np.testing.assert_array_equal(layer[15, 25], result[25, 30])
    assert region.changed_pixels == 10 * 10 + 1
    assert changed_region(original.tobytes(), original.tobytes(), w, h, 4) is None


def test_changed_region_handles_wide_pixels_and_long_rows() -> None:
    h, w, bpp = 3, 3000, 8  # U16 RGBA
    original = rng.integers(0, 256, h * w * bpp, dtype=np.uint8)
    result = original.copy()
    result[1 * w * bpp + 2222 * bpp + 7] ^= 0xFF  # the last byte of pixel 2222 in row 1
    region = changed_region(original.tobytes(), result.tobytes(), w, h, bpp)
    assert (region.x, region.y, region.width, region.height, region.changed_pixels) == (2222, 1, 1, 1, 1)


def test_empty_mask() -> None:
    assert mask_is_empty(bytes(100))
    assert not mask_is_empty(bytes(99) + b"\x01")


def test_options_check_and_name_the_layer() -> None:
    assert core.Options(0.25, "largest").to_server() == {
        "fidelity": 0.25,
        "faces": "largest",
        "grain": "keep",
        "damage": "off",
    }
    plain = core.Options(0.25, "all", keep_grain=False, remove_damage=True)
    assert plain.to_server() == {"fidelity": 0.25, "faces": "all", "grain": "remove", "damage": "faces"}
    assert plain.photo_options == {"grain": "remove", "damage": "faces"}  # what its preview sends
    assert core.Options().layer_name == "Renovated faces (all faces, fidelity 0.50)"
    with pytest.raises(ValueError):
        core.Options(fidelity=1.5)
    assert (
        core.Options(0.7, "center").layer_name == "Renovated faces (face nearest the centre, fidelity 0.70)"
    )
    with pytest.raises(ValueError):
        core.Options(faces="middle")


def test_selection_context_grows_and_stays_inside_the_image() -> None:
    from renovate_faces.document import Rect

    bounds = Rect(0, 0, 640, 480)
    assert core.selection_context(Rect(60, 40, 100, 190), bounds) == Rect(0, 0, 255, 325)
    assert core.selection_context(Rect(600, 450, 40, 30), bounds) == Rect(536, 386, 104, 94)


# -- the docker's server line (renovate_faces.status): plain sentences from the server's nested status ---------

RAW_MARKERS = ("{", "}", "[", "]", "'state'", "'name'", "None", "True", "False", "resolved", "requested")


def _server_status(state: str, resolved: str = "cpu", gpus: list[str] | None = None, **extra: object) -> dict:
    """A ``status`` reply shaped like server/daemon.py's (docs/protocol.md)."""
    device: dict = {"requested": ["auto"], "resolved": [resolved], "cuda": bool(gpus)}
    if gpus:
        device["gpus"] = gpus
    entry = {
        "name": "default",
        "state": state,
        "error": "The weights file is truncated." if state == "failed" else None,
    }
    if state == "ready":
        entry["device"] = resolved
    return {
        "op": "status",
        "ok": True,
        "device": device,
        "weights": {"auto": entry},
        "queue": {"queued": 0, "running": 0, "max_queued": 8, "jobs": []},
        **extra,
    }


def _plain(text: str) -> str:
    assert text and not any(m in text for m in RAW_MARKERS), text
    return text


def test_status_sentences_name_the_device_and_never_show_raw_data() -> None:
    from renovate_faces import status

    ready = status.describe_status(_server_status("ready"))
    assert ready.kind == "ready"
    assert _plain(ready.text) == "Ready: the server runs on the CPU."
    gpu = status.describe_status(_server_status("ready", "cuda:0", ["NVIDIA H200"]))
    assert _plain(gpu.text) == "Ready: the server runs on the GPU NVIDIA H200."
    loading = status.describe_status(_server_status("loading", "auto"))
    assert loading.kind == "loading" and loading.transitional
    assert _plain(loading.text).startswith("The server is loading its face model. Renovate now")
    failed = status.describe_status(_server_status("failed"))
    assert failed.kind == "failed" and "The weights file is truncated." in _plain(failed.text)
    assert "hifacegan-server" in failed.text and "hifacegan-install" in failed.text
    queue = {"queued": 2, "running": 1, "max_queued": 8, "jobs": [{"job": "a", "state": "running"}]}
    busy = status.describe_status({**_server_status("ready"), "queue": queue})
    assert busy.kind == "busy" and _plain(busy.text) == (
        "Busy: the server is renovating faces on the CPU, 2 more waiting."
    )
    # hello replies carry no device: the weights entry names it once loaded; a path is shown as its stem.
    hello = {
        "weights": {
            "cpu": {"name": "/tmp/w/krita-test-random.safetensors", "state": "ready", "device": "cpu"}
        }
    }
    assert _plain(status.describe_status(hello).text) == (
        "Ready: the server runs on the CPU, with the face model krita-test-random."
    )


def test_status_sentences_for_the_states_without_a_server() -> None:
    from renovate_faces import status

    assert (
        _plain(status.not_running(True).text)
        == "The server is not running; it starts when you press Renovate."
    )
    off = status.not_running(False)
    assert "start the Renovate Faces server" in _plain(off.text) and "hifacegan" not in off.text
    failed = status.start_failed(
        "Cannot start the server with /nope/hifacegan-server --foreground: No such file or directory."
    )
    assert failed.kind == "failed" and not failed.transitional
    # One plain sentence, what to do: no command line, path or errno text (those go to the plug-in's log).
    assert _plain(failed.text) == status.SERVER_DOWN and "installer again" in failed.text
    assert not any(raw in failed.text for raw in ("/", "No such file", "hifacegan-", "`", "'"))
    assert status.STARTING.transitional and _plain(status.STARTING.text).startswith(
        "Starting the Renovate Faces server"
    )
    assert _plain(status.busy("the CPU").text).startswith("Busy: renovating faces on the CPU.")


@pytest.mark.parametrize("dtype", ["u8", "u16", "f32"])
@pytest.mark.parametrize("channels", [4, 2])
def test_preview_pixels_become_8_bit_rgba(dtype: str, channels: int) -> None:
    """The docker's preview: any wire format -> 8-bit R,G,B,A for a QImage, without numpy in Krita."""
    rgba8 = rng.integers(0, 256, (3, 5, channels), dtype=np.uint8)
    if dtype == "u8":
        wire = rgba8.tobytes()
    elif dtype == "u16":
        wire = (rgba8.astype(np.uint16) * 257).tobytes()
    else:
        wire = (rgba8.astype(np.float32) / 255).tobytes()
    out = np.frombuffer(wire_to_rgba8(wire, channels, dtype, 5, 3), np.uint8).reshape(3, 5, 4)
    expected = rgba8 if channels == 4 else rgba8[..., [0, 0, 0, 1]]
    np.testing.assert_array_equal(out, expected)


def test_preview_floats_are_clamped() -> None:
    wire = np.array([-1.0, 0.5, 2.0, float("nan")], np.float32).tobytes()
    assert list(wire_to_rgba8(wire, 4, "f32", 1, 1)) == [0, 128, 255, 0]


def test_a_plugin_linked_from_a_checkout_loads_the_checkouts_client() -> None:
    # No installer copy beside the package (a developer's symlinked plug-in): the checkout's server/ files load
    # as the package's own modules, so the client and the plug-in share one `paths`.
    import subprocess

    repo = Path(__file__).resolve().parents[1]
    code = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from renovate_faces.client_loader import load_client, load_paths\n"
        "client, paths = load_client(), load_paths()\n"
        "assert client.paths is paths, (client.paths, paths)\n"
        "print(client.__name__, client.__file__, paths.__file__, sep='\\n')"
    )
    run = subprocess.run(
        [sys.executable, "-I", "-c", code, str(repo / "plugin_krita")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == [
        "renovate_faces.client",
        str(repo / "server" / "client.py"),
        str(repo / "server" / "paths.py"),
    ]


def test_each_result_layer_gets_a_distinct_name() -> None:
    from renovate_faces.document import KritaDocument

    class Node:
        def __init__(self, name: str, children: tuple = ()) -> None:
            self._name, self._children = name, list(children)

        def name(self) -> str:
            return self._name

        def childNodes(self) -> list:
            return self._children

    class Doc:
        def __init__(self, *nodes: Node) -> None:
            self.nodes = list(nodes)

        def topLevelNodes(self) -> list:
            return self.nodes

    name = core.Options().layer_name
    doc = Doc(Node("Background"))
    assert KritaDocument(doc).unique_layer_name(name) == name
    doc.nodes.append(Node("group", (Node(name),)))  # inside a group counts too
    assert KritaDocument(doc).unique_layer_name(name) == f"{name} #1"
    doc.nodes.append(Node(f"{name} #1"))
    assert KritaDocument(doc).unique_layer_name(name) == f"{name} #2"


def test_a_run_that_changes_nothing_adds_no_layer_and_says_why() -> None:
    from renovate_faces.document import Rect
    from renovate_faces.pixels import ChangedRegion

    fmt = PixelFormat.check("RGBA", "U8")
    job = core.Job(fmt, Rect(0, 0, 2, 2), bytes(16), bytes(16), None, core.Options())
    sharp = [{"renovated": True, "changed": False}]
    with pytest.raises(
        core.NothingToDo, match=r"^1 face found; it already looks sharp and clean, so nothing"
    ):
        core.apply(None, None, job, core.Result(None, sharp))
    # The server's count decides, even if some pixel differs (no layer that the user would see as empty).
    region = ChangedRegion(0, 0, 1, 1, bytes(4), 1)
    with pytest.raises(core.NothingToDo, match="sharp and clean"):
        core.apply(None, None, job, core.Result(region, sharp))
    changed = core.Result(
        region, [{"renovated": True, "changed": True}, {"renovated": True, "changed": True}]
    )
    assert changed.changed_faces == 2
