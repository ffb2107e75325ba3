"""Keep a large face's own detail: apply the network's correction only in the band the network saw.

A face whose aligned size exceeds the network's working size N used to be shrunk to N, renovated there and pasted
back enlarged, so a 500 px face was replaced by a 128 px one: eyelashes, skin texture and iris highlights were gone
(median detail kept 0.40 on the 1024 px FFHQ faces). Here the face is cut at its own resolution W instead, and
split into two bands at N's Nyquist frequency:

- noise is taken out of the whole face first (:func:`denoise`: the noise-adaptive non-local means of the
  classical baseline, ``h = 0.8 sigma``), which leaves a face that is not noisy exactly as it is;
- the **low band** (what a W -> N area shrink keeps) is what the network sees and renovates;
- the **fine band** (the face minus its low band) is the photo's own detail above what the network can see.

How much of each the result takes follows how degraded the face is (:func:`degradation`, 0 to 1, from its noise,
its NIQE and its edges): ``result = (1 - d) * denoised face + d * renovated face (enlarged)``. A
sharp face (d = 0) keeps every pixel; a blurred or noisy one (d = 1) is the network's. Faces up to the
network's size are replaced by the network's face in the same proportion, measured in the photo's pixels
(:func:`small_face_degradation`: too small for NIQE). The lite networks were trained on degraded faces only and
"restore" a sharp one too, smoothing the wrinkles and skin texture a good photo has (on clean 1024 px faces, face PSNR
28-30 dB against the untouched input), so for them the measure matters; shrinking the fine band by its estimated
noise instead (a local Wiener shrink, BayesShrink) cost clean faces a quarter of their detail and left most of
the degraded faces' noise (docs/benchmarks.md, "Large faces").

The pipeline blends the enlarged renovated face over the photo's own pixels, denoised in photo pixels
(hifacegan.face.blending.paste_face's ``base`` and ``opacity``): only the smooth renovated face is resampled,
never the photo's detail or its noise (a change warped back through the interpolation of the paste would leave
part of the noise it was meant to cancel), and a sharp clean face comes back bit for bit. docs/benchmarks.md
("Large faces") has the measurements behind the choice of method.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

#: A face is merged through the bands when its own size exceeds the network's by this factor; below it the
#: network's output replaces the face as before (the difference would be within the paste's resampling).
DETAIL_MERGE_FROM = 1.1
#: Largest working size: a bigger face is cut at this size (memory follows the square of it). A sharp face keeps
#: its pixels whatever its size; a degraded one larger than this is renovated at this resolution.
MAX_WORKING_SIZE = 1536
#: A face larger than the network is cut with context: the weights' template shrunk by this factor about the crop's
#: centre, so its blend covers the whole face box rather than the tight forehead-to-chin crop the lite weights were
#: trained on (with the tight crop the blend mask covered 59-78% of a 256 px portrait's face box, with this context
#: 82-100%). A face at the network's size is cut on the template itself: with this context the network saw it at 0.7
#: of its trained size and smoothed it (the Solvay faces lost their hair and skin texture, and, saved as JPEG, came
#: back 0.7 dB under the tight crop in their boxes), and the paste covered hair and collars (docs/benchmarks.md).
CONTEXT_ZOOM = 0.7
#: Non-local-means strength (``h`` as a multiple of the estimated sigma): the classical baseline's, which the
#: eval's noisiest faces need (the prefilter's milder 0.5 is for the network's own input).
DENOISE_STRENGTH = 0.8
#: Estimated noise sigma (0-255) from which a face counts as degraded through noise alone, and at which fully: after
#: the filter such a face's fine band is what the filter left of the noise. Clean faces-hires faces read 0.5-1.5.
NOISY_SIGMA = (4.0, 12.0)
#: NIQE of the (denoised) face at its working size at or under which a face counts as sharp (keeps its pixels),
#: and at or over which it counts as degraded (takes the network's face); linear in between. Measured on
#: faces-hires (docs/benchmarks.md): clean faces at long sides 1024 and 512 score 3.8-8.0 (median 5.3), the same
#: faces with the full degradation at 512 px 5.5-18.3 (median 11.4); blur and 4x resampling alone 8.3-16.4.
SHARP_NIQE = 6.0
DEGRADED_NIQE = 10.0
#: NIQE needs this many pixels a side.
NIQE_MIN_SIDE = 96
#: Faces too small for NIQE are measured in the photo's own pixels (their detection box), scale-free:
#: - blur: the grey face's mean |Laplacian| over its mean gradient magnitude. Clean faces-hires faces at long sides
#:   128 and 192 (faces of 42-115 px) read 0.16-0.25 (5th-95th percentile), the same faces blurred or resampled 4x
#:   0.04-0.12; sharp at or above the first value, degraded at or under the second, linear in between.
SMALL_SHARP_EDGES = (0.16, 0.12)
#: - blur seen at a common scale: the same edges measure of the face box shrunk to COARSE_SIDE px on its long side
#:   (boxes from COARSE_FROM px; smaller ones read as they are). In a larger face's own pixels, film grain and a scan's
#:   texture raise the edges measure of a soft face: the children of the scanned print ``gfpgan_00`` (box 184-201 px)
#:   read 0.17, as sharp as clean faces, and 0.127-0.134 shrunk to 100 px, where the 101 clean ffhq-1024 faces at
#:   long side 256 (boxes of about 190 px) read 0.138 and up (5th percentile 0.144), 50 of them at 384 and 512 0.148
#:   and up, and Blake Lively's sharp 250 px face 0.18. Sharp at or above the first value (just under the clean
#:   faces' least), degraded at or under the second (docs/benchmarks.md, "Blur at a common scale").
#:   Not under COARSE_FROM: a shrink by less than 1.5x is itself a slight blur (area resampling at a fractional
#:   factor); it read ffhq 01050's 105 px web face at long side 128 as blurred through and through, and the face
#:   then lost 0.97 dB to the network's face.
COARSE_SIDE = 100
COARSE_FROM = 150
COARSE_SHARP_EDGES = (0.137, 0.12)
#: - noise: Immerkaer's sigma, clean faces 1.7-3.9, grainy old photos' faces 4.4-6.6 (the large faces' NOISY_SIGMA
#:   is measured after the crop was resampled to the working size, which halves grain at these sizes).
SMALL_NOISY_SIGMA = (4.0, 6.0)
#: - compression: the mean step across JPEG's 8-pixel block borders over the mean step elsewhere. Clean faces read
#:   0.86-1.12, the same faces saved as JPEG (the eval's quality range) 1.19-1.74.
SMALL_BLOCKY = (1.15, 1.35)
JPEG_BLOCK = 8
#: - colour blur: the edges measure of the face's chroma (Cr and Cb, averaged). Web and phone pictures carry their
#:   colour at half resolution (JPEG's 4:2:0) or less after resizing, so their chroma is smooth where their luma may
#:   still read sharp; and a face enlarged from a smaller picture has both soft. The 101 clean ffhq-1024 faces at
#:   long sides 128, 192 and 256 read 0.165-0.36 (5th percentile 0.19-0.20), the same faces through the `web` task
#:   0.089-0.176, the demo photos' blurred, blocky web faces that every other measure read as sharp 0.09-0.11. The
#:   ramp ends low because the mildest web faces at 128 px gain nothing from the network: taken whole for their
#:   colour (ramp 0.18-0.14), ffhq 01050 lost 0.97 dB (docs/benchmarks.md, "Colour blur").
SMALL_SHARP_CHROMA = (0.16, 0.09)
#: ... counted only where the face has colour to measure: its chroma's mean gradient at least this share of its
#: luma's (clean colour faces read 0.08-0.35; black-and-white prints 0, where the measure is meaningless).
CHROMA_MIN_SHARE = 0.06
#: NIQE tells a sharp face from a blurred one only on faces this large (the side of the tight crop in photo
#: pixels). Smaller ones read high even when sharp: clean faces-hires faces at long side 256 (faces of 90-175 px)
#: scored NIQE 5.6-10.3 (5th-95th percentile), at 384 (140-260 px) 4.6-9.5, at 1024 (370-670 px) 3.8-5.8, and came
#: back smoothed (median detail kept 0.82 at 256). Under this size a face counts as blurred only as far as its
#: edges (SMALL_SHARP_EDGES) agree; above it the edges are less telling (clean faces at 1024 read 0.12-0.32,
#: blurred ones up to 0.17), NIQE more.
NIQE_TRUSTED_FROM = 320.0


#: The small-face measures (PixelMeasures) decide alone for faces whose crop with context is up to this many photo
#: pixels: where they were calibrated (faces at the 128 px network's size, crops up to 128 x DETAIL_MERGE_FROM).
#: A larger face cut enlarged for a larger network (the 256 px rung takes crops from 155 px) is measured as the
#: band merge measures it, at its own size: in its photo pixels, hair, moss and stubble around a sharp 160 px face
#: read as noise (two clean ffhq faces at long side 256 took 45% and 62% of the network's face).
PIXEL_GATE_MAX_SPAN = 128 * DETAIL_MERGE_FROM


def context_span(face_size: float) -> float:
    """The photo pixels a face's crop spans with its context: its tight crop (``face_size``) over CONTEXT_ZOOM.

    The one definition both the working size and the choice of network (hifacegan.pipeline.networks.suited) use.
    """
    return face_size / CONTEXT_ZOOM


def working_size(face_size: float, network_size: int) -> int:
    """The side at which a face of ``face_size`` photo pixels is cut: the network's size, or its own (capped).

    ``face_size`` is the side the weights' tight crop has in the photo; every face is cut with
    :data:`CONTEXT_ZOOM`'s context around it, so its crop spans ``face_size / CONTEXT_ZOOM`` photo pixels. When
    that span exceeds the network's size the face is cut at the span (band merge) rather than shrunk to the
    network: shrinking a 130 px face's 186 px context crop to 128 would lose detail the photo has.
    """
    span = context_span(face_size)
    if span <= network_size * DETAIL_MERGE_FROM:
        return network_size
    return int(min(round(span), MAX_WORKING_SIZE))


def context_template(template: np.ndarray, network_size: int, side: int) -> np.ndarray:
    """The weights' template (at ``network_size``) for a ``side`` crop with :data:`CONTEXT_ZOOM`'s context."""
    centre = network_size / 2.0
    return (centre + (np.asarray(template, dtype=np.float64) - centre) * CONTEXT_ZOOM) * (side / network_size)


def shrink(image: np.ndarray, size: int) -> np.ndarray:
    """Area-average ``image`` (H, W, C float32) to ``size`` x ``size``: the low band the network sees."""
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)


def enlarge(image: np.ndarray, size: int) -> np.ndarray:
    """Bicubic enlargement to ``size`` x ``size`` (the low band and the correction back at the face's size)."""
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_CUBIC)


def tight_part(crop: np.ndarray) -> np.ndarray:
    """The face itself in a crop cut with :data:`CONTEXT_ZOOM`'s context: its central tight crop (the part the
    weights were trained on, where every measure of a face is calibrated)."""
    side = crop.shape[0]
    inner = round(side * CONTEXT_ZOOM)
    start = (side - inner) // 2
    return crop[start : start + inner, start : start + inner]


def face_noise_sigma(crop: np.ndarray) -> float:
    """Immerkaer's noise sigma (0-255) of the face in ``crop`` (float RGB in [0, 1], cut with context).

    Measured on the face itself, not its context: hair, moss or fabric around a clean face read as grain (four clean
    FFHQ faces at long side 256 read sigma 4 or more over the whole crop, under 4 on the face, and were filtered).
    """
    from hifacegan.models.prefilter import estimate_noise_sigma

    return estimate_noise_sigma(to_uint8(tight_part(crop)))


def denoise(pixels: np.ndarray, sigma: float) -> np.ndarray:
    """``pixels`` (float RGB in [0, 1]) with noise of ``sigma`` (the face's, :func:`face_noise_sigma`) removed; the
    same array when the face is not noisy.

    Not noisy: sigma under ``NOISY_SIGMA[0]``, where non-local means would take skin texture and compression grain
    for noise (clean 1024 px faces-hires faces read 0.5-3.5; filtered from sigma 2, as the network's prefilter is,
    four of them lost a quarter of their detail). The one sigma decides for the face's crop and for the photo's
    window it is blended into, so a face kept whole is never filtered. The filter works on an 8-bit copy and only
    its change is applied, so a 16-bit face keeps its precision.
    """
    if sigma < NOISY_SIGMA[0]:
        return pixels
    quantised = to_uint8(pixels)
    h = DENOISE_STRENGTH * sigma
    filtered = cv2.fastNlMeansDenoisingColored(np.ascontiguousarray(quantised), None, h, h, 7, 21)
    return pixels + (filtered.astype(np.float32) - quantised.astype(np.float32)) / 255.0


def degradation(
    sigma: float, denoised: np.ndarray, pixels: PixelMeasures | None = None, face_size: float = math.inf
) -> float:
    """How degraded a face is, 0 (sharp and clean) to 1: the worse of its noise and its blur.

    ``sigma`` is the face's noise at the working size (:func:`face_noise_sigma` of its crop, the one the pipeline
    also filters with), ``denoised`` its crop with that noise removed, float RGB in [0, 1]. ``pixels`` are the
    measures of the face's own pixels in the photo (:class:`PixelMeasures`, its detection box) and ``face_size`` the
    side of its tight crop in photo pixels. Noise: from ``sigma`` (in the photo's own pixels Immerkaer's estimate
    reads skin texture, beards and hair across a face as noise: clean faces at long side 256 up to 8). Blur: NIQE of the
    denoised face; under :data:`NIQE_TRUSTED_FROM` px, where NIQE reads sharp faces as blurred, only as far as the
    face's edges agree (``pixels`` is needed only there). JPEG blocks do not count here, unlike for small faces: a
    face this large that is only blocky still has its detail, and the network's face took it away (on 21
    portraits at long side 384 saved as JPEG, face-box PSNR 33.6 dB as they came, 28.2 when blocks counted, 33.2
    without). Faces too small for NIQE count as degraded here; the pipeline measures those with
    :func:`small_face_degradation`.
    """
    from hifacegan.metrics import niqe

    # Measured on the face itself (the tight crop the weights were trained on), not the context cut around it:
    # the measures were calibrated there, and NIQE costs in proportion to the pixels.
    denoised = tight_part(denoised)
    if denoised.shape[0] < NIQE_MIN_SIDE:
        return 1.0
    noise = _ramp(sigma, *NOISY_SIGMA)
    blur = _ramp(niqe(to_uint8(denoised)), SHARP_NIQE, DEGRADED_NIQE)
    if pixels is not None and face_size < NIQE_TRUSTED_FROM:
        blur = min(blur, pixels.blur)
    return max(noise, blur)


@dataclass(frozen=True)
class PixelMeasures:
    """Measures of a face's own pixels (its detection box, in the photo), each a ratio or a level, not a sum.

    ``edges``: the grey face's mean |Laplacian| over its mean gradient magnitude (blur lowers it); ``sigma``:
    Immerkaer's noise estimate (0-255); ``blocks``: :func:`blockiness` on the photo's JPEG grid; ``chroma``: the
    edges measure of its colour (Cr and Cb), and ``colour`` the chroma's gradient over the grey face's (0 for a
    black-and-white face); ``coarse_edges``: the edges measure at a common scale (:func:`coarse_edges`, None for a
    box under COARSE_FROM px). Unlike NIQE they need no minimum size: they decide for faces at the network's size, and
    under NIQE_TRUSTED_FROM the edges check NIQE for larger ones (docs/benchmarks.md, "Large faces").
    """

    edges: float
    sigma: float
    blocks: float
    chroma: float = 0.0
    colour: float = 0.0
    coarse_edges: float | None = None

    @classmethod
    def of(cls, face: np.ndarray, origin: tuple[int, int] = (0, 0)) -> PixelMeasures:
        """Measure ``face`` (float RGB in [0, 1], at least 3 px a side) whose top-left is photo pixel ``origin``."""
        from hifacegan.models.prefilter import estimate_noise_sigma

        face = to_uint8(face)
        grey = cv2.cvtColor(face, cv2.COLOR_RGB2GRAY).astype(np.float32)
        edges, grey_gradient = edges_and_gradient(grey)
        chroma = cv2.cvtColor(face, cv2.COLOR_RGB2YCrCb)[..., 1:].astype(np.float32)
        (red_edges, red_gradient), (blue_edges, blue_gradient) = (
            edges_and_gradient(chroma[..., c]) for c in (0, 1)
        )
        colour = (red_gradient + blue_gradient) / 2 / max(grey_gradient, 1e-6)
        return cls(
            edges,
            estimate_noise_sigma(face),
            blockiness(grey, *origin),
            (red_edges + blue_edges) / 2,
            colour,
            coarse_edges(grey),
        )

    @property
    def blur(self) -> float:
        """0 (sharp) to 1 (blurred), from ``edges`` (SMALL_SHARP_EDGES) or, where it reads more, ``coarse_edges``
        (COARSE_SHARP_EDGES)."""
        blur = _ramp(self.edges, *SMALL_SHARP_EDGES)
        return blur if self.coarse_edges is None else max(blur, _ramp(self.coarse_edges, *COARSE_SHARP_EDGES))

    @property
    def noise(self) -> float:
        """0 (clean) to 1 (noisy), from ``sigma`` (SMALL_NOISY_SIGMA)."""
        return _ramp(self.sigma, *SMALL_NOISY_SIGMA)

    @property
    def blocking(self) -> float:
        """0 (no JPEG blocks) to 1 (blocky), from ``blocks`` (SMALL_BLOCKY)."""
        return _ramp(self.blocks, *SMALL_BLOCKY)

    @property
    def colour_blur(self) -> float:
        """0 (sharp colour, or none to measure) to 1 (colour smoothed away), from ``chroma`` (SMALL_SHARP_CHROMA)."""
        return _ramp(self.chroma, *SMALL_SHARP_CHROMA) if self.colour >= CHROMA_MIN_SHARE else 0.0

    @property
    def degradation(self) -> float:
        """How degraded a face this small looks: the worst of its blur, noise, blocking and colour blur."""
        return max(self.blur, self.noise, self.blocking, self.colour_blur)


def small_face_degradation(face: np.ndarray, origin: tuple[int, int] = (0, 0)) -> float:
    """How degraded a face too small for NIQE looks, 0 (sharp and clean) to 1, from the photo's own pixels.

    ``face`` is the face's detection box cut from the photo, float RGB in [0, 1]; ``origin`` the photo pixel
    (x, y) of its top-left corner (JPEG's block grid is the photo's). The worst of blur, noise, JPEG blocking and
    colour blur (:class:`PixelMeasures`; SMALL_SHARP_EDGES, SMALL_NOISY_SIGMA, SMALL_BLOCKY, SMALL_SHARP_CHROMA)
    decides. Why: the lite networks were trained on degraded faces and "restore" a sharp small face too, smoothing
    away wrinkles and skin texture; on clean faces-hires faces at long side 128 the network's face scored 29.5 dB
    against the untouched input (FID 63), while old photos whose faces are blurred, noisy or blocky gain from it.
    """
    if min(face.shape[:2]) < 3:
        return 1.0
    return PixelMeasures.of(face, origin).degradation


def coarse_edges(grey: np.ndarray) -> float | None:
    """The edges measure of a grey face box shrunk to COARSE_SIDE px on its long side; None for a box under
    COARSE_FROM px."""
    from hifacegan.degradations import fit_long_side

    if max(grey.shape) < COARSE_FROM:
        return None
    return edges_and_gradient(fit_long_side(grey, COARSE_SIDE, least=3))[0]


def edges_and_gradient(plane: np.ndarray) -> tuple[float, float]:
    """A float plane's mean |Laplacian| over its mean gradient magnitude (scale-free; blur lowers it), and that
    mean gradient, both over its interior."""
    laplacian = np.abs(cv2.Laplacian(plane, cv2.CV_32F))[1:-1, 1:-1].mean()
    gradient = float(
        np.hypot(cv2.Sobel(plane, cv2.CV_32F, 1, 0), cv2.Sobel(plane, cv2.CV_32F, 0, 1))[1:-1, 1:-1].mean()
    )
    return float(laplacian / max(gradient, 1e-6)), gradient


def _ramp(value: float, clean: float, degraded: float) -> float:
    """0 at ``clean``, 1 at ``degraded`` (either may be the larger), linear in between, clipped."""
    return float(np.clip((value - clean) / (degraded - clean), 0.0, 1.0))


def blockiness(grey: np.ndarray, x0: int, y0: int) -> float:
    """Mean absolute step across JPEG's block borders over the mean step elsewhere, for a grey crop whose top-left
    is photo pixel (x0, y0) (the borders lie on the photo's 8-pixel grid); about 1 for an uncompressed picture."""
    across_columns = np.abs(np.diff(grey, axis=1))
    across_rows = np.abs(np.diff(grey, axis=0))
    on_columns = (np.arange(x0, x0 + across_columns.shape[1]) % JPEG_BLOCK) == JPEG_BLOCK - 1
    on_rows = (np.arange(y0, y0 + across_rows.shape[0]) % JPEG_BLOCK) == JPEG_BLOCK - 1
    if not (on_columns.any() and on_rows.any() and (~on_columns).any() and (~on_rows).any()):
        return 1.0
    border = across_columns[:, on_columns].mean() + across_rows[on_rows].mean()
    inside = across_columns[:, ~on_columns].mean() + across_rows[~on_rows].mean()
    return float(border / max(float(inside), 1e-6))


def to_uint8(face: np.ndarray) -> np.ndarray:
    """Float RGB in [0, 1] as 8-bit, for the filters and measures that work on 8-bit pictures."""
    return np.clip(face * 255.0 + 0.5, 0, 255).astype(np.uint8)
