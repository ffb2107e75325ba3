"""Training losses of the paper's recipe: LSGAN, feature matching, perceptual, and L1 for the fidelity variant.

>>> from hifacegan.losses import lsgan_generator_loss, feature_matching_loss, PerceptualLoss, l1_loss
"""

from hifacegan.losses.gan import (
    feature_matching_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    split_batch,
)
from hifacegan.losses.perceptual import (
    BACKBONES,
    LAYER_WEIGHTS,
    PerceptualLoss,
    PerceptualWeightsUnavailable,
    find_mobilenet_v2_weights,
    find_vgg19_weights,
)
from hifacegan.losses.pixel import l1_loss

__all__ = [
    "BACKBONES",
    "LAYER_WEIGHTS",
    "PerceptualLoss",
    "PerceptualWeightsUnavailable",
    "feature_matching_loss",
    "find_mobilenet_v2_weights",
    "find_vgg19_weights",
    "l1_loss",
    "lsgan_discriminator_loss",
    "lsgan_generator_loss",
    "split_batch",
]
