"""Weights: the file format (safetensors + model card), the store, loading, import of released checkpoints."""

from hifacegan._files import sha256_file
from hifacegan.weights.card import FFHQ_TEMPLATE_512, OUTPUT_CONVENTIONS, ModelCard, scale_template
from hifacegan.weights.format import (
    WeightsError,
    read_card,
    read_weights,
    save_weights,
    tensor_sha256,
)
from hifacegan.weights.loading import LoadedWeights, build_from_card, check_state_dict, load_weights
from hifacegan.weights.store import (
    DEFAULT_WEIGHTS,
    WeightsEntry,
    card_of,
    list_weights,
    partner_of,
    resolve,
    user_weights_dir,
)

__all__ = [
    "FFHQ_TEMPLATE_512",
    "OUTPUT_CONVENTIONS",
    "ModelCard",
    "scale_template",
    "WeightsError",
    "sha256_file",
    "read_card",
    "read_weights",
    "save_weights",
    "tensor_sha256",
    "LoadedWeights",
    "build_from_card",
    "check_state_dict",
    "load_weights",
    "DEFAULT_WEIGHTS",
    "WeightsEntry",
    "card_of",
    "list_weights",
    "partner_of",
    "resolve",
    "user_weights_dir",
]
