#!/bin/sh
# Drives GIMP 3.0's real GUI inside the trixie root, under xvfb-run (tests/test_gimp_gui.py starts it):
# opens $RF_IMAGE, opens Filters > Enhance > Renovate Faces... by its menu mnemonics, waits for the face preview,
# drags the fidelity slider, waits for the preview at the new fidelity, grabs the dialog, presses OK and waits.
# RF_MODE=preview_only: waits for the first preview (say, an error when nothing listens), grabs the dialog and
# cancels it.
# The plug-in logs each preview answer to its log, $RF_PLUGIN_LOG ("preview {JSON}" lines). tests/hosts/gimp_gui_watch.py
# runs inside the same GIMP (a batch command): it waits for the result layer, writes $RF_OUT/report.json and quits GIMP.
# Each step appends a line to $RF_OUT/steps.txt, so a failure says how far the run got.
set -u
HERE=$(dirname "$0")
step() { echo "$*" >> "$RF_OUT/steps.txt"; }
shot() { python3 -c '
import sys
import gi
gi.require_version("Gdk", "3.0")
from gi.repository import Gdk
root = Gdk.get_default_root_window()
Gdk.pixbuf_get_from_window(root, 0, 0, root.get_width(), root.get_height()).savev(sys.argv[1], "png", [], [])
' "$RF_OUT/$1.png"; }
find_window() { timeout "$2" xdotool search --sync --onlyvisible --name "$1" | head -n 1; }
# Wait until the plug-in has shown $1 settled previews (the newest answer, nothing else asked or waiting) and
# the last answer logged, settled too, is 1.5 s old (a drag's pause may settle a preview before the drag ends).
# $3 (optional): the damage option the last settled preview must have been asked with.
wait_previews() { timeout "$2" python3 -c '
import json, os, sys, time
log = os.environ["RF_PLUGIN_LOG"]
while True:
    try:
        lines = [json.loads(line.split(" preview ", 1)[1]) for line in open(log) if " preview {" in line]
        quiet = time.time() - os.path.getmtime(log) > 1.5
    except OSError:
        lines, quiet = [], False
    if quiet and lines and lines[-1]["settled"] and sum(e["settled"] and not e["stale"] for e in lines) >= int(sys.argv[1]):
        if len(sys.argv) < 3 or lines[-1]["options"]["damage"] == sys.argv[2]:
            break
    time.sleep(0.3)
' "$1" ${3:+"$3"}; }
# GIMP can outlive a TERM while a plug-in runs, and would then outlive the test: 10 s, then KILL.
stop_gimp() {
    kill "$GIMP_PID" 2>/dev/null
    timeout 10 sh -c "while kill -0 $GIMP_PID 2>/dev/null; do sleep 0.5; done" || kill -9 "$GIMP_PID" 2>/dev/null
}
fail() { step "FAILED: $*"; shot failed; stop_gimp; exit 1; }

gimp-3.0 --no-splash --batch-interpreter=python-fu-eval \
    -b "exec(open('$HERE/gimp_gui_watch.py').read())" "$RF_IMAGE" > "$RF_OUT/gimp.log" 2>&1 &
GIMP_PID=$!

IMAGE_WINDOW=$(find_window ' – GIMP$' 120)
[ -n "$IMAGE_WINDOW" ] || fail "no image window in 120 s"
step "image window $IMAGE_WINDOW"
sleep 2  # the window is mapped before its menu bar takes keys
xdotool windowfocus --sync "$IMAGE_WINDOW"
# Filte_rs > En_hance > Renovate _Faces... (the plug-in's MENU_PATH and its menu label's mnemonic)
xdotool key alt+r
sleep 1
xdotool key h
sleep 1
xdotool key f
DIALOG=$(find_window '^Renovate Faces$' 60)
[ -n "$DIALOG" ] || fail "the Renovate Faces dialog did not open"
step "dialog $DIALOG"
sleep 1
wait_previews 1 90 || fail "no preview in the dialog in 90 s"
step "preview shown"
if [ "${RF_MODE:-}" = preview_only ]; then  # the first preview is what is checked; Cancel closes the dialog
    sleep 0.5
    shot dialog
    xdotool windowfocus --sync "$DIALOG"
    xdotool key Escape
    timeout 30 sh -c 'while xdotool search --onlyvisible --name "^Renovate Faces$" >/dev/null 2>&1; do sleep 0.5; done' \
        || fail "the dialog stayed open after Escape"
    step "dialog cancelled"
    stop_gimp
    exit 0
fi
xdotool getwindowgeometry --shell "$DIALOG" > "$RF_OUT/dialog_geometry.txt"
# The fidelity slider is the dialog's first row: press in its upper half (GimpSpinScale: absolute) and drag right.
xdotool mousemove --window "$DIALOG" 200 16 mousedown 1 mousemove --window "$DIALOG" 240 16 \
    sleep 0.2 mousemove --window "$DIALOG" 290 16 sleep 0.2 mouseup 1
xdotool mousemove 1300 850  # out of the way: no tooltip over the grab
step "slider dragged"
wait_previews 2 90 || fail "no preview at the new fidelity in 90 s"
step "preview followed the slider"
# "Remove scratches and _dust" by its mnemonic: the preview asks again with damage=faces.
xdotool windowfocus --sync "$DIALOG"
xdotool key alt+d
wait_previews 3 90 faces || fail "no preview with scratches and dust removed in 90 s"
step "preview followed the check box"
sleep 0.5
shot dialog
xdotool getwindowgeometry --shell "$DIALOG" > "$RF_OUT/dialog_geometry.txt"
# OK: the bottom-right button (the dialog's last row: Help, Reset, Cancel, OK).
eval "$(cat "$RF_OUT/dialog_geometry.txt")"
xdotool mousemove --window "$DIALOG" $((WIDTH - 75)) $((HEIGHT - 45)) click 1
step "OK pressed"
if ! timeout 300 sh -c 'while xdotool search --onlyvisible --name "^Renovate Faces$" >/dev/null 2>&1; do sleep 0.5; done'; then
    fail "the dialog stayed open"
fi
step "dialog closed"
timeout 150 sh -c 'while [ ! -f "$RF_OUT/report.json" ]; do sleep 0.5; done' || fail "no report in 150 s"
shot done
step "report written"
timeout 60 sh -c "while kill -0 $GIMP_PID 2>/dev/null; do sleep 0.5; done" || fail "GIMP did not quit"
step "GIMP quit"
