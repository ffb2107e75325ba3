"""``Renovator``: a whole photo in, the same photo with every chosen face renovated out.

Steps: 1 detect (RetinaFace on a downscaled copy), 2 choose faces, then per batch of faces: 3 align (similarity
to the weights' template, at the network's size), 4 renovate (batched, half precision on GPUs, inference mode),
5 match colour and paste back (feathered mask, per-face window). Memory follows the faces: no float copy of the
photo is ever made, and pixels outside the face masks (and alpha everywhere) keep their exact values.

A face larger than the network (by :data:`~hifacegan.face.detail.DETAIL_MERGE_FROM`) is cut at its own size
instead, the network renovates its low band, and only the change (the network's correction plus the cleaning of
the fine band's noise) is added to the photo (:mod:`hifacegan.face.detail`): the face keeps the detail it has.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from hifacegan.devices import configure_cpu_threads, inference_dtype, select_device
from hifacegan.face.alignment import affine_scale, align_face, estimate_similarity, ffhq_template
from hifacegan.face.blending import feather_mask, paste_face, to_rgb_float
from hifacegan.face.colour import match_colour
from hifacegan.face.detail import (
    degradation,
    denoise,
    detail_template,
    enlarge,
    shrink,
    working_size,
)
from hifacegan.face.detection import Detection, FaceDetector
from hifacegan.face.parsing import FaceParser
from hifacegan.pipeline.fidelity import FidelityBlender
from hifacegan.pipeline.selection import FACE_CHOICES, check_region, select_faces

log = logging.getLogger(__name__)

IDENTITY = "identity"
IDENTITY_SIZE = 512
STAGES = ("detect", "renovate", "paste")


class Cancelled(Exception):
    """The caller's cancel check returned True; the photo was left as it was."""


class WeightsUnavailable(RuntimeError):
    """The requested weights cannot be loaded; the message says how to get them."""


@dataclass
class FaceReport:
    """One detected face: ``box`` (x0, y0, x1, y1) and ``landmarks`` in photo pixels; why it was skipped, if it was."""

    box: tuple[float, float, float, float]
    landmarks: list[list[float]]
    score: float
    renovated: bool
    reason: str = ""
    # How the face went through the network (renovated faces): FacePath.to_dict().
    path: dict | None = None

    def to_dict(self) -> dict:
        data = asdict(self)
        data["box"] = [round(v, 2) for v in self.box]
        data["landmarks"] = [[round(x, 2), round(y, 2)] for x, y in self.landmarks]
        data["score"] = round(self.score, 4)
        return data


@dataclass
class FacePath:
    """How one face was renovated: the network's size, the face's own size and the size it was cut at.

    ``merge`` is ``replace`` (the renovated face replaces the photo's, faces up to the network's size) or
    ``detail`` (the network's correction of the low band plus the fine band's cleaning are added to the photo's
    own pixels: hifacegan.face.detail).
    """

    weights: str
    network_size: int
    face_size: float
    working_size: int
    degradation: float = 1.0  # detail merges: how degraded the face looked, the renovated face's share

    @property
    def merge(self) -> str:
        return "detail" if self.working_size > self.network_size else "replace"

    def to_dict(self) -> dict:
        return {
            "weights": self.weights,
            "network_size": self.network_size,
            "face_size": round(self.face_size, 1),
            "working_size": self.working_size,
            "merge": self.merge,
            "degradation": round(self.degradation, 3),
        }


@dataclass
class RenovationResult:
    image: np.ndarray
    faces: list[FaceReport]
    timings: dict[str, float]
    notes: list[str] = field(default_factory=list)
    crops: list[np.ndarray] = field(default_factory=list)  # renovated aligned faces (uint8 RGB) if asked for

    @property
    def renovated(self) -> int:
        return sum(f.renovated for f in self.faces)


def _check_image(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array, not {type(image).__name__}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and not 1 <= image.shape[2] <= 4):
        raise ValueError(f"image must be (H, W) or (H, W, C) with C in 1..4, got shape {image.shape}")
    if image.dtype not in (np.uint8, np.uint16, np.float32):
        raise ValueError(f"image must be uint8, uint16 or float32, got {image.dtype}")
    if min(image.shape[:2]) < 1:
        raise ValueError("image is empty")
    return image


class Renovator:
    """Renovate every chosen face of whole photos with HiFaceGAN weights (see docs/architecture.md, "Pipeline").

    ``weights``: a weights name or path (``default``: the embedded lite fidelity weights) or ``identity`` (skip the
    network: faces go through detection, alignment and paste-back unchanged). ``device``: ``auto`` (CUDA, then MPS,
    then CPU), or a torch device string. ``parsing``: ``auto`` blends through a face-parsing mask when its weights
    are in the face cache dir, ``off`` always uses the feathered rectangle. Loads once; cheap to call many times.
    """

    def __init__(
        self,
        weights: str | Path = "default",
        device: str | torch.device = "auto",
        *,
        detector: str = "auto",
        batch_size: int | None = None,
        detect_max_side: int = 1600,
        half: bool | None = None,
        parsing: str = "auto",
        threads: int | None = None,
    ) -> None:
        self.device = select_device(device)
        self.threads = None
        if self.device.type == "cpu":
            # torch's thread count is process-wide; the CLI and the server own their processes.
            # None: all cores but one (see hifacegan.devices.default_cpu_threads for why).
            self.threads = configure_cpu_threads(threads)
        self.dtype = (
            inference_dtype(self.device) if half is None else (torch.float16 if half else torch.float32)
        )
        if self.device.type == "cpu":
            self.dtype = torch.float32
        self.batch_size = batch_size or (8 if self.device.type != "cpu" else 4)
        self.weights_name = str(weights)
        self.card = None
        self.blender: FidelityBlender | None = None
        self.partner_name: str | None = None
        if self.weights_name == IDENTITY:
            self.size = IDENTITY_SIZE
            self.template = ffhq_template(IDENTITY_SIZE)
        else:
            self._load_weights(weights)
        self.detector = FaceDetector(detector, device=self.device, max_side=detect_max_side)
        if parsing not in ("auto", "off"):
            raise ValueError(f"parsing={parsing!r}: choose auto (when its weights are present) or off")
        self.parser = FaceParser.from_cache(self.device) if parsing == "auto" else None

    # ------------------------------------------------------------------------------------------------ weights

    def _load_weights(self, weights: str | Path) -> None:
        from hifacegan.weights import WeightsError, load_weights, partner_of

        try:
            loaded = load_weights(weights, device="cpu")
        except WeightsError as exc:
            raise WeightsUnavailable(
                f"cannot load weights {str(weights)!r}: {exc} "
                "(`hifacegan weights list` shows the installed weights)"
            ) from exc
        self.card = loaded.card
        self.weights_name = loaded.card.name
        self.size = int(loaded.card.size)
        self.template = np.asarray(loaded.card.template, dtype=np.float64)
        partner = None
        entry = partner_of(loaded.card)
        if entry is not None:
            try:
                partner = load_weights(entry.path, device="cpu")
                self.partner_name = partner.card.name
            except WeightsError as exc:
                log.warning("fidelity partner %s unusable (%s): the fidelity slider is off", entry.name, exc)
                partner = None
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
            self.partner_name = None
        is_fidelity_end = loaded.card.role == "fidelity"
        self._single_end = 1.0 if is_fidelity_end else 0.0
        if partner is None:
            perceptual, fidelity = loaded.generator, None  # one network whatever the slider says
        elif is_fidelity_end:
            perceptual, fidelity = partner.generator, loaded.generator
        else:
            perceptual, fidelity = loaded.generator, partner.generator
        self.blender = FidelityBlender(perceptual, fidelity, self.device, self.dtype)

    def describe(self) -> dict:
        """What this renovator runs (for the server's status and summaries)."""
        return {
            "weights": self.weights_name,
            "fidelity_partner": self.partner_name,
            "size": self.size,
            "device": str(self.device),
            "dtype": str(self.dtype).replace("torch.", ""),
            "detector": self.detector.name,
            "parsing": self.parser.name if self.parser is not None else None,
        }

    # ------------------------------------------------------------------------------------------------ running

    def _align(self, photo: np.ndarray, face: Detection) -> tuple[np.ndarray, np.ndarray, float]:
        """The face's aligned crop, its photo->crop matrix and its own size in photo pixels.

        The crop is at the network's size, or at the face's own (capped) size with some context when it is larger
        (hifacegan.face.detail.working_size and detail_template).
        """
        landmarks = face.landmarks_array()
        face_size = self.size / affine_scale(estimate_similarity(landmarks, self.template))
        side = working_size(face_size, self.size)
        template = self.template if side == self.size else detail_template(self.template, self.size, side)
        crop, matrix = align_face(photo, landmarks, template, side)
        return crop, matrix, face_size

    def _renovate_batch(self, crops: list[np.ndarray], fidelity: float) -> list[np.ndarray]:
        if self.blender is None:
            return crops
        network = self.blender.network(fidelity)
        batch = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).to(self.device, self.dtype)
        with torch.inference_mode():
            raw = network(batch)
            images = self.card.to_image(raw.float())
        return list(images.permute(0, 2, 3, 1).cpu().numpy().astype(np.float32))

    def __call__(
        self,
        image: np.ndarray,
        fidelity: float = 0.5,
        faces: str = "all",
        max_faces: int | None = None,
        min_face_size: float = 16,
        region: np.ndarray | None = None,
        progress: Callable[[str, float], None] | None = None,
        cancel: Callable[[], bool] | None = None,
        return_crops: bool = False,
    ) -> RenovationResult:
        """Renovate ``image`` ((H, W) or (H, W, C), uint8/uint16/float32); the result has its shape and dtype."""
        image = _check_image(image)
        if not 0.0 <= float(fidelity) <= 1.0:
            raise ValueError(f"fidelity must be within 0..1, got {fidelity}")
        if faces not in FACE_CHOICES:
            raise ValueError(f"faces={faces!r}: choose one of {', '.join(FACE_CHOICES)}")
        region = check_region(region, image.shape[:2])
        progress = progress or (lambda stage, fraction: None)
        cancel = cancel or (lambda: False)
        timings = dict.fromkeys(("detect", "align", "network", "paste"), 0.0)
        notes: list[str] = []
        if self.blender is not None and not self.blender.has_slider:
            end = "fidelity" if self._single_end == 1.0 else "perceptual"
            notes.append(
                f"weights {self.weights_name} have no fidelity partner installed: fidelity has no effect "
                f"(always the {end} network)"
            )
        if cancel():
            raise Cancelled("renovation cancelled before it started")

        start = time.perf_counter()
        progress("detect", 0.0)
        detections = self.detector(image)
        timings["detect"] = time.perf_counter() - start
        progress("detect", 1.0)
        verdicts = select_faces(detections, image.shape[:2], faces, max_faces, min_face_size, region)

        output = image.copy()
        photo = output if output.ndim == 3 else output[..., None]
        chosen = [i for i, v in enumerate(verdicts) if not v]
        done: set[int] = set()
        paths: dict[int, FacePath] = {}
        crops_out: list[np.ndarray] = []
        mask = feather_mask(self.size)
        for first in range(0, len(chosen), self.batch_size):
            if cancel():
                raise Cancelled(f"renovation cancelled after {len(done)} of {len(chosen)} faces")
            batch = chosen[first : first + self.batch_size]
            t0 = time.perf_counter()
            aligned, matrices, kept, large = [], [], [], []
            for i in batch:
                try:
                    crop, matrix, face = self._align(photo, detections[i])
                except ValueError as exc:  # degenerate landmarks, face outside the photo
                    verdicts[i] = f"cannot align: {exc}"
                    continue
                paths[i] = FacePath(self.weights_name, self.size, face, crop.shape[0])
                whole = to_rgb_float(crop)
                if crop.shape[0] == self.size:
                    aligned.append(whole)
                    large.append(None)
                else:  # merged through the bands (hifacegan.face.detail): denoised first, the low band renovated
                    clean = denoise(whole)
                    aligned.append(shrink(clean, self.size))
                    large.append((whole, clean))
                matrices.append(matrix)
                kept.append(i)
            t1 = time.perf_counter()
            timings["align"] += t1 - t0
            renovated = self._renovate_batch(aligned, fidelity) if aligned else []
            t2 = time.perf_counter()
            timings["network"] += t2 - t1
            progress("renovate", (first + len(batch)) / len(chosen))
            for i, before, after, matrix, whole in zip(
                kept, aligned, renovated, matrices, large, strict=True
            ):
                matched = match_colour(after, before) if self.blender is not None else after
                face_mask = self.parser.mask(matched) if self.parser is not None else mask
                if whole is None:
                    window = paste_face(photo, matched, matrix, face_mask, region)
                else:
                    original, clean = whole
                    side = clean.shape[0]
                    paths[i].degradation = degradation(original, clean)
                    big_mask = cv2.resize(face_mask, (side, side), interpolation=cv2.INTER_LINEAR)
                    window = paste_face(
                        photo,
                        enlarge(matched, side),
                        matrix,
                        big_mask,
                        region,
                        opacity=paths[i].degradation,
                        base=denoise,
                    )
                if window is None:
                    verdicts[i] = "nothing to paste (face outside the photo or the region)"
                    continue
                done.add(i)
                if return_crops:
                    crops_out.append(np.clip(np.rint(matched * 255.0), 0, 255).astype(np.uint8))
            timings["paste"] += time.perf_counter() - t2
            progress("paste", (first + len(batch)) / len(chosen))
        if not chosen:
            progress("renovate", 1.0)
            progress("paste", 1.0)
        timings["total"] = time.perf_counter() - start
        reports = [_report(d, i in done, verdicts[i], paths.get(i)) for i, d in enumerate(detections)]
        if not detections:
            notes.append("no face found: the photo is returned unchanged")
        return RenovationResult(image=output, faces=reports, timings=timings, notes=notes, crops=crops_out)


def _report(face: Detection, renovated: bool, reason: str, path: FacePath | None) -> FaceReport:
    return FaceReport(
        box=tuple(face.box),
        landmarks=[list(p) for p in face.landmarks],
        score=face.score,
        renovated=renovated,
        reason="" if renovated else (reason or "not renovated"),
        path=path.to_dict() if renovated and path is not None else None,
    )
