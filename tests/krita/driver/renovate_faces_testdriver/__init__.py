"""Test-only pykrita plug-in: drive Renovate Faces through Krita's real GUI and write a JSON report.

Krita exits 0 whatever a script does, so everything this driver sees goes into ``report.json`` (written
atomically) and the pytest side asserts on it. The case file named by ``$RF_KRITA_CASE`` holds:
``out_dir`` (report and raw pixel dumps), ``selection`` ([x, y, w, h] for the selection-limited run),
``timeout`` (seconds per run) and ``steps`` (any of "full", "selection", "cancel", in order).
Raw dumps are the document's composite (``Document.pixelData``) in its own byte layout; the test reads them
with numpy, which Krita's Python does not have.
"""

import json
import os
import time
import traceback

from krita import Extension, Krita, Selection
from PyQt5.QtCore import QEventLoop, QTimer

CASE = os.environ.get("RF_KRITA_CASE")


def _wait(signal, timeout):
    """Run the event loop until ``signal`` fires or ``timeout`` seconds pass; the signal's args or None."""
    loop = QEventLoop()
    got = []

    def on_signal(*args):
        got.append(args)
        loop.quit()

    signal.connect(on_signal)
    QTimer.singleShot(int(timeout * 1000), loop.quit)
    loop.exec_()
    signal.disconnect(on_signal)
    return got[0] if got else None


def _pump(seconds):
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec_()


class Driver:
    def __init__(self, case):
        self.case = case
        self.out = case["out_dir"]
        self.report = {"steps": {}, "errors": []}
        self.app = Krita.instance()

    def write(self):
        path = os.path.join(self.out, "report.json")
        with open(path + ".tmp", "w", encoding="utf-8") as fh:
            json.dump(self.report, fh, indent=1, default=str)
        os.replace(path + ".tmp", path)

    def dump(self, doc, name):
        data = bytes(doc.pixelData(0, 0, doc.width(), doc.height()))
        with open(os.path.join(self.out, name), "wb") as fh:
            fh.write(data)
        return name

    def layers(self, doc):
        """Top-level layers bottom to top, the way Krita stacks them."""
        return [
            {"name": n.name(), "type": n.type(), "id": n.uniqueId().toString()} for n in doc.topLevelNodes()
        ]

    def controller(self):
        from renovate_faces.controller import controller

        return controller()

    def cancel_button(self):
        for docker in self.app.dockers():
            if docker.objectName() == "renovate_faces_docker":
                return docker.cancel_button
        return None

    def run_action(self, doc, step, cancel_early=False):
        c = self.controller()
        active = doc.activeNode()
        info = {
            "active": active.name() if active else None,
            "active_id": active.uniqueId().toString() if active else None,
            "layers_before": self.layers(doc),
            "before": self.dump(doc, f"{step}_before.raw"),
        }
        action = self.app.action("renovate_faces")
        info["action_found"] = action is not None
        info["action_text"] = action.text() if action else None
        started = time.monotonic()
        clicked = []
        if cancel_early:
            button = self.cancel_button()
            info["cancel_button_found"] = button is not None

            def click_when_running():
                if c.state.value == "running" and not clicked and button is not None:
                    clicked.append(time.monotonic() - started)
                    button.click()

            c.changed.connect(click_when_running)
        QTimer.singleShot(0, action.trigger)
        # The GUI stays live while the server works: count event-loop turns during the job.
        ticks = []
        timer = QTimer()
        timer.timeout.connect(lambda: ticks.append(1))
        timer.start(50)
        done = _wait(c.finished, self.case.get("timeout", 240))
        timer.stop()
        if cancel_early:
            c.changed.disconnect(click_when_running)
        info["seconds"] = time.monotonic() - started
        info["event_loop_ticks"] = len(ticks)
        info["cancel_clicked_after"] = clicked[0] if clicked else None
        info["outcome"], info["message"] = done if done else ("timeout", "no finished signal")
        info["error_type"] = c.last_error
        doc.waitForDone()
        info["layers_after"] = self.layers(doc)
        info["after"] = self.dump(doc, f"{step}_after.raw")
        info["new_layer_active"] = doc.activeNode().name() if doc.activeNode() else None
        return info

    def undo(self, doc, info):
        self.app.action("edit_undo").trigger()
        _pump(0.5)
        doc.waitForDone()
        doc.refreshProjection()
        doc.waitForDone()
        info["layers_after_undo"] = self.layers(doc)
        info["after_undo"] = self.dump(doc, f"{info['step']}_after_undo.raw")

    def run(self):
        try:
            doc = self.app.activeDocument()
            self.report["document"] = {
                "width": doc.width(),
                "height": doc.height(),
                "model": doc.colorModel(),
                "depth": doc.colorDepth(),
                "file": doc.fileName(),
            }
            self.report["krita_version"] = self.app.version()
            self.report["docker_found"] = self.cancel_button() is not None
            for step in self.case["steps"]:
                try:
                    if step == "selection":
                        x, y, w, h = self.case["selection"]
                        sel = Selection()
                        sel.select(x, y, w, h, 255)
                        doc.setSelection(sel)
                        doc.waitForDone()
                    info = self.run_action(doc, step, cancel_early=(step == "cancel"))
                    info["step"] = step
                    if step != "cancel":
                        self.undo(doc, info)
                    if step == "selection":
                        self.app.action("deselect").trigger()
                        doc.waitForDone()
                    self.report["steps"][step] = info
                except Exception:
                    self.report["errors"].append(f"{step}: {traceback.format_exc()}")
                self.write()
            doc.setModified(False)
        except Exception:
            self.report["errors"].append(traceback.format_exc())
        self.report["finished"] = True
        self.write()
        for d in self.app.documents():
            d.setModified(False)
        QTimer.singleShot(200, self.app.action("file_quit").trigger)


class DriverExtension(Extension):
    def setup(self):
        if CASE:
            self.app = Krita.instance()
            self.app.notifier().windowCreated.connect(self.on_window)

    def on_window(self):
        with open(CASE, encoding="utf-8") as fh:
            case = json.load(fh)
        QTimer.singleShot(int(case.get("start_delay", 2.0) * 1000), lambda: self.start(case))

    def start(self, case):
        if self.app.activeDocument() is None:  # the fixture is still loading
            QTimer.singleShot(500, lambda: self.start(case))
            return
        Driver(case).run()

    def createActions(self, window):
        pass


Krita.instance().addExtension(DriverExtension(Krita.instance()))
