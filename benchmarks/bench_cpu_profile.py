"""Plait's side of one benchmark row by CPU clock: ms per unit, page faults, per-function own time.

    python benchmarks/bench_cpu_profile.py [--row cnn_step] [--calls 10] [--top 20]

``run.py --profile`` times by the wall clock, which other processes on a shared machine
distort; this profiles by process CPU time (user + system) at one BLAS thread, and also
reports the minor page faults and system time per unit: fresh large NumPy arrays that
glibc maps anew after trimming its heap cost kernel time on first touch, which the
per-function table shows inside whichever function touched the memory first. Running
with ``MALLOC_TRIM_THRESHOLD_`` and ``MALLOC_MMAP_THRESHOLD_`` set large (glibc keeps the
freed memory) separates that cost from the arithmetic.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import thread_limits  # noqa: E402
from _rows import row_by_key  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--row", default="cnn_step", help="row key or number (default cnn_step)")
    parser.add_argument("--calls", type=int, default=10, help="timed calls after two warm-up calls")
    parser.add_argument("--top", type=int, default=20, help="functions to list")
    args = parser.parse_args()
    row = row_by_key(args.row)
    with thread_limits(1):
        _, run, _ = row.plait(row.data(), None)
        run()
        run()
        profiler = cProfile.Profile(time.process_time)
        before, start = resource.getrusage(resource.RUSAGE_SELF), time.process_time()
        profiler.enable()
        for _ in range(args.calls):
            run()
        profiler.disable()
        cpu, after = time.process_time() - start, resource.getrusage(resource.RUSAGE_SELF)
    units = args.calls * row.units
    print(f"{row.number}. {row.title}: Plait, {units} {row.per}(s), 1 thread, CPU clock (profiler on)")
    print(f"  {cpu / units * 1e3:.2f} ms per {row.per}; {(after.ru_minflt - before.ru_minflt) / units:.0f} "
          f"minor page faults and {(after.ru_stime - before.ru_stime) / units * 1e3:.2f} ms system time per {row.per}")
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    rows = sorted(((own, cum, f"{Path(file).name}:{name}") for (file, _, name), (_, _, own, cum, _) in stats.items()),
                  reverse=True)
    print(f"  {'own ms':>8} {'cum ms':>8}  function (per {row.per})")
    for own, cum, name in rows[: args.top]:
        print(f"  {own / units * 1e3:8.2f} {cum / units * 1e3:8.2f}  {name}")


if __name__ == "__main__":
    main()
