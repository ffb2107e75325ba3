"""``hifacegan eval``: degrade clean faces, run each method, score them with the paper's metrics, write reports."""

from hifacegan.evaluation._baseline import classical_restore, estimate_noise_sigma
from hifacegan.evaluation._report import ROW_KEYS, markdown_table
from hifacegan.evaluation.runner import EvalConfig, default_workers, evaluate, evaluate_no_reference

__all__ = [
    "ROW_KEYS",
    "EvalConfig",
    "classical_restore",
    "default_workers",
    "estimate_noise_sigma",
    "evaluate",
    "evaluate_no_reference",
    "markdown_table",
]
