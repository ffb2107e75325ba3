"""Supervised workers (issue #31): a fault in a worker ends only the job it ran, and the daemon carries on.

The faults are injected from outside a real daemon process, as a review would: a ``sitecustomize`` module on the
daemon's ``PYTHONPATH`` patches the worker at start to fail once, so no code path for tests ships in the server.
"""

from __future__ import annotations

import os
import textwrap
import time
import types
from pathlib import Path

import pytest

from hifacegan_server import protocol as P
from hifacegan_server.client import ServerError
from hifacegan_server.testing import DaemonProcess, run_worker_jobs, sample_photo

FAULTS = textwrap.dedent(
    '''
    """Injected by tests/test_server_supervision.py: make the daemon's worker fail once, in the way asked."""
    import os
    import threading

    _kind = os.environ.get("RF_TEST_FAULT")
    _left = [1]
    _lock = threading.Lock()


    def _once():
        with _lock:
            if _left[0]:
                _left[0] -= 1
                return True
        return False


    if _kind:
        from hifacegan_server import jobs

        if _kind == "emit_result":  # the result's emission raises: the thread used to die with the job unanswered
            _emit_result = jobs.Worker._emit_result

            def faulty(self, *args, **kwargs):
                if _once():
                    raise RuntimeError("injected fault in the result's emission")
                return _emit_result(self, *args, **kwargs)

            jobs.Worker._emit_result = faulty
        elif _kind == "thread_death":  # the worker's thread ends in the middle of a job
            _run_job = jobs.Worker._run_job

            def dying(self, job):
                if _once():
                    raise SystemExit("injected: the worker's thread dies")
                return _run_job(self, job)

            jobs.Worker._run_job = dying
        elif _kind == "preview":  # a preview's answer cannot be made
            preview_message = jobs.preview_message

            def failing(*args, **kwargs):
                if _once():
                    raise RuntimeError("injected fault in a preview's answer")
                return preview_message(*args, **kwargs)

            jobs.preview_message = failing
    '''
)


@pytest.fixture()
def fault_dir(tmp_path: Path) -> Path:
    (tmp_path / "sitecustomize.py").write_text(FAULTS)
    return tmp_path


def faulty_daemon(fault_dir: Path, kind: str) -> DaemonProcess:
    path = os.pathsep.join(filter(None, [str(fault_dir), os.environ.get("PYTHONPATH")]))
    return DaemonProcess(weights="identity", extra_env={"PYTHONPATH": path, "RF_TEST_FAULT": kind})


def settled_workers(client) -> list[dict]:
    """``status``'s workers once none is busy any more (a result leaves before its worker marks itself idle)."""
    deadline = time.monotonic() + 5.0
    while True:
        workers = client.status()["workers"]
        if all(w["state"] != "busy" for w in workers) or time.monotonic() > deadline:
            return workers


def renovate(client, image):
    return client.renovate(image.tobytes(), image.shape[1], image.shape[0], image.shape[2])


def first_job_fails_then_next_succeeds(daemon, client, image) -> None:
    """The faulty job ends with ``internal`` well inside the client's 30 s wait, and the next job succeeds."""
    started = time.monotonic()
    with pytest.raises(ServerError) as failed:
        renovate(client, image)
    assert time.monotonic() - started < 5.0  # not the client's 30 s timeout
    assert failed.value.code == P.E_INTERNAL and str(daemon.log_path.parent) in failed.value.message
    assert renovate(client, image) is not None


def test_a_fault_in_the_result_ends_that_job_and_the_worker_carries_on(fault_dir):
    image, _ = sample_photo(3, "u8", seed=5)
    with faulty_daemon(fault_dir, "emit_result") as daemon, daemon.client(timeout=30) as client:
        first_job_fails_then_next_succeeds(daemon, client, image)  # the next on the same worker
        workers = settled_workers(client)
        assert [(w["state"], w["failures"], w["restarts"]) for w in workers] == [("idle", 1, 0)]
        assert client.status()["state"] == "ready" and client.hello()["state"] == "ready"
        assert "injected fault in the result's emission" in daemon.log_path.read_text()  # the traceback


def test_a_dead_worker_is_replaced_and_its_job_ended(fault_dir):
    image, _ = sample_photo(3, "u8", seed=6)
    with faulty_daemon(fault_dir, "thread_death") as daemon, daemon.client(timeout=30) as client:
        first_job_fails_then_next_succeeds(daemon, client, image)  # the next served by the replacement
        (worker,) = settled_workers(client)
        assert worker["restarts"] == 1 and worker["state"] == "idle" and worker["jobs_done"] == 1
        assert "replaced (restart 1)" in daemon.log_path.read_text()


def test_a_failing_preview_ends_only_that_preview(fault_dir):
    image, _ = sample_photo(3, "u8", seed=7)
    height, width = image.shape[:2]
    with faulty_daemon(fault_dir, "preview") as daemon, daemon.client(timeout=30) as client:
        with pytest.raises(ServerError) as failed:
            client.preview(image.tobytes(), width, height, 3)
        assert failed.value.code == P.E_INTERNAL
        assert client.preview(image.tobytes(), width, height, 3) is not None
        assert renovate(client, image) is not None
        (worker,) = settled_workers(client)
        assert worker["failures"] == 1 and worker["restarts"] == 0


class GreedyRenovator:
    """Stands in for a GPU renovator: the first job's batches of more than one face run out of GPU memory."""

    def __init__(self, device: str, record: list[tuple[str, int]], fail_first: bool) -> None:
        self.device = device
        self.batch_size = 8
        self.record = record
        self.fail_first = fail_first

    def __call__(self, image, **kwargs):
        import torch

        self.record.append((self.device, self.batch_size))
        if self.device == "cuda" and self.fail_first and len(self.record) <= 4:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return types.SimpleNamespace(image=image.copy(), faces=[], timings={}, notes=[])


def test_an_out_of_memory_falls_back_for_that_job_only():
    record: list[tuple[str, int]] = []
    loaded: list[str] = []

    def factory(weights, device):
        loaded.append(device)
        return GreedyRenovator(device, record, fail_first=True)

    first, second = run_worker_jobs(factory, 2, device="cuda")
    assert first.header["op"] == P.EV_RESULT and second.header["op"] == P.EV_RESULT
    # Job 1: 8, 4, 2, 1 faces at a time on the GPU, all out of memory, then a CPU copy. Job 2: the GPU at 8 again.
    assert record == [("cuda", 8), ("cuda", 4), ("cuda", 2), ("cuda", 1), ("cpu", 8), ("cuda", 8)]
    assert "on the CPU instead" in " ".join(first.header.get("warnings", []))
    assert loaded == ["cuda", "cpu"]  # the CPU copy was made for job 1 and not kept in a model slot


def test_an_out_of_memory_while_loading_says_so():
    import torch

    def factory(weights, device):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 500.00 MiB")

    (event,) = run_worker_jobs(factory, 1, device="cuda")
    assert event.header["code"] == P.E_OUT_OF_MEMORY
    message = event.header["message"]
    assert "load the weights 'default' on cuda" in message and "smaller region" not in message


def test_a_photo_too_large_for_free_memory_is_refused_with_its_estimate():
    from hifacegan_server.budget import available_memory, check_fits, job_memory_estimate

    spec = P.ImageSpec(20000, 15000, 3, "u8", 60000)
    assert job_memory_estimate(spec) == 2 * 20000 * 15000 * 3 + 256 * 2**20
    with pytest.raises(P.ProtocolError) as refused:
        check_fits(spec, available=1 * 2**30)
    assert refused.value.code == P.E_TOO_LARGE
    assert "needs about 1.9 GB" in refused.value.message and "only 1.0 GB is free" in refused.value.message
    check_fits(P.ImageSpec(640, 480, 3, "u8", 1920), available=1 * 2**30)  # fits: no error
    assert available_memory() is None or available_memory() > 0
