"""Training the face-quality network: budgeted, resumable, scored on held-out portraits as it goes.

Binary cross-entropy on faces labelled degraded or clean (hifacegan.quality.data), Adam at 2e-3, constant, then
linear decay over the last 30% of ``steps``. A run folder holds ``checkpoints/last.pt`` (network, optimiser,
step), ``scalars.csv`` and the exported ``face-quality.safetensors`` with its card; ``--resume`` continues exactly
where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader

from hifacegan.quality.data import QualityBatches, face_boxes, split_files
from hifacegan.quality.estimator import CLEAN_CHANCE, DEGRADED_CHANCE, ROLE
from hifacegan.quality.network import QualityNet, build_quality_net
from hifacegan.train.checkpoint import write_bytes
from hifacegan.train.small_run import open_run, train_steps
from hifacegan.weights.card import ModelCard
from hifacegan.weights.format import save_weights

BOXES_CACHE = Path.home() / ".cache" / "renovate-faces" / "quality" / "boxes.json"
SCORES = ("auc", "accuracy", "clean_taken", "degraded_found")


@dataclass
class QualityTraining:
    """Settings of one run (stored in its checkpoint, so ``--resume`` needs only the folder)."""

    sources: list[str]
    config: str = "face-quality-16"
    batch_size: int = 32
    lr: float = 2e-3
    steps: int = 3000
    decay_fraction: float = 0.3
    seed: int = 0
    eval_every: int = 200
    eval_batches: int = 24
    name: str = "face-quality"


def auc(chances: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve: the chance that a degraded face scores above a clean one (ties count half)."""
    positive, negative = chances[labels > 0.5], chances[labels <= 0.5]
    if not len(positive) or not len(negative):
        return float("nan")
    above = (positive[:, None] > negative[None, :]).mean() + 0.5 * (
        positive[:, None] == negative[None, :]
    ).mean()
    return float(above)


@torch.inference_mode()
def evaluate(network: QualityNet, batches: QualityBatches) -> dict[str, float]:
    """AUC, accuracy at 0.5, the share of clean faces the pipeline would take at all (chance over CLEAN_CHANCE)
    and of degraded ones it would take whole (chance at least DEGRADED_CHANCE)."""
    network.eval()
    chances, labels = [], []
    for batch in DataLoader(batches, batch_size=None):
        chances.append(torch.sigmoid(network(batch["image"])).numpy())
        labels.append(batch["label"].numpy())
    network.train()
    chance, label = np.concatenate(chances), np.concatenate(labels)
    return {
        "auc": auc(chance, label),
        "accuracy": float(((chance >= 0.5) == (label > 0.5)).mean()),
        "clean_taken": float((chance[label <= 0.5] > CLEAN_CHANCE).mean()),
        "degraded_found": float((chance[label > 0.5] >= DEGRADED_CHANCE).mean()),
    }


def train_quality(
    run: str | Path,
    settings: QualityTraining | None = None,
    resume: bool = False,
    max_minutes: float | None = None,
    log: Callable[[str], None] = print,
    progress: bool = True,
    boxes_cache: Path = BOXES_CACHE,
    steps: int | None = None,
    sources: list[str] | None = None,
) -> dict[str, float]:
    """Train (or continue) a network in ``run`` until ``settings.steps`` or ``max_minutes``; export its weights.
    ``boxes_cache``: where the portraits' face boxes are kept between runs (they are detected once); ``steps``:
    with ``resume``, a new schedule length (its decay restarts from where it stands); ``sources``: with ``resume``,
    the portrait folders to go on with (a fine-tune on more data)."""
    run = Path(run).expanduser()
    settings, state = open_run(run, settings, resume, QualityTraining, "face-quality run")
    if resume and steps is not None:
        settings.steps = steps
    if resume and sources:
        settings.sources = sources
    network, optimiser, step = _network_and_optimiser(settings, state)
    batches, held_out = _data(settings, step, boxes_cache)
    loader = DataLoader(batches, batch_size=None, num_workers=1, persistent_workers=False)
    step, scores = train_steps(
        run, network, optimiser, loader, settings, step,
        loss_of=lambda batch: F.binary_cross_entropy_with_logits(network(batch["image"]), batch["label"]),
        score=lambda: evaluate(network, held_out),
        names=SCORES,
        max_minutes=max_minutes, log=log, progress=progress,
        on_score=lambda reached, scores: export(run, network, settings, reached, scores),
    )  # fmt: skip
    scores = scores or evaluate(network, held_out)
    export(run, network, settings, step, scores)
    return scores


def _network_and_optimiser(
    settings: QualityTraining, state: dict
) -> tuple[QualityNet, torch.optim.Adam, int]:
    """A seeded fresh network and its Adam, or both as the checkpoint ``state`` left them; the step reached."""
    torch.manual_seed(settings.seed)
    network = build_quality_net(settings.config)
    optimiser = torch.optim.Adam(network.parameters(), lr=settings.lr)
    if state:
        network.load_state_dict(state["network"])
        optimiser.load_state_dict(state["optimiser"])
    return network, optimiser, int(state.get("step", 0))


def _data(settings: QualityTraining, step: int, boxes_cache: Path) -> tuple[QualityBatches, QualityBatches]:
    """The training batches left from ``step`` and the held-out ones (every fifth portrait)."""
    training_files, held_out_files = split_files(settings.sources)
    boxes = face_boxes(training_files + held_out_files, boxes_cache)

    def pick(files: list[Path]) -> dict[str, list[float]]:
        return {str(f): boxes[str(f)] for f in files if str(f) in boxes}

    batches = QualityBatches(
        pick(training_files),
        settings.batch_size,
        settings.seed,
        start=step,
        count=max(0, settings.steps - step),
    )
    held_out = QualityBatches(
        pick(held_out_files), settings.batch_size, settings.seed + 1000, count=settings.eval_batches
    )
    return batches, held_out


def export(run: Path, network, settings: QualityTraining, step: int, scores: dict[str, float]) -> Path:
    """Write ``NAME.safetensors`` (half precision) and its Markdown card into the run folder."""
    card = ModelCard(
        name=settings.name,
        config=settings.config,
        size=0,
        output="unit",
        role=ROLE,
        description="Face quality: the chance that a face's pixels were blurred, resampled or JPEG-compressed "
        "(hifacegan.quality). Decides, with the hand-made measures, which small faces are renovated.",
        training={
            "sources": settings.sources,
            "samples": step * settings.batch_size,
            "steps": step,
            "batch_size": settings.batch_size,
            "loss": "binary cross-entropy, degraded (web, full, jpeg, sr4x8x, deblur) against clean looks",
            "optimizer": f"Adam lr {settings.lr}, linear decay over the last {settings.decay_fraction:.0%}",
        },
        metrics={"held_out": {k: round(v, 4) for k, v in scores.items()}},
    )
    path = run / f"{settings.name}.safetensors"
    card = save_weights(path, network.eval(), card, dtype=torch.float16)
    network.train()
    lines = [
        "---", f"name: {card.name}", f"config: {card.config}", f"role: {card.role}", f"sha256: {card.sha256}",
        "tags: [hifacegan, face-quality]", "---", "", f"# {card.name}", "", card.description, "", "## Use", "",
        f"- Network: `hifacegan.quality.build_quality_net({card.config!r})`; `hifacegan.quality.FaceQuality` runs it "
        "on a face's detection box in the photo's own pixels.",
        "", "## Training", "", *[f"- {k}: {v}" for k, v in card.training.items()],
        "", "## Held-out portraits (every fifth of the sources)", "",
        *[f"- {k}: {v}" for k, v in (card.metrics.get("held_out") or {}).items()],
    ]  # fmt: skip
    write_bytes(path.with_suffix(".md"), ("\n".join(lines) + "\n").encode())
    return path
