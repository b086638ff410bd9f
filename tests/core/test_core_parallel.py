"""plait.core.parallel: the thread pool for large element-wise work gives the serial results exactly."""

from __future__ import annotations

import os
import signal
import threading
import time
import warnings

import numpy as np
import pytest

from plait.core import ConfigError, parallel
from plait.layers import _activation_maths as act
from plait.layers._gelu_maths import gelu_exact
from plait.layers._special import BLOCK, blockwise


@pytest.fixture(autouse=True)
def _restore_threads():
    yield
    parallel.set_num_threads(None)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_set_num_threads_refuses_non_positive_integers(bad):
    with pytest.raises(ConfigError, match="thread count"):
        parallel.set_num_threads(bad)


@pytest.mark.parametrize("threads", [1, 2, 3, 5])
@pytest.mark.parametrize("count", [0, 1, 2, 7])
def test_run_blocks_calls_every_block_once(threads, count):
    parallel.set_num_threads(threads)
    seen, names, lock = [], set(), threading.Lock()

    def work(blocks):
        with lock:
            seen.extend(blocks)
            names.add(threading.current_thread().name)

    parallel.run_blocks(work, count)
    assert sorted(seen) == list(range(count))
    assert len(names) <= max(1, min(threads, count))
    if threads > 1 and count > 1:
        assert any(n.startswith("plait-elementwise") for n in names)


def test_run_blocks_raises_a_share_error_after_every_share_finished():
    parallel.set_num_threads(3)
    done = []

    def work(blocks):
        if 1 in blocks:
            raise ValueError("share 1 failed")
        done.extend(blocks)

    with pytest.raises(ValueError, match="share 1 failed"):
        parallel.run_blocks(work, 3)
    assert sorted(done) == [0, 2]


def test_workers_use_the_callers_floating_point_error_settings():
    parallel.set_num_threads(2)
    x = np.full(4, 1e30, dtype=np.float32)

    def work(blocks):
        for _ in blocks:
            np.multiply(x, x)

    with np.errstate(over="raise"), pytest.raises(FloatingPointError):
        parallel.run_blocks(work, 2)


def test_nested_calls_from_a_pool_thread_run_serially():
    parallel.set_num_threads(2)
    inner = []

    def outer(blocks):
        for _ in blocks:
            parallel.run_blocks(inner.extend, 2)  # a pool thread must not wait on the pool

    parallel.run_blocks(outer, 2)
    assert sorted(inner) == [0, 0, 1, 1]


def test_the_pool_is_off_by_default():
    """One thread unless asked for (BLAS's spinning workers hold the other cores in a training step)."""
    parallel.set_num_threads(None)
    assert parallel.get_num_threads() == 1
    names = set()
    parallel.run_blocks(lambda blocks: names.add(threading.current_thread().name), 4)
    assert names == {threading.current_thread().name}
    parallel.set_num_threads(3)
    assert parallel.get_num_threads() == 3


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [2, 3, 7])
def test_parallel_kernels_equal_the_serial_reference(dtype, threads):
    """GELU (its own block loop) and the blockwise activations, bit for bit, over a partial last block."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(5 * BLOCK + 123) * 4).astype(dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    cases = [lambda: gelu_exact(x), lambda: act.silu_forward(x)[0], lambda: act.mish_backward(dy, x),
             lambda: act.gelu_forward(x, approximate="tanh")[0], lambda: blockwise(act.sigmoid, x)]
    parallel.set_num_threads(1)
    serial = [np.asarray(c()) for c in cases]
    parallel.set_num_threads(threads)
    for case, want in zip(cases, serial):
        np.testing.assert_array_equal(np.asarray(case()), want)


@pytest.mark.parametrize("size", [2 * BLOCK + 1, 3 * BLOCK, 7 * BLOCK + 5])
def test_gelu_blocks_split_evenly_over_threads_cover_every_element(size):
    """GELU rounds its block count up to a multiple of the thread count: no element is missed or
    written twice, whatever the remainder (7 threads on barely more than two blocks)."""
    x = np.random.default_rng(1).standard_normal(size).astype(np.float32)
    parallel.set_num_threads(1)
    y1, s1 = gelu_exact(x)
    parallel.set_num_threads(7)
    y7, s7 = gelu_exact(x)
    np.testing.assert_array_equal(y7, y1)
    np.testing.assert_array_equal(s7, s1)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_starts_its_own_pool():
    """The parent's pool threads do not exist in a forked child: the child's first parallel call
    must start a new pool rather than wait forever on the inherited one."""
    parallel.set_num_threads(2)
    parallel.run_blocks(lambda blocks: None, 2)  # the parent's pool is running now
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork of a multi-threaded process
        pid = os.fork()
    if pid == 0:  # the child: exit code 0 once the pool answered
        code = 1
        try:
            seen = []
            parallel.run_blocks(seen.extend, 4)
            code = 0 if sorted(seen) == [0, 1, 2, 3] else 2
        finally:
            os._exit(code)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail("the forked child hung on the parent's pool")
