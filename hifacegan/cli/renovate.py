"""``hifacegan renovate IN... -o OUT``: renovate every face of whole photos, files or folders.

Exit codes: 0 every photo written (photos without faces are copied unchanged), 1 some photos failed (the others
are written), 2 bad arguments or nothing to do, 3 the weights or the device cannot be used.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

from hifacegan.cli._args import PRECISION_CHOICES, PRECISION_HELP, at_least

# the choices as the library names them (hifacegan.face.grain.GRAIN_CHOICES), without importing numpy and OpenCV
# before --help
GRAIN_CHOICES = ("keep", "remove")

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, EXIT_SETUP = 0, 1, 2, 3
STAGES = ("decode", "detect", "align", "network", "paste", "encode")


def add_parser(subparsers) -> argparse.ArgumentParser:
    from hifacegan.imageio import FORMATS

    parser = subparsers.add_parser(
        "renovate",
        help="renovate every face of whole photos",
        description=(
            "Detect every face in each photo, renovate it with HiFaceGAN and blend it back seamlessly. "
            "Everything away from the faces stays bit-identical; alpha, 16-bit depth, EXIF orientation and the "
            "colour profile are kept."
        ),
        epilog=(
            "Examples:\n"
            "  hifacegan renovate old.jpg -o old-renovated.jpg\n"
            "  hifacegan renovate scans/ -o renovated/ --fidelity 0.8 --json summary.json\n"
            f"Photo formats: {', '.join(sorted(set(FORMATS.values())))}.\n"
            "Exit codes: 0 done, 1 some photos failed, 2 bad arguments, 3 weights or device unusable."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_files(parser)
    _add_choice_of_faces(parser)
    _add_look(parser)
    _add_running(parser)
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar, errors only")
    return parser


def _add_files(parser: argparse.ArgumentParser) -> None:
    """What goes in and what comes out: photos, the output, the summary, face crops, JPEG quality."""
    parser.add_argument(
        "inputs", nargs="+", metavar="IN", help="photos, or folders of photos (searched recursively)"
    )
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help="output photo (one input file, with an image extension) or output folder (created if missing)",
    )
    parser.add_argument(
        "--save-faces", type=Path, default=None, metavar="DIR", help="also save each renovated face crop"
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        metavar="SUMMARY",
        help="write a JSON summary (faces, boxes, timings)",
    )
    parser.add_argument(
        "--quality", type=int, default=95, help="JPEG/WebP quality of the output (default 95)"
    )


def _add_look(parser: argparse.ArgumentParser) -> None:
    """How renovated faces look: the weights, the fidelity slider, damage and grain."""
    parser.add_argument(
        "--weights",
        default="default",
        help="weights name or .safetensors path (default: the embedded lite weights; `hifacegan weights list`)",
    )
    parser.add_argument(
        "--fidelity",
        type=float,
        default=0.5,
        metavar="0..1",
        help="0 = perceptual (sharpest), 1 = fidelity (closest to the input); default 0.5",
    )
    parser.add_argument(
        "--damage",
        choices=("faces", "photo", "off"),
        default="off",
        help="scratches, cracks and dust: found and filled around each face (faces), over the whole photo "
        "(photo), or left as they are (off, the default while the detector still changes some clean faces); "
        "every other pixel is kept",
    )
    parser.add_argument(
        "--grain",
        choices=GRAIN_CHOICES,
        default="keep",
        help="film grain and sensor noise: laid back over renovated faces, matched to the photo's own around "
        "each face, so they do not look pasted in (keep, the default), or left smooth (remove)",
    )


def _add_choice_of_faces(parser: argparse.ArgumentParser) -> None:
    """Which faces are renovated."""
    parser.add_argument(
        "--only-center-face", action="store_true", help="renovate only the face closest to the photo's centre"
    )
    parser.add_argument(
        "--faces", choices=("all", "largest", "center"), default="all", help="which faces (default all)"
    )
    parser.add_argument(
        "--max-faces", type=int, default=None, metavar="N", help="renovate at most N (largest first)"
    )
    parser.add_argument(
        "--min-face-size",
        type=float,
        default=16,
        metavar="PX",
        help="skip faces smaller than PX pixels (default 16)",
    )


def _add_running(parser: argparse.ArgumentParser) -> None:
    """Where and how the networks run: device, detector, number format, batch size."""
    parser.add_argument(
        "--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:1, mps"
    )
    parser.add_argument(
        "--detector",
        default="auto",
        choices=("auto", "retinaface_resnet50", "retinaface_mobile0.25"),
        help="face detector (auto: ResNet-50 when it can be downloaded, else the offline MobileNet-0.25)",
    )
    parser.add_argument("--precision", choices=PRECISION_CHOICES, default="auto", help=PRECISION_HELP)
    parser.add_argument(
        "--batch-size",
        type=at_least(1),
        default=None,
        metavar="N",
        help="faces per network batch (default: 4 on a CPU, 8 on a GPU)",
    )


def _collect(inputs: list[str]) -> tuple[list[tuple[Path, Path]], list[str]]:
    """(photo, path relative to its root) for each input; plus messages for inputs that do not exist."""
    from hifacegan.imageio import FORMATS

    found, problems = [], []
    for text in inputs:
        path = Path(text)
        if path.is_dir():
            photos = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in FORMATS)
            if not photos:
                problems.append(f"{path}: no photos in this folder ({', '.join(sorted(FORMATS))})")
            found += [(p, p.relative_to(path)) for p in photos]
        elif path.is_file():
            found.append((path, Path(path.name)))
        else:
            problems.append(f"{path}: no such file or folder")
    return found, problems


def _plan(found: list[tuple[Path, Path]], output: Path) -> list[tuple[Path, Path]]:
    """Where each photo goes: OUT itself for a single file with an image extension, else OUT/relative path."""
    from hifacegan.imageio import FORMATS

    if len(found) == 1 and output.suffix.lower() in FORMATS and not output.is_dir():
        return [(found[0][0], output)]
    return [(src, output / rel) for src, rel in found]


def _atomic_copy(src: Path, dst: Path) -> None:
    from hifacegan._files import atomic_output

    with open(src, "rb") as source, atomic_output(dst, suffix=".part") as target:
        shutil.copyfileobj(source, target)


def _write_json(path: Path, data: dict) -> None:
    from hifacegan._files import write_bytes_atomic

    write_bytes_atomic(path, (json.dumps(data, indent=2) + "\n").encode("utf-8"))


def check_writable(photo, fmt: str) -> None:
    from hifacegan.imageio import ALPHA_FORMATS, ImageWriteError

    channels = 1 if photo.pixels.ndim == 2 else photo.pixels.shape[2]
    if channels in (2, 4) and fmt not in ALPHA_FORMATS:
        raise ImageWriteError(
            f"{photo.source}: {fmt} cannot hold transparency; write a .png or .tif to keep the alpha channel"
        )


def _renovate_one(renovator, src: Path, dst: Path, args, stage_hook, token) -> dict:
    import numpy as np

    from hifacegan.imageio import FORMATS, Photo, output_format, read_photo, write_photo

    record: dict = {"input": str(src), "output": str(dst), "error": None, "notes": []}
    timings = dict.fromkeys(STAGES, 0.0)
    record["timings"] = timings
    fmt = output_format(dst)  # refuse unsupported outputs before any work
    t0 = time.perf_counter()
    stage_hook("decode")
    photo = read_photo(src)
    timings["decode"] = time.perf_counter() - t0
    record["size"] = [int(photo.pixels.shape[1]), int(photo.pixels.shape[0])]
    record["mode"] = photo.mode
    check_writable(photo, fmt)  # e.g. alpha into JPEG: refuse before spending time on the faces
    result = renovator(
        photo.pixels,
        fidelity=args.fidelity,
        faces="center" if args.only_center_face else args.faces,
        max_faces=args.max_faces,
        min_face_size=args.min_face_size,
        report=lambda state: stage_hook(state.stage),
        cancel=token,
        return_crops=args.save_faces is not None,
    )
    for key in ("detect", "align", "network", "paste"):
        timings[key] = result.timings.get(key, 0.0)
    faces = [f.to_dict() for f in result.faces]
    record["faces"] = faces
    record["found"] = len(faces)
    record["renovated"] = result.renovated
    record["changed"] = sum(f.changed for f in result.faces)
    record["skipped"] = dict(Counter(f["reason"] for f in faces if not f["renovated"]))
    record["notes"] = list(result.notes)
    stage_hook("encode")
    t0 = time.perf_counter()
    same_format = FORMATS.get(src.suffix.lower()) == fmt
    if same_format and (result.renovated == 0 or np.array_equal(result.image, photo.pixels)):
        # Nothing changed (no face, or only sharp clean faces, which keep every pixel): the output is the input,
        # byte for byte, so a JPEG is not compressed a second time.
        _atomic_copy(src, dst)
    else:
        out = Photo(
            pixels=result.image, format=fmt, icc_profile=photo.icc_profile, exif=photo.exif, dpi=photo.dpi
        )
        write_photo(out, dst, quality=args.quality)
    if args.save_faces is not None:
        args.save_faces.mkdir(parents=True, exist_ok=True)
        for k, crop in enumerate(result.crops):
            write_photo(Photo(pixels=crop), args.save_faces / f"{dst.stem}_face{k:02d}.png")
    timings["encode"] = time.perf_counter() - t0
    return record


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.ERROR if args.quiet else logging.WARNING, format="%(message)s")
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr))
    plan = _checked_plan(args)
    if isinstance(plan, int):
        return plan
    from hifacegan.devices import configure_cpu_threads

    configure_cpu_threads()  # this command owns its process: all cores but one, on every device
    renovator = _load(args)
    if isinstance(renovator, int):
        return renovator
    info = renovator.describe()
    say(f"weights {info['weights']} ({info['size']} px) on {info['device']}, detector {info['detector']}")
    records = _renovate_all(renovator, plan, args)
    failed = [r for r in records if r.get("error") is not None]
    summary = _summary(info, args, records)
    t = summary["totals"]
    say(
        f"{t['written']} of {t['photos']} photos written; {t['faces_changed']} of {_faces(t['faces_found'])} changed"
        + (f", {t['failed']} failed" if failed else "")
    )
    say("seconds per stage: " + ", ".join(f"{s} {v:.2f}" for s, v in summary["seconds_per_stage"].items()))
    if args.json is not None:
        _write_json(args.json, summary)
    stopped = len(records) < len(plan)  # SIGTERM: the photos left were not written
    return EXIT_SOME_FAILED if failed or stopped else EXIT_OK


def _usage_error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _checked_plan(args: argparse.Namespace) -> list[tuple[Path, Path]] | int:
    """(input, output) for every photo, or the exit code after saying what is wrong with the arguments."""
    from hifacegan.imageio import FORMATS, ImageWriteError, output_format

    if not 0.0 <= args.fidelity <= 1.0:
        return _usage_error(f"--fidelity must be within 0..1, got {args.fidelity}")
    if args.max_faces is not None and args.max_faces < 0:
        return _usage_error("--max-faces must be 0 or more")
    found, problems = _collect(args.inputs)
    for message in problems:
        print(f"error: {message}", file=sys.stderr)
    if not found:
        return _usage_error("no photos to renovate")
    output = Path(args.output)
    if len(found) > 1 and (output.is_file() or output.suffix.lower() in FORMATS):
        return _usage_error(f"{len(found)} photos need an output folder, but {output} names a file")
    if len(found) == 1 and output.suffix and not output.is_dir():
        try:
            output_format(output)
        except ImageWriteError as exc:
            return _usage_error(str(exc))
    plan = _plan(found, output)
    sources = {src.resolve() for src, _ in plan}
    clashes = [dst for _, dst in plan if dst.resolve() in sources]
    if clashes:
        return _usage_error(f"{clashes[0]} would overwrite an input photo; choose another -o")
    return plan


def _load(args: argparse.Namespace):
    """The Renovator the arguments ask for, or EXIT_SETUP after saying why it cannot be made."""
    from hifacegan.pipeline import Renovator, WeightsUnavailable

    try:
        return Renovator(
            args.weights,
            device=args.device,
            detector=args.detector,
            damage=args.damage,
            grain=args.grain,
            precision=args.precision,
            batch_size=args.batch_size,
        )
    except (WeightsUnavailable, ValueError, RuntimeError) as exc:  # weights, device or detector unusable
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_SETUP


def _renovate_all(renovator, plan: list[tuple[Path, Path]], args: argparse.Namespace) -> list[dict]:
    """Every photo of the plan, with a progress bar; a photo that fails is recorded and the others go on.

    SIGTERM cancels the run's CancelToken: the photo in progress stops between batches of faces and is not
    written (outputs are written whole or not at all), and the summary so far is kept."""
    from tqdm import tqdm

    from hifacegan.imageio import ImageReadError, ImageWriteError
    from hifacegan.pipeline import Cancelled, CancelToken

    token = CancelToken()
    records = []
    bar = tqdm(plan, unit="photo", disable=args.quiet or None, file=sys.stderr, dynamic_ncols=True)
    with _cancel_on_sigterm(token):
        for src, dst in bar:
            bar.set_description(src.name[:30])
            try:
                record = _renovate_one(renovator, src, dst, args, bar.set_postfix_str, token)
            except Cancelled:
                tqdm.write(f"stopped: {src} was not written (the run was terminated)", file=sys.stderr)
                break
            except (ImageReadError, ImageWriteError, ValueError, OSError) as exc:
                record = {"input": str(src), "output": None, "error": str(exc), "faces": [], "found": 0}
                record["renovated"] = 0
                tqdm.write(f"error: {exc}", file=sys.stderr)
            records.append(record)
            if record.get("error") is None and not args.quiet:
                tqdm.write(_line(src, record), file=sys.stderr)
    bar.close()
    return records


def _cancel_on_sigterm(token):
    """A context in which SIGTERM cancels ``token`` (main thread only; elsewhere it changes nothing)."""
    import contextlib
    import signal
    import threading

    @contextlib.contextmanager
    def handler():
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.signal(signal.SIGTERM, lambda signum, frame: token.cancel("terminated"))
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)

    return handler()


def _line(src: Path, record: dict) -> str:
    """One photo's outcome in a sentence: faces found and changed, kept, skipped and why."""
    line = f"{src}: {_faces(record['found'])} found, {record['changed']} changed"
    kept = record["renovated"] - record["changed"]
    if kept:
        line += f" ({kept} already looked sharp and clean, so kept every pixel)"
    if record["skipped"]:
        line += "; skipped: " + ", ".join(f"{n} {reason}" for reason, n in record["skipped"].items())
    if record["found"] == 0:
        line += " (no face found: written unchanged)"
    return line


def _summary(info: dict, args: argparse.Namespace, records: list[dict]) -> dict:
    """The --json summary: what ran, every photo's record, totals and seconds per stage."""
    ok = [r for r in records if r.get("error") is None]
    return {
        **info,
        "fidelity": args.fidelity,
        "grain": args.grain,
        "photos": records,
        "totals": {
            "photos": len(records),
            "written": len(ok),
            "failed": len(records) - len(ok),
            "faces_found": sum(r["found"] for r in ok),
            "faces_renovated": sum(r["renovated"] for r in ok),
            "faces_changed": sum(r["changed"] for r in ok),
            "faces_skipped": sum(r["found"] - r["renovated"] for r in ok),
        },
        "seconds_per_stage": {s: round(sum(r["timings"][s] for r in ok), 3) for s in STAGES},
    }


def _faces(count: int) -> str:
    """``1 face``, ``3 faces``: counts read as words, never ``face(s)``."""
    return f"{count} face" if count == 1 else f"{count} faces"
