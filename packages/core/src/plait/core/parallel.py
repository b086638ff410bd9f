"""A small thread pool for large element-wise work on the CPU, off unless asked for.

NumPy's ufuncs release the GIL, so the blocks of one large element-wise computation can run
on several cores at once: :func:`run_blocks` hands the blocks out to the calling thread and
``get_num_threads() - 1`` pool threads. Every block is computed by the same code as in a
serial loop, so the results are identical bit for bit, whatever the thread count.

The default is one thread (no pool): measured on a 2-core machine with OpenBLAS at 2 threads,
exact GELU on 768x384 float32 took 1.22 ms serial and 1.10 ms on 2 threads alone, but 1.27 vs
1.32 ms right after a matrix product, and a small GPT training step was 0.5 ms slower with the
pool: BLAS's worker threads keep spinning on the other cores for a while after each GEMM, so a
pool sized like BLAS's competes with them in a training step. Element-wise work without GEMMs
in between (or cores BLAS does not use) gains: ``set_num_threads(n)`` turns the pool on.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from .errors import ConfigError

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

__all__ = ["get_num_threads", "run_blocks", "set_num_threads"]

_explicit: int | None = None
_pool: ThreadPoolExecutor | None = None  # concurrent.futures is imported on first use (import time)
_pool_size = 0
_lock = threading.Lock()
_in_worker = threading.local()


def set_num_threads(n: int | None) -> None:
    """Use ``n`` threads (>= 1) for large element-wise work; ``None``: the default, 1 (no pool)."""
    global _explicit
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ConfigError(f"plait.core.parallel: the thread count must be an integer >= 1 or None, got {n!r}")
    _explicit = n


def get_num_threads() -> int:
    """The number of threads :func:`run_blocks` uses: :func:`set_num_threads`' value, else 1."""
    return _explicit if _explicit is not None else 1


def _executor(workers: int) -> ThreadPoolExecutor:
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415 - only once a pool is needed

    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size < workers:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="plait-elementwise",
                                       initializer=_mark_worker)
            _pool_size = workers
        return _pool


def _mark_worker() -> None:
    _in_worker.active = True


def _forget_pool() -> None:
    """In a forked child the pool's threads do not exist: start a fresh pool when needed."""
    global _pool, _pool_size, _lock
    _pool, _pool_size, _lock = None, 0, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _with_errstate(work: Callable[[range], None], err: dict[str, str]) -> Callable[[range], None]:
    """``work`` under the caller's floating-point error settings (NumPy keeps them per thread)."""
    def run(blocks: range) -> None:
        with np.errstate(**err):
            work(blocks)
    return run


def run_blocks(work: Callable[[range], None], count: int) -> None:
    """Call ``work(blocks)`` on disjoint ranges of ``range(count)`` covering it, in parallel.

    ``work`` must only write what its own blocks own (and keep its scratch to itself). With one
    thread, one block, or when called from a pool thread, it is ``work(range(count))``. The
    calling thread runs the first share; an exception in any share is raised here.
    """
    threads = min(get_num_threads(), count)
    if threads <= 1 or getattr(_in_worker, "active", False):
        work(range(count))
        return
    pool = _executor(threads - 1)
    shared = _with_errstate(work, np.geterr())
    futures: list[Future[None]] = [pool.submit(shared, range(i, count, threads)) for i in range(1, threads)]
    try:
        work(range(0, count, threads))
    finally:
        from concurrent.futures import wait  # noqa: PLC0415 - loaded with the pool already

        wait(futures)  # no share may still be writing when this returns or raises
    for future in futures:
        future.result()
