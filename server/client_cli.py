"""``hifacegan-client``: talk to the model server from a terminal, through the same client the plug-ins use.

hifacegan-client ping                      # is it up? which version, weights, device?
hifacegan-client status                    # device, memory, weights, queue (JSON)
hifacegan-client renovate IN -o OUT        # renovate a photo file (starts the server if needed)
hifacegan-client preview IN -o OUT.png     # one face before | after, at --fidelity F, the face at --at X,Y
hifacegan-client shutdown                  # stop the server
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

from hifacegan_server.client import Cancelled, Client, ServerError

DTYPE_NAMES = {"uint8": "u8", "uint16": "u16", "float32": "f32"}


def renovate_file(
    client: Client, source: Path, target: Path, options: dict[str, Any], show_progress: bool = True
) -> dict[str, Any]:
    """Read ``source`` (keeping depth, alpha, orientation, ICC), renovate it on the server, write ``target``
    atomically with the same metadata; returns a summary (faces found/renovated, seconds)."""
    import numpy as np

    from hifacegan.imageio import Photo, read_photo, write_photo

    photo = read_photo(source)
    pixels = np.ascontiguousarray(photo.pixels)
    height, width = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    dtype = DTYPE_NAMES[pixels.dtype.name]
    bar = ProgressBar(show_progress)
    cancel = threading.Event()
    start = time.perf_counter()
    try:
        res = client.renovate(
            pixels, width, height, channels, dtype=dtype, options=options, progress=bar.update, cancel=cancel
        )
    except KeyboardInterrupt:
        cancel.set()
        raise
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    out = np.frombuffer(res.pixels, dtype=pixels.dtype).reshape(pixels.shape)
    write_photo(
        Photo(out, format=photo.format, icc_profile=photo.icc_profile, exif=photo.exif, dpi=photo.dpi), target
    )
    return {
        "input": str(source),
        "output": str(target),
        "size": f"{width}x{height}",
        "mode": photo.mode,
        "faces_found": len(res.faces),
        "faces_renovated": sum(bool(f.get("renovated")) for f in res.faces),
        # faces whose pixels changed (a sharp, clean face is renovated yet keeps every pixel)
        "faces_changed": sum(bool(f.get("changed", f.get("renovated"))) for f in res.faces),
        "seconds": round(seconds, 2),
        "server_seconds": round(res.seconds, 2),
        "warnings": res.warnings,
    }


def preview_file(
    client: Client,
    source: Path,
    target: Path,
    fidelity: float,
    at: tuple[float, float] | None = None,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Preview one face of ``source`` on the server (the largest, or the one at ``at``) at ``fidelity`` and write
    ``target`` (PNG): the face's neighbourhood before | after, 8 bits; returns a summary."""
    import numpy as np
    from PIL import Image

    from hifacegan.imageio import read_photo

    pixels = np.ascontiguousarray(read_photo(source).pixels)
    height, width = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    start = time.perf_counter()
    shown = client.preview(
        pixels, width, height, channels, DTYPE_NAMES[pixels.dtype.name], None, fidelity, at, options=options
    )
    seconds = time.perf_counter() - start
    halves = []
    for crop in (shown.before, shown.after):
        half = np.frombuffer(crop, dtype=pixels.dtype).reshape(shown.height, shown.width, shown.channels)
        if half.dtype != np.uint8:  # 16 bits or float in [0, 1]: shown in 8 bits
            top = 65535.0 if half.dtype == np.uint16 else 1.0
            half = np.clip(np.rint(half.astype(np.float32) * (255.0 / top)), 0, 255).astype(np.uint8)
        halves.append(Image.fromarray(half[..., 0] if shown.channels == 1 else half))
    gap = 8
    picture = Image.new(halves[0].mode, (2 * shown.width + gap, shown.height), "white")
    picture.paste(halves[0], (0, 0))
    picture.paste(halves[1], (shown.width + gap, 0))
    picture.save(target, format="PNG")
    return {
        "input": str(source),
        "output": str(target),
        "window": shown.window,
        "face": shown.index + 1,
        "faces": shown.face_count,
        "box": shown.face.get("box"),
        "path": shown.face.get("path"),
        "fidelity": fidelity,
        "cached": shown.cached,
        "seconds": round(seconds, 3),
        "server_seconds": round(shown.seconds, 3),
    }


def parse_point(text: str) -> tuple[float, float]:
    """``"X,Y"`` -> (x, y) in photo pixels."""
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected X,Y in photo pixels, got {text!r}") from None
    return x, y


class ProgressBar:
    """tqdm fed by the client's (fraction, text) callback; silent when not wanted or not a terminal."""

    def __init__(self, enabled: bool) -> None:
        self._bar = None
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(
                total=100, unit="%", bar_format="{desc:<22} {bar} {percentage:3.0f}%", leave=False
            )

    def update(self, fraction: float, text: str) -> None:
        if self._bar is not None:
            self._bar.set_description_str(text)
            self._bar.n = round(fraction * 100)
            self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hifacegan-client",
        description="Talk to the Renovate Faces model server (hifacegan-server) with the plug-ins' client.",
    )
    p.add_argument(
        "--endpoint", help="server endpoint (default: the one the server uses, see docs/protocol.md)"
    )
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for a reply (default 30)")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("ping", help="check the server answers; print its version, weights and round-trip time")
    sub.add_parser("status", help="print device, memory, weights and queue as JSON")
    sub.add_parser("shutdown", help="ask the server to cancel its jobs and exit")
    r = sub.add_parser("renovate", help="renovate the faces of a photo file")
    r.add_argument("input", type=Path, help="photo to renovate (PNG, JPEG, TIFF, WebP; 8 or 16 bit)")
    r.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        help="where to write the result (never overwritten "
        "half-way: written to a temporary file, then renamed)",
    )
    r.add_argument("--fidelity", type=float, default=0.5, help="0 perceptual .. 1 faithful (default 0.5)")
    r.add_argument(
        "--faces", choices=("all", "largest", "center"), default="all", help="which faces (default all)"
    )
    r.add_argument("--max-faces", type=int, help="renovate at most this many faces")
    r.add_argument("--weights", help="weights name or file (default: the server's)")
    r.add_argument("--job-timeout", type=float, help="give up after this many seconds")
    r.add_argument(
        "--no-start", action="store_true", help="fail instead of starting the server when it is down"
    )
    r.add_argument("--json", action="store_true", help="print the summary as JSON")
    v = sub.add_parser("preview", help="renovate one face and write its neighbourhood before | after (PNG)")
    v.add_argument("input", type=Path, help="photo (PNG, JPEG, TIFF, WebP; 8 or 16 bit)")
    v.add_argument("-o", "--output", type=Path, required=True, help="the before | after picture (PNG)")
    v.add_argument("--fidelity", type=float, default=0.5, help="0 perceptual .. 1 faithful (default 0.5)")
    v.add_argument(
        "--at", type=parse_point, help="X,Y: the face at or nearest this point (default: the largest face)"
    )
    v.add_argument("--weights", help="weights name or file (default: the server's)")
    v.add_argument(
        "--no-start", action="store_true", help="fail instead of starting the server when it is down"
    )
    v.add_argument("--json", action="store_true", help="print the summary as JSON")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with Client(endpoint=args.endpoint, timeout=args.timeout) as client:
            return _run(client, args)
    except Cancelled as exc:
        print(f"hifacegan-client: {exc}", file=sys.stderr)
        return 130
    except ServerError as exc:
        print(f"hifacegan-client: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("hifacegan-client: interrupted; the job was cancelled.", file=sys.stderr)
        return 130
    except (
        OSError,
        ValueError,
    ) as exc:  # unreadable input, unwritable output (imageio's errors are ValueErrors)
        print(f"hifacegan-client: {exc}", file=sys.stderr)
        return 1


def _run(client: Client, args: argparse.Namespace) -> int:
    if args.command == "ping":
        t0 = time.perf_counter()
        hello = client.hello()
        ms = (time.perf_counter() - t0) * 1000
        weights = ", ".join(f"{w['name']} on {dev}: {w['state']}" for dev, w in hello["weights"].items())
        print(f"{hello['server']} (protocol {hello['version']}, pid {hello['pid']}) at {hello['endpoint']}")
        print(f"weights: {weights}; round trip {ms:.1f} ms")
        return 0
    if args.command == "status":
        print(json.dumps(client.status(), indent=2, sort_keys=True))
        return 0
    if args.command == "shutdown":
        print(f"server (pid {client.shutdown()['pid']}) is stopping")
        return 0
    client.ensure_running(start=not args.no_start)
    if args.command == "preview":
        extra = {"weights": args.weights} if args.weights else None
        summary = preview_file(client, args.input, args.output, args.fidelity, args.at, extra)
        line = (
            f"{summary['output']}: face {summary['face']} of {summary['faces']} at fidelity {args.fidelity:g}, "
            f"before | after, in {summary['seconds']} s"
        )
    else:
        options: dict[str, Any] = {"fidelity": args.fidelity, "faces": args.faces}
        for key in ("max_faces", "weights"):
            if getattr(args, key) is not None:
                options[key] = getattr(args, key)
        if args.job_timeout:
            options["timeout"] = args.job_timeout
        summary = renovate_file(client, args.input, args.output, options)
        line = (
            f"{summary['output']}: {summary['faces_changed']} of {summary['faces_found']} faces changed "
            f"in {summary['seconds']} s ({summary['size']} {summary['mode']})"
        )
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(line)
        for warning in summary.get("warnings", []):
            print(f"  note: {warning}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
