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
