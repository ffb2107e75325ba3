"""Named generator and discriminator configurations, in the spirit of timm's model registry.

A config name fixes the architecture and its hyperparameters; weights names (``hifacegan-lite-fidelity``) are a
separate namespace handled by :mod:`hifacegan.weights`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from hifacegan.models.discriminator import MultiscaleDiscriminator
from hifacegan.models.hifacegan import HiFaceGANGenerator
from hifacegan.models.lipspade import LIPSPADEGenerator
from hifacegan.models.projected import ProjectedDiscriminator
from hifacegan.models.spade import SPADEGenerator

_ARCHS: dict[str, Callable[..., nn.Module]] = {
    "hifacegan": HiFaceGANGenerator,
    "lipspade": LIPSPADEGenerator,
    "spade": SPADEGenerator,
}


@dataclass(frozen=True)
class GeneratorSpec:
    name: str
    arch: str
    kwargs: dict = field(default_factory=dict)
    description: str = ""


_GENERATORS: dict[str, GeneratorSpec] = {}


def register_generator(name: str, arch: str, description: str, **kwargs) -> None:
    if name in _GENERATORS:
        raise ValueError(f"generator config {name!r} is already registered")
    _GENERATORS[name] = GeneratorSpec(name, arch, kwargs, description)


register_generator(
    "hifacegan-512",
    "hifacegan",
    "the paper's nested CSR generator (ngf 64, the release's default config)",
    ngf=64,
    size=512,
)
register_generator(
    "hifacegan-512-ngf48",
    "hifacegan",
    "the paper's generator at the released width (ngf 48)",
    ngf=48,
    size=512,
)
register_generator(
    "lipspade-512", "lipspade", "the network of every released checkpoint (ngf 48)", ngf=48, size=512
)
register_generator(
    "spade-512", "spade", "plain SPADE as in the release's spade option (ngf 48)", ngf=48, size=512
)
# Lite configs for CPU users, chosen with benchmarks/bench_generator.py (see docs/benchmarks.md): the paper's
# architecture at ngf 16, its width capped at 8 ngf (128 channels). Compute sits in the high-resolution SPADE
# blocks, parameters in the low-resolution ones: the cap keeps 86% of the MACs and halves the parameters (14.3 M
# -> 6.7 M), so the weights embed in the package (13 MB in half precision) and checkpoints stay small.
register_generator(
    "hifacegan-lite-128",
    "hifacegan",
    "CPU-friendly paper generator for 128 px faces (ngf 16, width capped at 128)",
    ngf=16,
    size=128,
    legacy_keys=False,
    max_mult=8,
)
register_generator(
    "hifacegan-lite-256",
    "hifacegan",
    "CPU-friendly paper generator for 256 px faces (ngf 16, width capped at 128)",
    ngf=16,
    size=256,
    legacy_keys=False,
    max_mult=8,
)
# The residual variant: the same network plus a skip from the input to the output (see HiFaceGANGenerator), which a
# CPU training budget needs to keep the input's colours (the embedded weights of training sessions 2 and 3).
register_generator(
    "hifacegan-lite-128-residual",
    "hifacegan",
    "hifacegan-lite-128 plus an input-to-output skip (predicts the correction)",
    ngf=16,
    size=128,
    legacy_keys=False,
    max_mult=8,
    residual=True,
)
# The embedded default weights (since the fourth training session) add a mild non-local-means prefilter in
# front of the residual network (hifacegan.models.prefilter says why): the same tensors, so weights of the
# residual config start it.
register_generator(
    "hifacegan-lite-128-nlm",
    "hifacegan",
    "hifacegan-lite-128-residual behind a mild noise-adaptive non-local-means prefilter (the embedded default)",
    ngf=16,
    size=128,
    legacy_keys=False,
    max_mult=8,
    residual=True,
    prefilter="nlm",
)
# The same network for faces with real detail above 128 px: the 128 px weights' tensors start it, since the
# generator is fully convolutional with a fixed five-stage pyramid (input to 1/32), so every tensor has the same
# shape at both sizes; only what the layers see per face pixel changes.
register_generator(
    "hifacegan-lite-256-nlm",
    "hifacegan",
    "hifacegan-lite-128-nlm's network for 256 px faces (starts from the 128 px weights)",
    ngf=16,
    size=256,
    legacy_keys=False,
    max_mult=8,
    residual=True,
    prefilter="nlm",
)


def list_generators() -> list[str]:
    """Registered generator config names, sorted."""
    return sorted(_GENERATORS)


def generator_spec(name: str) -> GeneratorSpec:
    try:
        return _GENERATORS[name]
    except KeyError:
        raise ValueError(
            f"unknown generator config {name!r}; choose one of: {', '.join(list_generators())}"
        ) from None


def generator_kwargs(name: str, **overrides) -> dict:
    """The constructor arguments ``build_generator(name, **overrides)`` uses, ``arch`` included, without building.

    ``None`` overrides are ignored. Callers that only need to know what a config is (its size, whether it is
    residual) ask here rather than repeat the merge.
    """
    spec = generator_spec(name)
    return {"arch": spec.arch, **spec.kwargs, **{k: v for k, v in overrides.items() if v is not None}}


def build_generator(name: str | None = None, *, arch: str | None = None, **overrides) -> nn.Module:
    """Build a generator by config name, with keyword overrides (``None`` values are ignored).

    ``build_generator(**generator.config)`` rebuilds a generator from its recorded config (the ``arch`` key).
    """
    if name is not None:
        kwargs = generator_kwargs(name, **overrides)
        arch = kwargs.pop("arch")
    elif arch is not None:
        kwargs = {k: v for k, v in overrides.items() if v is not None}
    else:
        raise ValueError("build_generator needs a config name (see list_generators()) or arch=...")
    if arch not in _ARCHS:
        raise ValueError(
            f"unknown generator architecture {arch!r}; choose one of: {', '.join(sorted(_ARCHS))}"
        )
    model = _ARCHS[arch](**kwargs)
    model.config_name = name
    return model


_DISCRIMINATORS: dict[str, tuple[Callable[..., nn.Module], dict]] = {
    "multiscale": (MultiscaleDiscriminator, {"ndf": 64, "n_layers": 4, "num_D": 2}),
    # Half the width: ~4x fewer MACs, for CPU training (model cards say when it was used).
    "multiscale-lite": (MultiscaleDiscriminator, {"ndf": 32, "n_layers": 4, "num_D": 2}),
    # Heads on frozen MobileNetV2 features beside multiscale-lite: texture within CPU hours (issue #20).
    "projected-mobilenet": (ProjectedDiscriminator, {"ndf": 64, "projection": 64, "patch_ndf": 32}),
}


def list_discriminators() -> list[str]:
    return sorted(_DISCRIMINATORS)


def build_discriminator(name: str = "multiscale", **overrides) -> nn.Module:
    """A discriminator by name: ``multiscale`` is the paper's conditional PatchGAN."""
    if name not in _DISCRIMINATORS:
        raise ValueError(f"unknown discriminator {name!r}; choose one of: {', '.join(list_discriminators())}")
    cls, defaults = _DISCRIMINATORS[name]
    kwargs = {**defaults, **{k: v for k, v in overrides.items() if v is not None}}
    return cls(**kwargs)
