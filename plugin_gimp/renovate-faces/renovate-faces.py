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

Scripts call it like any procedure (arguments: fidelity, faces, output, convert-indexed), for example from
the Python console:

    proc = Gimp.get_pdb().lookup_procedure("plug-in-renovate-faces")
    cfg = proc.create_config()
    cfg.set_property("image", image)
    cfg.set_core_object_array("drawables", [layer])
    cfg.set_property("fidelity", 0.7)
    proc.run(cfg)
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
# The result layer's name, the same scheme as the Krita plug-in's (plugin_krita/renovate_faces/core.py).
LAYER_PREFIX = "Renovated faces"


# ----------------------------------------------------------------------------------------------------------
# 1. Registration
# ----------------------------------------------------------------------------------------------------------


def _choice(options: tuple[tuple[str, str], ...]) -> Gimp.Choice:
    choice = Gimp.Choice.new()
    for index, (nick, label) in enumerate(options):
        choice.add(nick, index, label, "")
    return choice


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
        procedure.add_int_return_value(
            "renovated-faces", "Renovated faces", "How many faces were renovated", 0, 1 << 16, 0, flags
        )
        return procedure


# ----------------------------------------------------------------------------------------------------------
# 2. Pixels
# ----------------------------------------------------------------------------------------------------------


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


def layer_name(fidelity: float, faces: str) -> str:
    """The result layer's name, e.g. "Renovated faces (all faces, fidelity 0.50)": the same in GIMP and Krita."""
    which = {"largest": "largest face", "center": "face nearest the centre"}.get(faces, "all faces")
    return f"{LAYER_PREFIX} ({which}, fidelity {fidelity:.2f})"


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


# ----------------------------------------------------------------------------------------------------------
# 3. Server
# ----------------------------------------------------------------------------------------------------------

HOW_TO_START = (
    "Start it in a terminal with `hifacegan-server` (it stays in the background), or run the Renovate Faces "
    "installer again (`hifacegan-install`) so that it starts at login."
)


def import_client():
    """The client bundled beside this file (what the installer copies), else the same three files in the source
    tree this file lives in (a developer's symlinked install), else the installed `hifacegan_server` package."""
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
        client.ensure_running(start=True, wait=60.0)
    except client_module.ServerUnavailable as error:
        raise UserError(
            f"The Renovate Faces server is not running and could not be started. {error} {HOW_TO_START}"
        ) from None
    except client_module.ServerError as error:  # it answered, but refused us (token, version)
        raise UserError(str(error)) from None
    return client


class UserError(Exception):
    """A failure explained in a sentence the user can act on."""


# ----------------------------------------------------------------------------------------------------------
# 4. Preview
# ----------------------------------------------------------------------------------------------------------

PREVIEW_SIDE = 180  # before and after each fit a square this wide
PREVIEW_GAP = 8
PREVIEW_DEBOUNCE_MS = 150  # a drag asks once it pauses
PREVIEW_TIMEOUT = 60.0  # a preview waits at most one batch of another job's faces
PREVIEW_FORMAT = "R'G'B'A u8"  # whatever the layer stores: what a GdkPixbuf shows


def preview_text(error: BaseException) -> str:
    """One sentence for the preview's caption."""
    if isinstance(error, UserError):
        return str(error)
    if getattr(error, "code", "") == "no_face":
        return "No face big enough to preview in this layer."
    if getattr(error, "code", "") == "unavailable":  # the client's ServerUnavailable
        return "No preview: the Renovate Faces server is not running (OK starts it)."
    if hasattr(error, "code"):  # the server's own sentence (busy, cancelled, too large…)
        return f"No preview: {error}"
    return f"No preview ({type(error).__name__}: {error})."


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
    """Before | after of one face at the dialog's fidelity, under the dialog's fields.

    The layer is read once, on GIMP's thread, when the dialog opens: the whole layer as 8-bit RGBA (a selection
    only picks the face, by the point at its centre), named by a key so that the server detects its faces once.
    A plain thread asks the server; GLib.idle_add brings the answer back to the dialog. One request at a time: a
    newer one waits, replacing any older waiting one, and an answer to a request that is no longer the newest is
    dropped, so a drag ends on the slider's last value. A preview never starts the server (OK does).
    """

    def __init__(self, image: Gimp.Image, drawable: Gimp.Drawable, config) -> None:
        from gi.repository import Gtk  # noqa: PLC0415

        self.config = config
        self.serial = 0
        self.running = False
        self.waiting: tuple[int, float] | None = None
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
            self.source = self.read(image, drawable)
        except UserError as error:
            self.caption.set_text(str(error))
        self.handler = config.connect("notify::fidelity", self.on_fidelity)
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
        return pixels, width, height, at, f"gimp-{os.getpid()}-{os.urandom(6).hex()}"

    def on_fidelity(self, *_args) -> None:
        if self.timer:
            GLib.source_remove(self.timer)
        self.timer = GLib.timeout_add(PREVIEW_DEBOUNCE_MS, self.request)

    def request(self) -> bool:
        """A preview at the slider's fidelity (also the debounce timer's callback: False = once)."""
        self.timer = 0
        if self.source is None or self.closed:
            return False
        self.serial += 1
        wanted = (self.serial, float(self.config.get_property("fidelity")))
        if self.running:
            self.waiting = wanted
        else:
            self.start(*wanted)
        return False

    def start(self, serial: int, fidelity: float) -> None:
        import threading  # noqa: PLC0415

        self.running = True
        threading.Thread(target=self.work, args=(serial, fidelity), daemon=True).start()

    def work(self, serial: int, fidelity: float) -> None:
        """On the preview thread: no GIMP or Gtk calls here."""
        pixels, width, height, at, key = self.source
        try:
            client_module = import_client()
            with client_module.Client(timeout=PREVIEW_TIMEOUT) as client:
                client.hello(timeout=2.0)
                answer = client.preview(
                    pixels, width, height, 4, fidelity=fidelity, at=at, key=key, timeout=PREVIEW_TIMEOUT
                )
                result = (bytes(answer.before), bytes(answer.after), answer)
        except Exception as error:
            result = error
        GLib.idle_add(self.on_answer, serial, fidelity, result)

    def on_answer(self, serial: int, fidelity: float, result) -> bool:
        self.running = False
        stale = serial != self.serial
        if self.waiting is not None and not self.closed:
            waiting, self.waiting = self.waiting, None
            self.start(*waiting)
        if not (self.closed or stale):  # else a newer request's answer is what counts
            self.show(fidelity, result)
        self.log(serial, fidelity, result, stale)
        return False

    def show(self, fidelity: float, result) -> None:
        if isinstance(result, Exception):
            self.picture.clear()
            self.caption.set_text(preview_text(result))
        else:
            before, after, a = result
            self.picture.set_from_pixbuf(preview_picture(before, after, a.width, a.height, a.stride))
            which = "the largest" if self.source[3] is None else "nearest the selection's centre"
            face = f"face {a.index + 1} of {a.face_count} ({which})"
            if (a.face.get("path") or {}).get("degradation") == 0:  # a sharp face keeps its pixels
                self.caption.set_text(f"The {face} already looks sharp: it keeps its pixels at any fidelity.")
            else:
                self.caption.set_text(f"Before | after at fidelity {fidelity:.2f}: {face}.")

    def log(self, serial: int, fidelity: float, result, stale: bool) -> None:
        """With RENOVATE_FACES_TEST_LOG set (the GUI test), one JSON line per answer."""
        path = os.environ.get("RENOVATE_FACES_TEST_LOG")
        if not path:
            return
        import hashlib  # noqa: PLC0415
        import json  # noqa: PLC0415

        x, y = (self.picture.translate_coordinates(self.picture.get_toplevel(), 0, 0) or (0, 0))[-2:]
        entry = {
            "serial": serial,
            "fidelity": round(fidelity, 4),
            "stale": stale,
            "settled": not (self.running or self.waiting or self.timer),
            "outcome": "error" if isinstance(result, Exception) else "picture",
            "caption": self.caption.get_text(),
            "rect": [x, y, self.picture.get_allocated_width(), self.picture.get_allocated_height()],
        }
        if not isinstance(result, Exception):
            entry["digest"] = hashlib.md5(result[1]).hexdigest()
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")

    def close(self) -> None:
        self.closed = True
        self.config.disconnect(self.handler)
        if self.timer:
            GLib.source_remove(self.timer)


# ----------------------------------------------------------------------------------------------------------
# 5. Run
# ----------------------------------------------------------------------------------------------------------


def show_dialog(procedure, config, image, drawable) -> bool:
    gi.require_version("GimpUi", "3.0")
    from gi.repository import GimpUi  # noqa: PLC0415

    GimpUi.init("renovate-faces")
    dialog = GimpUi.ProcedureDialog.new(procedure, config, "Renovate Faces")
    # A slider with its value, as GIMP's own filters show a 0..1 amount (made before fill, which then uses it).
    dialog.get_spin_scale("fidelity", 1.0)
    names = ["fidelity", "faces", "output"]
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
        renovated = renovate(image, drawable, config)
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
    if renovated == 0 and run_mode == Gimp.RunMode.INTERACTIVE:
        Gimp.message("Renovate Faces found no face to renovate (faces smaller than 16 pixels are skipped).")
    return succeed(procedure, renovated)


def renovate(image: Gimp.Image, drawable: Gimp.Drawable, config) -> int:
    """Everything that can fail happens before the first change to the image: no half-changed image."""
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
        client_module = import_client()
    except ImportError as error:
        raise UserError(
            f"The Renovate Faces client is missing or incomplete ({error}); run the Renovate Faces installer again."
        ) from None
    client = connect(client_module)

    def on_progress(fraction: float, text: str) -> None:
        if text:
            Gimp.progress_set_text(text)
        Gimp.progress_update(max(0.0, min(1.0, float(fraction))))

    try:
        result = client.renovate(
            pixels,
            region.width,
            region.height,
            channels,
            dtype=dtype,
            mask=mask,
            options={"fidelity": float(fidelity), "faces": faces},
            progress=on_progress,
        )
        renovated_pixels = bytes(result.pixels)  # a copy: the received frame dies with the client
    except client_module.Cancelled:
        raise UserError("Renovate Faces was cancelled; the image is unchanged.") from None
    except client_module.ServerError as error:  # ServerUnavailable included
        raise UserError(str(error)) from None
    finally:
        client.close()
    if len(renovated_pixels) != len(pixels) or (result.width, result.height) != (region.width, region.height):
        raise UserError("The server sent back an image of another size; update the Renovate Faces server.")
    renovated = sum(1 for face in result.faces if face.get("renovated"))
    if renovated == 0:
        return 0

    Gimp.progress_set_text("Writing the renovated faces…")
    image.undo_group_start()
    try:
        if indexed:
            image.convert_rgb()
        if output == "new-layer":
            add_result_layer(image, drawable, region, fmt, renovated_pixels, layer_name(fidelity, faces))
        else:
            write_in_place(drawable, region, fmt, renovated_pixels)
    finally:
        image.undo_group_end()
    Gimp.displays_flush()
    return renovated


Gimp.main(RenovateFaces.__gtype__, sys.argv)
