"""Training: the paper's recipe (LSGAN + feature matching + perceptual, TTUR Adam), its fidelity (L1) variant,
budgeted and resumable runs, one process or many (torchrun / DDP).

>>> from hifacegan.train import TrainConfig, train
>>> train(TrainConfig(generator="hifacegan-lite-128", gan=False, fidelity=True), "faces/", "runs/x")  # doctest: +SKIP
"""

from hifacegan.train.config import ConfigError, TrainConfig, list_configs, load_config_source, resolve_config
from hifacegan.train.loop import TrainResult, learning_rate, train
from hifacegan.train.step import TrainingStep

__all__ = [
    "ConfigError",
    "TrainConfig",
    "TrainResult",
    "TrainingStep",
    "learning_rate",
    "list_configs",
    "load_config_source",
    "resolve_config",
    "train",
]
