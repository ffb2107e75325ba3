"""Atomic training checkpoints: networks, optimisers, step, data position and RNG states in one file.

Everything is stored as tensors and plain Python values so loading uses ``torch.load(weights_only=True)``: a
checkpoint cannot run code. The run's config is not pickled into it (it lives beside it as ``config.yaml``).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hifacegan._files import atomic_output, write_bytes_atomic

FORMAT = 1
LAST = "last.pt"


def rng_state() -> dict[str, Any]:
    """The global RNG states (torch, CUDA, NumPy, Python). Data randomness is explicit; these cover the rest."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(
        ("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def write_bytes(path: Path, data: bytes) -> None:
    """Run files (logs, configs, grids) are fsynced like checkpoints: a crash never leaves half of one."""
    write_bytes_atomic(path, data, fsync=True)


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Atomically write a checkpoint: a crash or a full disk never leaves half of one in place of the last."""
    with atomic_output(path, fsync=True) as stream:
        torch.save({"format": FORMAT, **payload}, stream)


def load_checkpoint(path: Path, holds: str = "generator") -> dict[str, Any]:
    """A checkpoint written by :func:`save_checkpoint` that ``holds`` this network's state (ValueError if not)."""
    if not path.is_file():
        raise FileNotFoundError(
            f"no checkpoint at {path}; start a new run without --resume, or point --out at an earlier run"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for a corrupt or foreign file
        raise ValueError(f"{path} is not a readable training checkpoint ({error})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT or holds not in payload:
        raise ValueError(f"{path} is not a hifacegan training checkpoint of a {holds} (format {FORMAT})")
    return payload


def adapt_init_state(
    state: dict[str, torch.Tensor], source: dict[str, Any], target: dict[str, Any], spec: str
) -> tuple[dict[str, torch.Tensor], str]:
    """Make ``--init-from`` weights fit a generator that differs only in its input-to-output skip.

    Both kinds have the same tensors, so nothing else would notice the difference. A plain network's last
    convolution predicts the image; a residual one's predicts a correction: starting a residual generator from
    plain weights keeps every feature but zeroes that convolution, so training starts at the identity. The
    other way round has nothing sensible to start from and is refused. Returns the state and a note ("" when
    nothing changed).
    """
    was, becomes = bool(source.get("residual", False)), bool(target.get("residual", False))
    if was == becomes:
        return state, ""
    if was:
        raise ValueError(
            f"{spec} is a residual generator (it predicts a correction added to the input); it cannot start a "
            "plain one. Train a residual config (e.g. hifacegan-lite-128-residual), or start from plain weights"
        )
    state = dict(state)
    for key in ("to_rgbs.3.weight", "to_rgbs.3.bias"):
        state[key] = torch.zeros_like(state[key])
    return state, "plain network: its last convolution reset to zero for the residual generator"


def generator_state_from(spec: str) -> tuple[dict[str, torch.Tensor], str, dict[str, Any]]:
    """Generator tensors for ``--init-from``: a weights file or name (``.safetensors``), or a training checkpoint.

    Returns the state, a description for logs and the model card, and the source's generator config (the
    constructor arguments; checkpoints from before it was recorded were all plain, non-residual networks).
    Weights in the release's "unit" output convention cannot be fine-tuned here (training uses the
    "symmetric" convention) and are refused.
    """
    path = Path(spec).expanduser()
    if path.is_dir():
        path = path / "checkpoints" / LAST
    if path.suffix in (".pt", ".pth", ".ckpt") and path.is_file():
        payload = load_checkpoint(path)
        note = f"checkpoint {path} (step {payload.get('step', '?')})"
        return payload["generator"], note, dict(payload.get("generator_config") or {})
    from hifacegan.weights import read_weights, resolve

    entry = resolve(spec)
    state, card = read_weights(entry.path)
    if card.output != "symmetric":
        raise ValueError(
            f"{entry.path} uses the {card.output!r} output convention (released checkpoints); training here uses "
            "'symmetric' outputs, so fine-tune from weights this project trained"
        )
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    from hifacegan.models import generator_kwargs

    config = generator_kwargs(card.config, **card.config_overrides)
    return state, f"weights {card.name} ({entry.path.name}, sha256 {card.sha256[:12]})", config
