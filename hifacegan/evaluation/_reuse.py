"""``hifacegan eval --reuse REPORT``: keep the rows of an earlier report on the same inputs.

The degraded input and the classical baseline are deterministic functions of the files, task, size and seed, and
weights already scored need not be scored again: :func:`load_reused` checks that an earlier report describes the
very same inputs (their pixels' sha256, or the same PSNR within OpenCV's last-bit SIMD differences) and returns
its rows, which :meth:`ReusedRows.merge` combines with the methods scored now.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hifacegan.evaluation._methods import BASELINE, DEGRADED
from hifacegan.metrics import psnr, to_batch


@dataclass
class ReusedRows:
    """An earlier report's rows, per-image details and notes, checked to describe the same inputs."""

    report: Path
    rows: list[dict]
    images: list[dict]
    notes: list[str]

    def merge(self, rows: list[dict], images: list[dict]) -> tuple[list[dict], str]:
        """This run's rows and per-image details merged into the earlier ones, and a note on what was kept.

        Earlier rows keep their places; a method scored again here replaces its old row. ``images`` (this run's
        per-image details, in the same order) take the earlier methods' values in place.
        """
        fresh = {row["method"]: row for row in rows}
        kept = [row["method"] for row in self.rows if row["method"] not in fresh]
        merged = [fresh.pop(row["method"], row) for row in self.rows] + list(fresh.values())
        for detail, old in zip(images, self.images, strict=True):
            detail["methods"] = {**old["methods"], **detail["methods"]}
        note = f"Rows reused from {self.report} (same inputs, task, size and seed): {', '.join(kept)}."
        return merged, note


def inputs_digest(images: list[np.ndarray]) -> str:
    """sha256 of the degraded inputs: two runs that agree on it scored the very same pixels."""
    import hashlib

    digest = hashlib.sha256()
    for image in images:
        digest.update(repr(image.shape).encode())
        digest.update(np.ascontiguousarray(image).tobytes())
    return digest.hexdigest()


@dataclass
class EvalInputs:
    """What this evaluation scores: file keys, the sha256 of the degraded pixels, and the image pairs."""

    names: list[str]
    sha256: str
    clean: list[np.ndarray]
    degraded: list[np.ndarray]


def load_reused(
    report: Path, *, task: str, size: int, seed: int, data: Path, inputs: EvalInputs
) -> ReusedRows:
    """The rows of an earlier report on the same inputs (files, task, size, seed and pixels).

    The degraded input and the classical baseline are deterministic functions of those, and weights already
    scored need not be scored again, so adding one weights file to a report costs that file's share of the
    time, not the whole table's. Anything that differs is refused rather than mixed in, except the last-bit
    differences OpenCV's per-CPU SIMD code paths leave in a resize or blur (see :func:`_inputs_agree`).
    """
    import json

    try:
        rows = json.loads((report / "metrics.json").read_text(encoding="utf-8"))
        details = json.loads((report / "per_image.json").read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"--reuse {report}: {error.filename} is missing; point it at the --out folder of an "
            "earlier `hifacegan eval` run"
        ) from None
    except (OSError, ValueError) as error:
        raise ValueError(f"--reuse {report}: cannot read its reports ({error})") from None
    try:
        return _reusable_rows(report, rows, details, {"task": task, "size": size, "seed": seed}, data, inputs)
    except (KeyError, TypeError, AttributeError) as error:
        raise ValueError(
            f"--reuse {report}: its metrics.json or per_image.json is not an eval report ({error!r})"
        ) from None


def _reusable_rows(
    report: Path,
    rows: list[dict],
    details: dict,
    wanted: dict,
    data: Path,
    inputs: EvalInputs,
) -> ReusedRows:
    names, inputs_sha256 = inputs.names, inputs.sha256
    found = {key: details.get(key) for key in wanted}
    if found != wanted:
        raise ValueError(f"--reuse {report} was run with {found}, this evaluation uses {wanted}")
    if details.get("fed_lle_at") != FED_LLE_AT:
        raise ValueError(
            f"--reuse {report} measured FED and LLE where dlib detected a face in each method's image (before "
            "they were measured at the clean face's box); run that evaluation again without --reuse"
        )
    files = [image.get("file") for image in details.get("images", [])]
    if files != names:
        raise ValueError(
            f"--reuse {report} scored {len(files)} images, this evaluation has {len(names)} "
            "(or different files): use the same --data and --limit"
        )
    recorded = details.get("inputs_sha256")
    extra_notes = []
    if recorded is not None and recorded != inputs_sha256:
        agreement = _inputs_agree(details["images"], inputs.clean, inputs.degraded)
        if agreement is None:
            raise ValueError(
                f"--reuse {report} scored other pixels (inputs sha256 {recorded[:12]}…, here "
                f"{inputs_sha256[:12]}…): another --data folder or changed files"
            )
        extra_notes.append(
            f"Inputs differ from those of the reused rows ({report}) in their last bits only: {agreement}."
        )
    if recorded is None and Path(details["data"]).resolve() != Path(data).resolve():
        raise ValueError(f"--reuse {report} evaluated {details['data']}, not {data}")
    by_method = {row.get("method"): row for row in rows}
    missing = [m for m in (DEGRADED, BASELINE) if m not in by_method]
    if missing:
        raise ValueError(f"--reuse {report} has no rows for {missing}")
    for image in details["images"]:
        absent = [m for m in by_method if m not in image["methods"]]
        if absent:
            raise ValueError(f"--reuse {report}: per_image.json lacks {absent} for {image['file']}")
    images = [{**image, "methods": dict(image["methods"])} for image in details["images"]]
    notes = [str(note) for note in details.get("notes", [])] + extra_notes
    return ReusedRows(report, list(rows), images, notes)


# Where FED and LLE measure a method's image, recorded in per_image.json so that --reuse never mixes reports made
# the other way (each method measured where dlib detected a face in its own image; see hifacegan.metrics._identity).
FED_LLE_AT = "reference face box"

# How far an input's PSNR may move before a reused row no longer describes it: OpenCV's resize and blur kernels
# round differently on CPUs with other SIMD units, which moves a few pixels by one level (measured: 0.002 dB at
# most over faces-val's 500 inputs); a changed or re-encoded photo moves it by far more.
_REUSE_PSNR_TOLERANCE_DB = 0.01


def _inputs_agree(images: list[dict], clean: list[np.ndarray], degraded: list[np.ndarray]) -> str | None:
    """Whether each degraded input scores the PSNR the earlier report recorded for it, within the tolerance.

    Returns a summary for the report's notes when they agree, None when any image does not.
    """
    moved = []
    for image, target, noisy in zip(images, clean, degraded, strict=True):
        recorded = image["methods"][DEGRADED]["psnr"]  # reports write an identical pair's inf as None
        here = psnr(to_batch(noisy), to_batch(target)).item()
        if recorded is None and math.isinf(here):
            continue  # an identical pair, then and now
        if recorded is None or not math.isfinite(here):
            return None
        delta = abs(here - recorded)
        if delta > _REUSE_PSNR_TOLERANCE_DB:
            return None
        moved.append(delta)
    changed = sum(delta > 1e-4 for delta in moved)
    return (
        f"the input PSNR of {changed} of {len(images)} images moved, by {max(moved, default=0.0):.4f} dB at most "
        f"(tolerance {_REUSE_PSNR_TOLERANCE_DB} dB)"
    )
