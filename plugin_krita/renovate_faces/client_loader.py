"""Find the server's client: the copy the installer put beside this package first, then the source tree's.

The installer copies ``server/client.py``, ``paths.py`` and ``protocol.py`` into this folder, so an installed
plug-in needs nothing on ``sys.path``. A developer's plug-in linked from a checkout uses the checkout's
``server/`` folder instead, and a Krita whose Python has ``hifacegan`` installed can use ``hifacegan_server``.
"""

from __future__ import annotations

import os
import sys
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


def is_client_error(exc: BaseException, name: str) -> bool:
    """Whether ``exc`` is an instance of the client's exception ``name`` ("Cancelled", "ServerUnavailable"):
    a real ``isinstance`` against the loaded client, so a subclass counts and a look-alike does not."""
    try:
        kind = getattr(load_client(), name)
    except MissingDependency:
        return False  # no client, so no client error either
    return isinstance(exc, kind)


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
    checkout = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "server")
    if os.path.isfile(os.path.join(checkout, f"{name}.py")):
        package = sys.modules[__package__]
        # The checkout's client files, as if the installer had copied them into this package.
        if checkout not in package.__path__:
            package.__path__.append(checkout)
        return importlib.import_module(f"{__package__}.{name}")
    try:
        return importlib.import_module(f"hifacegan_server.{name}")
    except ImportError:
        raise MissingDependency(
            f"Renovate Faces cannot find its server client ({name}.py). Reinstall the plug-in with the "
            "Renovate Faces installer, which copies it into the plug-in folder."
        ) from None
