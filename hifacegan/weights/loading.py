"""Weights file -> ready generator, with every key and shape checked against the network it claims to be."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn

from hifacegan.models import build_generator
from hifacegan.weights.card import ModelCard
from hifacegan.weights.format import WeightsError, read_weights
from hifacegan.weights.store import resolve


def check_state_dict(model: nn.Module, state: dict[str, torch.Tensor], source: str, config: str) -> None:
    """Raise a WeightsError naming the first missing, unexpected or mis-shaped key (not torch's wall of text)."""
    expected = model.state_dict()
    for key, tensor in expected.items():
        if key not in state:
            raise WeightsError(
                f"{source} does not fit config {config!r}: key {key!r} is missing "
                f"({len(state)} keys in the file, {len(expected)} expected). Is it a checkpoint of another network?"
            )
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise WeightsError(
                f"{source} does not fit config {config!r}: {key!r} has shape {tuple(state[key].shape)}, "
                f"expected {tuple(tensor.shape)}. Choose the matching --config (see `hifacegan weights import --help`)"
            )
    for key in state:
        if key not in expected:
            raise WeightsError(f"{source} does not fit config {config!r}: unexpected key {key!r}")


@dataclass
class LoadedWeights:
    generator: nn.Module
    card: ModelCard


def build_from_card(card: ModelCard) -> nn.Module:
    return build_generator(card.config, **card.config_overrides)


def load_weights(
    spec: str | os.PathLike, device: str | torch.device = "cpu", verify: bool = True
) -> LoadedWeights:
    """Resolve ``spec`` (path, user name, embedded default), verify it and return the generator in eval mode.

    Tensors are loaded in float32 whatever the file stores; move or cast the generator for half precision.
    """
    entry = resolve(spec)
    state, card = read_weights(entry.path, verify=verify)
    generator = build_from_card(card)
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    check_state_dict(generator, state, str(entry.path), card.config)
    generator.load_state_dict(state, strict=True)
    generator.eval().requires_grad_(False)
    return LoadedWeights(generator.to(device), card)
