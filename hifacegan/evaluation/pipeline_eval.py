"""``hifacegan eval --pipeline``: score what users get, whole photos through detection, alignment and paste-back.

The reference mode (:mod:`hifacegan.evaluation.runner`) scores networks on aligned crops at the network's size,
which says nothing about a 500 px face in a photo. Here every clean image is scaled to a long side (``size``),
degraded whole (``--task``; ``none`` keeps it clean), and each method returns a whole photo:

- ``degraded input``: the photo as it came;
- ``classical (NLM + bicubic)``: the report's classical filter chain on the whole photo;
- each ``--weights``: the project's :class:`~hifacegan.pipeline.Renovator` at that weights' own end of the slider.

Scores are taken in the box of the clean image's largest face (found by the pipeline's own detector): PSNR and
SSIM against the clean box, FED and LLE (dlib, measured at that box), NIQE of the box, ``detail_kept`` (mean
absolute Laplacian of the grey box, output over clean: 1 keeps the clean face's detail, under 1 loses it, above 1
adds some) and FID over the boxes (resized to one size) when there are at least :data:`MIN_FID_FACES`. A face the
pipeline did not find (no renovated face overlapping the box) counts in ``faces missed`` and is still scored.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from hifacegan.degradations import fit_long_side
from hifacegan.evaluation._baseline import classical_restore
from hifacegan.evaluation._files import find_images, read_rgb
from hifacegan.evaluation._methods import BASELINE, DEGRADED
from hifacegan.evaluation._report import make_row, markdown_table

#: FID needs enough faces to mean something; below this the column is n/a and a note says why.
MIN_FID_FACES = 50
#: Side the face boxes are resized to for FID (Inception resizes again to 299 inside).
FID_SIDE = 256
#: ``--task none``: the photo is scored clean (the pipeline must not make a good photo worse).
NO_TASK = "none"
#: PSNR of a face that came back identical is infinite; it is recorded as this, so means and medians stay numbers.
PSNR_IDENTICAL = 100.0


@dataclass
class PipelineEvalConfig:
    data: Path
    out: Path
    task: str
    size: int = 1024
    seed: int = 0
    limit: int | None = None
    weights: tuple[str, ...] = ()
    device: str = "auto"
    precision: str = "auto"
    batch_size: int | None = None  # faces per network batch (None: the pipeline's default for the device)
    grain: str = "keep"  # the photo's grain laid back over renovated faces (keep) or not (remove)
    # scratches and dust found and filled around each face (faces), over the photo (photo), or not (off)
    damage: str = "off"
    progress: bool = True


def detail_measure(image: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """Mean absolute Laplacian of the grey ``box`` of ``image``: how much fine detail it holds."""
    x0, y0, x1, y1 = box
    grey = cv2.cvtColor(np.ascontiguousarray(image[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY).astype(np.float32)
    return float(np.abs(cv2.Laplacian(grey, cv2.CV_32F)).mean())


def damage_scores(
    output: np.ndarray, clean: np.ndarray, mask: np.ndarray, box: tuple[int, int, int, int]
) -> dict:
    """In the face's box: the mean error inside the damage mask, and PSNR and detail kept outside it (the mask
    grown by 2 px, so a stroke's faint rim counts as inside)."""
    x0, y0, x1, y1 = box
    inside = mask[y0:y1, x0:x1]
    grown = cv2.dilate(inside.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    error = np.abs(output[y0:y1, x0:x1].astype(np.float64) - clean[y0:y1, x0:x1])
    outside_mse = float((error[~grown] ** 2).mean()) if (~grown).any() else 0.0
    return {
        "mask_error": float(error[inside].mean()) if inside.any() else float("nan"),
        "outside_psnr": min(PSNR_IDENTICAL, 10 * math.log10(255**2 / max(outside_mse, 1e-10))),
    }


def _overlaps(box: tuple[int, int, int, int], other: tuple[float, float, float, float]) -> bool:
    return min(box[2], other[2]) > max(box[0], other[0]) and min(box[3], other[3]) > max(box[1], other[1])


def _share(values: list[float], reference: list[float]) -> float | None:
    """Mean of ``values`` over mean of ``reference``, over the images where both are finite."""
    pairs = [(v, r) for v, r in zip(values, reference, strict=True) if math.isfinite(v) and math.isfinite(r)]
    total = sum(r for _, r in pairs)
    return sum(v for v, _ in pairs) / total if pairs and total > 0 else None


def _median(values: list[float]) -> float | None:
    """The median of the finite values (the runner's ``finite_mean`` for the means), None when there are none."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.median(finite)) if finite else None


@dataclass
class _Tally:
    """The scores gathered so far, per method: each metric's values, faces missed, and face boxes for FID."""

    methods: list[str]
    keys: list[str]
    scores: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    missed: dict[str, int] = field(default_factory=dict)
    boxes: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.scores = {m: {k: [] for k in self.keys} for m in self.methods}
        self.missed = dict.fromkeys(self.methods, 0)
        self.boxes = {m: [] for m in [*self.methods, "clean"]}


def evaluate_pipeline(config: PipelineEvalConfig) -> list[dict]:
    """Pipeline-mode evaluation; writes ``metrics.json``, ``report.md`` and ``per_image.json`` under ``out``."""
    from hifacegan.degradations import draws_damage, get_task
    from hifacegan.devices import select_device
    from hifacegan.metrics import FaceAnalyzer, MetricUnavailable
    from hifacegan.pipeline import Renovator

    task = NO_TASK if config.task == NO_TASK else get_task(config.task).name
    if config.size < 64:
        raise ValueError(f"--size must be at least 64 px for --pipeline, got {config.size}")
    started = time.perf_counter()
    device = select_device(config.device)
    renovators = [
        Renovator(
            spec,
            device,
            precision=config.precision,
            batch_size=config.batch_size,
            grain=config.grain,
            damage=config.damage,
        )
        for spec in config.weights
    ]
    detector = renovators[0].detector if renovators else Renovator("identity", device).detector
    try:
        analyzer: FaceAnalyzer | None = FaceAnalyzer()
        face_error = None
    except MetricUnavailable as exc:
        analyzer, face_error = None, str(exc)
    damaged = task != NO_TASK and draws_damage(task)
    keys = ["psnr", "ssim", "fed", "lle", "niqe", "detail_kept"] + (
        ["mask_error", "outside_psnr"] if damaged else []
    )
    tally = _Tally([DEGRADED, BASELINE] + [r.weights_name for r in renovators], keys)
    files, names = find_images(config.data, config.limit)
    images, notes, no_face = [], [], []
    for path, name in tqdm(list(zip(files, names, strict=True)), desc="photos", disable=not config.progress):
        clean = fit_long_side(read_rgb(path), config.size)
        faces = detector(clean)
        if not faces:
            no_face.append(name)
            continue
        box = max(faces, key=lambda f: f.size).pixel_box(clean.shape)
        outputs, paths, mask = _outputs(clean, box, name, task, config.seed, renovators, tally)
        images.append(
            _score_photo(clean, box, name, outputs, paths, mask if damaged else None, analyzer, tally)
        )
    if no_face:
        notes.append(
            f"no face found in {len(no_face)} clean image(s), so there is no box to score: {', '.join(no_face[:10])}"
        )
    if face_error:
        notes.append(f"FED/LLE unavailable: {face_error}")
    return _report(config, task, device, tally, images, notes, time.perf_counter() - started, damaged)


def _report(
    config: PipelineEvalConfig,
    task: str,
    device: torch.device,
    tally: _Tally,
    images: list[dict],
    notes: list[str],
    elapsed: float,
    damaged: bool,
) -> list[dict]:
    """Rows, FID and the three report files (metrics.json, report.md, per_image.json) under ``config.out``."""
    from hifacegan.evaluation.runner import run_details, write_reports

    rows = _rows(tally, len(images), _fids(tally.boxes, tally.methods, device, notes))
    notes.append(
        "scored in the box of the clean image's largest face; detail kept is the median over the faces "
        f"(the others are means); faces missed counts faces the pipeline did not renovate; a face returned "
        f"identical to the clean one counts as PSNR {PSNR_IDENTICAL:g} dB"
    )
    what = {"mode": "pipeline", "task": task, "size": config.size, "seed": config.seed, "grain": config.grain}
    what["damage"] = config.damage
    what["data"] = str(config.data)
    summary = _summary(tally, damaged)
    details = run_details(what, device, elapsed, tally.methods, notes, images, summary=summary)
    title = (
        f"HiFaceGAN pipeline evaluation: task {task}, {len(images)} photos at long side {config.size} px, "
        f"seed {config.seed}"
        + (", grain removed" if config.grain == "remove" else "")
        + (f", damage filled ({config.damage})" if config.damage != "off" else "")
    )
    write_reports(
        config.out, rows, details, markdown_table(rows, title, notes + [f"wall time {elapsed:.0f} s"])
    )
    return rows


def _outputs(
    clean: np.ndarray,
    box: tuple[int, int, int, int],
    name: str,
    task: str,
    seed: int,
    renovators: list,
    tally: _Tally,
) -> tuple[dict[str, np.ndarray], dict[str, dict | None], np.ndarray | None]:
    """Every method's whole photo for one clean image degraded with ``task``: the degraded input, the classical
    baseline and each renovator at its own end of the slider; each renovator's path for the scored face (None and
    a miss in ``tally`` when it renovated no face there); and the damage mask the task drew (or None)."""
    from hifacegan.degradations import degrade_with_mask, rng_for

    degraded, mask = clean, None
    if task != NO_TASK:
        degraded, mask, _ = degrade_with_mask(clean, task, rng=rng_for(seed, name))
    outputs = {DEGRADED: degraded, BASELINE: classical_restore(degraded)}
    paths = {}
    for renovator in renovators:
        end = 1.0 if renovator.card is not None and renovator.card.role == "fidelity" else 0.0
        result = renovator(degraded, fidelity=end)
        hit = [f for f in result.faces if f.renovated and _overlaps(box, f.box)]
        if not hit:
            tally.missed[renovator.weights_name] += 1
        paths[renovator.weights_name] = hit[0].path if hit else None
        outputs[renovator.weights_name] = result.image
    return outputs, paths, mask


def _score_photo(
    clean: np.ndarray,
    box: tuple[int, int, int, int],
    name: str,
    outputs: dict[str, np.ndarray],
    paths: dict[str, dict | None],
    mask: np.ndarray | None,
    analyzer,
    tally: _Tally,
) -> dict:
    """Score every method's output in the face's ``box`` against ``clean``; adds to ``tally`` and returns the
    photo's row of per_image.json."""
    from hifacegan.metrics import fed, lle, niqe, psnr, ssim, to_batch

    reference = analyzer.measure_at(clean, box) if analyzer is not None else None
    clean_detail = detail_measure(clean, box)
    x0, y0, x1, y1 = box
    target = clean[y0:y1, x0:x1]
    tally.boxes["clean"].append(cv2.resize(target, (FID_SIDE, FID_SIDE), interpolation=cv2.INTER_AREA))
    detail = {"name": name, "box": list(box), "paths": paths, "methods": {}}
    for method, output in outputs.items():
        crop = output[y0:y1, x0:x1]
        pair = (to_batch(crop[None]), to_batch(target[None]))
        values = {
            "psnr": min(float(psnr(*pair)[0]), PSNR_IDENTICAL),
            "ssim": float(ssim(*pair)[0]) if min(crop.shape[:2]) >= 11 else float("nan"),
            "niqe": niqe(crop) if min(crop.shape[:2]) >= 96 else float("nan"),
            "detail_kept": detail_measure(output, box) / max(clean_detail, 1e-6),
            "fed": float("nan"),
            "lle": float("nan"),
            **(damage_scores(output, clean, mask, box) if mask is not None else {}),
        }
        if reference is not None:
            measure = analyzer.measure_at(output, box)
            values["fed"] = fed(reference, measure)
            values["lle"] = lle(reference, measure, output.shape[1])
        for key, value in values.items():
            tally.scores[method][key].append(value)
        detail["methods"][method] = {
            k: (round(v, 4) if math.isfinite(v) else None) for k, v in values.items()
        }
        tally.boxes[method].append(cv2.resize(crop, (FID_SIDE, FID_SIDE), interpolation=cv2.INTER_AREA))
    return detail


def _rows(tally: _Tally, count: int, fids: dict) -> list[dict]:
    """One report row per method: means of the scores, the median detail kept, FID, faces missed."""
    from hifacegan.evaluation.runner import finite_mean

    rows = []
    for method in tally.methods:
        scores = tally.scores[method]
        rows.append(
            make_row(
                method,
                n=count,
                faces_missed=tally.missed[method] if method not in (DEGRADED, BASELINE) else None,
                psnr=finite_mean(scores["psnr"]),
                ssim=finite_mean(scores["ssim"]),
                fed=finite_mean(scores["fed"]),
                lle=finite_mean(scores["lle"]),
                niqe=finite_mean(scores["niqe"]),
                detail_kept=_median(scores["detail_kept"]),
                fid=fids.get(method),
            )
        )
    return rows


def _summary(tally: _Tally, damaged: bool) -> dict:
    """per_image.json's summary per method: medians, the least detail kept, and for damage tasks the mask's scores."""
    from hifacegan.evaluation.runner import finite_mean

    summary = {}
    for m in tally.methods:
        scores = tally.scores[m]
        summary[m] = {
            "psnr_median": _median(scores["psnr"]),
            "detail_kept_median": _median(scores["detail_kept"]),
            "detail_kept_min": min((v for v in scores["detail_kept"] if math.isfinite(v)), default=None),
        }
        if damaged:
            summary[m]["mask_error"] = finite_mean(scores["mask_error"])
            summary[m]["mask_error_share_of_input"] = _share(
                scores["mask_error"], tally.scores[DEGRADED]["mask_error"]
            )
            summary[m]["outside_psnr"] = finite_mean(scores["outside_psnr"])
    return summary


def _fids(
    boxes: dict[str, list[np.ndarray]], methods: list[str], device: torch.device, notes: list[str]
) -> dict[str, float]:
    """FID of each method's face boxes against the clean boxes, or a note saying why there is none."""
    from hifacegan.metrics import InceptionFeatures, MetricUnavailable, fid_from_features, to_batch

    if len(boxes["clean"]) < MIN_FID_FACES:
        notes.append(f"FID needs at least {MIN_FID_FACES} faces; {len(boxes['clean'])} were scored")
        return {}
    try:
        inception = InceptionFeatures(device=device)
    except MetricUnavailable as exc:
        notes.append(f"FID unavailable: {exc}")
        return {}

    def features(crops: list[np.ndarray]) -> np.ndarray:
        with torch.inference_mode():
            return np.concatenate(
                [inception(to_batch(np.stack(crops[i : i + 16]))) for i in range(0, len(crops), 16)]
            )

    reference = features(boxes["clean"])
    # Identical sets give a distance of a few 1e-14 either side of zero: a distance is never negative.
    return {m: max(0.0, fid_from_features(reference, features(boxes[m]))) for m in methods}
