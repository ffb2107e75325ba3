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
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import torch

from hifacegan.damage.detector import detector_for
from hifacegan.damage.removal import DamageFound, clean_photo
from hifacegan.devices import configure_cpu_threads, inference_dtype, select_device
from hifacegan.face.alignment import (
    affine_scale,
    align_face,
    compose_affine,
    crop_window,
    estimate_similarity,
    ffhq_template,
    invert_affine,
    warp,
)
from hifacegan.face.blending import feather_mask, paste_face, to_rgb_float
from hifacegan.face.colour import match_colour
from hifacegan.face.detail import (
    NIQE_TRUSTED_FROM,
    NOISY_SIGMA,
    PixelMeasures,
    context_template,
    degradation,
    denoise,
    enlarge,
    face_noise_sigma,
    shrink,
    working_size,
)
from hifacegan.face.detection import Detection, FaceDetector
from hifacegan.face.parsing import FaceParser
from hifacegan.pipeline.fidelity import FidelityBlender
from hifacegan.pipeline.networks import (
    FaceNetwork,
    load_face_network,
    size_variants,
    suited,
)
from hifacegan.pipeline.records import (
    Cancelled,
    FacePath,
    Progress,
    RenovationResult,
    check_image,
    face_report,
)
from hifacegan.pipeline.selection import FACE_CHOICES, check_region, select_faces
from hifacegan.weights import ModelCard

log = logging.getLogger(__name__)

IDENTITY = "identity"
IDENTITY_SIZE = 512
STAGES = ("detect", "renovate", "paste")


@dataclass
class _Face:
    """One face ready for its network: the detection's ``index``, the ``network`` that suits it (None for
    ``identity``), the photo->crop ``matrix``, the network's input ``aligned`` (float RGB), and for faces merged
    through the bands (``large``) the whole crop at the face's own size and its denoised copy, and the measures of
    its own pixels in the photo (``pixels``, hifacegan.face.detail.PixelMeasures)."""

    index: int
    network: FaceNetwork | None
    matrix: np.ndarray
    aligned: np.ndarray
    large: tuple[np.ndarray, np.ndarray] | None
    path: FacePath
    pixels: PixelMeasures | None = None
    # the face's own noise (large faces: face_noise_sigma; small ones: PixelMeasures.sigma)
    sigma: float = 0.0
    # a noisy small face: the photo->crop matrix of its crop with context, whose pixels are cleaned of their noise
    surround: np.ndarray | None = None

    @property
    def kept(self) -> bool:
        """A face measured as sharp and clean: it keeps every pixel, so the network is not run and nothing is
        blended (for a large face not even the denoised photo its fine band would otherwise be laid over)."""
        return self.path.degradation == 0


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
    ) -> None:
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

    def _network_for(self, face: Detection) -> tuple[FaceNetwork | None, float]:
        """The network that suits ``face`` (None for ``identity``) and the face's own size in photo pixels.

        The size is the side the weights' tight crop has in the photo (the same for every size of the family).
        """
        face_size = self.size / affine_scale(estimate_similarity(face.landmarks_array(), self.template))
        if not self.networks:
            return None, face_size
        return suited(self.networks, face_size), face_size

    def _align(
        self, photo: np.ndarray, face: Detection, size: int, template: np.ndarray, face_size: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """The face's aligned crop and its photo->crop matrix, for a network of ``size`` and ``template``.

        A face at the network's size is cut as the weights were trained, on their own template (the tight crop);
        a larger one at its own (capped) size with context around it, for the band merge
        (hifacegan.face.detail.working_size and context_template).
        """
        side = working_size(face_size, size)
        if side == size:
            return align_face(photo, face.landmarks_array(), np.asarray(template, dtype=np.float64), side)
        return align_face(photo, face.landmarks_array(), context_template(template, size, side), side)

    def _renovate_batch(
        self, crops: list[np.ndarray], networks: list[FaceNetwork | None], fidelity: float
    ) -> list[np.ndarray]:
        """Each crop through its own network, batched per network; crops come back in their order."""
        out: list[np.ndarray | None] = list(crops)
        for network in {id(n): n for n in networks if n is not None}.values():
            index = [k for k, n in enumerate(networks) if n is network]
            images = network.run([crops[k] for k in index], fidelity, self.device, self.dtype)
            for k, image in zip(index, images, strict=True):
                out[k] = image
        return out

    def _prepare(self, photo: np.ndarray, face: Detection, index: int) -> _Face:
        """Align one face of ``photo`` ((H, W, C)) for its network; raises ValueError when it cannot be aligned."""
        network, face_size = self._network_for(face)
        size, template = (network.size, network.template) if network else (self.size, self.template)
        merge_size = face_size if network is not None else 0.0  # identity: never merged
        crop, matrix = self._align(photo, face, size, template, merge_size)
        name = network.name if network is not None else self.weights_name
        path = FacePath(name, size, face_size, crop.shape[0])
        whole = to_rgb_float(crop)
        x0, y0, x1, y1 = face.pixel_box(photo.shape)
        if crop.shape[0] == size:
            if network is None or min(x1 - x0, y1 - y0) < 3:
                return _Face(index, network, matrix, whole, None, path)
            # the network's face replaces as much of this one as it looks degraded; around a noisy face the photo's
            # own pixels are cleaned of their noise over the crop with context
            pixels = PixelMeasures.of(to_rgb_float(photo[y0:y1, x0:x1]), (x0, y0))
            path.degradation = pixels.degradation
            surround = None
            if pixels.sigma >= NOISY_SIGMA[0] and path.degradation > 0:
                surround = estimate_similarity(face.landmarks_array(), context_template(template, size, size))
            return _Face(index, network, matrix, whole, None, path, pixels, pixels.sigma, surround)
        # merged through the bands (hifacegan.face.detail): denoised first, the low band renovated; the face's own
        # pixels are measured only where degradation() reads them (faces under NIQE_TRUSTED_FROM)
        sigma = face_noise_sigma(whole)
        clean = denoise(whole, sigma)
        pixels = None
        if face_size < NIQE_TRUSTED_FROM and min(x1 - x0, y1 - y0) >= 3:
            pixels = PixelMeasures.of(to_rgb_float(photo[y0:y1, x0:x1]), (x0, y0))
        path.degradation = degradation(sigma, clean, pixels, face_size)
        return _Face(index, network, matrix, shrink(clean, size), (whole, clean), path, pixels, sigma)

    def _renovate_faces(self, faces: list[_Face], fidelity: float) -> list[np.ndarray]:
        """The network's output for each prepared face (float RGB in [0, 1]), in their order."""
        if not faces:
            return []
        # A small face measured as sharp keeps its pixels whatever the network says: no need to run it.
        networks = [None if f.kept else f.network for f in faces]
        return self._renovate_batch([f.aligned for f in faces], networks, fidelity)

    def _blend(
        self,
        photo: np.ndarray,
        face: _Face,
        after: np.ndarray,
        region: np.ndarray | None,
        canvas: tuple[np.ndarray, int, int] | None = None,
    ) -> tuple[tuple[int, int, int, int] | None, np.ndarray]:
        """Colour-match ``after`` (the network's output for ``face``) and paste it into ``photo`` (or ``canvas``,
        hifacegan.face.blending.paste_face); returns the window written (None: nothing) and the matched face.

        A face measured as sharp (degradation 0) keeps every pixel: the network was not run for it
        (``_renovate_faces``), so there is nothing to match or blend; its window is reported as it stands.
        """
        if face.kept:
            x0, y0, x1, y1 = crop_window(face.matrix, face.path.working_size, photo.shape[:2])
            return ((x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None), after
        matched = match_colour(after, face.aligned) if self.network is not None else after
        face_mask = self.parser.mask(matched) if self.parser is not None else feather_mask(len(matched))
        if face.large is None and face.surround is None:
            opacity = face.path.degradation  # a sharp small face keeps its pixels (PixelMeasures.degradation)
            window = paste_face(
                photo, matched, face.matrix, face_mask, region, opacity=opacity, canvas=canvas
            )
            return window, matched
        if face.large is None:
            # A noisy small face: one paste over its crop with context, whose own pixels are denoised, with the
            # network's face (from the tight crop) laid over them where the tight crop's mask is.
            size = len(matched)
            to_surround = compose_affine(face.surround, invert_affine(face.matrix))
            inside = warp(
                np.ascontiguousarray(face_mask), to_surround, (size, size), border=cv2.BORDER_CONSTANT
            )
            window = paste_face(
                photo,
                np.clip(warp(matched, to_surround, (size, size), border=cv2.BORDER_REPLICATE), 0.0, 1.0),
                face.surround,
                feather_mask(size),
                region,
                opacity=inside * face.path.degradation,
                base=partial(denoise, sigma=face.sigma),
                canvas=canvas,
            )
            return window, matched
        side = face.large[1].shape[0]
        big_mask = cv2.resize(face_mask, (side, side), interpolation=cv2.INTER_LINEAR)
        window = paste_face(
            photo,
            enlarge(matched, side),
            face.matrix,
            big_mask,
            region,
            opacity=face.path.degradation,
            base=partial(denoise, sigma=face.sigma),
            canvas=canvas,
        )
        return window, matched

    def _clean(
        self,
        photo: np.ndarray,
        faces: list[Detection],
        region: np.ndarray | None,
        timings: dict[str, float],
        scope: str,
    ) -> list[DamageFound]:
        """Scratches and dust found and filled around the chosen faces (or over the photo), before renovation."""
        start = time.perf_counter()
        scope = scope if self.damage_detector is not None else "off"
        found = clean_photo(photo, [tuple(f.box) for f in faces], self.damage_detector, scope, region)
        timings["damage"] = time.perf_counter() - start
        return found

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
        report: Callable[[Progress], None] | None = None,
        damage: str | None = None,
    ) -> RenovationResult:
        """Renovate ``image`` ((H, W) or (H, W, C), uint8/uint16/float32); the result has its shape and dtype.

        Progress, in the order the work happens. ``report(Progress)`` is called as each stage starts: ``detect``;
        then for each batch of faces ``renovate`` (faces first..last of total: aligned and run through the
        network) and ``paste`` (the same faces colour-matched and blended back); then ``done``. Its ``done`` count
        rises after each batch and reaches ``total`` (the faces chosen); ``remaining`` estimates the seconds left.

        ``progress(stage, fraction)``, the older callback, sees the stages end in that same order: ``detect`` 0.0
        at its start and 1.0 at its end, ``renovate`` k/N after each batch of faces has been renovated and blended
        back (N faces chosen), and ``paste`` 1.0 once every face is back (also with no face). Both callbacks may
        raise to stop the run; ``cancel`` is checked before each batch.

        ``damage`` (``faces``, ``photo`` or ``off``; None: the renovator's own) says where scratches and dust are
        found and filled before the faces are renovated (hifacegan.damage.removal).
        """
        image = check_image(image)
        if not 0.0 <= float(fidelity) <= 1.0:
            raise ValueError(f"fidelity must be within 0..1, got {fidelity}")
        if faces not in FACE_CHOICES:
            raise ValueError(f"faces={faces!r}: choose one of {', '.join(FACE_CHOICES)}")
        region = check_region(region, image.shape[:2])
        progress = progress or (lambda stage, fraction: None)
        report = report or (lambda state: None)
        cancel = cancel or (lambda: False)
        timings = dict.fromkeys(("detect", "align", "network", "paste"), 0.0)
        notes: list[str] = []
        for network in self.networks:
            if not network.blender.has_slider:
                end = "fidelity" if network.single_end == 1.0 else "perceptual"
                notes.append(
                    f"weights {network.name} have no fidelity partner installed: fidelity has no effect on the "
                    f"faces they renovate (always the {end} network)"
                )
        if cancel():
            raise Cancelled("renovation cancelled before it started")

        start = time.perf_counter()
        report(Progress("detect"))
        progress("detect", 0.0)
        detections = self.detector(image)
        timings["detect"] = time.perf_counter() - start
        progress("detect", 1.0)
        verdicts = select_faces(detections, image.shape[:2], faces, max_faces, min_face_size, region)

        output = image.copy()
        photo = output if output.ndim == 3 else output[..., None]
        chosen = [i for i, v in enumerate(verdicts) if not v]
        found = self._clean(photo, [detections[i] for i in chosen], region, timings, damage or self.damage)
        damage_at = dict(zip(chosen, found, strict=True))
        done: set[int] = set()
        paths: dict[int, FacePath] = {}
        crops_out: list[np.ndarray] = []
        total = len(chosen)
        redone = sum(n.redone for n in self.networks)
        faces_start = time.perf_counter()

        def state(stage: str, first: int = 0, last: int = 0) -> Progress:
            now = time.perf_counter()
            finished = first - 1 if stage in ("renovate", "paste") else total  # faces of the earlier batches
            remaining = (now - faces_start) / finished * (total - finished) if 0 < finished < total else None
            return Progress(stage, finished, total, first, last, now - start, remaining)

        for first in range(0, total, self.batch_size):
            if cancel():
                raise Cancelled(f"renovation cancelled after {len(done)} of {total} faces")
            batch = chosen[first : first + self.batch_size]
            report(state("renovate", first + 1, first + len(batch)))
            t0 = time.perf_counter()
            prepared: list[_Face] = []
            for i in batch:
                try:
                    prepared.append(self._prepare(photo, detections[i], i))
                except ValueError as exc:  # degenerate landmarks, face outside the photo
                    verdicts[i] = f"cannot align: {exc}"
                    continue
                paths[i] = prepared[-1].path
                paths[i].damage_share, paths[i].damage_area = damage_at[i].share, damage_at[i].area
            t1 = time.perf_counter()
            timings["align"] += t1 - t0
            renovated = self._renovate_faces(prepared, fidelity)
            t2 = time.perf_counter()
            timings["network"] += t2 - t1
            report(state("paste", first + 1, first + len(batch)))
            for face, after in zip(prepared, renovated, strict=True):
                window, matched = self._blend(photo, face, after, region)
                if window is None:
                    verdicts[face.index] = "nothing to paste (face outside the photo or the region)"
                    continue
                done.add(face.index)
                if return_crops:
                    crops_out.append(np.clip(np.rint(matched * 255.0), 0, 255).astype(np.uint8))
            timings["paste"] += time.perf_counter() - t2
            progress("renovate", (first + len(batch)) / total)
        if not chosen:
            progress("renovate", 1.0)
        progress("paste", 1.0)
        report(state("done"))
        timings["total"] = time.perf_counter() - start
        reports = [face_report(d, i in done, verdicts[i], paths.get(i)) for i, d in enumerate(detections)]
        if not detections:
            notes.append("no face found: the photo is returned unchanged")
        if (redone := sum(n.redone for n in self.networks) - redone) > 0:
            notes.append(
                f"{redone} batch(es) of faces gave NaN or Inf in {self.precision} and were redone in fp32"
            )
        return RenovationResult(image=output, faces=reports, timings=timings, notes=notes, crops=crops_out)


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
