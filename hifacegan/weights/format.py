"""The weights file format: one ``.safetensors`` file whose metadata holds the model card as JSON.

safetensors is the field's standard: no pickle (loading cannot run code), memory-mappable, readable from any
language. The card's ``sha256`` digests the tensors themselves (names, dtypes, shapes, bytes), so it is stable
across re-saves and verifiable from inside the file.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save
from torch import nn

from hifacegan._files import write_bytes_atomic
from hifacegan.weights.card import CARD_METADATA_KEY, ModelCard


class WeightsError(ValueError):
    """A weights file that is missing, corrupt, or does not fit its network; the message says what to do."""


def tensor_sha256(state_dict: dict[str, torch.Tensor]) -> str:
    """Digest of a state_dict's names, dtypes, shapes and bytes, independent of file layout and key order."""
    h = hashlib.sha256()
    for key in sorted(state_dict):
        t = state_dict[key].detach().cpu().contiguous()
        h.update(key.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def save_weights(
    path: str | os.PathLike,
    generator_or_state: nn.Module | dict[str, torch.Tensor],
    card: ModelCard,
    dtype: torch.dtype | None = None,
    write_markdown: bool = False,
) -> ModelCard:
    """Write weights and card atomically; returns the card with its ``sha256`` filled in.

    ``dtype=torch.float16`` halves the file (floating tensors only); loading converts back to float32 on CPU.
    """
    state = (
        generator_or_state.state_dict() if isinstance(generator_or_state, nn.Module) else generator_or_state
    )
    tensors = {}
    for key, t in state.items():
        t = t.detach().cpu()
        if dtype is not None and t.is_floating_point():
            t = t.to(dtype)
        tensors[key] = t.contiguous()
    card.sha256 = tensor_sha256(tensors)
    path = Path(path)
    write_bytes_atomic(path, save(tensors, metadata={CARD_METADATA_KEY: card.to_json()}))
    if write_markdown:
        md = path.with_suffix(".md")
        write_bytes_atomic(md, card.to_markdown().encode("utf-8"))
    return card


def read_card(path: str | os.PathLike) -> ModelCard:
    """Read only the card (cheap: no tensor is loaded)."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except FileNotFoundError:
        raise WeightsError(f"weights file {path} does not exist") from None
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise WeightsError(f"{path} is not a readable safetensors weights file ({exc})") from None
    if CARD_METADATA_KEY not in meta:
        raise WeightsError(
            f"{path} has no HiFaceGAN model card; convert released .pth checkpoints with "
            "`hifacegan weights import PATH --config CONFIG --name NAME`"
        )
    try:
        return ModelCard.from_json(meta[CARD_METADATA_KEY])
    except (ValueError, TypeError) as exc:
        raise WeightsError(f"{path} has an invalid model card: {exc}") from None


def read_weights(path: str | os.PathLike, verify: bool = True) -> tuple[dict[str, torch.Tensor], ModelCard]:
    """Load tensors and card; with ``verify``, fail if the tensors do not match the card's sha256."""
    card = read_card(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not iterable)
    except Exception as exc:
        raise WeightsError(f"{path} is corrupt ({exc}); download or export it again") from None
    if verify and card.sha256 and tensor_sha256(state) != card.sha256:
        raise WeightsError(
            f"{path} is corrupt: its tensors do not match the sha256 in its model card; "
            "download or export it again (`hifacegan weights verify` checks every weights file)"
        )
    return state, card
