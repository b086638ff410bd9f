"""Suite-wide fixtures: ``gpu``-marked tests run on CuPy, or on a strict stand-in without a GPU.

On a machine with CuPy and a GPU the ``gpu`` tests use the real thing. Everywhere else
they run against ``tests/_device/fake_cupy.py``, a NumPy-backed CuPy that refuses
implicit host conversions and NumPy arrays in device calls, and counts every
device-to-host synchronisation, so the device code paths are exercised in every CI run.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import pytest

from plait.core.backend import cupy_available, default_device

_FAKE_PATH = Path(__file__).parent / "_device" / "fake_cupy.py"


def _load_fake_cupy():
    spec = importlib.util.spec_from_file_location("plait_tests_fake_cupy", _FAKE_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REAL_GPU = cupy_available()
fake_cupy = None if REAL_GPU else _load_fake_cupy()
# PLAIT_DEVICE=cuda: tests written with plait.core.testing.on_test_device run there; without
# a GPU the stand-in serves the whole session (a check of the device code paths, not of speed)
SESSION_STAND_IN = default_device() == "cuda" and not REAL_GPU


def pytest_report_header(config):
    where = "CuPy on a real GPU" if REAL_GPU else "strict NumPy stand-in for CuPy (no GPU here)"
    return f"gpu tests: {where}; PLAIT_DEVICE={default_device()}"


@pytest.fixture(autouse=True, scope="session")
def _stand_in_for_the_session():
    if not SESSION_STAND_IN:
        yield
        return
    with fake_cupy.installed():
        yield


@pytest.fixture(autouse=True)
def _cupy_for_gpu_tests(request):
    if REAL_GPU or SESSION_STAND_IN or request.node.get_closest_marker("gpu") is None:
        yield
        return
    with fake_cupy.installed():
        yield


@pytest.fixture
def host_syncs():
    """Counter of device-to-host synchronisations (only counted on the stand-in)."""
    if REAL_GPU:
        pytest.skip("host synchronisations are counted on the CuPy stand-in only")
    fake_cupy.host_syncs.clear()
    return fake_cupy.host_syncs


@pytest.fixture
def within_deadline():
    """``call(fn, *args, seconds=10, **kwargs)``: fn's result or the exception it raised.

    Runs ``fn`` in a daemon thread and fails the test if it has not returned after
    ``seconds`` (a read that blocks on a FIFO, say), instead of hanging the suite.
    """

    def call(fn, *args, seconds: float = 10.0, **kwargs):
        outcome: list = []

        def run():
            try:
                outcome.append(fn(*args, **kwargs))
            except BaseException as exc:  # noqa: BLE001 - handed to the test
                outcome.append(exc)

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        worker.join(seconds)
        if worker.is_alive():
            pytest.fail(f"{getattr(fn, '__name__', fn)} did not return within {seconds} s (blocked?)")
        return outcome[0]

    return call
