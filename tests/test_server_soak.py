"""A bounded soak (well under a minute): fuzz, load and faults at once against one real daemon; the full-size
run is ``benchmarks/bench_server_soak.py``."""

from __future__ import annotations

import sys

import pytest

from hifacegan_server import soak
from hifacegan_server.testing import DaemonProcess

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def test_soak_fuzz_load_and_faults_at_once():
    with DaemonProcess(weights="identity", device="cpu", threads=1) as d:
        soak.warm_up(d)
        assert soak.wait_idle(d)
        mem0, logs0 = soak.process_memory(d.proc.pid), soak.log_bytes(d)
        load = soak.Load(d, clients=4, jobs=5).start()
        fuzzed = soak.fuzz(d, 3000, seed=1)
        killed_mid_job = soak.kill_client_mid_job(d)
        soak.unauthorized_flood(d, megabytes=20)
        load.join(timeout=45)
        assert soak.wait_idle(d), "a job outlived its client"  # the killed client's included
        mem1, logs1 = soak.process_memory(d.proc.pid), soak.log_bytes(d)
        assert soak.alive(d), d.stderr()
        assert fuzzed["answered"] == fuzzed["sent"] == 3000, fuzzed
        assert load.lost == [] and len(load.done) == 20, load.lost
        assert mem1["rss"] - mem0["rss"] < 64 << 20, (mem0, mem1)
        assert logs1 - logs0 < 1 << 20, f"the logs grew by {logs1 - logs0} bytes"
        assert killed_mid_job
