"""``Renovator``: a whole photo in, the same photo with every chosen face renovated out.

Steps: 1 detect (RetinaFace on a downscaled copy), 2 choose faces, then per batch of faces: 3 align (similarity
to the weights' template, at the network's size), 4 renovate (batched, half precision on GPUs, inference mode),
5 match colour and paste back (feathered mask, per-face window). Memory follows the faces: no float copy of the
photo is ever made, and pixels outside the face masks (and alpha everywhere) keep their exact values.

A face at the network's size is cut on the weights' own template, as they were trained, and takes the network's
face as far as it looks degraded. A face whose crop with context (:data:`~hifacegan.face.detail.CONTEXT_ZOOM`)
exceeds the network (by :data:`~hifacegan.face.detail.DETAIL_MERGE_FROM`) is cut at that size instead, the network
renovates its low band, and the photo's own pixels (cleaned of their noise) take the network's face only as far as
the face looks degraded (:mod:`hifacegan.face.detail`): the face keeps the detail it has.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from hifacegan.damage.detector import detector_for
from hifacegan.damage.removal import DamageFound, clean_photo
from hifacegan.devices import configure_cpu_threads, inference_dtype, select_device
from hifacegan.face.alignment import affine_scale, estimate_similarity, ffhq_template
from hifacegan.face.blending import feather_mask
from hifacegan.face.colour import match_colour
from hifacegan.face.detection import Detection, FaceDetector
from hifacegan.face.grain import GRAIN_CHOICES
from hifacegan.face.parsing import FaceParser
from hifacegan.pipeline.faces import PreparedFace, kept_window, paste_prepared, prepare_face
from hifacegan.pipeline.fidelity import FidelityBlender, slider_share
from hifacegan.pipeline.networks import FaceNetwork, load_face_network, size_variants, suited
from hifacegan.pipeline.records import (
    CancelToken,
    FacePath,
    Progress,
    RenovationResult,
    as_token,
    check_image,
    face_report,
)
from hifacegan.pipeline.selection import FACE_CHOICES, check_region, select_faces
from hifacegan.weights import ModelCard

log = logging.getLogger(__name__)

IDENTITY = "identity"
IDENTITY_SIZE = 512
STAGES = ("detect", "renovate", "paste")


class Renovator:
    """Renovate every chosen face of whole photos with HiFaceGAN weights (see docs/architecture.md, "Pipeline").

    ``weights``: a weights name or path (``default``: the embedded lite fidelity weights) or ``identity`` (skip the
    network: faces go through detection, alignment and paste-back unchanged). ``device``: ``auto`` (CUDA, then MPS,
    then CPU), or a torch device string. ``parsing``: ``auto`` blends through a face-parsing mask when its weights
    are in the face cache dir, ``off`` always uses the feathered rectangle. ``sizes``: ``auto`` also loads the
    installed weights of the same family at other sizes and gives each face the one that suits its size
    (hifacegan.pipeline.networks), ``one`` runs only ``weights``. ``precision``: ``auto`` (float32 unless half
    precision was measured within tolerance for the device and config: hifacegan.devices.HALF_MEASURED), ``fp32``,
    ``fp16`` or ``bf16``; a half-precision batch whose output holds NaN or Inf is run again in float32, with a note
    in the result. Loads once; cheap to call many times.
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
        precision: str = "auto",
        parsing: str = "auto",
        threads: int | None = None,
        sizes: str = "auto",
        damage: str = "off",
        grain: str = "keep",
    ) -> None:
        if grain not in GRAIN_CHOICES:
            raise ValueError(
                f"grain={grain!r}: choose keep (the photo's grain over renovated faces) or remove"
            )
        self.grain = grain
        self.device = select_device(device)
        # torch's thread count is process-wide: the program that owns the process sets it (the CLI and the server:
        # all cores but one, hifacegan.devices.configure_cpu_threads); a renovator sets it only when asked to.
        self.threads = configure_cpu_threads(threads) if threads is not None else torch.get_num_threads()
        if half is not None:  # the older switch: half precision on GPUs only
            precision = "fp16" if half and self.device.type != "cpu" else "fp32"
        self.precision = precision
        self.dtype = inference_dtype(self.device, precision, _config_of(weights))
        self.batch_size = batch_size or (8 if self.device.type != "cpu" else 4)
        if sizes not in ("auto", "one"):
            raise ValueError(f"sizes={sizes!r}: choose auto (every installed size of the weights) or one")
        self.weights_name = str(weights)
        # Every size of the weights' family (hifacegan.pipeline.networks), smallest first; each face goes to the
        # one that suits it. ``network`` is the one asked for: its card names the renovator's weights.
        self.networks: list[FaceNetwork] = []
        self.network: FaceNetwork | None = None
        if self.weights_name == IDENTITY:
            self.size = IDENTITY_SIZE
            self.template = ffhq_template(IDENTITY_SIZE)
        else:
            self.network = load_face_network(weights, self.device, self.dtype)
            self.weights_name = self.network.name
            self.size, self.template = self.network.size, self.network.template
            variants = [
                load_face_network(entry.path, self.device, self.dtype)
                for entry in (size_variants(self.network.card) if sizes == "auto" else [])
            ]
            self.networks = sorted([self.network, *variants], key=lambda n: n.size)
        self.detector = FaceDetector(detector, device=self.device, max_side=detect_max_side)
        if parsing not in ("auto", "off"):
            raise ValueError(f"parsing={parsing!r}: choose auto (when its weights are present) or off")
        self.parser = FaceParser.from_cache(self.device) if parsing == "auto" else None
        self.damage, self.damage_detector = detector_for(damage, self.device)

    # ------------------------------------------------------------------------------------------------ weights

    @property
    def card(self) -> ModelCard | None:
        """The model card of the weights asked for (None for ``identity``)."""
        return self.network.card if self.network is not None else None

    @property
    def blender(self) -> FidelityBlender | None:
        return self.network.blender if self.network is not None else None

    @property
    def partner_name(self) -> str | None:
        return self.network.partner_name if self.network is not None else None

    def describe(self) -> dict:
        """What this renovator runs (for the server's status and summaries)."""
        return {
            "weights": self.weights_name,
            "fidelity_partner": self.partner_name,
            "size": self.size,
            "sizes": [n.size for n in self.networks] or [self.size],
            "device": str(self.device),
            "dtype": str(self.dtype).replace("torch.", ""),
            "detector": self.detector.name,
            "parsing": self.parser.name if self.parser is not None else None,
        }

    # ------------------------------------------------------------------------------------------------ running

    # ------------------------------------------------------------------------------------------------ steps
    # The steps every face goes through, in order; __call__, the preview and the maintainer probes all use them.

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Step 1: every face of ``image`` ((H, W) or (H, W, C)), found on a downscaled copy."""
        return self.detector(image)

    def network_for(self, face: Detection) -> tuple[FaceNetwork | None, float]:
        """The network that suits ``face`` (None for ``identity``) and the face's own size in photo pixels.

        The size is the side the weights' tight crop has in the photo (the same for every size of the family);
        each face goes to the installed size that suits it (hifacegan.pipeline.networks.suited).
        """
        face_size = self.size / affine_scale(estimate_similarity(face.landmarks_array(), self.template))
        if not self.networks:
            return None, face_size
        return suited(self.networks, face_size), face_size

    def clean_damage(
        self, photo: np.ndarray, faces: list[Detection], region: np.ndarray | None, scope: str
    ) -> list[DamageFound]:
        """Step 2 (when asked): scratches and dust found and filled around ``faces`` (``scope`` ``faces``), over the
        photo (``photo``) or not at all (``off``), in place, before renovation (hifacegan.damage.removal)."""
        scope = scope if self.damage_detector is not None else "off"
        return clean_photo(photo, [tuple(f.box) for f in faces], self.damage_detector, scope, region)

    def prepare(
        self, photo: np.ndarray, face: Detection, index: int, measured: np.ndarray | None = None
    ) -> PreparedFace:
        """Step 3: one face of ``photo`` ((H, W, C)) cut for its network and measured (hifacegan.pipeline.faces);
        ``measured``: the photo before damage was filled around the face (its degradation is read there). Raises
        ValueError when it cannot be aligned."""
        network, face_size = self.network_for(face)
        fallback = (self.weights_name, self.size, self.template)
        return prepare_face(photo, face, index, network, fallback, face_size, measured)

    def renovate(self, faces: list[PreparedFace], fidelity: float) -> list[np.ndarray]:
        """Step 4: the network's output for each prepared face (float RGB in [0, 1]), in their order, batched per
        network. A face measured as sharp keeps its pixels whatever the network says: it is not run. Each face's
        path records the share of its renovated face taken at ``fidelity`` (hifacegan.pipeline.fidelity.slider_share;
        weights without a partner keep the share their degradation sets)."""
        for face in faces:
            face.path.share = (
                slider_share(face.path.degradation, fidelity) if face.path.slider else face.path.degradation
            )
        out = [f.aligned for f in faces]
        networks = [None if f.kept else f.network for f in faces]
        for network in {id(n): n for n in networks if n is not None}.values():
            index = [k for k, n in enumerate(networks) if n is network]
            images = network.run([out[k] for k in index], fidelity, self.device, self.dtype)
            for k, image in zip(index, images, strict=True):
                out[k] = image
        return out

    def blend(
        self,
        photo: np.ndarray,
        face: PreparedFace,
        after: np.ndarray,
        region: np.ndarray | None,
        canvas: tuple[np.ndarray, int, int] | None = None,
        grain: str | None = None,
    ) -> tuple[tuple[int, int, int, int] | None, np.ndarray]:
        """Step 5: colour-match ``after`` (the network's output for ``face``) and paste it into ``photo`` (or
        ``canvas``, hifacegan.face.blending.paste_face); returns the window written (None: nothing) and the matched
        face. ``grain`` (``keep``/``remove``; None: the renovator's own) puts the photo's grain back over it.

        A face measured as sharp (degradation 0) keeps every pixel: the network was not run for it, so there is
        nothing to match or blend; its window is reported as it stands.
        """
        if face.kept:
            return kept_window(photo, face), after
        matched = match_colour(after, face.aligned) if self.network is not None else after
        keep_grain = (grain or self.grain) == "keep" and self.network is not None
        face_mask = self.parser.mask(matched) if self.parser is not None else feather_mask(len(matched))
        return paste_prepared(photo, face, matched, face_mask, region, canvas, keep_grain), matched

    # ------------------------------------------------------------------------------------------------ running

    def __call__(
        self,
        image: np.ndarray,
        fidelity: float = 0.5,
        faces: str = "all",
        max_faces: int | None = None,
        min_face_size: float = 16,
        region: np.ndarray | None = None,
        progress: Callable[[str, float], None] | None = None,
        cancel: CancelToken | threading.Event | Callable[[], bool] | None = None,
        return_crops: bool = False,
        report: Callable[[Progress], None] | None = None,
        damage: str | None = None,
        grain: str | None = None,
    ) -> RenovationResult:
        """Renovate ``image`` ((H, W) or (H, W, C), uint8/uint16/float32); the result has its shape and dtype.

        Progress, in the order the work happens: ``report(Progress)`` is called as each stage starts: ``detect``;
        then for each batch of faces ``renovate`` (faces first..last of total: aligned and run through the
        network) and ``paste`` (the same faces colour-matched and blended back); then ``done``. Its ``done`` count
        rises after each batch and reaches ``total`` (the faces chosen); ``remaining`` estimates the seconds left.

        Stopping: ``cancel``, a :class:`~hifacegan.pipeline.records.CancelToken`, is checked before detection and
        before each batch; once cancelled the run raises Cancelled and ``image`` is left as it was. ``progress``
        (stage, fraction) and a callable ``cancel`` are the older interface, kept for one release with a
        DeprecationWarning.

        ``damage`` (``faces``, ``photo`` or ``off``) says where scratches and dust are found and filled before the
        faces are renovated (hifacegan.damage.removal); ``grain`` (``keep`` or ``remove``) whether the photo's
        grain is laid back over renovated faces (hifacegan.face.grain). None: the renovator's own.
        """
        image, region = self._checked(image, fidelity, faces, region, grain)
        token, progress = as_token(cancel), _older_progress(progress)
        run = _Run(report or (lambda state: None), progress, token)
        token.check("before it started")
        output = image.copy()
        photo = output if output.ndim == 3 else output[..., None]
        run.original = image if image.ndim == 3 else image[..., None]
        detections, verdicts = self._find_faces(photo, run, faces, max_faces, min_face_size, region, damage)
        chosen = [i for i, v in enumerate(verdicts) if not v]
        redone = sum(n.redone for n in self.networks)
        for first in range(0, len(chosen), self.batch_size):
            token.check(f"after {len(run.done)} of {run.total} faces")
            batch = chosen[first : first + self.batch_size]
            self._one_batch(
                photo, detections, batch, first, verdicts, region, fidelity, grain, run, return_crops
            )
        if not chosen:
            progress("renovate", 1.0)
        progress("paste", 1.0)
        run.stage("done")
        run.timings["total"] = time.perf_counter() - run.start
        reports = [
            face_report(d, i in run.done, verdicts[i], run.paths.get(i)) for i, d in enumerate(detections)
        ]
        used = {path.weights for i, path in run.paths.items() if i in run.done}
        notes = self._notes(detections, used, sum(n.redone for n in self.networks) - redone)
        return RenovationResult(
            image=output, faces=reports, timings=run.timings, notes=notes, crops=run.crops
        )

    def _find_faces(
        self,
        photo: np.ndarray,
        run: _Run,
        faces: str,
        max_faces: int | None,
        min_face_size: float,
        region: np.ndarray | None,
        damage: str | None,
    ) -> tuple[list[Detection], list[str]]:
        """Steps 1-2: every face detected, a verdict for each (empty: renovate it), damage filled around the chosen
        ones (in ``photo``, the output's pixels)."""
        run.stage("detect")
        run.progress("detect", 0.0)
        detections = self.detect(photo if photo.shape[2] > 1 else photo[..., 0])
        run.timings["detect"] = time.perf_counter() - run.start
        run.progress("detect", 1.0)
        verdicts = select_faces(detections, photo.shape[:2], faces, max_faces, min_face_size, region)
        chosen = [i for i, v in enumerate(verdicts) if not v]
        run.total = len(chosen)
        t0 = time.perf_counter()
        found = self.clean_damage(photo, [detections[i] for i in chosen], region, damage or self.damage)
        run.timings["damage"] = time.perf_counter() - t0
        run.damage = dict(zip(chosen, found, strict=True))
        return detections, verdicts

    def _checked(
        self, image: np.ndarray, fidelity: float, faces: str, region: np.ndarray | None, grain: str | None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The call's image and region, checked; ValueError (a sentence) for anything the run cannot take."""
        image = check_image(image)
        if not 0.0 <= float(fidelity) <= 1.0:
            raise ValueError(f"fidelity must be within 0..1, got {fidelity}")
        if faces not in FACE_CHOICES:
            raise ValueError(f"faces={faces!r}: choose one of {', '.join(FACE_CHOICES)}")
        if grain is not None and grain not in GRAIN_CHOICES:
            raise ValueError(
                f"grain={grain!r}: choose keep (the photo's grain over renovated faces) or remove"
            )
        return image, check_region(region, image.shape[:2])

    def _one_batch(
        self,
        photo: np.ndarray,
        detections: list[Detection],
        batch: list[int],
        first: int,
        verdicts: list[str],
        region: np.ndarray | None,
        fidelity: float,
        grain: str | None,
        run: _Run,
        return_crops: bool,
    ) -> None:
        """One batch of chosen faces through steps 3-5: prepared, renovated, blended back; ``run`` records it."""
        last = first + len(batch)
        run.stage("renovate", first + 1, last)
        t0 = time.perf_counter()
        prepared: list[PreparedFace] = []
        for i in batch:
            # the face's degradation is read before its fill: a fill reads as blur
            measured = run.original if run.damage[i].area else None
            try:
                prepared.append(self.prepare(photo, detections[i], i, measured))
            except ValueError as exc:  # degenerate landmarks, face outside the photo
                verdicts[i] = f"cannot align: {exc}"
                continue
            run.paths[i] = prepared[-1].path
            run.paths[i].damage_share, run.paths[i].damage_area = run.damage[i].share, run.damage[i].area
        t1 = time.perf_counter()
        renovated = self.renovate(prepared, fidelity)
        t2 = time.perf_counter()
        run.timings["align"] += t1 - t0
        run.timings["network"] += t2 - t1
        run.stage("paste", first + 1, last)
        for face, after in zip(prepared, renovated, strict=True):
            window, matched = self.blend(photo, face, after, region, grain=grain)
            if window is None:
                verdicts[face.index] = "nothing to paste (face outside the photo or the region)"
                continue
            run.done.add(face.index)
            if return_crops:
                run.crops.append(np.clip(np.rint(matched * 255.0), 0, 255).astype(np.uint8))
        run.timings["paste"] += time.perf_counter() - t2
        run.progress("renovate", last / run.total)

    def _notes(self, detections: list[Detection], used: set[str], redone: int) -> list[str]:
        """What the result's notes tell the user: a slider that did not move some faces (weights ``used`` without
        a partner), no face, batches redone in fp32."""
        notes = []
        for network in self.networks:
            if network.name in used and not network.blender.has_slider:
                end = "fidelity" if network.single_end == 1.0 else "perceptual"
                notes.append(
                    f"the fidelity slider does not change the faces renovated by {network.name}: it has no "
                    f"{'perceptual' if end == 'fidelity' else 'fidelity'} partner installed, so they always get "
                    f"its {end} end"
                )
        if not detections:
            notes.append("no face found: the photo is returned unchanged")
        if redone > 0:
            notes.append(
                f"{redone} batch(es) of faces gave NaN or Inf in {self.precision} and were redone in fp32"
            )
        return notes


@dataclass
class _Run:
    """One call's running state: its callbacks, timings, and the faces done so far."""

    report: Callable[[Progress], None]
    progress: Callable[[str, float], None]
    token: CancelToken
    start: float = field(default_factory=time.perf_counter)
    total: int = 0
    timings: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys(("detect", "align", "network", "paste"), 0.0)
    )
    done: set[int] = field(default_factory=set)
    paths: dict[int, FacePath] = field(default_factory=dict)
    damage: dict[int, DamageFound] = field(default_factory=dict)
    crops: list[np.ndarray] = field(default_factory=list)
    faces_start: float | None = None
    original: np.ndarray | None = None  # the input, (H, W, C): damage is filled in the output only

    def stage(self, stage: str, first: int = 0, last: int = 0) -> None:
        """Report ``stage`` starting (faces ``first``..``last``), with the time left estimated from the batches
        finished so far."""
        now = time.perf_counter()
        if self.faces_start is None and stage in ("renovate", "paste"):
            self.faces_start = now
        finished = first - 1 if stage in ("renovate", "paste") else self.total  # faces of the earlier batches
        remaining = None
        if 0 < finished < self.total and self.faces_start is not None:
            remaining = (now - self.faces_start) / finished * (self.total - finished)
        self.report(Progress(stage, finished, self.total, first, last, now - self.start, remaining))


def _older_progress(progress: Callable[[str, float], None] | None) -> Callable[[str, float], None]:
    """The older ``progress(stage, fraction)`` callback, kept for one release with a DeprecationWarning."""
    if progress is None:
        return lambda stage, fraction: None
    warnings.warn(
        "progress= is deprecated and will be removed in the next release: pass report= (it receives a "
        "hifacegan.pipeline.Progress with a sentence for the user) and stop a run with a CancelToken",
        DeprecationWarning,
        stacklevel=3,
    )
    return progress


def _config_of(weights: str | Path) -> str | None:
    """The generator config of ``weights`` (for the measured half-precision table), None when unknown."""
    from hifacegan.weights import WeightsError
    from hifacegan.weights.store import card_of

    if str(weights) == IDENTITY:
        return None
    try:
        return card_of(weights).config
    except (WeightsError, OSError):
        return None
