# Runs inside real GIMP 3.0 (gimp-console-3.0 --batch-interpreter=python-fu-eval -b - < this file).
#
# One "case" per GIMP session, described by the JSON file named in $RF_CASE (paths as GIMP sees them):
#   query            only report how the procedure is registered
#   image            file to open; then, in this order, optional:
#   canvas           [width, height, dx, dy]: resize the canvas so the layer gets offsets
#   gray / alpha     convert to grayscale / add an alpha channel
#   precision        a Gimp.Precision name, e.g. "FLOAT_NON_LINEAR"
#   indexed          convert to an indexed palette
#   ellipse          [x, y, w, h]: elliptical selection
#   args             procedure arguments (fidelity, faces, output, convert-indexed)
#   dump_format      babl format for the pixel dumps (default "R'G'B'A u8")
#   out_dir          where result.json and the raw dumps go
# The host test reads result.json and the dumps and does the numeric checks (the root has no numpy).
# Errors in the harness itself raise AssertionError, which makes gimp-console exit non-zero.
import json
import os
import traceback

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, Gio  # noqa: E402

PROCEDURE = "plug-in-renovate-faces"
with open(os.environ["RF_CASE"], encoding="utf-8") as case_file:
    case = json.load(case_file)
out_dir = case["out_dir"]
result = {"case": case}


def write_result():
    tmp = os.path.join(out_dir, "result.json.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=1, default=str)
    os.replace(tmp, os.path.join(out_dir, "result.json"))


def describe(layer):
    _, x, y = layer.get_offsets()
    return {
        "name": layer.get_name(),
        "x": x,
        "y": y,
        "width": layer.get_width(),
        "height": layer.get_height(),
    }


def dump(drawable, name, fmt):
    rect = Gegl.Rectangle.new(0, 0, drawable.get_width(), drawable.get_height())
    data = bytes(drawable.get_buffer().get(rect, 1.0, fmt, Gegl.AbyssPolicy.NONE))
    with open(os.path.join(out_dir, name), "wb") as fh:
        fh.write(data)
    info = describe(drawable)
    info.update(file=name, format=fmt, bytes=len(data))
    return info


def query():
    proc = Gimp.get_pdb().lookup_procedure(PROCEDURE)
    if proc is None:
        result["found"] = False
        return
    result.update(
        found=True,
        menu_paths=list(proc.get_menu_paths()),
        menu_label=proc.get_menu_label(),
        image_types=proc.get_image_types(),
        arguments=[spec.get_name() for spec in proc.get_arguments()],
        return_values=[spec.get_name() for spec in proc.get_return_values()],
    )


def prepare():
    image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(case["image"]))
    layer = image.get_layers()[0]
    if "canvas" in case:
        width, height, dx, dy = case["canvas"]
        image.resize(width, height, dx, dy)
    if case.get("gray"):
        image.convert_grayscale()
    if "precision" in case:
        image.convert_precision(getattr(Gimp.Precision, case["precision"]))
    if case.get("alpha"):
        layer.add_alpha()
    if case.get("indexed"):
        ok = image.convert_indexed(
            Gimp.ConvertDitherType.NONE, Gimp.ConvertPaletteType.GENERATE, 255, False, False, ""
        )
        if not ok:
            raise AssertionError("could not convert the test image to indexed")
    if "ellipse" in case:
        x, y, w, h = case["ellipse"]
        image.select_ellipse(Gimp.ChannelOps.REPLACE, x, y, w, h)
    image.clean_all()  # the setup is not the plug-in's doing: start from a clean image
    return image, layer


def renovate(image, layer):
    fmt = case.get("dump_format", "R'G'B'A u8")
    result["precision"] = image.get_precision().value_nick
    result["base_type"] = image.get_base_type().value_nick
    result["source_before"] = dump(layer, "source_before.raw", fmt)
    if not Gimp.Selection.is_empty(image):
        result["selection"] = dump(image.get_selection(), "selection.raw", "Y u8")
    layers_before = image.get_layers()
    result["layers_before"] = [describe(item) for item in layers_before]

    proc = Gimp.get_pdb().lookup_procedure(PROCEDURE)
    if proc is None:
        raise AssertionError(f"{PROCEDURE} is not registered")
    config = proc.create_config()
    config.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    config.set_property("image", image)
    config.set_core_object_array("drawables", [layer])
    for key, value in case.get("args", {}).items():
        config.set_property(key, value)
    values = proc.run(config)
    status = values.index(0)
    result["status"] = status.value_nick
    result["error"] = Gimp.get_pdb().get_last_error() if status != Gimp.PDBStatusType.SUCCESS else ""
    if status == Gimp.PDBStatusType.SUCCESS:
        result["renovated_faces"] = values.index(1)

    result["dirty"] = image.is_dirty()
    result["base_type_after"] = image.get_base_type().value_nick
    layers_after = image.get_layers()
    result["layers_after"] = [describe(item) for item in layers_after]
    result["source_after"] = dump(layer, "source_after.raw", fmt)
    result["selected_after"] = [item.get_name() for item in image.get_selected_layers()]
    new = [item for item in layers_after if item not in layers_before]
    if new:
        result["new_layer"] = dump(new[0], "new_layer.raw", fmt)
        result["new_layer_position"] = image.get_item_position(new[0])
        result["source_position"] = image.get_item_position(layer)
    image.delete()


try:
    if case.get("query"):
        query()
    else:
        renovate(*prepare())
except Exception:
    result["harness_error"] = traceback.format_exc()
    write_result()
    raise AssertionError(result["harness_error"]) from None
write_result()
