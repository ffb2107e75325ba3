#!/usr/bin/env python3
"""Renovate Faces for GIMP 3.0: restore the faces in a photo with HiFaceGAN.

Filters ▸ Enhance ▸ Renovate Faces… sends the active layer's pixels to the Renovate Faces server (a local
process that holds the model; started on demand), waits for the renovated faces, and writes them back as a
new layer above the source (the default) or into the layer itself. One undo step either way.

Reading order of this file:
  1. Registration    what GIMP sees at start-up (kept fast and offline: no network, no heavy imports)
  2. Pixels          GIMP layer <-> bytes in the layer's own precision (babl does every conversion)
  3. Server          finding, starting and talking to the server (its client is imported inside run)
  4. Preview         the dialog's before | after of one face, following the fidelity slider
  5. Run             the procedure itself: check, read, renovate, write, all or nothing

Scripts call it like any procedure (arguments: fidelity, faces, output, convert-indexed, keep-grain,
remove-damage; plugin_gimp/README.md has an example). What both plug-ins say, send and do alike is in common.py
(load_common), which the installer copies beside this file.
"""

from __future__ import annotations

import os
import sys

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, GLib, GObject  # noqa: E402

PROCEDURE = "plug-in-renovate-faces"
MENU_PATH = "<Image>/Filters/Enhance"
PLUG_IN_DIR = os.path.dirname(os.path.realpath(__file__))

# The protocol's face choices (server/protocol.py FACE_CHOICES; tests/test_option_choices.py ties them).
FACE_CHOICES = (
    ("all", "All faces"),
    ("largest", "Largest face only"),
    ("center", "Face nearest the centre"),
)
OUTPUT_CHOICES = (("new-layer", "New layer above the source"), ("in-place", "In place (on the layer itself)"))


# -- 1. Registration -----------------------------------------------------------------------------------------


def _choice(options: tuple[tuple[str, str], ...]) -> Gimp.Choice:
    choice = Gimp.Choice.new()
    for index, (nick, label) in enumerate(options):
        choice.add(nick, index, label, "")
    return choice


def help_texts() -> tuple[str, str]:
    """The check boxes' tooltips; none when common.py is missing (the menu entry still appears; OK says why)."""
    try:
        return load_common().KEEP_GRAIN_HELP, load_common().REMOVE_DAMAGE_HELP
    except ImportError:
        return "", ""


class RenovateFaces(Gimp.PlugIn):
    def do_query_procedures(self):
        return [PROCEDURE]

    def do_set_i18n(self, name):
        return False, None, None

    def do_create_procedure(self, name):
        procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, run, None)
        # Indexed images are accepted so that the user gets an explanation instead of a greyed-out menu entry.
        procedure.set_image_types("*")
        procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
        procedure.set_menu_label("Renovate _Faces…")
        procedure.add_menu_path(MENU_PATH)
        procedure.set_documentation(
            "Restore blurry, noisy or low-resolution faces with HiFaceGAN",
            "Finds the faces in the layer (inside the selection, if any), renovates them with the HiFaceGAN "
            "model of the local Renovate Faces server and blends them back. The server starts on demand.",
            name,
        )
        procedure.set_attribution("Renovate Faces contributors", "Renovate Faces contributors", "2025")
        flags = GObject.ParamFlags.READWRITE
        procedure.add_double_argument(
            "fidelity",
            "_Fidelity",
            "0 = most detail (perceptual), 1 = closest to the original",
            0.0,
            1.0,
            0.5,
            flags,
        )
        procedure.add_choice_argument(
            "faces", "F_aces", "Which faces to renovate", _choice(FACE_CHOICES), "all", flags
        )
        procedure.add_choice_argument(
            "output", "Res_ult", "Where the result goes", _choice(OUTPUT_CHOICES), "new-layer", flags
        )
        procedure.add_boolean_argument(
            "convert-indexed",
            "Convert _indexed image to RGB",
            "An indexed image is converted to RGB first (otherwise the procedure refuses it)",
            False,
            flags,
        )
        helps = help_texts()  # common.py's tooltips, shared with Krita (labels: tests/test_gimp_static.py)
        procedure.add_boolean_argument("keep-grain", "Keep film _grain", helps[0], True, flags)
        procedure.add_boolean_argument("remove-damage", "Remove scratches and _dust", helps[1], False, flags)
        procedure.add_int_return_value(
            "renovated-faces", "Renovated faces", "How many faces changed", 0, 1 << 16, 0, flags
        )
        return procedure


# -- 2. Pixels -----------------------------------------------------------------------------------------------


class Region:
    """A rectangle of a drawable, in the drawable's own coordinates (not the image's)."""

    def __init__(self, x: int, y: int, width: int, height: int) -> None:
        self.x, self.y, self.width, self.height = x, y, width, height

    def rect(self, dx: int = 0, dy: int = 0) -> Gegl.Rectangle:
        return Gegl.Rectangle.new(self.x + dx, self.y + dy, self.width, self.height)


def sample_type(image: Gimp.Image) -> tuple[str, str]:
    """(babl type, protocol dtype) that keep the image's precision: 8 and 16 bit as is, the rest as float."""
    depth = image.get_precision().value_nick.split("-")[0]  # "u8", "u16", "u32", "half", "float", "double"
    if depth == "u8":
        return "u8", "u8"
    if depth == "u16":
        return "u16", "u16"
    return "float", "f32"


def pixel_format(drawable: Gimp.Drawable, image: Gimp.Image) -> tuple[str, int, str]:
    """The babl format to read and write, its channel count and the protocol dtype.

    Always the perceptual (gamma) encoding, R'G'B' or Y': the model saw sRGB photos, whatever the layer stores.
    Indexed layers are read as RGB (babl expands the palette).
    """
    babl_type, dtype = sample_type(image)
    alpha = drawable.has_alpha()
    if drawable.is_gray():
        model, channels = ("Y'A", 2) if alpha else ("Y'", 1)
    else:
        model, channels = ("R'G'B'A", 4) if alpha else ("R'G'B'", 3)
    return f"{model} {babl_type}", channels, dtype


def read_pixels(drawable: Gimp.Drawable, region: Region, fmt: str) -> bytes:
    return bytes(drawable.get_buffer().get(region.rect(), 1.0, fmt, Gegl.AbyssPolicy.CLAMP))


def read_selection(image: Gimp.Image, drawable: Gimp.Drawable, region: Region) -> bytes | None:
    """The selection over ``region`` as one byte per pixel (0..255), or None when nothing is selected."""
    if Gimp.Selection.is_empty(image):
        return None
    _, off_x, off_y = drawable.get_offsets()
    buffer = image.get_selection().get_buffer()
    return bytes(buffer.get(region.rect(off_x, off_y), 1.0, "Y u8", Gegl.AbyssPolicy.NONE))


def context_margin(width: int, height: int) -> int:
    """How far beyond a selection's box the pixels sent reach (the result is merged through the selection, so
    nothing outside it changes). A face the selection's edge cuts must reach the detector whole, with some context
    around it: the detector needs the whole face and its surroundings. Half the longer side covers a face as large
    as the selection cut through its middle; 64 px at least, since small selections hold small faces whose aligned
    crop is still wider than the face. The Krita plug-in has the same rule (tests/test_option_choices.py)."""
    return max(64, max(width, height) // 2)


def work_region(drawable: Gimp.Drawable) -> Region | None:
    """The part of the drawable to send: the selection's box plus some context, or the whole drawable."""
    ok, x, y, w, h = drawable.mask_intersect()
    if not ok or w <= 0 or h <= 0:
        return None
    full_w, full_h = drawable.get_width(), drawable.get_height()
    margin = context_margin(w, h)
    x0, y0 = max(0, x - margin), max(0, y - margin)
    x1, y1 = min(full_w, x + w + margin), min(full_h, y + h + margin)
    return Region(x0, y0, x1 - x0, y1 - y0)


def config_photo_options(config) -> dict:
    """The grain and damage options of the two check boxes (common.photo_options)."""
    return load_common().photo_options(
        config.get_property("keep-grain"), config.get_property("remove-damage")
    )


def add_result_layer(
    image: Gimp.Image, source: Gimp.Layer, region: Region, fmt: str, pixels: bytes, name: str
) -> Gimp.Layer:
    """A duplicate of ``source`` (same size, offsets, mode) with ``region`` replaced, right above it.

    The pixels go in before the layer joins the image: if writing fails, there is no half-made layer to see.
    """
    layer = source.copy()
    try:
        layer.set_name(name)
        buffer = layer.get_buffer()
        buffer.set(region.rect(), fmt, pixels)
        buffer.flush()
    except Exception:
        layer.delete()
        raise
    image.insert_layer(layer, source.get_parent(), image.get_item_position(source))
    _, off_x, off_y = source.get_offsets()
    layer.set_offsets(off_x, off_y)
    layer.update(region.x, region.y, region.width, region.height)
    return layer


def write_in_place(drawable: Gimp.Drawable, region: Region, fmt: str, pixels: bytes) -> None:
    """Through the shadow buffer, so that GIMP records the undo step and composites through the selection."""
    shadow = drawable.get_shadow_buffer()
    shadow.set(region.rect(), fmt, pixels)
    shadow.flush()
    drawable.merge_shadow(True)
    drawable.update(region.x, region.y, region.width, region.height)


# -- 3. Server -----------------------------------------------------------------------------------------------


def log(text: str) -> None:
    """One line in the plug-in's log, gimp-plugin.log in the server's log folder (as Krita's krita-plugin.log):
    what a user's message leaves out (a command line, a path, an errno) and each preview. Never fails the run."""
    try:
        folder = load_client().paths.log_dir()
        load_common().file_logger("renovate_faces.gimp", folder, "gimp-plugin.log").info(text)
    except Exception:  # noqa: BLE001 - a log that cannot be written must not hide the message itself
        pass


COMMON = "renovate_faces_common"  # the shared words' module name once loaded


def load_common():
    """``common.py``, what both plug-ins say and send alike: the copy the installer put beside this file, else the
    Krita plug-in's in the source tree this file lives in; ImportError when neither is there."""
    if COMMON in sys.modules:
        return sys.modules[COMMON]
    import importlib.util  # noqa: PLC0415 - imported here so that GIMP's start-up query stays fast

    checkout = os.path.join(os.path.dirname(os.path.dirname(PLUG_IN_DIR)), "plugin_krita", "renovate_faces")
    for path in (os.path.join(PLUG_IN_DIR, "common.py"), os.path.join(checkout, "common.py")):
        if os.path.isfile(path):
            spec = importlib.util.spec_from_file_location(COMMON, path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            sys.modules[COMMON] = module
            return module
    raise ImportError("common.py is missing beside the plug-in")


def load_client():
    """The ``client`` module: the copy the installer put beside this file first, then the source tree's (a
    developer's plug-in linked from a checkout), then the installed ``hifacegan_server`` package; ImportError
    when none loads. The Krita plug-in's ``client_loader.load_client`` looks in the same order."""
    repo_server = os.path.join(os.path.dirname(os.path.dirname(PLUG_IN_DIR)), "server")
    for folder in (PLUG_IN_DIR, repo_server):
        if os.path.isfile(os.path.join(folder, "client.py")):
            if folder not in sys.path:
                sys.path.insert(0, folder)
            import client  # noqa: PLC0415 - imported here so that GIMP's start-up query stays fast

            return client
    from hifacegan_server import client  # noqa: PLC0415

    return client


def connect(client_module):
    """A client to a running server, starting the server when nothing answers."""
    Gimp.progress_set_text("Connecting to the Renovate Faces server…")
    try:
        client = client_module.Client()
        client.ensure_running(start=True, wait=load_common().SERVER_START_WAIT)
    except client_module.ServerUnavailable as error:
        log(f"server unavailable: {error}")
        raise UserError(load_common().SERVER_DOWN) from None
    except client_module.ServerError as error:  # it answered, but refused us (token, version)
        raise UserError(str(error)) from None
    return client


# What a user reads when a file beside the plug-in (client.py, common.py...) is missing (it cannot be in common.py).
INCOMPLETE = "a file of the plug-in is missing; run the Renovate Faces installer again."


class UserError(Exception):
    """A failure explained in a sentence the user can act on."""


# -- 4. Preview ----------------------------------------------------------------------------------------------

PREVIEW_SIDE = 180  # before and after each fit a square this wide
PREVIEW_GAP = 8
PREVIEW_TIMEOUT = 60.0  # a preview waits at most one batch of another job's faces
PREVIEW_FORMAT = "R'G'B'A u8"  # whatever the layer stores: what a GdkPixbuf shows


def preview_text(error: BaseException) -> str:
    """One sentence for the preview's caption."""
    if isinstance(error, UserError):
        return str(error)
    return load_common().preview_error_text(getattr(error, "code", ""), str(error), "OK starts it")


def preview_picture(before: bytes, after: bytes, width: int, height: int, stride: int):
    """One GdkPixbuf: before and after side by side, each scaled to fit PREVIEW_SIDE."""
    from gi.repository import GdkPixbuf  # noqa: PLC0415

    rgb = GdkPixbuf.Colorspace.RGB
    scale = min(PREVIEW_SIDE / width, PREVIEW_SIDE / height)
    w, h = max(1, round(width * scale)), max(1, round(height * scale))
    canvas = GdkPixbuf.Pixbuf.new(rgb, True, 8, 2 * w + PREVIEW_GAP, h)
    canvas.fill(0)
    for column, data in enumerate((before, after)):
        side = GdkPixbuf.Pixbuf.new_from_bytes(GLib.Bytes.new(data), rgb, True, 8, width, height, stride)
        x = column * (w + PREVIEW_GAP)
        side.scale(canvas, x, 0, w, h, x, 0, w / width, h / height, GdkPixbuf.InterpType.BILINEAR)
    return canvas


class Preview:
    """Before | after of one face at the dialog's fidelity and check boxes, under the dialog's fields.

    The layer is read once, on GIMP's thread, when the dialog opens: the whole layer as 8-bit RGBA (a selection
    only picks the face, by the point at its centre), named by a key so that the server detects its faces once.
    A plain thread asks the server; GLib.idle_add brings the answer back; common.PreviewQueue keeps one request
    in flight, so a drag ends on the slider's last value. A preview never starts the server (OK does).
    """

    def __init__(self, image: Gimp.Image, drawable: Gimp.Drawable, config) -> None:
        from gi.repository import Gtk  # noqa: PLC0415

        self.config = config
        self.queue = None  # a common.PreviewQueue of (serial, fidelity, options), once common.py loaded
        self.timer = 0
        self.closed = False
        self.picture = Gtk.Image()
        self.picture.set_size_request(2 * PREVIEW_SIDE + PREVIEW_GAP, PREVIEW_SIDE)  # no resize on arrival
        self.caption = Gtk.Label(label="Preview: asking the Renovate Faces server…", xalign=0.0, wrap=True)
        self.caption.set_max_width_chars(50)
        self.widget = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=6, margin=6)
        self.widget.pack_start(self.picture, False, False, 0)
        self.widget.pack_start(self.caption, False, False, 0)
        self.source = None
        try:
            self.queue = load_common().PreviewQueue(self.start)
            self.source = self.read(image, drawable)
        except UserError as error:
            self.caption.set_text(str(error))
        except ImportError:
            self.caption.set_text(f"No preview: {INCOMPLETE}")
        names = ("fidelity", "keep-grain", "remove-damage")  # each change asks again, once the changes pause
        self.handlers = [config.connect(f"notify::{name}", self.on_change) for name in names]
        self.request()

    @staticmethod
    def read(image: Gimp.Image, drawable: Gimp.Drawable) -> tuple:
        """(pixels, width, height, at, key) of the whole layer; UserError when it cannot be previewed."""
        if not isinstance(drawable, Gimp.Layer) or drawable.is_group():
            raise UserError("No preview: select a layer with pixels (not a mask, channel or group).")
        width, height = drawable.get_width(), drawable.get_height()
        at = None
        if not Gimp.Selection.is_empty(image):
            ok, x, y, w, h = drawable.mask_intersect()
            if not ok or w <= 0 or h <= 0:
                raise UserError("No preview: the selection does not overlap this layer.")
            at = (x + w / 2, y + h / 2)
        pixels = read_pixels(drawable, Region(0, 0, width, height), PREVIEW_FORMAT)
        return pixels, width, height, at, load_common().preview_key(pixels, width, height)

    def on_change(self, *_args) -> None:
        if self.timer:
            GLib.source_remove(self.timer)
        self.timer = GLib.timeout_add(load_common().PREVIEW_DEBOUNCE_MS, self.request)

    def request(self) -> bool:
        """A preview at the dialog's fidelity and check boxes (also the debounce timer's callback: False = once)."""
        self.timer = 0
        if self.source is None or self.closed:
            return False
        fidelity = float(self.config.get_property("fidelity"))
        self.queue.submit((self.queue.next_serial(), fidelity, config_photo_options(self.config)))
        return False

    def start(self, wanted: tuple) -> None:
        import threading  # noqa: PLC0415

        threading.Thread(target=self.work, args=wanted, daemon=True).start()

    def work(self, serial: int, fidelity: float, options: dict) -> None:
        """On the preview thread: no GIMP or Gtk calls here."""
        pixels, width, height, at, key = self.source
        try:
            client_module = load_client()
            with client_module.Client(timeout=PREVIEW_TIMEOUT) as client:
                client.hello(timeout=2.0)
                asked = {"fidelity": fidelity, "at": at, "key": key, "options": options}
                answer = client.preview(pixels, width, height, 4, timeout=PREVIEW_TIMEOUT, **asked)
                result = (bytes(answer.before), bytes(answer.after), answer)
        except Exception as error:
            result = error
        GLib.idle_add(self.on_answer, serial, fidelity, options, result)

    def on_answer(self, serial: int, fidelity: float, options: dict, result) -> bool:
        stale = self.queue.answered(serial, send_waiting=not self.closed)
        if not (self.closed or stale):  # else a newer request's answer is what counts
            self.show(fidelity, result)
        self.log(serial, fidelity, options, result, stale)
        return False

    def show(self, fidelity: float, result) -> None:
        if isinstance(result, Exception):
            self.picture.clear()
            self.caption.set_text(preview_text(result))
        else:
            before, after, a = result
            self.picture.set_from_pixbuf(preview_picture(before, after, a.width, a.height, a.stride))
            path = a.face.get("path") or {}  # sharp: keeps its pixels; no slider: said so
            kept, slider = path.get("degradation") == 0, path.get("slider", True)
            at = self.source[3] is not None
            caption = load_common().preview_caption(fidelity, a.index, a.face_count, at, kept, slider)
            self.caption.set_text(caption)

    def log(self, serial: int, fidelity: float, options: dict, result, stale: bool) -> None:
        """One line per answer in the plug-in's log, "preview {JSON}": what was asked, what the dialog showed and
        where (shown, or dropped as stale), and whether the preview has settled (nothing newer asked)."""
        import json  # noqa: PLC0415

        answer = result if isinstance(result, Exception) else result[1]
        entry = load_common().answer_entry(serial, fidelity, options, stale, self.caption.get_text(), answer)
        x, y = (self.picture.translate_coordinates(self.picture.get_toplevel(), 0, 0) or (0, 0))[-2:]
        entry["rect"] = [x, y, self.picture.get_allocated_width(), self.picture.get_allocated_height()]
        entry["settled"] = not (self.queue.running or self.queue.waiting or self.timer)
        log("preview " + json.dumps(entry))

    def close(self) -> None:
        self.closed = True
        for handler in self.handlers:
            self.config.disconnect(handler)
        if self.timer:
            GLib.source_remove(self.timer)


# -- 5. Run --------------------------------------------------------------------------------------------------


def show_dialog(procedure, config, image, drawable) -> bool:
    gi.require_version("GimpUi", "3.0")
    from gi.repository import GimpUi  # noqa: PLC0415

    GimpUi.init("renovate-faces")
    dialog = GimpUi.ProcedureDialog.new(procedure, config, "Renovate Faces")
    # A slider with its value, as GIMP's own filters show a 0..1 amount (made before fill, which then uses it).
    scale = dialog.get_spin_scale("fidelity", 1.0)
    if hasattr(scale, "set_digits"):
        scale.set_digits(2)  # 0.50, as the preview's caption and the layer's name write it
    names = ["fidelity", "faces", "output", "keep-grain", "remove-damage"]
    if image.get_base_type() == Gimp.ImageBaseType.INDEXED:
        names.append("convert-indexed")
    dialog.fill(names)
    preview = Preview(image, drawable, config)
    dialog.get_content_area().pack_start(preview.widget, False, False, 0)
    preview.widget.show_all()
    accepted = dialog.run()
    preview.close()
    dialog.destroy()
    return accepted


def fail(procedure, message: str):
    return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR, GLib.Error(message))


def succeed(procedure, renovated: int):
    values = procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, None)
    values.remove(1)
    values.insert(1, GObject.Value(GObject.TYPE_INT, renovated))
    return values


def run(procedure, run_mode, image, drawables, config, data):
    if len(drawables) != 1:
        return fail(
            procedure, "Select exactly one layer for Renovate Faces (it works on one layer at a time)."
        )
    drawable = drawables[0]
    if run_mode == Gimp.RunMode.INTERACTIVE and not show_dialog(procedure, config, image, drawable):
        return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, None)
    try:
        outcome = renovate(image, drawable, config)
    except UserError as error:
        return fail(procedure, str(error))
    except Exception as error:  # a bug: say so rather than let GIMP report a crashed plug-in
        return fail(
            procedure,
            f"Renovate Faces failed unexpectedly ({type(error).__name__}: {error}). The image is unchanged "
            "unless Edit ▸ Undo lists “Renovate Faces”; please report this with the steps that led to it.",
        )
    finally:
        Gimp.progress_end()
    changed, note = outcome
    if note and run_mode == Gimp.RunMode.INTERACTIVE:
        Gimp.message(note)
    return succeed(procedure, changed)


def renovate(image: Gimp.Image, drawable: Gimp.Drawable, config) -> tuple[int, str]:
    """(faces changed, what to tell the user when nothing changed). Everything that can fail happens before the
    first change to the image: no half-changed image."""
    fidelity = config.get_property("fidelity")
    faces = config.get_property("faces")
    output = config.get_property("output")
    indexed = image.get_base_type() == Gimp.ImageBaseType.INDEXED
    if indexed and not config.get_property("convert-indexed"):
        raise UserError(
            "This image is indexed (a palette of colours); Renovate Faces needs RGB or grayscale. "
            "Choose Image ▸ Mode ▸ RGB first, or tick “Convert indexed image to RGB”."
        )
    if not isinstance(drawable, Gimp.Layer):
        raise UserError(
            f"“{drawable.get_name()}” is a mask or channel; Renovate Faces works on layers: select the photo's layer."
        )
    if drawable.is_group():
        raise UserError(
            f"“{drawable.get_name()}” is a layer group, which has no pixels of its own: select a layer inside it."
        )
    region = work_region(drawable)
    if region is None:
        raise UserError(
            f"The selection does not overlap the layer “{drawable.get_name()}”: "
            "select around the faces on this layer, or choose Select ▸ None."
        )

    Gimp.progress_init("Renovating faces…")
    fmt, channels, dtype = pixel_format(drawable, image)
    pixels = read_pixels(drawable, region, fmt)
    mask = read_selection(image, drawable, region)

    try:
        client_module = load_client()
        load_common()
    except ImportError as error:
        log(f"client: {error}")
        raise UserError(INCOMPLETE[0].upper() + INCOMPLETE[1:]) from None
    client = connect(client_module)

    def on_progress(fraction: float, text: str) -> None:
        if text:
            Gimp.progress_set_text(text)
        Gimp.progress_update(max(0.0, min(1.0, float(fraction))))

    try:
        options = {"fidelity": float(fidelity), "faces": faces, **config_photo_options(config)}
        image_frame = (pixels, region.width, region.height, channels)
        result = client.renovate(*image_frame, dtype=dtype, mask=mask, options=options, progress=on_progress)
        renovated_pixels = bytes(result.pixels)  # a copy: the received frame dies with the client
    except client_module.Cancelled:
        raise UserError("Cancelled; the image is unchanged.") from None
    except client_module.ServerUnavailable as error:  # it stopped answering during the job
        log(f"server unavailable during the job: {error}")
        raise UserError(load_common().SERVER_STOPPED) from None
    except client_module.ServerError as error:  # the server's own sentence (busy, timeout, too large…)
        raise UserError(str(error)) from None
    finally:
        client.close()
    if len(renovated_pixels) != len(pixels) or (result.width, result.height) != (region.width, region.height):
        raise UserError("The server sent back an image of another size; update the Renovate Faces server.")
    changed = sum(1 for face in result.faces if face.get("changed"))
    if changed == 0:  # no result layer that would equal its source
        return 0, load_common().nothing_changed_message(list(result.faces), mask is not None)

    Gimp.progress_set_text("Writing the renovated faces…")
    image.undo_group_start()
    try:
        if indexed:
            image.convert_rgb()
        if output == "new-layer":
            name = load_common().layer_name(fidelity, faces)
            add_result_layer(image, drawable, region, fmt, renovated_pixels, name)
            # The source stays active, so Filters ▸ Repeat renovates the photo again, not the result.
            image.set_selected_layers([drawable])
        else:
            write_in_place(drawable, region, fmt, renovated_pixels)
    finally:
        image.undo_group_end()
    Gimp.displays_flush()
    return changed, ""


Gimp.main(RenovateFaces.__gtype__, sys.argv)
