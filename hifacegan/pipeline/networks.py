"""The networks a Renovator runs: one weights (with its fidelity partner) per face size, and which suits a face.

Weights are trained at one size (the card's), on faces aligned to one template. A family of weights trained on
the same alignment at several sizes (``hifacegan-lite-fidelity`` at 128 px, weights trained with
``hifacegan-lite-256-fidelity`` at 256 px) lets each face go to the network that sees it at its own resolution:
a 150 px face to the 128 px network, a 600 px face to the 256 px one. :func:`size_variants` finds the family
among the installed weights; :func:`suited` picks one for a face.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hifacegan.pipeline.fidelity import FidelityBlender
from hifacegan.weights import ModelCard, WeightsEntry

log = logging.getLogger(__name__)

#: Two templates are one alignment when, scaled to the same size, no point differs by more than this (px at 128).
TEMPLATE_TOLERANCE = 1.0


class WeightsUnavailable(RuntimeError):
    """The requested weights cannot be loaded; the message says how to get them."""


@dataclass
class FaceNetwork:
    """One weights ready to run: its card, the blender of its slider ends, and what the slider does."""

    card: ModelCard
    blender: FidelityBlender
    partner_name: str | None
    single_end: float  # the slider's value when there is no partner: 1 for fidelity weights, 0 for perceptual
    redone: int = 0  # batches whose half-precision output held NaN or Inf and were run again in float32

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def size(self) -> int:
        return int(self.card.size)

    @property
    def template(self) -> np.ndarray:
        return np.asarray(self.card.template, dtype=np.float64)

    def run(self, crops: list[np.ndarray], fidelity: float, device: torch.device, dtype: torch.dtype) -> list:
        """Renovate a batch of aligned crops (float RGB in [0, 1] at :attr:`size`); float RGB back."""
        batch = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).to(device)
        with torch.inference_mode():
            raw = self.blender.network(fidelity, dtype)(batch.to(dtype)).float()
            if dtype != torch.float32 and not bool(torch.isfinite(raw).all()):
                # Half precision overflowed (black or blank faces elsewhere): this batch again in float32.
                log.warning(
                    "%s: NaN or Inf in %s output; batch of %d redone in float32", self.name, dtype, len(crops)
                )
                self.redone += 1
                raw = self.blender.network(fidelity, torch.float32)(batch.float())
            images = self.card.to_image(raw)
        return list(images.permute(0, 2, 3, 1).cpu().numpy().astype(np.float32))


def load_face_network(weights: str | Path, device: torch.device, dtype: torch.dtype) -> FaceNetwork:
    """Load ``weights`` and, when its card names an installed partner built the same way, the slider's other end."""
    from hifacegan.weights import WeightsError, load_weights, partner_of

    try:
        loaded = load_weights(weights, device="cpu")
    except WeightsError as exc:
        raise WeightsUnavailable(
            f"cannot load weights {str(weights)!r}: {exc} (`hifacegan weights list` shows the installed weights)"
        ) from exc
    partner = None
    entry = partner_of(loaded.card)
    if entry is not None:
        try:
            partner = load_weights(entry.path, device="cpu")
        except WeightsError as exc:
            log.warning("fidelity partner %s unusable (%s): the fidelity slider is off", entry.name, exc)
    if partner is not None and partner.generator.config != loaded.generator.config:
        # Same tensors do not make the same network (a residual and a plain generator share every key):
        # blending them would run one network with a mix of two kinds of weights.
        log.warning(
            "fidelity partner %s is a different network (%s, not %s): the fidelity slider is off",
            partner.card.name,
            partner.generator.config,
            loaded.generator.config,
        )
        partner = None
    is_fidelity_end = loaded.card.role == "fidelity"
    if partner is None:
        perceptual, fidelity = loaded.generator, None  # one network whatever the slider says
    elif is_fidelity_end:
        perceptual, fidelity = partner.generator, loaded.generator
    else:
        perceptual, fidelity = loaded.generator, partner.generator
    return FaceNetwork(
        card=loaded.card,
        blender=FidelityBlender(perceptual, fidelity, device, dtype),
        partner_name=partner.card.name if partner is not None else None,
        single_end=1.0 if is_fidelity_end else 0.0,
    )


def same_alignment(a: ModelCard, b: ModelCard) -> bool:
    """True when the two cards' templates are one alignment at different sizes."""
    scaled = np.asarray(b.template, dtype=np.float64) * (a.size / b.size)
    tolerance = TEMPLATE_TOLERANCE * a.size / 128.0
    return bool(np.abs(scaled - np.asarray(a.template, dtype=np.float64)).max() <= tolerance)


def size_variants(card: ModelCard) -> list[WeightsEntry]:
    """Installed weights of ``card``'s family at other sizes: the same role and the same alignment."""
    from hifacegan.weights import WeightsError, list_weights, read_card

    found: dict[int, WeightsEntry] = {}
    for entry in list_weights():
        try:
            other = read_card(entry.path)
        except WeightsError:
            continue
        if other.size != card.size and other.role == card.role and same_alignment(card, other):
            found.setdefault(int(other.size), entry)
    return [found[size] for size in sorted(found)]


#: How far a larger rung reaches down: it renovates faces whose crop with context is at least its size over this.
#: Measured with hifacegan-lite-256-fidelity (3,268 samples) against the embedded 128 px weights, through the
#: whole pipeline on the 101 ffhq-1024 faces with the web task (docs/benchmarks.md, "The 256 px rung"): on crops of
#: 157-250 px (long sides 192 and 256) the 256 px rung gained 0.11 and 0.09 dB where the 128 px one lost 0.48 and
#: 1.04; on crops of 100-130 px (long side 128) the 128 px one did better (+0.49 against +0.20). 1.65: from 155 px.
RUNG_REACH = 1.65


def suited(networks: list[FaceNetwork], face_size: float) -> FaceNetwork:
    """The network for a face of ``face_size`` photo pixels (its tight crop): the largest within reach of it.

    ``networks`` is sorted by size; a network is within reach while its size is at most :data:`RUNG_REACH` times
    the face's crop with its context (hifacegan.face.detail.context_span), and faces smaller than every network go
    to the smallest. A network larger than the crop sees the face enlarged, which is what the larger rungs were
    trained on (the web task resamples faces 1.5-4x), and it does better there than the smaller rung's band merge
    (docs/benchmarks.md, "The 256 px rung").
    """
    from hifacegan.face import detail

    span = detail.context_span(face_size)
    fitting = [n for n in networks if n.size <= span * RUNG_REACH]
    return fitting[-1] if fitting else networks[0]
