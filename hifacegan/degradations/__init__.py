"""The paper's degradation tasks on uint8 RGB arrays, seeded and torch-free.

>>> from hifacegan.degradations import degrade, list_tasks
>>> list_tasks()
['sr4x', 'sr4x8x', 'denoise', 'deblur', 'jpeg', 'mosaic16x', 'full', 'web', 'damage', 'old']

The first seven are the paper's; ``web`` is a web or phone photo's mild degradation, ``damage`` an old print's
scratches and dust, ``old`` the full task with damage over it. ``degrade(image, task, seed=...)`` is the whole
API most callers need; ``degrade_with_params`` also returns what was sampled, ``degrade_with_mask`` the damage
mask too, ``parse_task_mix("full:1,web:1")`` a weighted mix of tasks for training, ``rng_for(seed, key)`` gives the per-file generator the CLI and the validation datasets use,
and ``fit_to_size`` prepares a clean face at the model's size.
"""

from __future__ import annotations

from hifacegan.degradations._damage import damage_with_mask
from hifacegan.degradations._mix import TaskMix, parse_task_mix
from hifacegan.degradations._ops import fit_long_side, fit_to_size
from hifacegan.degradations._seeding import resolve_rng, rng_for
from hifacegan.degradations._tasks import (
    ALIASES,
    TASKS,
    Task,
    check_image,
    degrade,
    degrade_with_mask,
    degrade_with_params,
    draws_damage,
    get_task,
    list_tasks,
)

__all__ = [
    "ALIASES",
    "TASKS",
    "Task",
    "TaskMix",
    "check_image",
    "damage_with_mask",
    "degrade",
    "degrade_with_mask",
    "degrade_with_params",
    "draws_damage",
    "fit_long_side",
    "fit_to_size",
    "get_task",
    "list_tasks",
    "parse_task_mix",
    "resolve_rng",
    "rng_for",
]
