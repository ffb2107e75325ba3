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
        "--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:1, mps"
    )
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
    parser.add_argument(
        "--damage",
        choices=("faces", "photo", "off"),
        default="off",
        help="scratches, cracks and dust: found and filled around each face (faces), over the whole photo "
        "(photo), or left as they are (off, the default while the detector still changes some clean faces); "
        "every other pixel is kept",
    )
    parser.add_argument(
        "--quality", type=int, default=95, help="JPEG/WebP quality of the output (default 95)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar, errors only")
    return parser


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


def _renovate_one(renovator, src: Path, dst: Path, args, stage_hook) -> dict:
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
        progress=lambda stage, fraction: stage_hook(stage),
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
    from hifacegan.imageio import FORMATS

    logging.basicConfig(level=logging.ERROR if args.quiet else logging.WARNING, format="%(message)s")
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr))
    if not 0.0 <= args.fidelity <= 1.0:
        print(f"error: --fidelity must be within 0..1, got {args.fidelity}", file=sys.stderr)
        return EXIT_USAGE
    if args.max_faces is not None and args.max_faces < 0:
        print("error: --max-faces must be 0 or more", file=sys.stderr)
        return EXIT_USAGE
    found, problems = _collect(args.inputs)
    for message in problems:
        print(f"error: {message}", file=sys.stderr)
    if not found:
        print("error: no photos to renovate", file=sys.stderr)
        return EXIT_USAGE
    output = Path(args.output)
    from hifacegan.imageio import ImageWriteError, output_format

    if len(found) > 1 and (output.is_file() or output.suffix.lower() in FORMATS):
        print(f"error: {len(found)} photos need an output folder, but {output} names a file", file=sys.stderr)
        return EXIT_USAGE
    if len(found) == 1 and output.suffix and not output.is_dir():
        try:
            output_format(output)
        except ImageWriteError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
    plan = _plan(found, output)
    sources = {src.resolve() for src, _ in plan}
    clashes = [dst for _, dst in plan if dst.resolve() in sources]
    if clashes:
        print(f"error: {clashes[0]} would overwrite an input photo; choose another -o", file=sys.stderr)
        return EXIT_USAGE

    from hifacegan.devices import configure_cpu_threads
    from hifacegan.pipeline import Renovator, WeightsUnavailable

    configure_cpu_threads()  # this command owns its process: all cores but one, on every device

    try:
        renovator = Renovator(
            args.weights,
            device=args.device,
            detector=args.detector,
            damage=args.damage,
            precision=args.precision,
            batch_size=args.batch_size,
        )
    except WeightsUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_SETUP
    except (ValueError, RuntimeError) as exc:  # device not available, detector unusable
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_SETUP
    info = renovator.describe()
    say(f"weights {info['weights']} ({info['size']} px) on {info['device']}, detector {info['detector']}")

    from tqdm import tqdm

    from hifacegan.imageio import ImageReadError, ImageWriteError

    records = []
    bar = tqdm(plan, unit="photo", disable=args.quiet or None, file=sys.stderr, dynamic_ncols=True)
    for src, dst in bar:
        bar.set_description(src.name[:30])
        try:
            record = _renovate_one(renovator, src, dst, args, lambda stage: bar.set_postfix_str(stage))
        except (ImageReadError, ImageWriteError, ValueError, OSError) as exc:
            record = {
                "input": str(src),
                "output": None,
                "error": str(exc),
                "faces": [],
                "found": 0,
                "renovated": 0,
            }
            tqdm.write(f"error: {exc}", file=sys.stderr)
        records.append(record)
        if record.get("error") is None:
            line = f"{src}: {_faces(record['found'])} found, {record['changed']} changed"
            kept = record["renovated"] - record["changed"]
            if kept:
                line += f" ({kept} already looked sharp and clean, so kept every pixel)"
            if record["skipped"]:
                line += "; skipped: " + ", ".join(f"{n} {reason}" for reason, n in record["skipped"].items())
            if record["found"] == 0:
                line += " (no face found: written unchanged)"
            if not args.quiet:
                tqdm.write(line, file=sys.stderr)
    bar.close()

    ok = [r for r in records if r.get("error") is None]
    failed = [r for r in records if r.get("error") is not None]
    stage_totals = {s: round(sum(r["timings"][s] for r in ok), 3) for s in STAGES}
    summary = {
        **info,
        "fidelity": args.fidelity,
        "photos": records,
        "totals": {
            "photos": len(records),
            "written": len(ok),
            "failed": len(failed),
            "faces_found": sum(r["found"] for r in ok),
            "faces_renovated": sum(r["renovated"] for r in ok),
            "faces_changed": sum(r["changed"] for r in ok),
            "faces_skipped": sum(r["found"] - r["renovated"] for r in ok),
        },
        "seconds_per_stage": stage_totals,
    }
    t = summary["totals"]
    say(
        f"{t['written']} of {t['photos']} photos written; {t['faces_changed']} of {_faces(t['faces_found'])} changed"
        + (f", {t['failed']} failed" if failed else "")
    )
    say("seconds per stage: " + ", ".join(f"{s} {v:.2f}" for s, v in stage_totals.items()))
    if args.json is not None:
        _write_json(args.json, summary)
    return EXIT_SOME_FAILED if failed else EXIT_OK


def _faces(count: int) -> str:
    """``1 face``, ``3 faces``: counts read as words, never ``face(s)``."""
    return f"{count} face" if count == 1 else f"{count} faces"
