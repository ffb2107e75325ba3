"""Find the server's client: the copy the installer put beside this package first, then the ``server`` package.

The installer copies ``server/client.py``, ``paths.py`` and ``protocol.py`` into this folder, so an installed
plug-in needs nothing on ``sys.path``; a developer checkout (and the tests) can instead put the repository root
on ``sys.path`` and use ``server`` directly.
"""

from __future__ import annotations

from types import ModuleType


class MissingDependency(Exception):
    """The client or one of its libraries is missing; ``str()`` says how to install it."""


def load_client() -> ModuleType:
    """The ``client`` module, or :class:`MissingDependency` with an actionable message."""
    for lib in ("zmq", "msgpack"):
        try:
            __import__(lib)
        except ImportError:
            package = "pyzmq" if lib == "zmq" else "msgpack"
            raise MissingDependency(
                f"Renovate Faces needs the Python package '{package}' in Krita's Python. On Debian/Ubuntu run "
                f"'sudo apt install python3-{'zmq' if lib == 'zmq' else 'msgpack'}'; elsewhere rerun the "
                "Renovate Faces installer, which puts it beside the plug-in."
            ) from None
    return _load_module("client")


def load_paths() -> ModuleType:
    """The ``paths`` module (folders, endpoint), found the same way as the client."""
    return _load_module("paths")


def _load_module(name: str) -> ModuleType:
    import importlib

    try:
        return importlib.import_module(f"{__package__}.{name}")  # the installed layout
    except ImportError as first:
        if getattr(first, "name", "") != f"{__package__}.{name}":
            raise  # the copy exists but is broken: show the real error
    try:
        return importlib.import_module(f"server.{name}")
    except ImportError:
        raise MissingDependency(
            f"Renovate Faces cannot find its server client ({name}.py). Reinstall the plug-in with the "
            "Renovate Faces installer, which copies it into the plug-in folder."
        ) from None
