"""The paper's degradation tasks on uint8 RGB arrays, seeded and torch-free.

>>> from hifacegan.degradations import degrade, list_tasks
>>> list_tasks()
['sr4x', 'sr4x8x', 'denoise', 'deblur', 'jpeg', 'mosaic16x', 'full']

``degrade(image, task, seed=...)`` is the whole API most callers need; ``degrade_with_params`` also returns
what was sampled, ``rng_for(seed, key)`` gives the per-file generator the CLI and the validation datasets use,
and ``fit_to_size`` prepares a clean face at the model's size.
"""

from __future__ import annotations

from hifacegan.degradations._ops import fit_to_size
from hifacegan.degradations._seeding import resolve_rng, rng_for
from hifacegan.degradations._tasks import (
    ALIASES,
    TASKS,
    Task,
    check_image,
    degrade,
    degrade_with_params,
    get_task,
    list_tasks,
)

__all__ = [
    "ALIASES",
    "TASKS",
    "Task",
    "check_image",
    "degrade",
    "degrade_with_params",
    "fit_to_size",
    "get_task",
    "list_tasks",
    "resolve_rng",
    "rng_for",
]
