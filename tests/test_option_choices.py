"""One source of the option choices: ``server/protocol.py``. The plug-ins keep their own copies (they run inside
GIMP and Krita and cannot import the server's package), and the library keeps its own (it never imports the
server), so this test ties every copy to the protocol. The plug-ins are read with ``ast``, never imported: they
need their hosts."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from hifacegan_server import protocol as P

REPO = Path(__file__).resolve().parents[1]
PLUGIN_SOURCES = sorted(
    [
        *(REPO / "plugin_gimp" / "renovate-faces").glob("*.py"),
        *(REPO / "plugin_krita" / "renovate_faces").glob("*.py"),
    ]
)


def _strings(node: ast.AST) -> tuple[str, ...] | None:
    """A tuple/list/set literal of strings (or of (nick, label) pairs: the nicks) as a tuple; else None."""
    if not isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return None
    out = []
    for item in node.elts:
        if isinstance(item, (ast.Tuple, ast.List)) and item.elts:
            item = item.elts[0]
        if not (isinstance(item, ast.Constant) and isinstance(item.value, str)):
            return None
        out.append(item.value)
    return tuple(out)


def face_choice_copies() -> dict[str, tuple[str, ...]]:
    """Every place a plug-in spells out the face choices: a ``FACE_CHOICES`` constant, the literal values a
    ``faces`` combo box offers (``self.faces.addItem(label, "value")``), and a ``value not in ("...", ...)`` check
    of the ``FACES`` setting. A place that reads another copy (a name, not a literal) is no copy of its own."""
    copies: dict[str, tuple[str, ...]] = {}
    for path in PLUGIN_SOURCES:
        where = path.relative_to(REPO).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=where)
        offered: list[str] = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "FACE_CHOICES" for t in node.targets
            ):
                copies[f"{where}:{node.lineno} FACE_CHOICES"] = _strings(node.value) or ()
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "addItem"
                and isinstance(node.func.value, ast.Attribute)
                and node.func.value.attr == "faces"
                and len(node.args) == 2
                and isinstance(node.args[1], ast.Constant)
            ):
                offered.append(node.args[1].value)
            elif isinstance(node, ast.BoolOp) and any(
                isinstance(v, ast.Compare)
                and isinstance(v.comparators[0], ast.Name)
                and v.comparators[0].id == "FACES"
                for v in node.values
            ):
                for v in node.values:
                    if (
                        isinstance(v, ast.Compare)
                        and isinstance(v.ops[0], ast.NotIn)
                        and not isinstance(v.comparators[0], ast.Name)
                    ):
                        copies[f"{where}:{node.lineno} FACES check"] = _strings(v.comparators[0]) or ()
        if offered:
            copies[f"{where} faces combo box"] = tuple(offered)
    return copies


def test_the_plugins_copies_are_found():
    copies = face_choice_copies()
    places = " ".join(copies)
    assert "plugin_gimp/renovate-faces/renovate-faces.py" in places, copies
    assert "plugin_krita/renovate_faces/core.py" in places, copies
    assert all(choices for choices in copies.values()), copies
    # One copy per plug-in: Krita's docker and its stored setting read core.FACE_CHOICES instead of their own.
    assert len(copies) == 2, copies


def test_every_face_choice_a_plugin_offers_is_the_protocols():
    """What a plug-in can send, the server accepts (a choice outside the protocol would fail every job)."""
    for place, choices in face_choice_copies().items():
        assert set(choices) <= set(P.FACE_CHOICES), (
            f"{place} offers {choices}; the protocol has {P.FACE_CHOICES}"
        )
        assert choices[0] == P.FACE_CHOICES[0], f"{place}: the default 'all' comes first"


def test_the_plugins_copies_equal_the_protocols():
    for place, choices in face_choice_copies().items():
        assert tuple(choices) == P.FACE_CHOICES, (
            f"{place} offers {choices}; the protocol has {P.FACE_CHOICES}"
        )


def test_the_options_the_plugins_send_are_the_protocols():
    """Every dict literal with a 'faces' key in a plug-in (the options it sends) uses only the protocol's names."""
    sent = []
    for path in PLUGIN_SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Dict):
                keys = [k.value for k in node.keys if isinstance(k, ast.Constant)]
                if "faces" in keys:
                    sent.append((path.name, keys))
                    assert set(keys) <= set(P.OPTIONS), (path, keys)
    assert {name for name, _ in sent} >= {"renovate-faces.py", "core.py"}, sent


def test_the_library_accepts_exactly_the_protocols_choices():
    from hifacegan.pipeline import FACE_CHOICES, select_faces

    assert tuple(FACE_CHOICES) == P.FACE_CHOICES
    for choice in P.FACE_CHOICES:
        assert select_faces([], (64, 64), choice) == []
        assert P.validate_options({"faces": choice}) == {"faces": choice}
    for wrong in ("sideways", "ALL", "", "largest "):
        with pytest.raises(ValueError, match="faces"):
            select_faces([], (64, 64), wrong)
        with pytest.raises(P.BadOption):
            P.validate_options({"faces": wrong})


def _plugin_function(path: Path, name: str):
    """A pure function of a plug-in's source, exec'd on its own (the plug-in's module needs its host)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    body = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == name]
    assert len(body) == 1, f"{path.relative_to(REPO)} has no single {name}()"
    namespace: dict = {}
    exec(compile(ast.Module(body=body, type_ignores=[]), str(path), "exec"), namespace)
    return namespace[name]


def test_both_plugins_send_the_same_context_around_a_selection():
    gimp = _plugin_function(REPO / "plugin_gimp" / "renovate-faces" / "renovate-faces.py", "context_margin")
    krita = _plugin_function(REPO / "plugin_krita" / "renovate_faces" / "core.py", "context_margin")
    for width, height in (
        (1, 1),
        (40, 30),
        (100, 190),
        (128, 128),
        (129, 7),
        (450, 420),
        (1328, 568),
        (4000, 3),
    ):
        margin = gimp(width, height)
        assert margin == krita(width, height), (width, height)
        # A face the selection's edge cuts through its middle, as large as the selection, arrives whole.
        assert margin >= max(width, height) // 2 and margin >= 64, (width, height, margin)


def test_the_library_and_the_protocol_know_the_same_damage_choices():
    from hifacegan.damage.removal import DAMAGE_CHOICES

    assert tuple(DAMAGE_CHOICES) == P.DAMAGE_CHOICES
    for choice in P.DAMAGE_CHOICES:
        assert P.validate_options({"damage": choice}, P.PREVIEW_OPTIONS) == {"damage": choice}
    with pytest.raises(P.BadOption, match="'damage' must be one of"):
        P.validate_options({"damage": "some"})


def test_the_library_the_cli_and_the_protocol_know_the_same_grain_choices():
    from hifacegan.cli.renovate import GRAIN_CHOICES as CLI_GRAIN_CHOICES
    from hifacegan.face.grain import GRAIN_CHOICES

    assert tuple(GRAIN_CHOICES) == P.GRAIN_CHOICES == CLI_GRAIN_CHOICES
    for choice in P.GRAIN_CHOICES:
        assert P.validate_options({"grain": choice}, P.PREVIEW_OPTIONS) == {"grain": choice}
    with pytest.raises(P.BadOption, match="'grain' must be one of"):
        P.validate_options({"grain": "some"})


# -- the grain and damage check boxes, and what both plug-ins say: one shared module, tied to the protocol --------

GIMP_PLUGIN = REPO / "plugin_gimp" / "renovate-faces" / "renovate-faces.py"
KRITA = REPO / "plugin_krita" / "renovate_faces"
COMMON = KRITA / "common.py"  # the Krita package's; the installer copies it beside the GIMP plug-in too
SHARED = (
    "photo_options",
    "preview_key",
    "preview_caption",
    "preview_error_text",
    "nothing_changed_message",
    "done_message",
    "layer_name",
    "answer_entry",
    "file_logger",
)
CHECK_BOXES = [(True, False), (False, False), (True, True), (False, True)]  # (keep grain, remove damage)


def _common():
    """common.py as the GIMP plug-in loads it: by path, on its own (it imports nothing of the plug-ins)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("renovate_faces_common_test", COMMON)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_neither_plugin_keeps_its_own_copy_of_the_shared_words():
    for path in (*PLUGIN_SOURCES, GIMP_PLUGIN):
        if path == COMMON:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        own = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)} & set(SHARED)
        assert not own, f"{path.relative_to(REPO)} defines {own}: they live in common.py"
        constants = {
            t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)
        }
        assert not constants & {"SERVER_DOWN", "SERVER_START_WAIT", "PREVIEW_DEBOUNCE_MS", "LAYER_PREFIX"}, (
            path
        )
        classes = {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
        assert "PreviewQueue" not in classes, path
    gimp = GIMP_PLUGIN.read_text(encoding="utf-8")
    for name in (
        "photo_options",
        "preview_key",
        "preview_caption",
        "preview_error_text",
        "nothing_changed_message",
        "layer_name",
        "answer_entry",
        "PreviewQueue",
        "SERVER_DOWN",
        "SERVER_STOPPED",
    ):
        assert f"load_common().{name}" in gimp, name


def test_the_check_boxes_send_only_the_protocols_grain_and_damage_choices():
    photo_options = _common().photo_options
    sent = [photo_options(*boxes) for boxes in CHECK_BOXES]
    for options in sent:
        # Accepted by a renovate job and by a preview alike.
        assert P.validate_options(options) == options
        assert P.validate_options(options, P.PREVIEW_OPTIONS) == options
    # "Keep film grain" offers every grain choice, ticked = the protocol's default (its first, keep).
    assert {o["grain"] for o in sent} == set(P.GRAIN_CHOICES)
    assert photo_options(True, False)["grain"] == P.GRAIN_CHOICES[0] == "keep"
    # "Remove scratches and dust" turns the step on around faces (not over the whole photo); unticked = off.
    assert {o["damage"] for o in sent} == {"faces", "off"} and {"faces", "off"} <= set(P.DAMAGE_CHOICES)
    assert photo_options(True, False)["damage"] == "off"


def _boolean_argument_defaults() -> dict[str, bool]:
    """The GIMP procedure's ``add_boolean_argument(name, label, help, default, flags)`` calls."""
    defaults = {}
    for node in ast.walk(ast.parse(GIMP_PLUGIN.read_text(encoding="utf-8"))):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "add_boolean_argument"
        ):
            defaults[node.args[0].value] = node.args[3].value
    return defaults


def test_the_check_boxes_start_at_the_protocols_defaults_in_both_plugins():
    import sys

    sys.path.insert(0, str(REPO / "plugin_krita"))
    from renovate_faces import core, settings

    gimp = _boolean_argument_defaults()
    assert (gimp["keep-grain"], gimp["remove-damage"]) == (True, False), gimp
    assert (settings.KEEP_GRAIN.default, settings.REMOVE_DAMAGE.default) == (True, False)
    defaults = core.Options()
    assert (defaults.keep_grain, defaults.remove_damage) == (True, False)
    assert defaults.to_server()["grain"] == "keep" and defaults.to_server()["damage"] == "off"


def test_the_grain_and_damage_options_are_written_once():
    """A dict literal with a 'grain' or 'damage' key stands only in common.photo_options: no second copy."""
    places = []
    for path in (*PLUGIN_SOURCES, GIMP_PLUGIN):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Dict):
                keys = {k.value for k in node.keys if isinstance(k, ast.Constant)}
                if keys & {"grain", "damage"}:
                    assert keys == {"grain", "damage"}, (path, keys)
                    places.append(path.name)
    assert places == ["common.py"], places


def test_what_a_run_that_changes_nothing_says():
    say = _common().nothing_changed_message
    sharp = {"renovated": True, "changed": False}
    small = {"renovated": False, "changed": False, "reason": "smaller than min_face_size"}
    for faces in ([], [sharp], [sharp, sharp], [small], [small, small], [sharp, small, small]):
        for in_selection in (False, True):
            text = say(faces, in_selection)
            assert "(s)" not in text and text.endswith("."), text
            # A selection is named only when there is one.
            assert ("selection" in text) == (in_selection and not any(f["renovated"] for f in faces)), text
    assert say([sharp], False) == "1 face found; it already looks sharp and clean, so nothing was changed."
    assert (
        say([sharp, sharp], True)
        == "2 faces found; they already look sharp and clean, so nothing was changed."
    )
    assert say([], False).startswith("No face found in this layer; nothing was changed.")
    assert say([], True).startswith("No face found inside the selection; nothing was changed.")
    assert _common().done_message(1, "R") == "Renovated 1 face into the layer 'R'."


def test_a_preview_caption():
    caption = _common().preview_caption
    assert caption(0.5, 0, 1, False, False) == "Before | after at fidelity 0.50: the only face found."
    assert (
        caption(0.123, 2, 8, False, False)
        == "Before | after at fidelity 0.12: the largest face (face 3 of 8)."
    )
    assert caption(0.7, 1, 3, True, True) == (
        "The face nearest the selection's centre (face 2 of 3) already looks sharp: it keeps its pixels at any "
        "fidelity."
    )
    assert "face 1 of 1" not in caption(1, 0, 1, True, True)
    assert caption(0.5, 0, 1, False, False, slider=False) == (
        "Before | after: the only face found. The fidelity slider does not change this face yet."
    )


def test_a_layers_pixels_are_named_cheaply_for_the_preview_cache():
    key = _common().preview_key
    pixels = bytes(range(256)) * 12  # 32 x 24 RGBA
    assert key(pixels, 32, 24) == key(bytes(pixels), 32, 24)
    assert key(pixels[:-1] + b"\x00", 32, 24) != key(pixels, 32, 24), "a changed pixel must change the key"
    assert key(pixels, 24, 32) != key(pixels, 32, 24)
    assert 1 <= len(key(pixels, 32, 24)) <= 128  # the protocol's key length


def test_the_server_down_sentences_are_plain():
    for text in (_common().SERVER_DOWN, _common().SERVER_STOPPED):
        assert "Try again" in text or "try once more" in text, text
        assert text.endswith("."), text
        for raw in ("`", "ipc://", "tcp://", "/", "Errno", "hifacegan-"):
            assert raw not in text, raw
    assert _common().SERVER_START_WAIT == 90


def _functions(path: Path) -> dict[str, ast.FunctionDef]:
    return {
        n.name: n for n in ast.parse(path.read_text(encoding="utf-8")).body if isinstance(n, ast.FunctionDef)
    }


def test_both_plugins_load_their_client_through_one_helper_shape():
    """``load_client()`` with no argument, returning the client module, in both plug-ins."""
    for functions in (_functions(GIMP_PLUGIN), _functions(KRITA / "client_loader.py")):
        assert "load_client" in functions and "import_client" not in functions
        assert not functions["load_client"].args.args


def test_one_preview_request_in_flight_and_the_newest_wins():
    sent = []
    queue = _common().PreviewQueue(sent.append)
    first = (queue.next_serial(), 0.5)
    queue.submit(first)
    assert sent == [first]
    queue.submit((queue.next_serial(), 0.4))  # waits
    newest = (queue.next_serial(), 0.3)
    queue.submit(newest)  # replaces the waiting one, which is never sent
    assert queue.answered(first[0]) is True and sent == [first, newest]  # stale: a newer one was asked
    assert queue.answered(newest[0]) is False and queue.running is None and sent == [first, newest]
    # A closed dialog sends nothing more.
    queue.submit((queue.next_serial(), 0.2))
    queue.submit((queue.next_serial(), 0.1))
    queue.answered(queue.serial - 1, send_waiting=False)
    assert queue.waiting is None and queue.running is None and len(sent) == 3


def test_a_preview_without_a_picture_says_why_in_a_sentence():
    text = _common().preview_error_text
    assert text("no_face", "...", "OK starts it") == "No face big enough to preview in this layer."
    assert text("unavailable", "at tcp://x", "OK starts it") == (
        "No preview: the Renovate Faces server is not running (OK starts it)."
    )
    assert text("busy", "The server is busy.", "") == "No preview: The server is busy."
    assert "the reason is written in the Renovate Faces log" in text("", "KeyError: 'x'", "")
