# Runs inside real GIMP 3.0's GUI as a batch command (tests/hosts/gimp_gui.sh starts it): while the user's part
# (xdotool) works the Renovate Faces dialog, wait for the result layer, report the image's layers to
# $RF_OUT/report.json, then quit GIMP without asking to save.
import json
import os
import time

from gi.repository import Gimp

out_dir = os.environ["RF_OUT"]
deadline = time.monotonic() + float(os.environ.get("RF_TIMEOUT", "120"))
report = {"images": 0, "layers": [], "found": False}
while time.monotonic() < deadline:
    images = Gimp.get_images()
    report["images"] = len(images)
    if images:
        image = images[0]
        report["layers"] = [
            {"name": layer.get_name(), "width": layer.get_width(), "height": layer.get_height()}
            for layer in image.get_layers()
        ]
        if any(layer["name"].startswith("Renovated faces") for layer in report["layers"]):
            report["found"] = True
            report["dirty"] = image.is_dirty()
            break
    time.sleep(0.5)
time.sleep(1)  # the grab of the finished window happens now
with open(os.path.join(out_dir, "report.json.tmp"), "w", encoding="utf-8") as fh:
    json.dump(report, fh, indent=1)
os.replace(os.path.join(out_dir, "report.json.tmp"), os.path.join(out_dir, "report.json"))
time.sleep(3)
for image in Gimp.get_images():
    image.clean_all()
quit_proc = Gimp.get_pdb().lookup_procedure("gimp-quit")
config = quit_proc.create_config()
config.set_property("force", True)
quit_proc.run(config)
