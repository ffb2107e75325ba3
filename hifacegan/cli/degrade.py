"""``hifacegan degrade``: write degraded copies of clean faces, reproducibly, as lossless PNGs."""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from hifacegan.cli._args import at_least, task_name

_DESCRIPTION = """\
Degrade every image in IN_DIR with one of the HiFaceGAN paper's tasks and write the results to OUT_DIR.

Each output keeps its input's relative path and stem with a .png extension (faces/0001.jpg ->
OUT_DIR/faces/0001.png): PNG is lossless, so the degradation is exactly what was written. The result for a
file depends only on --seed, --task, --size and the file's name (its path relative to IN_DIR, without the
extension), never on the order of files or on which other files are present, and the same command writes the
same bytes again. With --size, this matches what FaceDegradationDataset(train=False) produces for the file.
Grayscale, RGBA, CMYK and 16-bit images are converted to 8-bit RGB; unreadable files are skipped and counted.
With --masks, each output's damage mask is written beside it in MASKS_DIR under the same name: a grey PNG, 255
where the damage or old task drew a scratch, crack, speck or fibre and 0 elsewhere (all 0 for the other tasks).
"""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from hifacegan.degradations import TASKS

    tasks = "\n".join(f"  {name:<10} {task.summary}" for name, task in TASKS.items())
    parser = subparsers.add_parser(
        "degrade",
        help="degrade clean images with the paper's tasks (seeded, lossless output)",
        description=_DESCRIPTION,
        epilog=f"tasks (recipes are for 512 px; blur and mosaic sizes scale with the width):\n{tasks}\n\n"
        "example: hifacegan degrade --task full --seed 0 --size 512 clean/ degraded/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "in_dir", metavar="IN_DIR", type=Path, help="folder of clean images (searched recursively)"
    )
    parser.add_argument(
        "out_dir", metavar="OUT_DIR", type=Path, help="folder for the degraded PNGs (created)"
    )
    parser.add_argument(
        "--task", type=task_name, default="full", help="degradation task (default: full); see the list below"
    )
    parser.add_argument("--seed", type=at_least(0), default=0, help="base seed (default: 0)")
    parser.add_argument(
        "--size",
        type=at_least(8, "pixels"),
        default=None,
        help="centre-crop to a square and resize to SIZE x SIZE before degrading (the model's input size); "
        "default: keep each image's size",
    )
    parser.add_argument(
        "--workers",
        type=at_least(0),
        default=0,
        help="processes to use (default 0: one per CPU core, at most 8, for 64 files or more; 1: no extra "
        "processes); the output is the same whatever the number",
    )
    parser.add_argument(
        "--skip-existing", action="store_true", help="leave outputs that already exist alone (resume a run)"
    )
    parser.add_argument(
        "--masks",
        metavar="MASKS_DIR",
        type=Path,
        default=None,
        help="also write each image's damage mask there, under the output's name (grey PNG, 255 = damaged); "
        "for training and scoring the damage detector",
    )
    return parser


# (source, target, name, task, seed, size, mask target or None)
Job = tuple[str, str, str, str, int, int | None, str | None]


def _degrade_one(job: Job) -> tuple[str, str | None]:
    """Read, degrade and write one file (and its mask); returns (name, error or None). Runs in workers."""
    import numpy as np

    from hifacegan.data.files import ImageReadError, read_rgb8, write_png_atomic
    from hifacegan.degradations import degrade_with_mask, fit_to_size, rng_for

    source, target, name, task, seed, size, mask_target = job
    try:
        image, _ = read_rgb8(source)
    except ImageReadError as error:
        return name, error.reason
    if size is not None:
        image = fit_to_size(image, size)
    degraded, mask, _ = degrade_with_mask(image, task, rng=rng_for(seed, name))
    if mask_target is not None:  # the mask first: an image without its mask never looks complete on resume
        write_png_atomic(Path(mask_target), np.where(mask, 255, 0).astype(np.uint8))
    write_png_atomic(Path(target), degraded)
    return name, None


def _init_worker() -> None:
    # One process per core already. Only safe in a fresh (spawned) process: in a forked child, setNumThreads
    # deadlocks once the parent has used OpenCV's pthreads pool.
    import cv2

    cv2.setNumThreads(1)


def _plan(args: argparse.Namespace) -> tuple[list[Job], int]:
    """The jobs to run, and how many outputs already exist and are kept (``--skip-existing``)."""
    from hifacegan.data.files import image_key, list_images

    in_dir: Path = args.in_dir.expanduser()
    out_dir: Path = args.out_dir.expanduser()
    masks_dir: Path | None = args.masks.expanduser() if args.masks is not None else None
    if in_dir.exists() and out_dir.exists() and in_dir.resolve() == out_dir.resolve():
        raise ValueError(
            "OUT_DIR is IN_DIR: degraded PNGs would overwrite the clean images; pick another folder"
        )
    if masks_dir is not None and masks_dir.resolve() in (in_dir.resolve(), out_dir.resolve()):
        raise ValueError(
            "MASKS_DIR must be a folder of its own: masks share the outputs' names and would overwrite them"
        )
    files = list_images(in_dir, what="input folder", exclude=out_dir)
    if masks_dir is not None:
        files = [path for path in files if masks_dir.resolve() not in path.resolve().parents]
    jobs, seen, existing = [], {}, 0
    for path in files:
        name = image_key(path, in_dir)
        if name in seen:
            raise ValueError(
                f"{seen[name].name} and {path.name} in {path.parent} would both be written as {name}.png; "
                "rename or remove one"
            )
        seen[name] = path
        target = out_dir / f"{name}.png"
        mask_target = masks_dir / f"{name}.png" if masks_dir is not None else None
        if args.skip_existing and target.exists() and (mask_target is None or mask_target.exists()):
            existing += 1
            continue
        jobs.append(
            (str(path), str(target), name, args.task, args.seed, args.size, mask_target and str(mask_target))
        )
    return jobs, existing


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    try:
        jobs, existing = _plan(args)
    except (OSError, ValueError) as error:
        print(f"hifacegan degrade: error: {error}", file=sys.stderr)
        return 2
    args.out_dir.expanduser().mkdir(parents=True, exist_ok=True)
    if args.masks is not None:
        args.masks.expanduser().mkdir(parents=True, exist_ok=True)
    # Starting a worker costs about a second (fresh interpreter): not worth it for a handful of files.
    workers = args.workers or (1 if len(jobs) < 64 else min(8, os.cpu_count() or 1))
    workers = max(1, min(workers, len(jobs)))
    failures: list[tuple[str, str]] = []
    progress = tqdm(total=len(jobs), desc=f"degrade {args.task}", unit="img", disable=not jobs)
    try:
        if workers == 1:
            for name, error in map(_degrade_one, jobs):
                if error is not None:
                    failures.append((name, error))
                progress.update()
        else:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker) as pool:
                for name, error in pool.map(
                    _degrade_one, jobs, chunksize=max(1, min(16, len(jobs) // (4 * workers)))
                ):
                    if error is not None:
                        failures.append((name, error))
                    progress.update()
    except OSError as error:  # writing failed (disk full, permissions): nothing half-written is left behind
        print(f"hifacegan degrade: error: cannot write to {args.out_dir}: {error}", file=sys.stderr)
        return 1
    finally:
        progress.close()
    written = len(jobs) - len(failures)
    kept = f"; kept {existing} existing" if existing else ""
    masks = f" and their damage masks to {args.masks}" if args.masks is not None else ""
    print(
        f"wrote {written} degraded PNGs ({args.task}, seed {args.seed}) to {args.out_dir}{masks}{kept}",
        file=sys.stderr,
    )
    if failures:
        print(f"skipped {len(failures)} unreadable files:", file=sys.stderr)
        for name, error in failures[:10]:
            print(f"  {name}: {error}", file=sys.stderr)
        if len(failures) > 10:
            print(f"  ... and {len(failures) - 10} more", file=sys.stderr)
    return 1 if jobs and written == 0 else 0
