"""Training configurations: shipped YAML recipes, user YAML files, command-line overrides, the resolved copy.

A config is a flat mapping (so any key can be overridden from the command line with ``--set key=value``).
``--config NAME`` looks for ``hifacegan/configs/NAME.yaml``, then for a generator config of that name (which
trains it with the paper's recipe); ``--config FILE`` reads a YAML file. The resolved config is written to the run
directory as ``config.yaml``; ``--resume`` starts from that copy.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


class ConfigError(ValueError):
    """A config that cannot be found or does not make sense; the message says how to fix it."""


@dataclass
class TrainConfig:
    """Every setting of a training run. Defaults are the paper's recipe (HiFaceGAN, ACM MM 2020, Sec. 4)."""

    # What is trained, and the name its exported weights get.
    name: str = "hifacegan"
    generator: str = "hifacegan-512"
    generator_overrides: dict[str, Any] = field(default_factory=dict)
    size: int | None = None  # None: the generator config's size
    # Data: clean faces degraded on the fly, by one task or a weighted mix ("full:1,web:1", one drawn per face).
    task: str = "full"
    limit: int | None = None
    flip: bool = True
    # Chance that a training face is shrunk into a mirrored frame (hifacegan.data.zoom_out), and the smallest
    # shrink: tight crops alone leave a network unsure of faces framed loosely, as in CelebA or a pasted crop.
    zoom_out_probability: float = 0.0
    zoom_out_min_scale: float = 0.6
    # Chance that a training face is left undegraded (input = target): a network that only ever saw degraded faces
    # "restores" clean ones too, smoothing the detail a sharp photo has; these samples teach it to leave them be.
    clean_probability: float = 0.0
    # Chance that a degraded training face is degraded as a small face of a photo (at a side from
    # small_face_min_side up, then enlarged to the training size, as the pipeline enlarges such faces).
    small_face_probability: float = 0.0
    small_face_min_side: int = 40
    workers: int = 1
    # Losses. The paper: LSGAN + feature matching 10 + VGG19 perceptual 10; the fidelity variant adds L1.
    gan: bool = True
    discriminator: str = "multiscale"
    lambda_gan: float = 1.0
    lambda_fm: float = 10.0
    perceptual: str = "auto"  # auto | vgg19 | mobilenet_v2
    vgg19_path: str | None = None
    lambda_perceptual: float = 10.0
    fidelity: bool = False
    lambda_l1: float = 100.0
    # Optimisation: Adam (0, 0.9), TTUR, constant then linear decay to zero.
    batch_size: int = 2
    lr_g: float = 1e-4
    lr_d: float = 4e-4
    beta1: float = 0.0
    beta2: float = 0.9
    # Length of the learning-rate schedule; None: constant. Not max_steps: a budget must not change the recipe,
    # or a run resumed with a larger budget would not continue the one it resumes. Without max_steps, a run
    # stops where a decaying schedule reaches zero.
    steps: int | None = None
    decay_fraction: float = 0.4  # the paper: 30 epochs constant + 20 decaying
    # Budget: whichever comes first. max_steps counts across resumes; max_minutes is per invocation.
    max_steps: int | None = None
    max_minutes: float | None = None
    seed: int = 0
    # Bookkeeping.
    checkpoint_every: int = 1000  # steps
    checkpoint_minutes: float | None = None
    log_every: int = 10
    image_every: int = 500
    export_fp16: bool = False
    init_from: str | None = None
    # Hardware.
    device: str = "auto"
    amp: bool = True  # bf16 autocast on CUDA (ignored on CPU)
    channels_last: bool | None = None  # None: on CUDA only
    threads: int | None = None  # torch intra-op threads on CPU; None: torch's default
    # Notes for the model card.
    description: str = ""
    license: str = ""
    role: str | None = None  # "fidelity" | "perceptual"; None: inferred from the losses
    partner: str | None = None
    # The 5-point alignment written into the model card, which the pipeline aligns faces to: "data" measures it on
    # the training faces (UTKFace-style tight crops are not FFHQ-aligned), "ffhq" is the paper's, or 5 [x, y].
    template: str | list[list[float]] = "data"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"{source}: unknown setting(s) {', '.join(unknown)}; valid settings: {', '.join(sorted(known))}"
            )
        if data.get("template", "data") is None:
            data = {**data, "template": "data"}  # null: the default
        config = cls(**data)
        config.validate(source)
        return config

    def validate(self, source: str = "config") -> None:
        """Catch the mistakes that would otherwise surface hours later or as a shape error."""
        self._check_parts(source)
        self._check_counts(source)
        self._check_rates(source)
        if not (self.gan or self.fidelity or self.lambda_perceptual > 0):
            raise ConfigError(
                f"{source}: no loss left to train with; enable gan, fidelity or the perceptual loss"
            )
        if not (
            self.template in ("data", "ffhq")
            or (
                isinstance(self.template, list)
                and len(self.template) == 5
                and all(isinstance(p, list) and len(p) == 2 for p in self.template)
            )
        ):
            raise ConfigError(
                f"{source}: template must be data, ffhq or five [x, y] points, not {self.template!r}"
            )
        if self.role not in (None, "fidelity", "perceptual"):
            raise ConfigError(f"{source}: role must be fidelity, perceptual or null, not {self.role!r}")

    def _check_parts(self, source: str) -> None:
        """The named parts exist: the generator, the task mix, the discriminator and the perceptual backbone."""
        from hifacegan.degradations import parse_task_mix
        from hifacegan.losses import BACKBONES
        from hifacegan.models import generator_spec, list_discriminators

        try:
            generator_spec(self.generator)
            parse_task_mix(self.task)
        except ValueError as error:
            raise ConfigError(f"{source}: {error}") from None
        if self.gan and self.discriminator not in list_discriminators():
            raise ConfigError(
                f"{source}: unknown discriminator {self.discriminator!r}; "
                f"choose one of: {', '.join(list_discriminators())}"
            )
        if self.perceptual not in BACKBONES:
            raise ConfigError(
                f"{source}: perceptual must be one of {', '.join(BACKBONES)}, not {self.perceptual!r}"
            )

    def _check_counts(self, source: str) -> None:
        """Batch size, intervals and limits are positive integers (the optional ones or null); workers 0 or more."""
        positive = {
            "batch_size": self.batch_size,
            "log_every": self.log_every,
            "checkpoint_every": self.checkpoint_every,
            "image_every": self.image_every,
        }
        for key, value in positive.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{source}: {key} must be a positive integer, got {value!r}")
        for key in ("max_steps", "steps", "limit", "size", "threads"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ConfigError(f"{source}: {key} must be a positive integer or null, got {value!r}")
        if self.workers < 0:
            raise ConfigError(f"{source}: workers must be 0 or more, got {self.workers}")

    def _check_rates(self, source: str) -> None:
        """Fractions and probabilities lie in their ranges, and a time budget is positive."""
        from hifacegan.data.datasets import check_small_faces, check_zoom_out

        if not 0.0 <= self.decay_fraction <= 1.0:
            raise ConfigError(f"{source}: decay_fraction must be in [0, 1], got {self.decay_fraction}")
        try:
            check_zoom_out(self.zoom_out_probability, self.zoom_out_min_scale)
            check_small_faces(self.small_face_probability, self.small_face_min_side)
        except ValueError as error:
            raise ConfigError(f"{source}: {error}") from None
        if not 0.0 <= self.clean_probability < 1.0:
            raise ConfigError(f"{source}: clean_probability must be in [0, 1), got {self.clean_probability}")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ConfigError(f"{source}: max_minutes must be positive, got {self.max_minutes}")

    @property
    def image_size(self) -> int:
        from hifacegan.models import generator_kwargs

        if self.size is not None:
            return self.size
        return int(generator_kwargs(self.generator, **self.generator_overrides).get("size", 512))


def list_configs() -> list[str]:
    """Names of the YAML recipes shipped in ``hifacegan/configs``."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def read_yaml(path: Path) -> dict[str, Any]:
    """A training config file's mapping; ConfigError saying what is wrong with a file that is not one."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {path} is not valid YAML: {error}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of settings, not a {type(data).__name__}")
    return data


def load_config_source(spec: str | os.PathLike[str]) -> tuple[dict[str, Any], str]:
    """Settings named by ``--config`` (a file, a shipped recipe, or a generator config) and where they came from."""
    from hifacegan.models import list_generators

    text = os.fspath(spec)
    path = Path(text).expanduser()
    if path.suffix in (".yaml", ".yml") or os.sep in text:
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        return read_yaml(path), str(path)
    shipped = CONFIG_DIR / f"{text}.yaml"
    if shipped.is_file():
        return read_yaml(shipped), f"config {text}"
    if text in list_generators():
        return {"name": text, "generator": text}, f"generator config {text}"
    raise ConfigError(
        f"unknown config {text!r}: not a file, not a shipped recipe ({', '.join(list_configs())}) and not a "
        f"generator config ({', '.join(list_generators())}); pass a YAML file or one of those names"
    )


def parse_assignment(text: str) -> tuple[str, Any]:
    """``key=value`` with the value read as YAML (``lr_g=2e-4``, ``generator_overrides={ngf: 8}``)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set expects key=value, got {text!r}")
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError as error:
        raise ConfigError(f"--set {text!r}: the value is not valid YAML ({error})") from None
    return key.strip(), parsed  # numbers YAML reads as strings ("1e-4") are converted by resolve_config


_FLOAT_KEYS = {f.name for f in dataclasses.fields(TrainConfig) if f.type in ("float", "float | None")}


def resolve_config(base: dict[str, Any], overrides: dict[str, Any], source: str) -> TrainConfig:
    """Base settings, then overrides (``None`` means "not given"), checked."""
    merged = dict(base)
    for key, value in overrides.items():
        if value is not None:
            merged[key] = value
    for key in _FLOAT_KEYS:  # YAML 1.1 reads "1e-4" (no dot) as a string
        if isinstance(merged.get(key), str):
            try:
                merged[key] = float(merged[key])
            except ValueError:
                raise ConfigError(f"{source}: {key} must be a number, got {merged[key]!r}") from None
    return TrainConfig.from_dict(merged, source)


def save_config(config: TrainConfig, path: Path) -> None:
    """Write the resolved config atomically (``config.yaml`` in the run directory)."""
    from hifacegan.train.checkpoint import write_bytes

    text = "# Resolved training config: `hifacegan train --resume` reads it back.\n"
    text += yaml.safe_dump(config.to_dict(), sort_keys=False)
    write_bytes(path, text.encode("utf-8"))
