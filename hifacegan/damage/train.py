"""Training the damage detector: budgeted, resumable, and scored on held-out synthetic damage as it goes.

Loss: binary cross-entropy (damaged pixels weighted 3x: they are 1-3% of a crop) plus a soft Dice term, which
keeps thin strokes from being traded away for the easy background. Adam at 2e-3, constant, then linear decay over
the last 30% of ``steps``. A run folder holds ``checkpoints/last.pt`` (network, optimiser, step), ``scalars.csv``
and the exported ``damage-unet.safetensors`` with its card; ``--resume`` continues exactly where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader

from hifacegan.damage.data import DamageSamples
from hifacegan.damage.detector import ROLE, THRESHOLD
from hifacegan.damage.network import DamageUNet, build_detector
from hifacegan.train.checkpoint import write_bytes
from hifacegan.train.small_run import open_run, train_steps
from hifacegan.weights.card import ModelCard
from hifacegan.weights.format import save_weights


@dataclass
class DetectorTraining:
    """Settings of one detector run (stored in its checkpoint, so ``--resume`` needs only the folder)."""

    sources: list[str]
    held_out: list[str]
    config: str = "damage-unet-16"
    size: int = 128
    batch_size: int = 16
    lr: float = 2e-3
    steps: int = 6000
    decay_fraction: float = 0.3
    seed: int = 0
    eval_every: int = 200
    eval_samples: int = 96
    name: str = "damage-unet"
    extra: dict = field(default_factory=dict)


def loss_of(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """BCE with damaged pixels weighted 3x, plus soft Dice over the batch."""
    bce = F.binary_cross_entropy_with_logits(logits, mask, pos_weight=torch.tensor(3.0))
    chance = torch.sigmoid(logits)
    dice = 1 - (2 * (chance * mask).sum() + 1) / (chance.sum() + mask.sum() + 1)
    return bce + dice


def f1_score(predicted: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    """(F1, precision, recall) of boolean masks, pooled over all pixels given."""
    hits = float(np.logical_and(predicted, truth).sum())
    precision = hits / max(float(predicted.sum()), 1.0)
    recall = hits / max(float(truth.sum()), 1.0)
    return 2 * precision * recall / max(precision + recall, 1e-9), precision, recall


@torch.inference_mode()
def evaluate(
    network: torch.nn.Module, samples: DamageSamples, threshold: float = THRESHOLD
) -> dict[str, float]:
    """F1, precision and recall on held-out samples, and the share of pixels marked on crops without damage."""
    network.eval()
    predicted, truth, false_marks = [], [], []
    for batch in DataLoader(samples, batch_size=16):
        marked = (torch.sigmoid(network(batch["image"])) >= threshold).numpy()
        masks = batch["mask"].numpy() > 0.5
        predicted.append(marked)
        truth.append(masks)
        false_marks += [float(m.mean()) for m, t in zip(marked, masks, strict=True) if not t.any()]
    network.train()
    f1, precision, recall = f1_score(np.concatenate(predicted), np.concatenate(truth))
    return {
        "f1": f1,
        "precision": precision,
        "recall": recall,
        "clean_marked": float(np.mean(false_marks or [0.0])),
    }


def _network_and_optimiser(
    settings: DetectorTraining, state: dict
) -> tuple[DamageUNet, torch.optim.Adam, int]:
    """A seeded fresh detector and its Adam, or both as the checkpoint ``state`` left them; the step reached."""
    torch.manual_seed(settings.seed)
    network = build_detector(settings.config)
    optimiser = torch.optim.Adam(network.parameters(), lr=settings.lr)
    step = 0
    if state:
        network.load_state_dict(state["network"])
        optimiser.load_state_dict(state["optimiser"])
        step = int(state["step"])
    return network, optimiser, step


def train_detector(
    run: str | Path,
    settings: DetectorTraining | None = None,
    resume: bool = False,
    max_minutes: float | None = None,
    log: Callable[[str], None] = print,
    progress: bool = True,
) -> dict[str, float]:
    """Train (or continue) a detector in ``run`` until ``settings.steps`` or ``max_minutes``; export its weights."""
    run = Path(run).expanduser()
    settings, state = open_run(run, settings, resume, DetectorTraining, "detector run")
    network, optimiser, step = _network_and_optimiser(settings, state)
    held_out = DamageSamples(
        settings.held_out, settings.size, seed=settings.seed + 1000, count=settings.eval_samples
    )
    samples = DamageSamples(
        settings.sources, settings.size, settings.seed, start=step * settings.batch_size,
        count=max(0, settings.steps - step) * settings.batch_size,
    )  # fmt: skip
    loader = DataLoader(samples, batch_size=settings.batch_size, num_workers=1, persistent_workers=False)
    step, scores = train_steps(
        run, network, optimiser, loader, settings, step,
        loss_of=lambda batch: loss_of(network(batch["image"]), batch["mask"]),
        score=lambda: evaluate(network, held_out),
        names=("f1", "precision", "recall", "clean_marked"),
        max_minutes=max_minutes, log=log, progress=progress,
    )  # fmt: skip
    scores = scores or evaluate(network, held_out)
    export(run, network, settings, step, scores)
    return scores


def export(run: Path, network, settings: DetectorTraining, step: int, scores: dict[str, float]) -> Path:
    """Write ``NAME.safetensors`` (half precision) and its Markdown card into the run folder."""
    card = ModelCard(
        name=settings.name,
        config=settings.config,
        size=settings.size,
        output="unit",
        role=ROLE,
        description="Damage detector: marks scratches, cracks, dust and fibres on old photos, pixel by pixel "
        "(hifacegan.damage). Trained on synthetic damage over clean portraits; grain, hair and blur are negatives.",
        training={
            "sources": settings.sources,
            "samples": step * settings.batch_size,
            "steps": step,
            "batch_size": settings.batch_size,
            "crop": settings.size,
            "loss": "BCE (damaged pixels x3) + soft Dice",
            "optimizer": f"Adam lr {settings.lr}, linear decay over the last {settings.decay_fraction:.0%}",
        },
        metrics={"held_out": {k: round(v, 4) for k, v in scores.items()}, "threshold": THRESHOLD},
    )
    path = run / f"{settings.name}.safetensors"
    card = save_weights(path, network.eval(), card, dtype=torch.float16)
    write_bytes(path.with_suffix(".md"), detector_markdown(card).encode())
    return path


def detector_markdown(card: ModelCard) -> str:
    """The detector's model card in Markdown, written beside its weights (a face network's card says other
    things: an alignment template, an output convention)."""
    lines = [
        "---",
        f"name: {card.name}",
        f"config: {card.config}",
        f"role: {card.role}",
        f"sha256: {card.sha256}",
        "tags: [hifacegan, damage-detection, old-photos]",
        "---",
        "",
        f"# {card.name}",
        "",
        card.description,
        "",
        "## Use",
        f"- Network: `hifacegan.damage.build_detector({card.config!r})`, any RGB image in [0, 1] (trained on "
        f"{card.size} px crops; fully convolutional).",
        f"- Output: one logit per pixel; damage where its sigmoid is at least {card.metrics.get('threshold')}.",
        "- `hifacegan.damage.DamageDetector` loads and runs it; `hifacegan.damage.removal` fills what it marks.",
        "",
        "## Training",
        "",
        *[f"- {k}: {v}" for k, v in card.training.items()],
        "",
        "## Held-out synthetic damage",
        "",
        *[f"- {k}: {v}" for k, v in (card.metrics.get("held_out") or {}).items()],
    ]
    return "\n".join(lines) + "\n"
