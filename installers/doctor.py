"""``renovate-faces-doctor`` (also ``python -m hifacegan_installers.doctor``): check the plug-ins, their hosts' Python, the
server, the device and the weights, and say how to fix each problem.

It lives with the installer whose work it verifies (the checks are run by :mod:`hifacegan_installers.diagnose`, those of
the hosts are in :mod:`hifacegan_installers.diagnose_hosts`, those of the server in :mod:`hifacegan_installers.diagnose_server`), so
the ``hifacegan`` library never imports the installers.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hifacegan_installers.checks import Options
from hifacegan_installers.diagnose import print_check, run_checks, to_json


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="renovate-faces-doctor",
        description="Check every part Renovate Faces needs and say how to fix each problem: GIMP 3 and Krita "
        "installs, the plug-ins in their folders and registered (GIMP's pluginrc, Krita's kritarc), the hosts' "
        "Python importing pyzmq, msgpack and the client, the server answering, its device and memory, and the "
        "sha256 of every weights file. Exit status 1 when a check fails.",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object (for scripts)")
    p.add_argument("--home", type=Path, help="check this home folder instead of yours")
    p.add_argument(
        "--host",
        action="append",
        dest="hosts",
        metavar="HOST",
        help="only this host (gimp, krita, gimp:flatpak...)",
    )
    p.add_argument("--endpoint", help="the server's endpoint (default: the one the plug-ins use)")
    p.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for the server (default 3)")
    p.add_argument("--skip-weights", action="store_true", help="do not verify the weights files (faster)")
    p.add_argument("--root", type=Path, help=argparse.SUPPRESS)  # hosts inside a chroot (the host tests)
    p.add_argument("--os", dest="os_name", choices=["linux", "darwin", "win32"], help=argparse.SUPPRESS)
    p.add_argument("--config-dir", type=Path, help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    options = Options(
        home=args.home,
        hosts=args.hosts,
        root=args.root,
        endpoint=args.endpoint,
        timeout=args.timeout,
        weights=not args.skip_weights,
        os_name=args.os_name,
        config_dir=args.config_dir,
    )
    checks = run_checks(options, progress=(lambda c: None) if args.json else print_check)
    result = to_json(checks)
    if args.json:
        print(json.dumps(result, indent=1, default=str))
    else:
        print(
            f"\n{result['failures']} problem(s), {result['warnings']} warning(s)."
            if result["failures"] or result["warnings"]
            else "\nEverything is in order.",
            file=sys.stdout,
        )
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
