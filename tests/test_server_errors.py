"""How a job's failure reaches its client: one table maps exception types to protocol codes (``server/errors.py``),
so a bug reads ``internal`` (traceback in the log) and never as the user's mistake."""

from __future__ import annotations

import logging
import sys

import numpy as np
import pytest

from hifacegan_server import protocol as P
from hifacegan_server.client import ServerError
from hifacegan_server.errors import JobStopped, PipelineUnavailable, error_code
from hifacegan_server.fairqueue import Job
from hifacegan_server.jobs import Event
from hifacegan_server.testing import DaemonProcess, run_worker_jobs, sample_photo


def run_job(factory, options: dict | None = None) -> Event:
    """One 8x8 job through a real Worker thread whose renovators come from ``factory``; its final event."""
    return run_worker_jobs(factory, 1, "cpu", options)[0]


def raising(exc: BaseException):
    def renovate(image, **kwargs):
        raise exc

    return lambda weights, device: renovate


def failing_load(exc: BaseException):
    def load(weights, device):
        raise exc

    return load


def test_an_internal_value_error_reads_internal_with_the_traceback_in_the_log(caplog):
    with caplog.at_level(logging.ERROR, logger="renovate-faces.jobs"):
        event = run_job(raising(ValueError("an index went astray")))
    assert event.header["code"] == P.E_INTERNAL, event.header
    message = event.header["message"]
    assert "an index went astray" not in message and "internal error" in message and message.endswith(".")
    assert "Traceback" in caplog.text and "ValueError: an index went astray" in caplog.text


def test_library_types_keep_their_codes():
    from hifacegan.pipeline import Cancelled, WeightsUnavailable
    from hifacegan.weights import WeightsError

    assert run_job(raising(Cancelled("stopped"))).header["code"] == P.E_CANCELLED
    assert run_job(raising(JobStopped("cancelled"))).header["code"] == P.E_CANCELLED
    assert run_job(raising(MemoryError())).header["code"] == P.E_OUT_OF_MEMORY
    for exc in (
        WeightsUnavailable("no such weights"),
        WeightsError("corrupt"),
        PipelineUnavailable("no torch"),
    ):
        event = run_job(failing_load(exc))
        assert event.header["code"] == P.E_WEIGHTS, event.header
        assert "'default' could not be loaded" in event.header["message"]


def test_the_table_by_type_not_by_name():
    class Cancelled(Exception):  # a namesake of the library's class: the name alone means nothing
        pass

    class WeightsOops(Exception):
        pass

    assert error_code(Cancelled()) == P.E_INTERNAL
    assert error_code(WeightsOops()) == P.E_INTERNAL
    assert error_code(ValueError("x")) == P.E_INTERNAL
    assert error_code(TypeError("x")) == P.E_INTERNAL
    assert error_code(P.BadOption("'faces' must be one of all.")) == P.E_BAD_OPTION
    assert error_code(RuntimeError("CUDA out of memory. Tried to allocate 2 GiB")) == P.E_OUT_OF_MEMORY


def test_a_bad_option_reads_bad_option():
    for options in ({"faces": "sideways"}, {"fidelity": 2}, {"colour": "red"}, {"max_faces": 0}):
        with pytest.raises(P.BadOption) as err:
            P.validate_options(options)
        assert err.value.code == P.E_BAD_OPTION


FAULTY_PIPELINE = """
import sys
import hifacegan.pipeline.renovator as renovator

def select_faces(*args, **kwargs):
    raise ValueError("injected bug inside the pipeline")

renovator.select_faces = select_faces
from hifacegan_server.cli import main
raise SystemExit(main())
"""


class FaultyPipelineDaemon(DaemonProcess):
    """The real daemon whose pipeline raises a ValueError of its own (a bug, not the user's options)."""

    def command(self) -> list[str]:
        return [sys.executable, "-c", FAULTY_PIPELINE, *super().command()[3:]]


def test_a_real_daemon_tells_a_pipeline_bug_from_the_users_mistakes():
    d = FaultyPipelineDaemon(weights="identity", device="cpu", threads=1, extra_args=["--max-pixels", "1"])
    d.start()
    try:
        image, _ = sample_photo(3, "u8", seed=1)
        h, w, _ = image.shape
        with d.client(timeout=10) as c:
            with pytest.raises(ServerError) as err:
                c.renovate(image.tobytes(), w, h, 3)
            assert err.value.code == P.E_INTERNAL, err.value
            with pytest.raises(ServerError) as err:
                c.renovate(image.tobytes(), w, h, 3, options={"faces": "sideways"})
            assert err.value.code == P.E_BAD_OPTION and "faces" in str(err.value)
            with pytest.raises(ServerError) as err:
                c.renovate(image.tobytes(), w, h, 3, options={"weights": "no-such-weights-anywhere"})
            assert err.value.code == P.E_WEIGHTS, err.value
            assert c.hello()["version"] == P.VERSION
        log = d.log_path.read_text()
        assert "Traceback" in log and "ValueError: injected bug inside the pipeline" in log
    finally:
        assert d.stop() == 0, d.stderr()
        d.cleanup()


def test_job_progress_state_is_declared():
    fields = Job.__dataclass_fields__
    assert "last_progress" in fields and "last_fraction" in fields
    assert np.isclose(Job.__dataclass_fields__["last_fraction"].default, 0.0)
