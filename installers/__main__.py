"""``hifacegan-install`` (also ``python -m hifacegan_installers``): put the plug-ins where GIMP 3 and Krita look."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EPILOG = """\
What it does, for each GIMP 3 and Krita it finds (system packages, Flatpak, Snap, AppImage; macOS and Windows apps):
  - copies the plug-in and its client (client.py, paths.py, protocol.py) into the host's plug-in folder, and
    beside the GIMP plug-in the Krita plug-in's common.py (what both plug-ins say and send alike);
  - checks that the host's own Python imports pyzmq and msgpack, and if not, unpacks wheels built for that
    Python beside the plug-in (pip download --only-binary=:all: --python-version X.Y --platform ...);
  - enables the Krita plug-in in kritarc; makes the GIMP plug-in executable;
  - writes <config>/renovate-faces/server.json with the command that starts this install's server;
  - starts the server at login (systemd user unit, LaunchAgent, or logon task), unless --no-autostart.
Running it again is harmless; --uninstall removes everything it added (listed in
<config>/renovate-faces/install-manifest.json) and puts back what it changed.
Afterwards, `renovate-faces-doctor` checks the result.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hifacegan-install",
        description="Install the Renovate Faces plug-ins for GIMP 3 and Krita, and start the server at login.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--host",
        action="append",
        dest="hosts",
        metavar="HOST",
        help="only this host: gimp, krita, or with its packaging (gimp:flatpak, krita:appimage...); repeatable. "
        "A named host that is not found is installed anyway. Default: every one found",
    )
    p.add_argument("--uninstall", action="store_true", help="remove everything an earlier install added")
    p.add_argument("--dry-run", action="store_true", help="print every action without doing any")
    p.add_argument("--no-autostart", action="store_true", help="do not start the server at login")
    p.add_argument(
        "--home", type=Path, help="install into this home folder instead of yours (tests, other users)"
    )
    p.add_argument(
        "--vendor",
        choices=["auto", "always", "never"],
        default="auto",
        help="put pyzmq/msgpack wheels beside the plug-in: when the host's Python lacks them (auto, default), "
        "always, or never",
    )
    p.add_argument(
        "--wheels", type=Path, help="take the wheels from this folder instead of PyPI (offline installs)"
    )
    p.add_argument("--python-version", help="the host's Python version X.Y when it cannot be run from here")
    p.add_argument("--endpoint", help="the endpoint to write into server.json (default: the server's own)")
    p.add_argument("--root", type=Path, help=argparse.SUPPRESS)  # hosts inside a chroot (the host tests)
    p.add_argument("--os", dest="os_name", choices=["linux", "darwin", "win32"], help=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true", help="print the result as JSON at the end")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from hifacegan_installers.install import install, uninstall
    from hifacegan_installers.journal import InstallError

    say = (lambda text: print(text, file=sys.stderr)) if args.json else print
    try:
        if args.uninstall:
            count = uninstall(args.home, args.dry_run, os_name=args.os_name, say=say)
            if args.json:
                print(json.dumps({"uninstalled": count, "dry_run": args.dry_run}))
            return 0
        report = install(
            args.home,
            args.hosts,
            autostart=not args.no_autostart,
            dry_run=args.dry_run,
            os_name=args.os_name,
            root=args.root,
            vendor=args.vendor,
            wheels=args.wheels,
            python_version=args.python_version,
            endpoint=args.endpoint,
            say=say,
        )
    except (InstallError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.to_dict(), indent=1))
    else:
        _summary(report)
    return 0 if report.ok else 1


def _summary(report) -> None:
    print()
    for host in report.hosts:
        state = "installed" if host.installed else "NOT installed"
        print(f"{host.label}: {state}" + (f" in {host.plugin_dir}" if host.plugin_dir else ""))
        for problem in host.problems:
            print(f"  ! {problem}")
    for problem in report.problems:
        print(f"! {problem}")
    if report.dry_run:
        print("Dry run: nothing was changed.")
    elif report.ok:
        print("Done. Restart GIMP/Krita; `renovate-faces-doctor` checks everything.")
    else:
        print("Finished with problems (above); `renovate-faces-doctor` shows what is left to fix.")


if __name__ == "__main__":
    raise SystemExit(main())
