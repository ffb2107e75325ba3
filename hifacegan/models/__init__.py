"""Networks: the paper's HiFaceGAN generator, the released lipspade/spade variants, the discriminators."""

from hifacegan.models._registry import (
    build_discriminator,
    build_generator,
    generator_kwargs,
    generator_spec,
    list_discriminators,
    list_generators,
)
from hifacegan.models.discriminator import MultiscaleDiscriminator
from hifacegan.models.hifacegan import HiFaceGANGenerator
from hifacegan.models.lipspade import LIPSPADEGenerator
from hifacegan.models.projected import ProjectedDiscriminator
from hifacegan.models.spade import SPADEGenerator

__all__ = [
    "build_generator",
    "build_discriminator",
    "generator_kwargs",
    "generator_spec",
    "list_generators",
    "list_discriminators",
    "HiFaceGANGenerator",
    "LIPSPADEGenerator",
    "SPADEGenerator",
    "MultiscaleDiscriminator",
    "ProjectedDiscriminator",
]
