"""Issue #36: ZeroMQ contexts and threads of real Krita 5.2 left open with the Renovate Faces docker visible.

Run as root (Krita 5.2 runs in the cached trixie root, as in the tests), from the repository root::

    .venv/bin/python docs/results/probe_krita_threads.py --pyzmq           # check the thread-name assumption
    .venv/bin/python docs/results/probe_krita_threads.py --server up   --minutes 10 --out /tmp/up.json
    .venv/bin/python docs/results/probe_krita_threads.py --server down --minutes 10 --out /tmp/down.json

Krita starts the way ``tests/test_krita_gui.py`` starts it (``tests/krita/krita_harness.py``: a scratch profile
with the plug-in installed as the installer does, Xvfb, the fixture photo open), with the thread watcher plug-in of
``tests/test_krita_threads.py`` instead of the driver: it shows the docker, counts ``zmq.Context`` objects made
inside Krita and quits after the given time. ``--server up`` runs the real daemon (CPU, small random test weights);
``--server down`` leaves the endpoint empty, so the docker polls a missing server. Every 30 s (``--interval``) the
script prints the number of threads of the Krita process (``/proc/PID/task``), the live ``ZMQbg/Reaper`` and
``ZMQbg/IO/*`` threads (one pair per pyzmq context with a socket) and the other thread names; ``/proc`` is read
every 0.5 s in between to collect every Reaper thread id.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "krita")]

import test_krita_threads as tk  # noqa: E402
from krita_harness import krita_weights  # noqa: E402


def pyzmq_check() -> list[str]:
    """Thread names of this process as contexts are made, given sockets and destroyed (plain pyzmq)."""
    import zmq

    def names() -> str:
        counted = collections.Counter(tk.thread_names(os.getpid()).values())
        return ", ".join(f"{n} x{c}" for n, c in sorted(counted.items()))

    lines = [f"pyzmq {zmq.__version__}, libzmq {zmq.zmq_version()}", f"start: {names()}"]
    ctx = [zmq.Context()]
    time.sleep(0.2)
    lines.append(f"1 context, no socket: {names()}")
    socks = [ctx[0].socket(zmq.DEALER)]
    time.sleep(0.2)
    lines.append(f"1 context with a socket: {names()}")
    ctx.append(zmq.Context())
    socks.append(ctx[1].socket(zmq.DEALER))
    time.sleep(0.2)
    lines.append(f"2 contexts with a socket: {names()}")
    socks.pop().close(0)
    ctx.pop().destroy(linger=0)
    time.sleep(0.2)
    lines.append(f"1 destroyed: {names()}")
    socks.clear()
    ctx.clear()  # garbage-collected, not destroyed
    time.sleep(0.2)
    lines.append(f"the other dropped: {names()}")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pyzmq", action="store_true", help="only check pyzmq's thread names in this process")
    ap.add_argument("--server", choices=("up", "down"), default="up")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--interval", type=float, default=30.0, help="seconds between printed samples")
    ap.add_argument(
        "--out", type=Path, help="write every sample (0.5 s apart) and the watcher's report as JSON"
    )
    args = ap.parse_args()
    if args.pyzmq:
        print("\n".join(pyzmq_check()))
        return 0

    shared = Path(os.environ.get("HIFACEGAN_SHARED", REPO.parent / "shared")).resolve() / "data"
    host = tk.trixie_host()
    weights = None
    if args.server == "up":
        weights = os.environ.get("RENOVATE_KRITA_TEST_WEIGHTS") or krita_weights(
            Path(tempfile.mkdtemp(prefix="rf-weights-"))
        )
    due = [0.0]

    def progress(sample: tk.Sample) -> None:
        if sample.t >= due[0]:
            due[0] = (int(sample.t // args.interval) + 1) * args.interval
            others = collections.Counter(n for n in sample.names if not n.startswith("ZMQbg/"))
            print(
                f"t={sample.t:6.1f} s threads={sample.threads} Reaper={sample.reapers} IO={sample.io_threads} "
                f"others={dict(sorted(others.items()))}",
                flush=True,
            )

    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    watch = tk.watch_krita(host, shared, weights, args.minutes * 60, progress=progress)
    rows = watch.at_intervals(args.interval)
    report = watch.report
    print(f"\nKrita {report.get('krita_version')}, server {args.server}, started {started}")
    print(f"docker visible: {report.get('docker_visible')}; watcher finished: {report.get('finished')}")
    print(
        f"zmq.Context made inside Krita: {report.get('contexts_made')} (destroyed {report.get('contexts_destroyed')})"
    )
    print(f"distinct ZMQbg/Reaper thread ids over the run: {sorted(watch.reaper_tids)}")
    print(
        f"threads: min {min(s.threads for s in watch.samples)}, max {max(s.threads for s in watch.samples)}"
    )
    print(f"last status: {report.get('status', [[0, '']])[-1][1]}")
    print("\n| t (s) | threads | ZMQbg/Reaper | ZMQbg/IO |\n|---|---|---|---|")
    for s in rows:
        print(f"| {s.t:.0f} | {s.threads} | {s.reapers} | {s.io_threads} |")
    if args.out:
        args.out.write_text(
            json.dumps(
                {
                    "server": args.server,
                    "started": started,
                    "samples": [[s.t, s.names] for s in watch.samples],
                    "reaper_tids": sorted(watch.reaper_tids),
                    "report": report,
                    "krita_exit": watch.krita_exit,
                    "log": watch.log,
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
