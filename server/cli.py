"""``hifacegan-server``'s command line: options, running in the foreground, or starting itself detached."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from typing import Any

from hifacegan_server import paths
from hifacegan_server.daemon import Server
from hifacegan_server.instance import (
    EXIT_ALREADY_RUNNING,
    SingleInstance,
    already_running_message,
    spawn_detached,
)
from hifacegan_server.logs import setup_logging
from hifacegan_server.security import check_endpoint

log = logging.getLogger("renovate-faces.server")

EXIT_CONFIG = 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hifacegan-server",
        description="Renovate Faces model server: keeps the HiFaceGAN weights loaded and renovates photos sent by "
        "the GIMP and Krita plug-ins (protocol: docs/protocol.md). Without --foreground it detaches and returns "
        "once the server answers.",
    )
    p.add_argument(
        "--foreground", action="store_true", help="stay attached (for systemd, launchd, a terminal)"
    )
    p.add_argument(
        "--endpoint", help="where to listen (default: ipc socket in the runtime folder; tcp on Windows)"
    )
    p.add_argument(
        "--device", default="auto", help="auto, cpu, cuda, cuda:1, mps; a comma list runs one worker each"
    )
    p.add_argument(
        "--weights", default="default", help="weights name or file loaded at start (default: default)"
    )
    p.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a non-loopback tcp endpoint (CURVE-encrypted like every tcp endpoint; clients need the token)",
    )
    p.add_argument(
        "--max-pixels", type=float, default=100.0, help="largest image in megapixels (default 100)"
    )
    p.add_argument("--max-queue", type=int, default=32, help="jobs waiting at most, all clients (default 32)")
    p.add_argument(
        "--max-per-client", type=int, default=8, help="jobs waiting at most per client (default 8)"
    )
    p.add_argument("--job-timeout", type=float, default=600.0, help="seconds a job may take (default 600)")
    p.add_argument("--heartbeat-interval", type=float, default=0.2, help="seconds between client heartbeats")
    p.add_argument(
        "--client-timeout",
        type=float,
        default=0.8,
        help="cancel a client's jobs after this many seconds without a heartbeat (default 0.8)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="CPU threads for the network (default: all cores but one, leaving one for GIMP or Krita)",
    )
    p.add_argument(
        "--precision",
        choices=("auto", "fp32", "fp16", "bf16"),
        default="auto",
        help="the networks' number format (auto: float32 unless half precision was measured within tolerance "
        "for the device and weights); a half-precision batch that gives NaN or Inf is redone in fp32",
    )
    p.add_argument(
        "--batch-size", type=int, default=0, help="faces per network batch (default: 4 on a CPU, 8 on a GPU)"
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    return p


def preimport() -> None:
    """Import the pipeline (torch, OpenCV) before serving. Importing C extensions holds the GIL for seconds; done
    in a worker later it would freeze the main loop, so heartbeats would go unanswered mid-job. A failure here
    is only logged: the worker retries and reports it in ``hello`` and in each job's error."""
    t0 = time.monotonic()
    try:
        import hifacegan.pipeline  # noqa: F401
    except Exception as exc:
        log.error(
            "cannot import the pipeline (%s: %s); jobs will fail until this is fixed", type(exc).__name__, exc
        )
        return
    log.info("pipeline imported in %.1f s", time.monotonic() - t0)


def run_foreground(args: argparse.Namespace) -> int:
    runtime = paths.ensure_private_dir(paths.runtime_dir())
    instance = SingleInstance(runtime)
    if not instance.acquire():
        print(already_running_message(instance.holder(), runtime), file=sys.stderr)
        return EXIT_ALREADY_RUNNING
    try:
        logfile = setup_logging(True, args.verbose)
        endpoint = args.endpoint or paths.default_endpoint()
        check_endpoint(endpoint, args.allow_remote)
        preimport()
        server = Server(args, endpoint)
        server.bind()
        instance.publish(
            {"pid": os.getpid(), "endpoint": endpoint, "log": str(logfile), "started": time.time()}
        )

        def on_signal(signum: int, frame: Any) -> None:
            server.stop(f"signal {signal.Signals(signum).name}")

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        log.info(
            "serving %s (pid %d, device %s, weights %s, log %s)",
            endpoint,
            os.getpid(),
            args.device,
            args.weights,
            logfile,
        )
        try:
            server.serve()
        except Exception:
            log.exception("the serve loop stopped on a bug; stopping the server")
            raise
        finally:
            server.close()
        log.info("stopped")
        for worker in server.workers:
            worker.join(timeout=2.0)
        if any(w.is_alive() for w in server.workers):
            # A worker still importing torch or loading weights: nothing to finish there, so leave now rather
            # than wait for it (daemon threads would otherwise be frozen mid-import at interpreter exit).
            logging.shutdown()
            instance.release()
            os._exit(0)
        return 0
    except paths.PathsError as exc:
        print(f"hifacegan-server: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    finally:
        instance.release()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    if args.foreground:
        return run_foreground(args)
    return spawn_detached(argv)


if __name__ == "__main__":
    raise SystemExit(main())
