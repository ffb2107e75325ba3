"""Soak of the model server (issue #21): fuzz + load + faults against real daemons, for minutes.

Phase 1 (ipc): 20,000 fuzzed messages while 8 clients run 20 jobs each, clients killed mid-job, and 100 MB of
unauthorized requests. Phase 2 (tcp, CURVE): 1 GiB sent without the token by a bare ZeroMQ peer and as one
hand-made CURVE handshake command, then jobs over tcp. Prints messages answered, jobs lost, RSS before/after (and
peak), log bytes. Targets: daemon alive, every message answered, 0 jobs lost, RSS growth under 64 MB, logs grown
under 5 MB.

    python benchmarks/bench_server_soak.py [--fuzz 20000] [--clients 8] [--jobs 20] [--flood-mb 100]
                                           [--tcp-mb 1024] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hifacegan_server import paths, soak  # noqa: E402
from hifacegan_server.testing import DaemonProcess, free_port  # noqa: E402

MB = 1 << 20


def measured(d: DaemonProcess) -> dict[str, int]:
    assert soak.wait_idle(d, 60), "the daemon still holds jobs"
    return {**soak.process_memory(d.proc.pid), "log_bytes": soak.log_bytes(d)}


def phase_ipc(args: argparse.Namespace) -> dict:
    with DaemonProcess(weights="identity", device="cpu", threads=1) as d:
        soak.warm_up(d)
        before = measured(d)
        t0 = time.monotonic()
        load = soak.Load(d, clients=args.clients, jobs=args.jobs).start()
        fuzzed = {"sent": 0, "answered": 0}
        kills = 0
        for part in range(args.kills + 1):  # fuzz in slices, a killed client between them
            got = soak.fuzz(d, args.fuzz // (args.kills + 1), seed=part)
            fuzzed = {k: fuzzed[k] + got[k] for k in fuzzed}
            if part < args.kills:
                kills += soak.kill_client_mid_job(d)
        soak.unauthorized_flood(d, args.flood_mb)
        load.join(timeout=1800)
        seconds = time.monotonic() - t0
        after = measured(d)
        return {
            "alive": soak.alive(d),
            "fuzz": fuzzed,
            "jobs_done": len(load.done),
            "jobs_lost": len(load.lost),
            "lost": load.lost[:5],
            "clients_killed_mid_job": kills,
            "unauthorized_flood_mb": args.flood_mb,
            "seconds": round(seconds, 1),
            "before": before,
            "after": after,
            "rss_growth_mb": round((after["rss"] - before["rss"]) / MB, 1),
            "log_growth_mb": round((after["log_bytes"] - before["log_bytes"]) / MB, 3),
        }


def phase_tcp(args: argparse.Namespace) -> dict:
    d = DaemonProcess(weights="identity", device="cpu", threads=1)
    d.endpoint = paths.loopback_endpoint(free_port())
    with d:
        soak.warm_up(d)
        before = measured(d)
        soak.tcp_stranger_flood(d, args.tcp_mb)
        soak.handshake_flood(d, args.tcp_mb)  # a hand-made CURVE handshake command of the same size
        after = measured(d)
        load = soak.Load(d, clients=2, jobs=5).start()
        load.join(timeout=600)
        return {
            "alive": soak.alive(d),
            "sent_without_token_mb": args.tcp_mb,
            "jobs_done": len(load.done),
            "jobs_lost": len(load.lost),
            "before": before,
            "after": after,
            "rss_growth_mb": round((after["rss"] - before["rss"]) / MB, 1),
            "peak_rss_growth_mb": round((after["peak_rss"] - before["peak_rss"]) / MB, 1),
        }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fuzz", type=int, default=20_000, help="fuzzed messages (default 20000)")
    p.add_argument("--clients", type=int, default=8, help="clients running jobs meanwhile (default 8)")
    p.add_argument("--jobs", type=int, default=20, help="jobs per client (default 20)")
    p.add_argument("--kills", type=int, default=3, help="clients killed mid-job (default 3)")
    p.add_argument("--flood-mb", type=int, default=100, help="MB of unauthorized requests (default 100)")
    p.add_argument(
        "--tcp-mb", type=int, default=1024, help="MB sent without the token over tcp (default 1024)"
    )
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args()
    report = {"ipc": phase_ipc(args), "tcp": phase_tcp(args)}
    ipc, tcp = report["ipc"], report["tcp"]
    print(
        f"ipc: {ipc['fuzz']['answered']}/{ipc['fuzz']['sent']} fuzzed messages answered; jobs {ipc['jobs_done']} done, "
        f"{ipc['jobs_lost']} lost; {ipc['clients_killed_mid_job']} clients killed mid-job; "
        f"{ipc['unauthorized_flood_mb']} MB unauthorized; {ipc['seconds']} s; alive {ipc['alive']}"
    )
    print(
        f"ipc: RSS {ipc['before']['rss'] / MB:.0f} -> {ipc['after']['rss'] / MB:.0f} MB "
        f"(growth {ipc['rss_growth_mb']} MB); logs {ipc['before']['log_bytes']} -> {ipc['after']['log_bytes']} "
        f"bytes (growth {ipc['log_growth_mb']} MB)"
    )
    print(
        f"tcp: {tcp['sent_without_token_mb']} MB sent without the token, and as one hand-made handshake command: RSS {tcp['before']['rss'] / MB:.0f} -> "
        f"{tcp['after']['rss'] / MB:.0f} MB, peak {tcp['before']['peak_rss'] / MB:.0f} -> "
        f"{tcp['after']['peak_rss'] / MB:.0f} MB; then jobs {tcp['jobs_done']} done, {tcp['jobs_lost']} lost; "
        f"alive {tcp['alive']}"
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    ok = (
        ipc["alive"]
        and tcp["alive"]
        and ipc["fuzz"]["answered"] == ipc["fuzz"]["sent"]
        and ipc["jobs_lost"] == tcp["jobs_lost"] == 0
        and ipc["rss_growth_mb"] < 64
        and tcp["peak_rss_growth_mb"] < 64
        and ipc["log_growth_mb"] < 5
    )
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
