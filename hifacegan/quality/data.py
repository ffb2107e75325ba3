"""Training faces for the face-quality network: clean portraits shown at a random face size, half made to look
like web, phone or scanned photos (degraded: 1), half left clean or given what sharp photos also have (0).

Each face is cut as the pipeline measures it: its detection box, in the photo's own pixels, after the whole framed portrait was shrunk so that the face is 24-320
px and degraded at that size (as ``hifacegan eval --pipeline --size`` does). Degraded looks: ``web`` most often,
the paper's ``full``, ``jpeg``, ``sr4x8x`` and ``deblur``. Clean looks: untouched, a high-quality JPEG (80-97), resampled up to 1.35x and saved so,
film grain (sigma 3-12) or mild sensor noise: a sharp photo's texture, which the network must not read as damage
(old photos' grainy faces are the noise measure's job, hifacegan.face.detail). Half of either is given an old
print's look (monochrome, sepia, hard contrast). One item is a batch of faces of one size, and batch ``i`` depends
only on ``(seed, i)``: a run that resumes sees the data one that never stopped would have.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from hifacegan._files import write_bytes_atomic
from hifacegan.damage.data import film_grain, old_print_look
from hifacegan.data.files import list_images, read_rgb8
from hifacegan.degradations import degrade
from hifacegan.quality.estimator import FACE_SIDES  # face sizes drawn, log-uniform
from hifacegan.quality.network import central

DEGRADED_LOOKS = (("web", 0.55), ("full", 0.15), ("jpeg", 0.15), ("sr4x8x", 0.1), ("deblur", 0.05))
CLEAN_LOOKS = (("clean", 0.3), ("fine-jpeg", 0.2), ("soft", 0.25), ("grain", 0.1), ("sensor", 0.15))
# A sharp photo as it reaches a retoucher: resampled by up to this factor, saved as a fine JPEG (the "soft" clean
# look). Without it the network took everything less crisp than the London and 3DSK studio portraits for degraded:
# a fifth of the clean ffhq faces at long sides 64-256 and Blake Lively's sharp 253 px face. The web task starts at
# 1.5x.
SOFT_FACTOR = (1.0, 1.35)
FRAME = 1.3  # the portrait around a face: this many face sides each side of its centre (a head-and-shoulders shot)
# The detector's boxes are 0.70-0.79 as wide as tall (5th-95th percentile over the training portraits); a face is
# cut at this shape, as the pipeline cuts its box (a square took in hair and background beside the face, and the
# network's chance for clean faces cut as boxes came out 0.2-0.5 higher than for the same faces cut square).
BOX_ASPECT = 0.74
PRINT_LOOK_PROBABILITY = 0.5
# A face is drawn from a portrait whose face is at least SHRINK times the size asked, or SHARP_BOX px (the 1024 px
# studio portraits): web photos' faces (UTKFace's 200 px crops) are crisp only shrunk, and are used only so.
SHRINK = 2.0
SHARP_BOX = 380


def _pick(looks: tuple[tuple[str, float], ...], rng: np.random.Generator) -> str:
    names, chances = zip(*looks, strict=True)
    return names[int(rng.choice(len(names), p=np.asarray(chances) / sum(chances)))]


def apply_look(frame: np.ndarray, look: str, rng: np.random.Generator) -> np.ndarray:
    """``frame`` (uint8 RGB) given ``look`` (one of DEGRADED_LOOKS' or CLEAN_LOOKS' names)."""
    if look == "clean":
        return frame
    if look == "fine-jpeg":
        quality = int(rng.integers(80, 98))
        ok, data = cv2.imencode(".jpg", frame[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
        return cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1].copy()
    if look == "soft":
        height, width = frame.shape[:2]
        factor = float(rng.uniform(*SOFT_FACTOR))
        small = cv2.resize(
            frame,
            (max(1, round(width / factor)), max(1, round(height / factor))),
            interpolation=cv2.INTER_AREA,
        )
        frame = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
        return apply_look(frame, "fine-jpeg", rng)
    if look == "grain":
        return film_grain(frame, rng)
    if look == "sensor":
        noise = rng.standard_normal(frame.shape, dtype=np.float32) * float(rng.uniform(1.0, 2.5))
        return np.clip(np.rint(frame + noise), 0, 255).astype(np.uint8)
    return degrade(frame, look, rng=rng)


def make_face(
    portrait: np.ndarray, box: tuple[float, float, float, float], side: int, rng: np.random.Generator
) -> tuple[np.ndarray, int, str]:
    """(a face ``side`` tall and ``BOX_ASPECT`` as wide, 1 if degraded, its look) from a clean ``portrait`` whose
    face is ``box``."""
    x0, y0, x1, y1 = box
    box_side = max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half = FRAME * box_side
    left, top = max(0, round(cx - half)), max(0, round(cy - half))
    frame = portrait[top : round(cy + half), left : round(cx + half)]
    scale = min(1.0, side / box_side)
    height, width = frame.shape[:2]
    if scale < 1.0:
        size = (max(side, round(width * scale)), max(side, round(height * scale)))
        frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    degraded = rng.random() < 0.5
    look = _pick(DEGRADED_LOOKS if degraded else CLEAN_LOOKS, rng)
    frame = apply_look(np.ascontiguousarray(frame), look, rng)
    if rng.random() < PRINT_LOOK_PROBABILITY:
        frame = old_print_look(frame, rng)
    jitter = rng.uniform(-0.04, 0.04, 2) * side
    fx, fy = (cx - left) * frame.shape[1] / width, (cy - top) * frame.shape[0] / height
    width = max(1, round(side * BOX_ASPECT))
    fx0 = int(np.clip(round(fx - width / 2 + jitter[0]), 0, frame.shape[1] - width))
    fy0 = int(np.clip(round(fy - side / 2 + jitter[1]), 0, frame.shape[0] - side))
    return frame[fy0 : fy0 + side, fx0 : fx0 + width], int(degraded), look


def face_boxes(files: list[Path], cache: Path) -> dict[str, list[float]]:
    """The largest detected face box of each file (by the pipeline's detector), cached in ``cache`` (JSON) by path
    and size, so that a run or its resume detects each portrait once."""
    known = json.loads(cache.read_text()) if cache.is_file() else {}
    missing = [f for f in files if f"{f}:{f.stat().st_size}" not in known]
    if missing:
        from hifacegan.face.detection import FaceDetector

        detector = FaceDetector()
        for path in missing:
            faces = detector(read_rgb8(path)[0])
            best = max(faces, key=lambda face: face.size, default=None)
            known[f"{path}:{path.stat().st_size}"] = list(map(float, best.box)) if best else None
        cache.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(cache, json.dumps(known).encode())
    return {str(f): known[f"{f}:{f.stat().st_size}"] for f in files if known[f"{f}:{f.stat().st_size}"]}


@lru_cache(maxsize=512)
def _portrait(path: str) -> np.ndarray:
    return read_rgb8(path)[0]


class QualityBatches(Dataset):
    """Batches ``start`` .. ``start + count - 1`` of faces from the portraits in ``roots``.

    Each is ``{"image": (batch, 3, height, width) float in [0, 1], "label": (batch,) float 0/1}``, one face size
    per batch. ``boxes``: the face box of each portrait (:func:`face_boxes`).
    """

    def __init__(
        self,
        boxes: dict[str, list[float]],
        batch_size: int = 32,
        seed: int = 0,
        start: int = 0,
        count: int = 1,
    ) -> None:
        if not boxes:
            raise ValueError("no portraits with a detected face to train on")
        self.files = sorted(boxes)
        self.boxes = boxes
        self.sides = [max(boxes[f][2] - boxes[f][0], boxes[f][3] - boxes[f][1]) for f in self.files]
        self.batch_size, self.seed, self.start, self.count = (
            int(batch_size),
            int(seed),
            int(start),
            int(count),
        )

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 11, self.start + index]))
        side = round(math.exp(rng.uniform(math.log(FACE_SIDES[0]), math.log(FACE_SIDES[1]))))
        eligible = [
            f for f, s in zip(self.files, self.sides, strict=True) if s >= min(SHRINK * side, SHARP_BOX)
        ]
        eligible = eligible or self.files
        faces, labels = [], []
        for _ in range(self.batch_size):
            path = eligible[int(rng.integers(len(eligible)))]
            face, label, _ = make_face(_portrait(path), tuple(self.boxes[path]), side, rng)
            faces.append(central(face))
            labels.append(label)
        image = torch.from_numpy(np.stack(faces).transpose(0, 3, 1, 2).copy()).float().div_(255.0)
        return {"image": image, "label": torch.tensor(labels, dtype=torch.float32)}


def split_files(roots: list[str], held_out_every: int = 5) -> tuple[list[Path], list[Path]]:
    """The portraits of ``roots``, split: every ``held_out_every``-th (by sorted path) held out for scoring."""
    files = [f for root in roots for f in list_images(Path(root).expanduser(), what="portrait folder")]
    return [f for i, f in enumerate(files) if i % held_out_every], files[::held_out_every]
