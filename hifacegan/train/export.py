"""The run's weights file and its model card: the recipe that made the weights, and the alignment they expect.

:func:`export_weights` writes ``RUN_DIR/NAME.safetensors`` (float16 by default) with a :class:`ModelCard` and its
Markdown copy; :func:`card_template` measures (once per run) or names the alignment template the card records.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from hifacegan.train.checkpoint import write_bytes
from hifacegan.train.config import TrainConfig
from hifacegan.train.step import TrainingStep


def export_weights(
    step_fn: TrainingStep,
    config: TrainConfig,
    run_dir: Path,
    summary: dict[str, Any],
    data: Path,
    init_note: str | None,
) -> Path:
    """Write ``RUN_DIR/NAME.safetensors`` (and its Markdown card) with the recipe that made it."""
    from hifacegan.weights import ModelCard, save_weights

    role = config.role or ("fidelity" if config.fidelity and not config.gan else "perceptual")
    training = {
        "losses": _losses_used(step_fn, config),
        "perceptual_network": summary["perceptual"],
        "data": _data_seen(config, data, summary),
        "steps": summary["step"],
        "batch_size": f"{config.batch_size} x {summary['world_size']} process(es)",
        "optimizer": _optimizer_used(config),
        "trained_minutes": round(summary["trained_seconds"] / 60, 1),
        "stopped_by": summary["stopped_by"],
        "seed": config.seed,
    }
    if init_note:
        training["initialised_from"] = init_note
    size = config.image_size
    template, training["template"] = card_template(config, data, run_dir)
    card = ModelCard(
        name=config.name,
        config=config.generator,
        config_overrides=dict(config.generator_overrides),
        size=size,
        output="symmetric",
        template=template,
        role=role,
        partner=config.partner,
        description=config.description or f"{config.generator} trained with `hifacegan train` ({role}).",
        license=config.license,
        training=training,
    )
    path = run_dir / f"{config.name}.safetensors"
    save_weights(
        path,
        step_fn.generator,
        card,
        dtype=torch.float16 if config.export_fp16 else None,
        write_markdown=True,
    )
    return path


def _losses_used(step_fn: TrainingStep, config: TrainConfig) -> str:
    """The card's losses: each term the generator was trained with, and its weight."""
    losses = []
    if config.fidelity:
        losses.append(f"L1 x{config.lambda_l1:g}")
    if step_fn.perceptual is not None:
        losses.append(f"perceptual x{config.lambda_perceptual:g} ({step_fn.perceptual.backbone})")
    if config.gan:
        losses.append(
            f"LSGAN x{config.lambda_gan:g} + feature matching x{config.lambda_fm:g} ({config.discriminator})"
        )
    return ", ".join(losses)


def _data_seen(config: TrainConfig, data: Path, summary: dict[str, Any]) -> str:
    """The card's data: the folder, the samples seen and how they were degraded and augmented."""
    return (
        f"{data.name}, {summary['samples']} samples seen, degradation task {config.task!r}, "
        f"random flips {config.flip}"
        + (
            f", zoom-out p {config.zoom_out_probability:g} (scale {config.zoom_out_min_scale:g}-1)"
            if config.zoom_out_probability
            else ""
        )
        + (f", undegraded p {config.clean_probability:g}" if config.clean_probability else "")
        + (
            f", degraded as a small face p {config.small_face_probability:g} (from {config.small_face_min_side} px)"
            if config.small_face_probability
            else ""
        )
    )


def _optimizer_used(config: TrainConfig) -> str:
    """The card's optimizer: Adam's betas, the learning rates and their schedule."""
    return (
        f"Adam betas ({config.beta1:g}, {config.beta2:g}), lr G {config.lr_g:g}"
        + (f" / D {config.lr_d:g}, " if config.gan else ", ")
        + (
            f"constant then linear decay over the last {config.decay_fraction:.0%} of {config.steps} steps"
            if config.steps
            else "constant"
        )
    )


def card_template(config: TrainConfig, data: Path, run_dir: Path) -> tuple[list[list[float]], str]:
    """The alignment template for the card, and a note on where it came from.

    ``data``: the median landmarks of the training faces (``hifacegan.face.template``), measured once per run and
    kept in ``RUN_DIR/template.json``. When no face is found there the FFHQ template is used and the note says so.
    """
    from hifacegan.weights import FFHQ_TEMPLATE_512, scale_template

    size = config.image_size
    if isinstance(config.template, list):
        return config.template, "given in the training config"
    ffhq = scale_template(FFHQ_TEMPLATE_512, 512, size)
    if config.template == "ffhq":
        return ffhq, "FFHQ 5-point template (the paper's alignment)"
    cached = run_dir / "template.json"
    if cached.is_file():
        measured = json.loads(cached.read_text())
    else:
        from hifacegan.face.template import estimate_template

        try:
            measured = estimate_template(data, size, limit=200, seed=config.seed).as_dict()
        except (ValueError, RuntimeError, OSError) as error:
            return ffhq, f"FFHQ 5-point template: measuring the training faces failed ({error})"
        write_bytes(cached, (json.dumps(measured, indent=2) + "\n").encode())
    note = (
        f"median RetinaFace landmarks of {measured['faces_used']} training faces "
        f"({measured['faces_missed']} without a detection)"
    )
    return measured["template"], note
