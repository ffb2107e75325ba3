"""A weighted mix of tasks, for training on several kinds of degradation at once.

A network that only ever saw the paper's heavy full task smooths mildly degraded faces; one trained on a mix
(``"full:1,web:1"``, say) learns both. A mix is written as comma-separated ``task[:weight]`` items; a weight left
out counts 1, and a plain task name is a mix of one (it draws nothing extra, so its samples are the task's own).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hifacegan.degradations._tasks import get_task


@dataclass(frozen=True)
class TaskMix:
    """Task names and their probabilities (summing to 1), in the order written."""

    names: tuple[str, ...]
    probabilities: tuple[float, ...]

    def choose(self, rng: np.random.Generator) -> str:
        """One task drawn by weight; a mix of one draws nothing from ``rng``."""
        if len(self.names) == 1:
            return self.names[0]
        return self.names[int(rng.choice(len(self.names), p=np.asarray(self.probabilities)))]

    def __str__(self) -> str:
        if len(self.names) == 1:
            return self.names[0]
        return ",".join(f"{name}:{p:.3g}" for name, p in zip(self.names, self.probabilities, strict=True))


def parse_task_mix(spec: str) -> TaskMix:
    """``"full:2,web:1"`` -> full 2/3, web 1/3; ``"full"`` -> full alone. ValueError says what is wrong."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"expected a task or a mix such as 'full:1,web:1', got {spec!r}")
    weights: dict[str, float] = {}
    for item in spec.split(","):
        name, _, weight = item.strip().partition(":")
        task = get_task(name.strip()).name
        try:
            value = float(weight) if weight.strip() else 1.0
        except ValueError:
            raise ValueError(
                f"the weight of {name.strip()!r} in {spec!r} is not a number: {weight!r}"
            ) from None
        if not value > 0 or not np.isfinite(value):
            raise ValueError(
                f"the weight of {name.strip()!r} in {spec!r} must be a positive number, got {weight}"
            )
        if task in weights:
            raise ValueError(f"{task!r} appears twice in the task mix {spec!r}")
        weights[task] = value
    total = sum(weights.values())
    return TaskMix(tuple(weights), tuple(value / total for value in weights.values()))
