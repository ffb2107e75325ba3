"""Test-only pykrita plug-in: drive Renovate Faces through Krita's real GUI and write a JSON report.

Krita exits 0 whatever a script does, so everything this driver sees goes into ``report.json`` (written
atomically) and the pytest side asserts on it. The case file named by ``$RF_KRITA_CASE`` holds:
``out_dir`` (report and raw pixel dumps), ``selection`` ([x, y, w, h] for the selection-limited run),
``timeout`` (seconds per run), ``steps`` (any of "preview", "full", "selection", "cancel", "no_server", "main_loop", in order) and
``dead_endpoint`` (where nothing listens, for "no_server").
Raw dumps are the document's composite (``Document.pixelData``) in its own byte layout; the test reads them
with numpy, which Krita's Python does not have.

What the user reads is recorded too: every text the docker's status and message labels show (sampled at 20 Hz
and on every change) goes into ``docker_texts`` with the step it was seen in, and PNG grabs of the docker
(``docker_*.png``) and of the whole screen (``screen_*.png``) are written at chosen moments.
"""

import json
import os
import time
import traceback

from krita import Extension, Krita, Selection
from PyQt5.QtCore import QEventLoop, QTimer
from PyQt5.QtWidgets import QApplication

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
        self.report = {"steps": {}, "errors": [], "docker_texts": [], "screenshots": []}
        self.app = Krita.instance()
        self.where = "start"
        self._seen = set()

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

    def docker(self):
        for docker in self.app.dockers():
            if docker.objectName() == "renovate_faces_docker":
                return docker
        return None

    def cancel_button(self):
        docker = self.docker()
        return docker.cancel_button if docker is not None else None

    def sample_texts(self, *args):
        """Record what the docker's labels show now (once per distinct text and step)."""
        docker = self.docker()
        if docker is None:
            return
        for label in ("status", "message", "preview", "preview_caption"):
            text = getattr(docker, label).text().replace("\u200b", "")
            key = (self.where, label, text)
            if text and key not in self._seen:
                self._seen.add(key)
                self.report["docker_texts"].append({"step": self.where, "label": label, "text": text})
        # The progress bar's own text ("42%"), only where the bar shows it, with whether a job was running.
        busy = self.controller().busy
        text = docker.progress.text() if docker.progress.isTextVisible() else ""
        key = (self.where, "progress", text, busy)
        if key not in self._seen:
            self._seen.add(key)
            self.report["docker_texts"].append(
                {"step": self.where, "label": "progress", "text": text, "busy": busy}
            )

    def screenshot(self, name):
        """The docker alone, and the whole screen (Xvfb), as PNGs in the out folder."""
        QApplication.processEvents()
        docker = self.docker()
        if docker is not None:
            docker.grab().save(os.path.join(self.out, f"docker_{name}.png"))
        screen = QApplication.primaryScreen()
        if screen is not None:
            screen.grabWindow(0).save(os.path.join(self.out, f"screen_{name}.png"))
        self.report["screenshots"].append(name)

    def wait_status(self, kinds, timeout, contains=""):
        """Pump events (asking the server again and again) until the controller's server state is one of
        ``kinds`` and its text holds ``contains``; returns that state's kind."""
        c = self.controller()
        deadline = time.monotonic() + timeout
        while not (c.server.kind in kinds and contains in c.server.text) and time.monotonic() < deadline:
            c.refresh_status()  # nothing happens while a query is in flight
            _pump(0.1)
            self.sample_texts()
        self.sample_texts()
        return c.server.kind

    def active_name(self, doc):
        node = doc.activeNode()
        return node.name() if node is not None else None

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
        timer.timeout.connect(self.sample_texts)
        timer.start(50)
        done = _wait(c.finished, self.case.get("timeout", 240))
        timer.stop()
        self.sample_texts()
        if cancel_early:
            c.changed.disconnect(click_when_running)
        info["seconds"] = time.monotonic() - started
        info["event_loop_ticks"] = len(ticks)
        info["cancel_clicked_after"] = clicked[0] if clicked else None
        info["outcome"], info["message"] = done if done else ("timeout", "no finished signal")
        info["error_type"] = c.last_error
        info["active_at_finish"] = self.active_name(doc)
        doc.waitForDone()
        # Krita makes a freshly added layer active a moment later (queued in its layer model): look after it would.
        active_seen = []
        for _ in range(15):
            _pump(0.1)
            active_seen.append(self.active_name(doc))
        info["active_seen_after"] = sorted(set(active_seen), key=str)
        info["layers_after"] = self.layers(doc)
        info["after"] = self.dump(doc, f"{step}_after.raw")
        info["new_layer_active"] = self.active_name(doc)
        self.sample_texts()
        if step == "full":
            self.screenshot("done")
        return info

    def no_server(self):
        """The states without a server: not running (start off, start on), starting, failed start, recovery."""
        c = self.controller()
        info = {}
        env_endpoint = os.environ.get("RENOVATE_FACES_ENDPOINT", "")
        config = os.path.join(os.environ["RENOVATE_FACES_CONFIG_DIR"], "server.json")
        os.environ["RENOVATE_FACES_ENDPOINT"] = self.case["dead_endpoint"]
        try:
            c.start_server = False
            info["start_off"] = self.wait_status(("not_running",), 30)
            info["start_off_text"] = c.server.text
            c.start_server = True
            info["start_on"] = self.wait_status(("not_running",), 20, "starts when you press Renovate")
            info["start_on_text"] = c.server.text
            self.screenshot("not_running")
            # A server command that takes a while, then fails: "starting" shows, then the failure and its fix.
            self.where = "no_server_slow_failure"
            with open(config, "w", encoding="utf-8") as fh:
                json.dump(
                    {
                        "command": [
                            "sh",
                            "-c",
                            "sleep 4; echo 'hifacegan-server: no usable torch' >&2; exit 1",
                        ]
                    },
                    fh,
                )
            kinds = []

            def on_status(text):
                kinds.append(c.server.kind)

            c.server_status.connect(on_status)
            self.app.action("renovate_faces").trigger()
            done = _wait(c.finished, 60)
            c.server_status.disconnect(on_status)
            self.sample_texts()
            info["slow_failure_kinds"] = kinds
            info["slow_failure"] = list(done) if done else None
            # The command does not exist (the case): the error stands, a status refresh keeps it.
            self.where = "no_server_missing_command"
            with open(config, "w", encoding="utf-8") as fh:
                json.dump({"command": ["/nonexistent/bin/hifacegan-server"]}, fh)
            self.app.action("renovate_faces").trigger()
            done = _wait(c.finished, 60)
            self.sample_texts()
            info["missing_command"] = list(done) if done else None
            info["missing_command_status"] = c.server.text
            self.screenshot("failed_start")
            c.refresh_status()  # to a dead endpoint: the query gives up after its 5 s timeout
            for _ in range(70):
                _pump(0.1)
                self.sample_texts()
            info["after_refresh_kind"] = c.server.kind
            info["after_refresh_text"] = c.server.text
            info["message_after_refresh"] = self.docker().message.text() if self.docker() else None
        finally:
            os.environ["RENOVATE_FACES_ENDPOINT"] = env_endpoint
            if os.path.exists(config):
                os.remove(config)
        # The server answers again: the error is over.
        self.where = "no_server_recovered"
        info["recovered"] = self.wait_status(("ready",), 30)
        info["recovered_text"] = c.server.text
        return info

    def wait_preview(self, count, timeout):
        """Pump events until the previewer has ``count`` answers; counts event-loop turns meanwhile."""
        from renovate_faces.preview import previewer

        p = previewer()
        ticks = []
        timer = QTimer()
        timer.timeout.connect(lambda: ticks.append(1))
        timer.timeout.connect(self.sample_texts)
        timer.start(50)
        started = time.monotonic()
        while len(p.history) < count and time.monotonic() - started < timeout:
            _pump(0.05)
        _pump(0.1)  # the docker shows it
        timer.stop()
        self.sample_texts()
        seconds = time.monotonic() - started
        return {"seconds": seconds, "ticks": len(ticks), "answers": p.history[:]}

    def preview(self, doc):
        """The docker's face preview: on opening, after the slider moves (press, drag, release), stale answers
        dropped, at the selection's centre, and without a server."""
        from renovate_faces.document import KritaDocument
        from renovate_faces.preview import Picture, previewer

        p = previewer()
        docker = self.docker()
        info = {"slider_start": docker.fidelity.value()}
        # Opening the image asked for a preview already (canvasChanged).
        info["opening"] = self.wait_preview(1, 60)
        info["opening_shown"] = isinstance(p.current, Picture)
        # The user drags the slider and lets go: one preview at the new value.
        count = len(p.history)
        slider = docker.fidelity
        slider.setSliderDown(True)
        for value in (40, 25, 10):
            slider.setValue(value)
            _pump(0.05)
        slider.setSliderDown(False)  # emits sliderReleased, as the mouse's release does
        info["moved"] = self.wait_preview(count + 1, 60)
        info["requests_while_dragging"] = len(p.history) - count
        info["moved_shown"] = isinstance(p.current, Picture) and p.current.fidelity == 0.10
        info["preview_text"] = docker.preview.text()
        info["preview_caption"] = docker.preview_caption.text()
        pixmap = docker.preview.pixmap()
        info["pixmap_size"] = [pixmap.width(), pixmap.height()] if pixmap is not None else None
        self.screenshot("preview")
        # Two requests back to back: the first answer arrives after the second request and is dropped.
        count = len(p.history)
        p.request(KritaDocument.active(), 0.9)
        p.request(KritaDocument.active(), 0.3)
        info["stale"] = self.wait_preview(count + 2, 60)
        info["stale_shown_fidelity"] = p.current.fidelity if isinstance(p.current, Picture) else None
        # A selection: the face nearest its centre.
        x, y, w, h = self.case["selection"]
        sel = Selection()
        sel.select(x, y, w, h, 255)
        doc.setSelection(sel)
        doc.waitForDone()
        count = len(p.history)
        docker.preview_button.click()
        info["selection"] = self.wait_preview(count + 1, 60)
        info["selection_caption"] = docker.preview_caption.text()
        self.app.action("deselect").trigger()
        doc.waitForDone()
        # No server: a sentence in the preview area.
        env_endpoint = os.environ.get("RENOVATE_FACES_ENDPOINT", "")
        os.environ["RENOVATE_FACES_ENDPOINT"] = self.case["dead_endpoint"]
        try:
            count = len(p.history)
            docker.preview_button.click()
            info["no_server"] = self.wait_preview(count + 1, 30)
            info["no_server_text"] = docker.preview.text().replace("\u200b", "")
            self.screenshot("preview_no_server")
        finally:
            os.environ["RENOVATE_FACES_ENDPOINT"] = env_endpoint
        count = len(p.history)
        slider.setValue(
            info["slider_start"]
        )  # a keyboard-like change: previewed too; later steps use the setting
        info["back"] = self.wait_preview(count + 1, 60)
        # The check boxes: unticking "Keep film grain" asks again without grain, and is remembered.
        count = len(p.history)
        docker.keep_grain.click()
        info["grain_off"] = self.wait_preview(count + 1, 60)
        info["grain_off_setting"] = self.app.readSetting("renovate_faces", "keep_grain", "")
        self.screenshot("grain_off")
        docker.keep_grain.click()
        info["grain_on"] = self.wait_preview(count + 2, 60)
        info["grain_on_setting"] = self.app.readSetting("renovate_faces", "keep_grain", "")
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
            docker = self.docker()
            if docker is not None:
                self.report["docker_visible"] = docker.isVisible()
                combo = docker.faces  # what the user can pick: (label, value sent to the server)
                self.report["face_choices"] = [
                    [combo.itemText(i), combo.itemData(i)] for i in range(combo.count())
                ]
                self.report["check_boxes"] = [
                    [box.text(), box.isChecked(), box.toolTip()]
                    for box in (docker.keep_grain, docker.remove_damage)
                ]
                # For readable grabs: the window fills the screen, the docker floats at a usual docker size.
                window = self.app.activeWindow()
                if window is not None:  # no window manager under Xvfb: place it by hand
                    window.qwindow().setGeometry(0, 0, 1600, 1000)
                docker.setFloating(True)
                docker.resize(340, 640)
                docker.move(1250, 340)
                docker.show()
                docker.raise_()
            self.controller().server_status.connect(self.sample_texts)
            self.report["server_at_start"] = self.wait_status(("ready",), 30)
            self.screenshot("ready")
            for step in self.case["steps"]:
                self.where = step
                try:
                    if step == "preview":
                        self.report["steps"][step] = self.preview(doc)
                        self.write()
                        continue
                    if step == "no_server":
                        self.report["steps"][step] = self.no_server()
                        self.write()
                        continue
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
            if "main_loop" in self.case["steps"]:
                self.main_loop_run(doc)  # ends with self.quit()
                return
        except Exception:
            self.report["errors"].append(traceback.format_exc())
        self.quit()

    def main_loop_run(self, doc):
        """One more run with Krita's own event loop in charge (no nested loop): the way a user's click runs.

        Krita switches the active layer to an added one from its layer model, after the job's signal; the active
        layer is sampled for 3 s after the result appears: it must stay the source, so a second run renovates the photo.
        """
        c = self.controller()
        info = {"active": self.active_name(doc), "layers_before": self.layers(doc), "seen": []}
        self.report["steps"]["main_loop"] = info
        self.where = "main_loop"

        def sample(ms):
            info["seen"].append([ms, self.active_name(doc)])

        shot = []

        def shoot_while_running():  # not in the timed "full" run: a grab blocks the GUI thread for a moment
            if c.state.value == "running" and not shot:
                shot.append(1)
                self.screenshot("busy")

        def on_finished(outcome, message):
            c.finished.disconnect(on_finished)
            c.changed.disconnect(shoot_while_running)
            info["outcome"], info["message"] = outcome, message
            for ms in (0, 100, 300, 1000, 2000, 3000):
                QTimer.singleShot(ms, lambda ms=ms: sample(ms))
            QTimer.singleShot(3100, after)

        def after():
            try:
                info["layers_after"] = self.layers(doc)
                self.sample_texts()
                self.screenshot("main_loop_done")
            except Exception:
                self.report["errors"].append(f"main_loop: {traceback.format_exc()}")
            self.quit()

        c.finished.connect(on_finished)
        c.changed.connect(shoot_while_running)
        QTimer.singleShot(0, self.app.action("renovate_faces").trigger)

    def quit(self):
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
