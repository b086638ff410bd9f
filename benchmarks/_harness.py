"""Timing, thread control and machine description shared by ``benchmarks/run.py``.

A row is timed by :func:`measure_interleaved`: warm-up calls first (not recorded), then
``repeats`` rounds of (Plait, PyTorch), so that load from other processes hits both sides
alike. Each recorded sample is one call of the side's function divided by the number of
units it performed (steps, epochs, generated sequences).
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Samples",
    "blas_info",
    "machine_info",
    "measure_interleaved",
    "peak_rss_kib",
    "rss_now_kib",
    "thread_limits",
]


@dataclass
class Samples:
    """Seconds per unit, one value per repetition."""

    values: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    def as_dict(self) -> dict[str, Any]:
        return {"median": self.median, "min": self.low, "max": self.high, "samples": self.values}


CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}


def _timed(fn: Callable[[], Any], clock: Callable[[], float]) -> float:
    """Time of one call, with the cyclic GC collected before and paused during it."""
    gc.collect()
    gc.disable()
    try:
        start = clock()
        fn()
        return clock() - start
    finally:
        gc.enable()


def measure_interleaved(sides: dict[str, Callable[[], Any]], repeats: int, warmup: int = 1,
                        units: float = 1.0, clock: str = "wall") -> dict[str, Samples]:
    """Time each side ``repeats`` times, alternating sides within every round.

    ``units`` is how many steps (or epochs, sequences...) one call performs: samples are
    seconds per unit. ``warmup`` calls per side run first and are not recorded. ``clock``
    "wall" is the real figure; "cpu" (process CPU time) is a diagnostic for a loaded
    machine, meaningful with one thread only (spinning worker threads count as busy).
    """
    timer = CLOCKS[clock]
    for _ in range(warmup):
        for fn in sides.values():
            fn()
    out = {name: Samples() for name in sides}
    for _ in range(repeats):
        for name, fn in sides.items():
            out[name].values.append(_timed(fn, timer) / units)
    return out


@contextmanager
def thread_limits(threads: int) -> Iterator[None]:
    """Same thread count for NumPy's BLAS (threadpoolctl) and torch (``set_num_threads``)."""
    from threadpoolctl import threadpool_limits

    torch = _maybe_torch()
    previous = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        if torch is not None and previous is not None:
            torch.set_num_threads(previous)


def _maybe_torch() -> Any:
    import sys

    return sys.modules.get("torch")


def peak_rss_kib() -> int:
    """The peak resident set size of this process in KiB (VmHWM of /proc/self/status).

    Not ``getrusage``'s ``ru_maxrss``: a child started from a large parent inherits the
    parent's high-water mark there, while VmHWM belongs to the new address space.
    """
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise OSError("VmHWM not found in /proc/self/status")


def rss_now_kib() -> int:
    """The current resident set size of this process in KiB (Linux /proc)."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def blas_info() -> list[dict[str, Any]]:
    """threadpoolctl's view of the loaded BLAS / OpenMP libraries (which kernel, how many threads)."""
    from threadpoolctl import threadpool_info

    keep = ("user_api", "internal_api", "prefix", "version", "architecture", "threading_layer", "num_threads")
    return [{k: lib.get(k) for k in keep if lib.get(k) is not None} for lib in threadpool_info()]


def _cpu_model() -> str:
    """``model name`` of /proc/cpuinfo, with family/model numbers and the widest SIMD flag."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        return platform.processor() or "unknown"
    flags = fields.get("flags", "").split()
    simd = next((f for f in ("avx512f", "avx2", "avx", "sse4_2") if f in flags), "")
    return (f"{fields.get('model name', 'unknown')} (family {fields.get('cpu family', '?')} "
            f"model {fields.get('model', '?')}{', ' + simd if simd else ''})")


def _load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine_info() -> dict[str, Any]:
    """CPU, cores, library versions, BLAS kernels and the environment knobs that change them."""
    import numpy as np

    torch = _maybe_torch()
    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": getattr(torch, "__version__", None),
        "blas": blas_info(),
        "load_average_at_start": _load_average(),
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS",
                                                "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")},
    }
    if torch is not None:
        info["torch_parallel"] = torch.__config__.parallel_info().splitlines()[-1].strip()
    return info
