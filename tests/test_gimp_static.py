"""What can be checked about the GIMP plug-in without GIMP: layout, and a query pass that stays light.

GIMP runs every plug-in once at start-up to query it; a slow or network-touching module level makes GIMP's
start slow for every user. So the module level may import only the standard library's os/sys and gi.
"""

from __future__ import annotations

import ast
import os

from conftest import REPO

PLUGIN = REPO / "plugin_gimp" / "renovate-faces" / "renovate-faces.py"
MODULE_LEVEL_IMPORTS = {"__future__", "os", "sys", "gi", "gi.repository"}


def _module_level_imports(tree: ast.Module) -> set[str]:
    found = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.add(node.module or "")
    return found


def test_layout_gimp_accepts() -> None:
    # GIMP 3 skips plug-ins that are not in a folder of their own name, or not executable.
    assert PLUGIN.parent.name == PLUGIN.stem
    assert PLUGIN.read_text(encoding="utf-8").startswith("#!/usr/bin/env python3\n")
    assert os.access(PLUGIN, os.X_OK), f"chmod +x {PLUGIN.relative_to(REPO)}"


def test_query_pass_imports_nothing_heavy() -> None:
    tree = ast.parse(PLUGIN.read_text(encoding="utf-8"))
    assert _module_level_imports(tree) <= MODULE_LEVEL_IMPORTS
    # The client (pyzmq, msgpack) is imported inside run only.
    nested = {
        alias.name if isinstance(node, ast.Import) else node.module
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom)) and node not in tree.body
        for alias in node.names
    }
    assert {"client", "hifacegan_server"} <= nested


def test_plugin_parses_as_python_3_9() -> None:
    # GIMP 3.0 runs plug-ins with the system Python (3.11 to 3.13 on current distributions): no newer syntax.
    ast.parse(PLUGIN.read_text(encoding="utf-8"), feature_version=(3, 9))


def test_client_api_the_plugin_uses_exists() -> None:
    # The plug-in calls these names of server/client.py (the contract in docs/architecture.md).
    from hifacegan_server import client

    for name in ("Client", "ServerError", "ServerUnavailable", "Cancelled"):
        assert hasattr(client, name)
    assert issubclass(client.ServerUnavailable, client.ServerError)
    assert issubclass(client.Cancelled, client.ServerError)


# GimpUi.ProcedureDialog adds these buttons; GIMP logs a warning for each mnemonic two widgets share.
DIALOG_BUTTONS = ("_Help", "_Reset", "_Cancel", "_OK", "_Save Settings")  # save-defaults: seen in GIMP 3.0.4


def _mnemonic(label: str) -> str:
    index = label.index("_")
    return label[index + 1].lower()


def _argument_calls() -> list[ast.Call]:
    """The procedure's ``add_..._argument(name, label, help, ...)`` calls, in order."""
    return [
        node
        for node in ast.walk(ast.parse(PLUGIN.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr.startswith("add_")
        and node.func.attr.endswith("_argument")
        and len(node.args) > 1
        and isinstance(node.args[1], ast.Constant)
    ]


def test_dialog_mnemonics_are_unique() -> None:
    labels = [node.args[1].value for node in _argument_calls()]
    assert {"_Fidelity", "F_aces", "Res_ult"} <= set(labels), labels
    keys = [_mnemonic(label) for label in (*labels, *DIALOG_BUTTONS) if "_" in label]
    assert len(keys) == len(set(keys)), f"duplicate mnemonics among {labels} and the buttons {DIALOG_BUTTONS}"


def test_fidelity_is_a_slider_in_the_dialog() -> None:
    source = PLUGIN.read_text(encoding="utf-8")
    assert 'get_spin_scale("fidelity"' in source
    assert source.index('get_spin_scale("fidelity"') < source.index("dialog.fill(")


def test_result_layer_named_like_krita() -> None:
    """Both name the layer with common.layer_name (tests/test_option_choices.py: no copy of their own)."""
    import sys

    sys.path.insert(0, str(REPO / "plugin_krita"))
    from renovate_faces import common, core

    assert "load_common().layer_name(fidelity, faces)" in PLUGIN.read_text(encoding="utf-8")
    for fidelity, faces in ((0.5, "all"), (0.3, "largest"), (0.7, "center"), (1.0, "all")):
        assert common.layer_name(fidelity, faces) == core.Options(fidelity, faces).layer_name
    assert common.layer_name(0.5, "center") == "Renovated faces (face nearest the centre, fidelity 0.50)"


def test_check_boxes_read_like_kritas() -> None:
    """The grain and damage check boxes: GIMP's labels (less their mnemonic) are common.py's, as Krita's are,
    and their tooltips come from common.py."""
    import sys

    sys.path.insert(0, str(REPO / "plugin_krita"))
    from renovate_faces import common, settings

    labels = {node.args[0].value: node.args[1].value for node in _argument_calls()}
    assert labels["keep-grain"].replace("_", "") == common.KEEP_GRAIN_LABEL == "Keep film grain"
    assert (
        labels["remove-damage"].replace("_", "") == common.REMOVE_DAMAGE_LABEL == "Remove scratches and dust"
    )
    assert "load_common().KEEP_GRAIN_HELP, load_common().REMOVE_DAMAGE_HELP" in PLUGIN.read_text(
        encoding="utf-8"
    )
    assert (settings.KEEP_GRAIN.desc, settings.REMOVE_DAMAGE.desc) == (
        common.KEEP_GRAIN_HELP,
        common.REMOVE_DAMAGE_HELP,
    )
    for tip in (common.KEEP_GRAIN_HELP, common.REMOVE_DAMAGE_HELP):
        assert tip.endswith(".") and tip[0].isupper(), tip  # plain sentences


def test_new_arguments_come_after_the_old_ones() -> None:
    """Scripts that pass arguments by position keep working: the grain and damage check boxes come last."""
    names = [node.args[0].value for node in _argument_calls()]
    assert names == ["fidelity", "faces", "output", "convert-indexed", "keep-grain", "remove-damage"], names


def test_the_shared_words_load_beside_the_plugin_and_from_a_checkout(tmp_path) -> None:
    """GIMP loads common.py (the words both plug-ins share) by path: the installer's copy beside the plug-in, else
    the Krita plug-in's in the checkout. Run without GIMP: load_common needs only os, sys and importlib."""
    import shutil
    import subprocess
    import sys

    tree = ast.parse(PLUGIN.read_text(encoding="utf-8"))
    body = [n for n in tree.body if getattr(n, "name", None) == "load_common"]
    body += [
        n for n in tree.body if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "COMMON"
    ]
    source = ast.unparse(ast.Module(body=body, type_ignores=[]))
    common = REPO / "plugin_krita" / "renovate_faces" / "common.py"
    installed = tmp_path / "plug-ins" / "renovate-faces"
    installed.mkdir(parents=True)
    (installed / "common.py").write_text(common.read_text() + "\nWHERE = 'beside'\n")
    for folder, where in ((installed, "beside"), (REPO / "plugin_gimp" / "renovate-faces", None)):
        code = f"import os, sys\nPLUG_IN_DIR = {str(folder)!r}\n{source}\nw = load_common()\n"
        code += "print(getattr(w, 'WHERE', 'checkout'), w.SERVER_START_WAIT)"
        run = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        assert run.stdout.split() == [where or "checkout", "90.0"]
    shutil.rmtree(installed)
