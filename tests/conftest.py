"""Shared test fixtures.

Tests that need something a user's machine may lack (``../shared/data``, a GIMP 3 root, Krita) call
:func:`require`: it skips with the reason, unless ``RENOVATE_REQUIRE_ALL=1`` (set by ``.ci/run``), where a
missing prerequisite is a failure, so CI can never go green by skipping.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType

import pytest

from hifacegan.devices import configure_cpu_threads

# The test session owns its process, as the CLI and the server own theirs: all cores but one, set once here.
configure_cpu_threads()

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HIFACEGAN_SHARED", REPO.parent / "shared")).resolve()
DATA = SHARED / "data"
REQUIRE_ALL = os.environ.get("RENOVATE_REQUIRE_ALL", "") not in ("", "0", "false", "no")


#: Host tests by file: each file that drives a real host carries that host's marker, so ``-m "not krita"`` and
#: ``-m gimp`` select what they say (the Makefile's test-fast also leaves these files out by name).
HOST_MARKERS = {"test_gimp_": "gimp", "test_krita_": "krita"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Apply the markers the tiers filter on: ``gimp``/``krita`` by file, ``data`` wherever a test needs
    ``../shared/data`` (its ``shared_data`` fixture, directly or through another fixture)."""
    for item in items:
        name = item.path.name
        for prefix, marker in HOST_MARKERS.items():
            if name.startswith(prefix):
                item.add_marker(getattr(pytest.mark, marker))
        if "shared_data" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.data)


def require(condition: object, reason: str) -> None:
    """Skip the calling test when ``condition`` is false, or fail it when CI demands every test run."""
    if condition:
        return
    if REQUIRE_ALL:
        pytest.fail(f"required by RENOVATE_REQUIRE_ALL but missing: {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def require_module(name: str) -> ModuleType:
    """Import a test-only dependency (``pip install -e '.[test]'``) under :func:`require`, never ``importorskip``."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        require(False, f"{name} is not importable ({exc}); install the test extras: pip install -e '.[test]'")
        raise  # unreachable: require skipped or failed


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (or ``$HIFACEGAN_SHARED/data``)."""
    require(DATA.is_dir(), f"shared face data not found at {DATA}")
    return DATA


@pytest.fixture(scope="session")
def solvay_photo(shared_data: Path) -> Path:
    path = shared_data / "photos" / "solvay_conference_1927.png"
    require(path.is_file(), f"{path} is missing")
    return path


@pytest.fixture(autouse=True, scope="session")
def _few_threads() -> None:
    # Two cores on CI: keep torch from oversubscribing when tests run beside other work.
    try:
        import torch

        torch.set_num_threads(min(2, os.cpu_count() or 1))
    except ImportError:
        pass


@pytest.fixture
def http_files():
    """A real HTTP server on 127.0.0.1 serving ``files`` (path -> bytes); ``/short/...`` cuts the body in half.

    Yields ``(base_url, files)``: tests fill ``files`` and download over real sockets, no mocked requests.
    """
    import http.server
    import threading

    files: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            short = self.path.startswith("/short/")
            body = files.get(self.path.removeprefix("/short") if short else self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2] if short else body)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", files
    finally:
        server.shutdown()
        server.server_close()
