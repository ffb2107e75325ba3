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


def test_dialog_mnemonics_are_unique() -> None:
    tree = ast.parse(PLUGIN.read_text(encoding="utf-8"))
    labels = [
        node.args[1].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr.startswith("add_")
        and node.func.attr.endswith("_argument")
        and len(node.args) > 1
        and isinstance(node.args[1], ast.Constant)
    ]
    assert {"_Fidelity", "F_aces", "Res_ult"} <= set(labels), labels
    keys = [_mnemonic(label) for label in (*labels, *DIALOG_BUTTONS) if "_" in label]
    assert len(keys) == len(set(keys)), f"duplicate mnemonics among {labels} and the buttons {DIALOG_BUTTONS}"


def test_fidelity_is_a_slider_in_the_dialog() -> None:
    source = PLUGIN.read_text(encoding="utf-8")
    assert 'get_spin_scale("fidelity"' in source
    assert source.index('get_spin_scale("fidelity"') < source.index("dialog.fill(")


def test_result_layer_named_like_krita() -> None:
    import sys

    sys.path.insert(0, str(REPO / "plugin_krita"))
    from renovate_faces import core

    tree = ast.parse(PLUGIN.read_text(encoding="utf-8"))
    wanted = {"layer_name", "LAYER_PREFIX"}
    body = [
        n
        for n in tree.body
        if getattr(n, "name", None) in wanted
        or (isinstance(n, ast.Assign) and any(getattr(t, "id", None) in wanted for t in n.targets))
    ]
    namespace: dict = {}
    exec(compile(ast.Module(body=body, type_ignores=[]), str(PLUGIN), "exec"), namespace)
    for fidelity, faces in ((0.5, "all"), (0.3, "largest"), (0.7, "center"), (1.0, "all")):
        assert namespace["layer_name"](fidelity, faces) == core.Options(fidelity, faces).layer_name
