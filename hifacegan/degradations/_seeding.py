"""Where a degradation's randomness comes from.

Everything is drawn from an explicit ``numpy.random.Generator``; nothing touches global random state, so
DataLoader workers, threads and repeated runs never share or clobber each other's streams.
"""

from __future__ import annotations

import hashlib

import numpy as np


def resolve_rng(seed: int | None, rng: np.random.Generator | None) -> np.random.Generator:
    """The generator a call draws from: ``rng`` as given, a fresh one seeded with ``seed``, or an unseeded one."""
    if seed is not None and rng is not None:
        raise ValueError("pass either seed= or rng=, not both (a generator already carries its own seed)")
    if rng is not None:
        if not isinstance(rng, np.random.Generator):
            raise TypeError(
                f"rng must be a numpy.random.Generator (np.random.default_rng(...)), got {type(rng)}"
            )
        return rng
    if seed is None:
        return np.random.default_rng()
    return np.random.default_rng(_check_seed(seed))


def rng_for(seed: int, key: str) -> np.random.Generator:
    """A generator that depends only on ``seed`` and ``key`` (a file's name, say).

    Used so a file's degradation is the same whichever order files are processed in and whichever other files
    are present. The key is hashed with BLAKE2b (stable across processes and Python versions, unlike ``hash``).
    """
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=16).digest()
    words = [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]
    return np.random.default_rng(np.random.SeedSequence([_check_seed(seed), *words]))


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)
