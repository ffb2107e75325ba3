"""kritarunner script: the Krita plug-in's core (read pixels -> real server -> result layer) inside real Krita.

Run as ``kritarunner -s kr_core -f main CASE.json`` with the installed plug-in on PYTHONPATH. kritarunner has
no window and exits 0 even when this script raises, so every scenario's outcome (or traceback) goes into
``report.json`` in the case's ``out_dir``, written atomically; raw composites are dumped beside it for the
numeric checks, which the test does with numpy (Krita's Python has none).
"""

import json
import os
import threading
import time
import traceback

from krita import Krita, Selection


def _dump(doc, out_dir, name):
    with open(os.path.join(out_dir, name), "wb") as fh:
        fh.write(bytes(doc.pixelData(0, 0, doc.width(), doc.height())))
    return name


def _layers(doc):
    return [n.name() for n in doc.topLevelNodes()]


def _bounds(node):
    r = node.bounds()
    return [r.x(), r.y(), r.width(), r.height()]


def _open(path, model=None, depth=None):
    doc = Krita.instance().openDocument(path)
    if doc is None:
        raise RuntimeError(f"Krita could not open {path}")
    doc.waitForDone()
    if model is not None:
        doc.setColorSpace(model, depth, "")
        doc.waitForDone()
    return doc


def _close(doc):
    doc.setModified(False)
    doc.close()


def _client():
    from renovate_faces.client_loader import load_client

    return load_client().Client(timeout=30.0)


def _select(doc, rect):
    sel = Selection()
    sel.select(*rect, 255)
    doc.setSelection(sel)
    doc.waitForDone()


def scenario_layout(case):
    """Krita's byte layout per depth, as the plug-in converts it: the wire must hold R, G, B, A in that order."""
    from renovate_faces.document import KritaDocument, Rect
    from renovate_faces.pixels import host_to_wire

    out = {}
    for model, depth in (("RGBA", "U8"), ("RGBA", "U16"), ("RGBA", "F16"), ("RGBA", "F32"), ("GRAYA", "U8")):
        doc = _open(case["layout_fixture"], model, depth)
        try:
            document = KritaDocument(doc)
            node = doc.topLevelNodes()[0]
            fmt = document.pixel_format(node)
            wire = host_to_wire(document.read_pixels(node, Rect(0, 0, 2, 1)), fmt, 2, 1)
            out[f"{model}/{depth}"] = {"dtype": fmt.wire_dtype, "channels": fmt.channels, "wire": wire.hex()}
        finally:
            _close(doc)
    return out


def _renovate(case, name, model=None, depth=None, selection=None, cancel_at_first_progress=False):
    from renovate_faces import core
    from renovate_faces.document import KritaDocument

    doc = _open(case["fixture"], model, depth)
    try:
        if selection is not None:
            _select(doc, selection)
        node = doc.topLevelNodes()[0]
        document = KritaDocument(doc)
        info = {
            "model": doc.colorModel(),
            "depth": doc.colorDepth(),
            "layers_before": _layers(doc),
            "active": node.name(),
            "before": _dump(doc, case["out_dir"], f"{name}_before.raw"),
        }
        cancel = threading.Event()
        progress = []

        def on_progress(fraction, text):
            progress.append([round(float(fraction), 3), text])
            if cancel_at_first_progress:
                cancel.set()

        started = time.monotonic()
        try:
            layer, result = core.renovate_node(
                document,
                node,
                _client().renovate,
                core.Options(fidelity=0.5, faces="all"),
                progress=on_progress,
                cancel=cancel,
            )
            info["outcome"] = "done"
            info["layer"] = layer.name()
            info["layer_bounds"] = _bounds(layer)
            info["layer_parent_is_root"] = layer.parentNode().name() == doc.rootNode().name()
            info["faces"] = result.faces
            info["renovated_faces"] = result.renovated_faces
            info["changed_pixels"] = result.changed.changed_pixels if result.changed else 0
        except Exception as exc:  # expected for refusals and cancel: the test checks the type and text
            info["outcome"] = type(exc).__name__
            info["message"] = str(exc)
            info["traceback"] = traceback.format_exc()
        info["seconds"] = time.monotonic() - started
        info["progress"] = progress[:50]
        doc.waitForDone()
        info["layers_after"] = _layers(doc)
        info["after"] = _dump(doc, case["out_dir"], f"{name}_after.raw")
        return info
    finally:
        _close(doc)


def scenario_no_server(case):
    """Nothing listens and nothing can start a server: the user is told what to do, nothing hangs."""
    saved = os.environ.get("RENOVATE_FACES_ENDPOINT")
    os.environ["RENOVATE_FACES_ENDPOINT"] = case["dead_endpoint"]
    started = time.monotonic()
    try:
        _client().ensure_running(start=True, wait=10.0)
        return {"outcome": "connected"}
    except Exception as exc:
        return {"outcome": type(exc).__name__, "message": str(exc), "seconds": time.monotonic() - started}
    finally:
        os.environ["RENOVATE_FACES_ENDPOINT"] = saved or ""


SCENARIOS = {
    "layout": scenario_layout,
    "rgba_u8": lambda case: _renovate(case, "rgba_u8"),
    "rgba_u16": lambda case: _renovate(case, "rgba_u16", "RGBA", "U16"),
    "rgba_f16": lambda case: _renovate(case, "rgba_f16", "RGBA", "F16"),
    "rgba_f32": lambda case: _renovate(case, "rgba_f32", "RGBA", "F32"),
    "graya_u8": lambda case: _renovate(case, "graya_u8", "GRAYA", "U8"),
    "cmyk_u8": lambda case: _renovate(case, "cmyk_u8", "CMYKA", "U8"),
    "selection": lambda case: _renovate(case, "selection", selection=case["selection"]),
    "selection_no_face": lambda case: _renovate(case, "selection_no_face", selection=case["faceless"]),
    "cancel": lambda case: _renovate(case, "cancel", cancel_at_first_progress=True),
    "no_server": scenario_no_server,
}


def _write(out_dir, report):
    path = os.path.join(out_dir, "report.json")
    with open(path + ".tmp", "w", encoding="utf-8") as fh:
        json.dump(report, fh, indent=1, default=str)
    os.replace(path + ".tmp", path)


def main(args):
    with open(args[0], encoding="utf-8") as fh:
        case = json.load(fh)
    report = {"krita_version": Krita.instance().version(), "scenarios": {}}
    for name in case.get("scenarios", list(SCENARIOS)):
        started = time.monotonic()
        try:
            report["scenarios"][name] = SCENARIOS[name](case)
        except Exception:
            report["scenarios"][name] = {"outcome": "script_error", "traceback": traceback.format_exc()}
        report["scenarios"][name]["wall"] = time.monotonic() - started
        _write(case["out_dir"], report)
    report["finished"] = True
    _write(case["out_dir"], report)
