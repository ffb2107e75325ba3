"""What both plug-ins say, send and do alike: one copy, pure Python (standard library only, no Krita, no GIMP).

The Krita plug-in imports it from its package; the installer copies it beside the GIMP plug-in too, which loads it
by path (``load_common`` in plugin_gimp/renovate-faces/renovate-faces.py: beside itself, else from the source tree
it lives in). tests/test_option_choices.py ties its options to the server's protocol.
"""

from __future__ import annotations

import hashlib
import logging
import zlib
from logging.handlers import RotatingFileHandler
from pathlib import Path

# The result layer's name starts with this (layer_name).
LAYER_PREFIX = "Renovated faces"
# The two check boxes: their labels (GIMP adds a mnemonic) and tooltips.
KEEP_GRAIN_LABEL = "Keep film grain"
KEEP_GRAIN_HELP = (
    "Lay the photo's own film grain back over the renovated faces, so they match the rest of the photo. "
    "Untick to leave the faces smooth."
)
REMOVE_DAMAGE_LABEL = "Remove scratches and dust"
REMOVE_DAMAGE_HELP = (
    "Find scratches, cracks and dust around each face and fill them in. Slower; it may also touch fine marks "
    "such as stray hairs."
)
# What a user reads when the server cannot be reached or started. The reason (a command line, a path, an errno)
# goes to the plug-in's log.
SERVER_DOWN = (
    "The Renovate Faces server could not be started. Run the Renovate Faces installer again to repair it, then "
    "try once more; the reason is written in the Renovate Faces log."
)
# What a user reads when the server stopped answering during a job.
SERVER_STOPPED = (
    "The Renovate Faces server stopped while it worked, so the image is unchanged. Try again: it starts on its "
    "own; the reason is written in the Renovate Faces log."
)
# How long Renovate (OK in GIMP) waits for a server it started to answer: a cold first start loads torch and the
# weights.
SERVER_START_WAIT = 90.0
# A slider or a check box asks for a new preview once it pauses this long.
PREVIEW_DEBOUNCE_MS = 150
# What a preview says when the layer has no face big enough.
NO_FACE_TO_PREVIEW = "No face big enough to preview in this layer."


def photo_options(keep_grain: bool, remove_damage: bool) -> dict[str, str]:
    """The server's grain and damage options for the two check boxes, "Keep film grain" and "Remove scratches and
    dust" (server/protocol.py GRAIN_CHOICES and DAMAGE_CHOICES), sent with a renovation and with a preview."""
    return {"grain": "keep" if keep_grain else "remove", "damage": "faces" if remove_damage else "off"}


def layer_name(fidelity: float, faces: str) -> str:
    """The result layer's name, e.g. "Renovated faces (all faces, fidelity 0.50)"."""
    which = {"largest": "largest face", "center": "face nearest the centre"}.get(faces, "all faces")
    return f"{LAYER_PREFIX} ({which}, fidelity {fidelity:.2f})"


def preview_key(pixels: bytes, width: int, height: int) -> str:
    """A cheap name of a layer's content for the server's detection cache: CRC-32 runs at memory speed, and any
    changed pixel changes it (the protocol's ``key``)."""
    return f"{width}x{height}-{len(pixels)}-{zlib.crc32(pixels):08x}"


def preview_caption(
    fidelity: float, index: int, count: int, at_selection: bool, kept: bool, slider: bool = True
) -> str:
    """The sentence under a preview of face ``index`` of the ``count`` found; ``kept``: it looked sharp already;
    ``slider``: the fidelity slider changes it (its weights have a partner at the slider's other end)."""
    if at_selection:
        which = "the face nearest the selection's centre"
    else:
        which = "the largest face" if count > 1 else "the only face found"
    of = f" (face {index + 1} of {count})" if count > 1 else ""
    if kept:
        return f"{which[0].upper()}{which[1:]}{of} already looks sharp: it keeps its pixels at any fidelity."
    if not slider:
        return f"Before | after: {which}{of}. The fidelity slider does not change this face yet."
    return f"Before | after at fidelity {fidelity:.2f}: {which}{of}."


def preview_error_text(code: str, message: str, server_starts: str) -> str:
    """The sentence a preview shows instead of a picture, from the client error's ``code`` ('' for a bug) and
    ``message``; ``server_starts`` says when the server starts ("OK starts it")."""
    if code == "no_face":
        return NO_FACE_TO_PREVIEW
    if code == "unavailable":  # the client's ServerUnavailable
        return f"No preview: the Renovate Faces server is not running ({server_starts})."
    if code:  # the server's own sentence (busy, cancelled, too large...)
        return f"No preview: {message}"
    return "No preview: something went wrong; the reason is written in the Renovate Faces log."


def answer_entry(serial: int, fidelity: float, options: dict, stale: bool, caption: str, answer) -> dict:
    """One preview answer as the plug-ins log it: what was asked, whether a newer request made it stale, what it
    showed. ``answer``: the after picture's bytes, or the exception."""
    entry = {"serial": serial, "fidelity": round(fidelity, 4), "options": options, "stale": stale}
    entry["caption"] = caption
    if isinstance(answer, BaseException):
        entry.update(
            outcome="error", error=f"{type(answer).__name__}: {answer}", code=getattr(answer, "code", "")
        )
    else:
        entry.update(outcome="picture", digest=hashlib.md5(answer).hexdigest())
    return entry


def file_logger(name: str, folder: Path | str, filename: str) -> logging.Logger:
    """A plug-in's log: ``filename`` in ``folder`` (the server's log folder), 1 MiB, then rotated twice; stderr
    when the folder cannot be written. Made once per ``name``, on first use (importing touches no file)."""
    log = logging.getLogger(name)
    if not log.handlers:
        log.setLevel(logging.INFO)
        try:
            Path(folder).mkdir(parents=True, exist_ok=True)
            handler: logging.Handler = RotatingFileHandler(
                Path(folder) / filename, maxBytes=1 << 20, backupCount=2, encoding="utf-8"
            )
        except OSError:
            handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
    return log


class PreviewQueue:
    """One preview request in flight at a time. A newer request waits, replacing any older waiting one (never
    sent), and the answer to a request that is no longer the newest is stale: the host drops it, so a drag ends
    on its last value. ``send(request)`` is the host's: it sends the request off its GUI thread; every request
    has a ``serial`` (its first item, or its attribute) from :meth:`next_serial`. GUI thread only."""

    def __init__(self, send) -> None:
        self.send = send
        self.serial = 0
        self.running = None
        self.waiting = None

    def next_serial(self) -> int:
        self.serial += 1
        return self.serial

    def submit(self, request) -> None:
        if self.running is not None:
            self.waiting = request
        else:
            self.running = request
            self.send(request)

    def answered(self, serial: int, send_waiting: bool = True) -> bool:
        """The request ``serial`` was answered: send the waiting one (unless not ``send_waiting``); True when the
        answer is stale."""
        self.running = None
        waiting, self.waiting = self.waiting, None
        if waiting is not None and send_waiting:
            self.submit(waiting)
        return serial != self.serial


def nothing_changed_message(faces: list, in_selection: bool) -> str:
    """What a run that changed no pixel says (no result layer is added). ``faces``: the server result's faces
    (``renovated``, ``changed``); ``in_selection``: a selection limited the run (else none is named)."""
    where = "inside the selection" if in_selection else "in this layer"
    if not faces:
        return f"No face found {where}; nothing was changed. Faces smaller than 16 pixels are not looked for."
    count = len(faces)
    found = "1 face found" if count == 1 else f"{count} faces found"
    renovated = sum(1 for face in faces if face.get("renovated"))
    if renovated == 0 and in_selection:
        return f"{found}, but none inside the selection is big enough to renovate; nothing was changed."
    if renovated == 0:
        small = "it is" if count == 1 else "they are"
        return f"{found}, but {small} too small to renovate (under 16 pixels); nothing was changed."
    if renovated == count:
        look = "it already looks" if count == 1 else "they already look"
        return f"{found}; {look} sharp and clean, so nothing was changed."
    chosen = "the one chosen already looks" if renovated == 1 else f"the {renovated} chosen already look"
    return f"{found}; {chosen} sharp and clean, so nothing was changed."


def done_message(changed: int, layer_name: str) -> str:
    """What a run that added a layer says: how many faces changed, and the layer's name."""
    return f"Renovated {changed} {'face' if changed == 1 else 'faces'} into the layer '{layer_name}'."
