"""The face-quality network (hifacegan.quality): its data, its training run, and the embedded network's verdicts
on real faces made to look like web photos against the same faces clean."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from hifacegan.data.files import read_rgb8
from hifacegan.quality import FaceQuality, build_quality_net
from hifacegan.quality.data import BOX_ASPECT, QualityBatches, make_face
from hifacegan.quality.network import MAX_SIDE, central
from hifacegan.quality.train import QualityTraining, train_quality
from tests.conftest import require


@pytest.fixture(scope="module")
def london(shared_data: Path) -> list[Path]:
    folder = shared_data / "faces-hires" / "london-1024"
    require(folder.is_dir(), f"{folder} is missing (faces-hires, read from ../shared/data)")
    return sorted(folder.glob("*.jpg"))[:6]


def test_network_takes_faces_of_any_size_and_judges_large_ones_on_their_centre():
    network = build_quality_net("face-quality-4")
    for side in (8, 37, 160):
        assert network(torch.rand(2, 3, side, side + 3)).shape == (2,)
    face = np.zeros((400, 300, 3))
    assert central(face).shape == (MAX_SIDE, MAX_SIDE, 3) and central(face[:50, :60]).shape == (50, 60, 3)
    with pytest.raises(ValueError, match="valid: face-quality-16"):
        build_quality_net("nope")


def test_batches_are_seeded_one_size_each_and_half_degraded(london):
    boxes = {str(p): [300.0, 300.0, 700.0, 760.0] for p in london}
    batches = QualityBatches(boxes, batch_size=16, seed=3, count=4)
    first, again = batches[1], QualityBatches(boxes, batch_size=16, seed=3, start=1, count=1)[0]
    assert torch.equal(first["image"], again["image"]) and torch.equal(first["label"], again["label"])
    height, width = first["image"].shape[2:]
    assert first["image"].shape[0] == 16 and width < height <= MAX_SIDE
    labels = torch.cat([batches[i]["label"] for i in range(4)])
    assert set(labels.tolist()) == {0.0, 1.0} and 0.25 < labels.mean() < 0.75


def test_a_face_is_cut_at_the_size_asked_with_its_look(london):
    portrait = read_rgb8(london[0])[0]
    rng = np.random.default_rng(0)
    looks = set()
    for side in (24, 90, 320):
        for _ in range(6):
            face, label, look = make_face(portrait, (300.0, 300.0, 700.0, 760.0), side, rng)
            assert (
                face.shape == (side, round(side * BOX_ASPECT), 3)
                and face.dtype == np.uint8
                and label in (0, 1)
            )
            looks.add(look)
    assert len(looks) >= 4


def test_a_run_trains_exports_and_resumes(london, tmp_path):
    data = tmp_path / "portraits"
    data.mkdir()
    for path in london[:5]:
        shutil.copy(path, data / path.name)
    settings = QualityTraining(
        sources=[str(data)], config="face-quality-4", batch_size=4, steps=4, eval_every=2, eval_batches=2
    )
    run, cache = tmp_path / "run", tmp_path / "boxes.json"
    scores = train_quality(
        run, settings, max_minutes=None, log=lambda _: None, progress=False, boxes_cache=cache
    )
    assert cache.is_file() and set(scores) == {"auc", "accuracy", "clean_taken", "degraded_found"}
    quality = FaceQuality(run / "face-quality.safetensors")
    assert 0.0 <= quality(np.random.default_rng(0).random((40, 40, 3), dtype=np.float32)) <= 1.0
    assert "face-quality-4" in (run / "face-quality.md").read_text()
    with pytest.raises(FileExistsError, match="--resume"):
        train_quality(run, settings, log=lambda _: None, progress=False, boxes_cache=cache)
    settings.steps = 6
    torch.save({**torch.load(run / "checkpoints" / "last.pt", weights_only=False), "settings": vars(settings)},
               run / "checkpoints" / "last.pt")  # fmt: skip
    train_quality(run, resume=True, log=lambda _: None, progress=False, boxes_cache=cache)
    assert (run / "scalars.csv").read_text().splitlines()[-1].startswith("6,24,")
