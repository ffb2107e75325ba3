#!/bin/sh
# Drives GIMP 3.0's real GUI inside the trixie root, under xvfb-run (tests/test_gimp_gui.py starts it):
# opens $RF_IMAGE, opens Filters > Enhance > Renovate Faces... by its menu mnemonics, drags the fidelity slider,
# grabs the dialog, presses OK and waits. tests/hosts/gimp_gui_watch.py runs inside the same GIMP (a batch
# command): it waits for the result layer, writes $RF_OUT/report.json and quits GIMP.
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
fail() { step "FAILED: $*"; shot failed; kill "$GIMP_PID" 2>/dev/null; exit 1; }

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
xdotool getwindowgeometry --shell "$DIALOG" > "$RF_OUT/dialog_geometry.txt"
# The fidelity slider is the dialog's first row: press in its upper half (GimpSpinScale: absolute) and drag right.
xdotool mousemove --window "$DIALOG" 200 16 mousedown 1 mousemove --window "$DIALOG" 240 16 \
    sleep 0.2 mousemove --window "$DIALOG" 290 16 sleep 0.2 mouseup 1
xdotool mousemove 1300 850  # out of the way: no tooltip over the grab
sleep 1.5
shot dialog
step "slider dragged"
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
