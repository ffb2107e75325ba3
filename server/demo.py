"""``python -m hifacegan_server.demo IN -o OUT``: the README's main job, end to end through the real server.

Starts the model server the way the plug-ins do (or uses one already running), renovates the photo through the
real client, writes the result, and stops the server again if it started it. ``make demo`` runs it on
``examples/solvay_conference_1927.png``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from hifacegan_server.client import Client, ServerError, ServerUnavailable
from hifacegan_server.client_cli import renovate_file


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m hifacegan_server.demo",
        description="Renovate the faces of a photo through the Renovate Faces model server (started for the demo "
        "unless one is running, and stopped afterwards).",
    )
    p.add_argument("input", type=Path, help="photo to renovate")
    p.add_argument("-o", "--output", type=Path, required=True, help="where to write the renovated photo")
    p.add_argument("--fidelity", type=float, default=0.5, help="0 perceptual .. 1 faithful (default 0.5)")
    p.add_argument("--weights", help="weights name or file (default: the server's default weights)")
    p.add_argument(
        "--wait", type=float, default=180.0, help="seconds to wait for the server to start (default 180)"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.input.is_file():
        print(f"demo: {args.input} does not exist; pass a photo file.", file=sys.stderr)
        return 2
    options = {"fidelity": args.fidelity, **({"weights": args.weights} if args.weights else {})}
    with Client(timeout=30) as client:
        started_here = False
        t0 = time.perf_counter()
        try:
            hello = client.ensure_running(start=False)
            print(f"using the running server (pid {hello['pid']}) at {hello['endpoint']}")
        except ServerUnavailable:
            try:
                hello = client.ensure_running(start=True, wait=args.wait)
            except ServerError as exc:
                print(f"demo: could not start the server: {exc}", file=sys.stderr)
                return 1
            started_here = True
            print(
                f"started the server (pid {hello['pid']}) at {hello['endpoint']} in {time.perf_counter() - t0:.1f} s"
            )
        try:
            summary = renovate_file(client, args.input, args.output, options)
        except ServerError as exc:
            print(f"demo: {exc}", file=sys.stderr)
            return 1
        finally:
            if started_here:
                try:
                    client.shutdown(timeout=10)
                    print(f"stopped the server it started (pid {hello['pid']})")
                except ServerError as exc:
                    print(f"demo: could not stop the server (pid {hello['pid']}): {exc}", file=sys.stderr)
    print(
        f"{summary['input']} -> {summary['output']}: {summary['faces_found']} faces found, "
        f"{summary['faces_renovated']} renovated, {summary['seconds']} s ({summary['size']} {summary['mode']})"
    )
    for warning in summary["warnings"]:
        print(f"  note: {warning}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
