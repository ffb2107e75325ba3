"""The house rules of docs/architecture.md, checked on the source: arrows point one way, modules and functions
stay small, and no training checkpoint is tracked. A change that breaks one fails here with the file and line to
look at."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest
from conftest import REPO

MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 60
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")
# What each folder must never import (top-level names), down the flow host -> plug-in -> client -> server ->
# pipeline -> networks: the library knows neither the server nor the installers; the server not the installers;
# the plug-ins run in the hosts' Python, with the client only.
FORBIDDEN = {
    "hifacegan": {"hifacegan_server", "hifacegan_installers", "server", "installers"},
    "server": {"hifacegan_installers", "installers"},
    "plugin_gimp": {"hifacegan", "hifacegan_installers", "installers", "numpy", "torch", "cv2"},
    "plugin_krita": {"hifacegan", "hifacegan_installers", "installers", "numpy", "torch", "cv2"},
}


def _modules(folder: str) -> list[Path]:
    return sorted(p for p in (REPO / folder).rglob("*.py") if "__pycache__" not in p.parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_imports_point_down_the_flow(folder: str) -> None:
    wrong = [
        f"{path.relative_to(REPO)}:{line} imports {name}"
        for path in _modules(folder)
        for line, name in _imports(path)
        if name in FORBIDDEN[folder]
    ]
    assert wrong == [], "\n".join(wrong)


def test_no_module_outgrows_one_sitting() -> None:
    folders = ("hifacegan", "server", "installers", "plugin_gimp", "plugin_krita")
    long = [
        f"{path.relative_to(REPO)}: {n} lines"
        for folder in folders
        for path in _modules(folder)
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    ]
    assert long == [], f"split these by job (at most {MAX_MODULE_LINES} lines): {long}"


def _long_functions(path: Path) -> list[str]:
    """``path:line name length`` of each function (methods and nested ones too) over the limit, docstring included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                found.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} {length}")
    return found


def test_no_function_over_60_lines() -> None:
    long = [
        entry
        for folder in ("hifacegan", "server", "installers")
        for path in _modules(folder)
        for entry in _long_functions(path)
    ]
    assert long == [], (
        f"split these into named steps (at most {MAX_FUNCTION_LINES} lines from def to last line):\n"
        + "\n".join(long)
    )


def _private_imports(path: Path) -> list[tuple[int, str]]:
    """``from M import _name`` lines of ``path``, but a package's own private submodules imported by a sibling."""
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    package = package.replace("server", "hifacegan_server", 1).replace(
        "installers", "hifacegan_installers", 1
    )
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                private = alias.name.startswith("_") and not alias.name.startswith("__")
                if private and node.module != package:
                    found.append((node.lineno, f"{node.module}.{alias.name}"))
    return found


def test_no_module_imports_another_modules_private_names() -> None:
    wrong = [
        f"{path.relative_to(REPO)}:{line} imports {name}"
        for folder in ("hifacegan", "server", "installers", "docs")
        for path in _modules(folder)
        for line, name in _private_imports(path)
    ]
    assert wrong == [], "make these public (a documented name) or keep them in one module:\n" + "\n".join(
        wrong
    )


def test_no_training_checkpoint_is_tracked() -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert [name for name in tracked.splitlines() if name.endswith(CHECKPOINT_SUFFIXES)] == []
