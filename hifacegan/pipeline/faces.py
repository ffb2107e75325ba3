"""The per-face policy: how one face is cut for its network, how degraded it is taken to be, and how it goes back.

A face at the network's size is cut on the weights' own template, as they were trained, and takes the network's
face as far as it looks degraded (hifacegan.face.detail.PixelMeasures). A face whose crop with context
(:data:`~hifacegan.face.detail.CONTEXT_ZOOM`) exceeds the network (by
:data:`~hifacegan.face.detail.DETAIL_MERGE_FROM`) is cut at that size instead, the network renovates its low band, and
the photo's own pixels (cleaned of their noise) take the network's face only as far as the face looks degraded: the
face keeps the detail it has. A noisy small face is pasted over its surroundings cleaned of the same noise.

The :class:`~hifacegan.pipeline.renovator.Renovator` runs these steps for every face (``prepare``, ``renovate``,
``blend``); the preview and the maintainer probes call the same ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import cv2
import numpy as np

from hifacegan.face.alignment import (
    align_face,
    compose_affine,
    crop_window,
    estimate_similarity,
    invert_affine,
    warp,
)
from hifacegan.face.blending import feather_mask, paste_face, to_rgb_float
from hifacegan.face.detail import (
    MAX_WORKING_SIZE,
    NIQE_TRUSTED_FROM,
    NOISY_SIGMA,
    PIXEL_GATE_MAX_SPAN,
    PixelMeasures,
    context_span,
    context_template,
    degradation,
    denoise,
    enlarge,
    face_noise_sigma,
    shrink,
    working_size,
)
from hifacegan.face.detection import Detection
from hifacegan.pipeline.networks import FaceNetwork
from hifacegan.pipeline.records import FacePath


@dataclass
class PreparedFace:
    """One face ready for its network.

    ``index``: the detection's place in the photo's detections; ``network``: the network that suits it (None for
    ``identity``); ``matrix``: photo -> crop; ``aligned``: the network's input (float RGB in [0, 1]); ``large``:
    for faces merged through the bands, the whole crop at the face's own size and its denoised copy; ``path``: how
    it goes through (weights, sizes, degradation, damage); ``pixels``: the measures of its own pixels in the photo
    (hifacegan.face.detail.PixelMeasures); ``sigma``: its noise; ``surround``: for a noisy small face, the
    photo -> crop matrix of its crop with context, whose pixels are cleaned of their noise.
    """

    index: int
    network: FaceNetwork | None
    matrix: np.ndarray
    aligned: np.ndarray
    large: tuple[np.ndarray, np.ndarray] | None
    path: FacePath
    pixels: PixelMeasures | None = None
    sigma: float = 0.0
    surround: np.ndarray | None = None

    @property
    def kept(self) -> bool:
        """A face measured as sharp and clean: it keeps every pixel, so the network is not run and nothing is
        blended (for a large face not even the denoised photo its fine band would otherwise be laid over)."""
        return self.path.degradation == 0


def cut_face(
    photo: np.ndarray, face: Detection, size: int, template: np.ndarray, face_size: float
) -> tuple[np.ndarray, np.ndarray]:
    """The face's aligned crop and its photo->crop matrix, for a network of ``size`` and ``template``.

    A face at the network's size is cut as the weights were trained, on their own template (the tight crop); a
    larger one at its own (capped) size with context around it, for the band merge
    (hifacegan.face.detail.working_size and context_template). ``face_size`` 0 never merges (``identity``).
    """
    side = working_size(face_size, size)
    if side == size:
        return align_face(photo, face.landmarks_array(), np.asarray(template, dtype=np.float64), side)
    return align_face(photo, face.landmarks_array(), context_template(template, size, side), side)


def prepare_face(
    photo: np.ndarray,
    face: Detection,
    index: int,
    network: FaceNetwork | None,
    fallback: tuple[str, int, np.ndarray],
    face_size: float,
    measured: np.ndarray | None = None,
) -> PreparedFace:
    """Cut one face of ``photo`` ((H, W, C)) for ``network`` and measure how degraded it is.

    ``fallback`` is (name, size, template) for ``identity`` (no network); ``face_size`` the side of the weights'
    tight crop in photo pixels. ``measured``: the photo as it was before damage was filled around the face, where
    its degradation is measured (a fill is smooth and reads as blur: 8 clean ffhq-1024 faces with stray marks
    filled were taken for degraded and blended with the network's face); None: ``photo``. Raises ValueError when
    the face cannot be aligned.
    """
    name, size, template = (network.name, network.size, network.template) if network else fallback
    merge_size = face_size if network is not None else 0.0
    crop, matrix = cut_face(photo, face, size, template, merge_size)
    path = FacePath(name, size, face_size, crop.shape[0])
    path.slider = network is not None and network.blender.has_slider
    whole = to_rgb_float(crop)
    before = (
        whole if measured is None else to_rgb_float(cut_face(measured, face, size, template, merge_size)[0])
    )
    measured = photo if measured is None else measured
    x0, y0, x1, y1 = face.pixel_box(photo.shape)
    if crop.shape[0] == size:
        if network is None or min(x1 - x0, y1 - y0) < 3:
            return PreparedFace(index, network, matrix, whole, None, path)
        # the network's face replaces as much of this one as it looks degraded; around a noisy face the photo's
        # own pixels are cleaned of their noise over the crop with context
        pixels = PixelMeasures.of(to_rgb_float(measured[y0:y1, x0:x1]), (x0, y0))
        path.degradation = pixels.degradation
        if context_span(face_size) > PIXEL_GATE_MAX_SPAN:  # a larger face enlarged into a larger rung
            path.degradation = own_size_degradation(measured, face, template, size, face_size, pixels)
        surround = None
        if pixels.sigma >= NOISY_SIGMA[0] and path.degradation > 0:
            surround = estimate_similarity(face.landmarks_array(), context_template(template, size, size))
        return PreparedFace(index, network, matrix, whole, None, path, pixels, pixels.sigma, surround)
    # merged through the bands (hifacegan.face.detail): denoised first, the low band renovated; the face's own
    # pixels are measured only where degradation() reads them (faces under NIQE_TRUSTED_FROM)
    sigma = face_noise_sigma(whole)
    clean = denoise(whole, sigma)
    pixels = None
    if face_size < NIQE_TRUSTED_FROM and min(x1 - x0, y1 - y0) >= 3:
        pixels = PixelMeasures.of(to_rgb_float(measured[y0:y1, x0:x1]), (x0, y0))
    as_it_was = clean if before is whole else denoise(before, face_noise_sigma(before))
    path.degradation = degradation(
        sigma if before is whole else face_noise_sigma(before), as_it_was, pixels, face_size
    )
    return PreparedFace(index, network, matrix, shrink(clean, size), (whole, clean), path, pixels, sigma)


def own_size_degradation(
    photo: np.ndarray,
    face: Detection,
    template: np.ndarray,
    size: int,
    face_size: float,
    pixels: PixelMeasures,
) -> float:
    """How degraded a face is, measured as the band merge measures it: cut at its own size with context (not
    enlarged to the network's), its noise taken out, then hifacegan.face.detail.degradation (NIQE, checked by its
    own edges under NIQE_TRUSTED_FROM), or its colour's blur in photo pixels (``pixels.colour_blur``) where that reads
    more. For faces too large for the small-face measures alone (PIXEL_GATE_MAX_SPAN) that a larger rung renovates
    at its own size."""
    side = int(min(round(context_span(face_size)), MAX_WORKING_SIZE))
    crop, _ = align_face(photo, face.landmarks_array(), context_template(template, size, side), side)
    own = to_rgb_float(crop)
    sigma = face_noise_sigma(own)
    return max(degradation(sigma, denoise(own, sigma), pixels, face_size), pixels.colour_blur)


def kept_window(photo: np.ndarray, face: PreparedFace) -> tuple[int, int, int, int] | None:
    """The window a face kept whole covers (it is reported as it stands), None when outside the photo."""
    x0, y0, x1, y1 = crop_window(face.matrix, face.path.working_size, photo.shape[:2])
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def paste_prepared(
    photo: np.ndarray,
    face: PreparedFace,
    matched: np.ndarray,
    face_mask: np.ndarray,
    region: np.ndarray | None,
    canvas: tuple[np.ndarray, int, int] | None = None,
    grain: bool = False,
) -> tuple[int, int, int, int] | None:
    """Paste ``matched`` (the network's colour-matched face, in the crop's space) back the way ``face`` needs:
    over its own pixels at its degradation's opacity (small faces), over its surroundings cleaned of their noise
    (noisy small faces), or enlarged over the denoised photo (large faces). hifacegan.face.blending.paste_face
    does the blending; returns the window written, None when nothing was."""
    if face.large is None and face.surround is None:
        return paste_face(
            photo,
            matched,
            face.matrix,
            face_mask,
            region,
            opacity=face.path.taken,
            canvas=canvas,
            grain=grain,
        )
    base = partial(denoise, sigma=face.sigma)
    if face.large is None:
        # one paste over the crop with context, whose own pixels are denoised, with the network's face (from the
        # tight crop) laid over them where the tight crop's mask is
        size = len(matched)
        to_surround = compose_affine(face.surround, invert_affine(face.matrix))
        inside = warp(np.ascontiguousarray(face_mask), to_surround, (size, size), border=cv2.BORDER_CONSTANT)
        surround_face = np.clip(
            warp(matched, to_surround, (size, size), border=cv2.BORDER_REPLICATE), 0.0, 1.0
        )
        opacity = inside * face.path.taken
        return paste_face(
            photo, surround_face, face.surround, feather_mask(size), region,
            opacity=opacity, base=base, canvas=canvas, grain=grain,
        )  # fmt: skip
    side = face.large[1].shape[0]
    big_mask = cv2.resize(face_mask, (side, side), interpolation=cv2.INTER_LINEAR)
    return paste_face(
        photo, enlarge(matched, side), face.matrix, big_mask, region,
        opacity=face.path.taken, base=base, canvas=canvas, grain=grain,
    )  # fmt: skip
