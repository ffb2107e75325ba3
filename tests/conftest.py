"""Shared test fixtures.

Tests that need something a user's machine may lack (``../shared/data``, a GIMP 3 root, Krita) call
:func:`require`: it skips with the reason, unless ``RENOVATE_REQUIRE_ALL=1`` (set by ``.ci/run``), where a
missing prerequisite is a failure, so CI can never go green by skipping.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HIFACEGAN_SHARED", REPO.parent / "shared")).resolve()
DATA = SHARED / "data"
REQUIRE_ALL = os.environ.get("RENOVATE_REQUIRE_ALL", "") not in ("", "0", "false", "no")


def require(condition: object, reason: str) -> None:
    """Skip the calling test when ``condition`` is false, or fail it when CI demands every test run."""
    if condition:
        return
    if REQUIRE_ALL:
        pytest.fail(f"required by RENOVATE_REQUIRE_ALL but missing: {reason}", pytrace=False)
    pytest.skip(reason)


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
