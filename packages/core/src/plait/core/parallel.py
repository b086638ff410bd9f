"""A small thread pool for large element-wise work on the CPU.

NumPy's ufuncs release the GIL, so the blocks of one large element-wise computation can run
on several cores at once: :func:`run_blocks` hands the blocks out to the calling thread and
up to ``get_num_threads() - 1`` pool threads. Every block is computed by the same code as in
a serial loop, so the results are identical bit for bit, whatever the thread count.

The thread count is sized like BLAS's, so one setting governs both:

1. :func:`set_num_threads` (``None`` returns to the automatic choice);
2. else BLAS's current thread count, read through ``threadpoolctl`` when it is installed
   (so ``threadpool_limits(1)`` makes Plait's element-wise work serial too);
3. else ``OMP_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS`` / ``MKL_NUM_THREADS``;
4. else the number of CPUs this process may run on.

One thread means no pool at all: :func:`run_blocks` is then a plain loop.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import ConfigError

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

__all__ = ["get_num_threads", "run_blocks", "set_num_threads"]

_explicit: int | None = None
_blas: list[Any] | None = None  # threadpoolctl's BLAS controllers, found once
_pool: ThreadPoolExecutor | None = None  # concurrent.futures is imported on first use (import time)
_pool_size = 0
_lock = threading.Lock()
_in_worker = threading.local()


def set_num_threads(n: int | None) -> None:
    """Use ``n`` threads (>= 1) for large element-wise work; ``None``: follow BLAS (the default)."""
    global _explicit
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ConfigError(f"plait.core.parallel: the thread count must be an integer >= 1 or None, got {n!r}")
    _explicit = n


def _blas_controllers() -> list[Any]:
    global _blas
    if _blas is None:
        try:
            from threadpoolctl import ThreadpoolController  # noqa: PLC0415 - optional, loaded on first use
        except ImportError:
            _blas = []
        else:
            _blas = [lib for lib in ThreadpoolController().lib_controllers if lib.user_api == "blas"]
    return _blas


def _from_environment() -> int:
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        value = os.environ.get(name, "").split(",")[0].strip()
        if value.isdigit() and int(value) >= 1:
            return int(value)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def get_num_threads() -> int:
    """The number of threads :func:`run_blocks` uses now (see the module docstring for the order)."""
    if _explicit is not None:
        return _explicit
    blas = _blas_controllers()
    if blas:
        return max(1, max(lib.get_num_threads() or 1 for lib in blas))
    return _from_environment()


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
