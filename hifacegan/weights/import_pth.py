"""Convert a released HiFaceGAN ``.pth`` (a bare state_dict) into our weights format.

The release saved ``torch.save(net.state_dict())``; community re-uploads sometimes wrap it (``state_dict``,
``params_ema``, ``netG``) or carry DataParallel's ``module.`` prefix. We unwrap those, refuse anything but tensors
(``weights_only=True``: a .pth can otherwise run code), and check every key and shape before writing.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from hifacegan.models import build_generator, generator_spec
from hifacegan.weights.card import FFHQ_TEMPLATE_512, ModelCard, scale_template
from hifacegan.weights.format import WeightsError, save_weights
from hifacegan.weights.loading import check_state_dict
from hifacegan.weights.store import SUFFIX, user_weights_dir

_WRAPPERS = ("params_ema", "state_dict", "netG", "model", "params")
_PREFIXES = ("module.", "netG.")


def load_released_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(
            f"{path} could not be read as a PyTorch checkpoint of tensors ({type(exc).__name__}: {exc})"
        ) from None
    for _ in range(3):
        if isinstance(obj, dict) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
            inner = next((obj[k] for k in _WRAPPERS if k in obj and isinstance(obj[k], dict)), None)
            if inner is None:
                break
            obj = inner
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path} does not hold a state_dict (a mapping of names to tensors)")
    state = {}
    for key, value in obj.items():
        for prefix in _PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix) :]
        state[key] = value
    return state


def import_released(
    path: str | os.PathLike,
    config: str,
    name: str,
    out_dir: str | os.PathLike | None = None,
    output: str = "unit",
    overwrite: bool = False,
) -> Path:
    """Validate and convert; returns the written file. Released weights use the ``unit`` output convention."""
    spec = generator_spec(config)  # clear error for an unknown config
    if not name or any(c in name for c in "/\\") or name.startswith("."):
        raise WeightsError(f"invalid weights name {name!r}: use letters, digits, '-', '_' and '.'")
    state = load_released_state_dict(path)
    generator = build_generator(config)
    check_state_dict(generator, state, str(path), config)
    generator.load_state_dict(state, strict=True)  # also proves the state loads
    size = spec.kwargs.get("size", 512)
    card = ModelCard(
        name=name,
        config=config,
        size=size,
        output=output,
        template=scale_template(FFHQ_TEMPLATE_512, 512, size),
        description=f"Imported from {Path(path).name} (released HiFaceGAN checkpoint, research use only).",
        license="research only (HiFaceGAN release terms)",
        training={"source": str(Path(path).name)},
    )
    target = Path(out_dir) if out_dir is not None else user_weights_dir()
    dest = target / f"{name}{SUFFIX}"
    if dest.exists() and not overwrite:
        raise WeightsError(f"{dest} already exists; pass --overwrite to replace it")
    save_weights(dest, state, card)
    return dest
