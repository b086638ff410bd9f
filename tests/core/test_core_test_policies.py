"""The suite's own policies (tests/conftest.py): CI fails on skips for missing data; the
random hypothesis profile draws fresh, more examples from a logged seed.

Each check runs pytest in a subprocess on :func:`test_probe`, which does nothing unless
``PLAIT_POLICY_PROBE`` tells it what to do.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

PROBE = os.environ.get("PLAIT_POLICY_PROBE", "")
REPO = Path(__file__).resolve().parents[2]


ON = PROBE == "skips"


def test_probe_data():
    if ON:
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")


def test_probe_mpi():
    if ON:
        pytest.skip("could not import 'mpi4py': No module named 'mpi4py'")


def test_probe_shared_data():
    if ON:
        pytest.skip(f"corpus not found: {REPO.parent / 'shared' / 'data' / 'tinyshakespeare.txt'}")


def test_probe_gpu():
    if ON:
        pytest.skip("CuPy with a GPU is not available")


@pytest.mark.requires_data
def test_probe_marked():
    if ON:
        pytest.skip("some resource this test needs")


DRAWN: list[int] = []


@given(st.integers())
def test_probe_property(x):
    if PROBE == "count":
        DRAWN.append(x)
        Path(os.environ["PLAIT_POLICY_OUT"]).write_text(str(len(DRAWN)))


def _run(probe: str, tests: str = "test_probe_", **env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k not in ("PLAIT_REQUIRE_TEST_DATA", "HYPOTHESIS_PROFILE")}
    full.update(PLAIT_POLICY_PROBE=probe, **env)
    return subprocess.run(
        [sys.executable, "-m", "pytest", __file__, "-k", tests, "-p", "no:randomly", "-p", "no:cacheprovider", "-rA"],
        cwd=REPO, env=full, capture_output=True, text=True, timeout=120,
    )


def test_ci_turns_skips_for_missing_data_into_failures_and_keeps_gpu_skips():
    dev = _run("skips", "test_probe_ and not property")
    assert dev.returncode == 0 and "5 skipped" in dev.stdout, dev.stdout  # a developer machine: clean skips
    ci = _run("skips", "test_probe_ and not property", PLAIT_REQUIRE_TEST_DATA="1")
    failed = set(re.findall(r"^FAILED .*?::(test_probe_\w+)", ci.stdout, re.MULTILINE))
    assert failed == {"test_probe_data", "test_probe_mpi", "test_probe_shared_data", "test_probe_marked"}, ci.stdout
    assert "1 skipped" in ci.stdout  # the GPU skip stays a skip
    assert "may not skip for missing data" in ci.stdout


def test_random_profile_logs_its_seed_and_draws_more_examples(tmp_path):
    out = tmp_path / "count"
    ci = _run("count", "test_probe_property", PLAIT_POLICY_OUT=str(out))
    assert ci.returncode == 0 and "derandomised" in ci.stdout
    ci_count = int(out.read_text())
    rnd = _run("count", "test_probe_property", PLAIT_POLICY_OUT=str(out), HYPOTHESIS_PROFILE="random",
               HYPOTHESIS_SCALE="3", HYPOTHESIS_SEED="4242")
    assert rnd.returncode == 0, rnd.stdout
    assert re.search(r"random profile, seed 4242, examples x3", rnd.stdout)
    assert int(out.read_text()) > ci_count
