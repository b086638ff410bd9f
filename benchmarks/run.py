"""Plait against PyTorch CPU: training steps, an epoch, generation and peak memory.

    python benchmarks/run.py [--threads 1 2] [--repeats 7] [--only mlp_step gpt_step]

Both frameworks run in this process with the same thread count (threadpoolctl limits
NumPy's BLAS, ``torch.set_num_threads`` torch), float32 throughout. Per row: warm-up
calls (not recorded), then ``--repeats`` interleaved rounds (Plait, torch, Plait, ...);
the table gives the median time per unit with the min-max range, the ratio of the
medians Plait/PyTorch and the issue's target. Peak RSS (row 7) is measured per side in a
separate child process, so the two peaks never mix. Results go to benchmarks/results.json.

OpenBLAS picks its kernel at load time; set OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (or not)
in the command that runs this script. The kernel in use is printed and recorded.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _harness import machine_info, measure_interleaved, peak_rss_kib, rss_now_kib, thread_limits  # noqa: E402
from _report import format_table, update_readme, write_results  # noqa: E402
from _rows import ROWS, Row, row_by_key  # noqa: E402

RSS_ROWS = ("cnn_step", "gpt_step")
RSS_TARGET = 1.0  # issue 19: peak memory <= torch's


# -- checks that both sides run the same network --------------------------------------------------
def _parity(row: Row, plait_check: Any, torch_check: Any) -> dict[str, Any]:
    import numpy as np

    a, b = plait_check(), torch_check()
    if row.per == "token":  # greedy token ids
        a, b = np.asarray(a), np.asarray(b)
        same = int((a == b).sum()) if a.shape == b.shape else 0
        return {"kind": "greedy tokens equal", "value": f"{same}/{b.size}"}
    rel = abs(float(a) - float(b)) / max(abs(float(b)), 1e-12)
    return {"kind": "initial loss rel. diff", "value": rel, "plait": float(a), "torch": float(b)}


def run_row(row: Row, repeats: int, warmup: int, clock: str = "wall", threads: int = 1) -> dict[str, Any]:
    target = row.target_at(threads)
    out: dict[str, Any] = {"number": row.number, "key": row.key, "title": row.title, "target": target,
                           "per": row.per, "unit": row.unit, "units_per_call": row.units, "note": row.note,
                           "load_average_before": os.getloadavg()}
    try:
        data = row.data()
        pm, prun, pcheck = row.plait(data, None)
        tm, trun, tcheck = row.torch(data, pm)
        out["parity"] = _parity(row, pcheck, tcheck)
        samples = measure_interleaved({"plait": prun, "torch": trun}, repeats, warmup, units=row.units, clock=clock)
    except Exception as exc:  # a missing piece skips the row, the others still run
        out["error"] = f"{type(exc).__name__}: {exc}"
        out["traceback"] = traceback.format_exc(limit=6)
        return out
    out["plait"], out["torch"] = samples["plait"].as_dict(), samples["torch"].as_dict()
    out["ratio"] = samples["plait"].median / samples["torch"].median
    if target is not None:
        out["pass"] = out["ratio"] <= target
    del pm, tm, prun, trun
    gc.collect()
    return out


def profile_row(row: Row, calls: int) -> None:
    """Print the 30 functions with the most own time over ``calls`` timed calls of Plait's side."""
    import cProfile
    import pstats

    with thread_limits(1):
        _, run, _ = row.plait(row.data(), None)
        run()
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(calls):
            run()
        profiler.disable()
    print(f"{row.number}. {row.title}: Plait side, {calls} call(s) of {row.units} {row.per}(s), 1 thread")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(30)


# -- peak RSS in child processes -----------------------------------------------------------------
def rss_child(key: str, side: str, threads: int, calls: int = 3) -> None:
    """Run ``calls`` timed calls of one side of a row in this fresh process; print RSS as JSON."""
    row = row_by_key(key)
    if side == "plait":
        import plait.layers  # noqa: F401
        import plait.optim  # noqa: F401
        import plait.zoo  # noqa: F401
    else:
        import torch  # noqa: F401
    with thread_limits(threads):
        import numpy  # noqa: F401

        base = rss_now_kib()
        data = row.data()
        _, run, _ = row.plait(data, None) if side == "plait" else row.torch(data, None)
        for _ in range(calls):
            run()
    peak = peak_rss_kib()
    print(json.dumps({"peak_kib": peak, "base_kib": base, "steps": calls * row.units}))


def measure_rss(key: str, threads: int) -> dict[str, Any]:
    row = row_by_key(key)
    out: dict[str, Any] = {"number": 7, "key": f"rss_{key}", "title": f"peak RSS of row {row.number} ({row.key})",
                           "target": RSS_TARGET}
    for side in ("plait", "torch"):
        cmd = [sys.executable, str(Path(__file__).resolve()), "--rss-child", key, side, "--threads", str(threads)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            out["error"] = f"{side} child failed: {proc.stderr.strip().splitlines()[-1:]}"
            return out
        out[side] = json.loads(proc.stdout.strip().splitlines()[-1])
    p, t = out["plait"], out["torch"]
    out["ratio"] = p["peak_kib"] / t["peak_kib"]
    out["ratio_over_base"] = (p["peak_kib"] - p["base_kib"]) / max(t["peak_kib"] - t["base_kib"], 1)
    out["pass"] = out["ratio"] <= RSS_TARGET
    return out


# -- main ---------------------------------------------------------------------------------------
def _commit() -> str | None:
    """The checked-out commit (with "+dirty" when tracked files differ), or None outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=HERE,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts to run (default 1 2)")
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds per row (default 7)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls per side first (default 1)")
    parser.add_argument("--only", nargs="+", metavar="ROW", help="row keys or numbers (7 or rss = memory)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall time (default), or process CPU time: a diagnostic for a loaded machine, 1 thread only")
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-memory row")
    parser.add_argument("--output", type=Path, default=HERE / "results.json", help="where to write the JSON")
    parser.add_argument("--update-readme", action="store_true", help="paste the tables into benchmarks/README.md")
    parser.add_argument("--profile", metavar="ROW", help="cProfile the Plait side of one row (1 thread) and exit")
    parser.add_argument("--rss-child", nargs=2, metavar=("ROW", "SIDE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rss_child:
        rss_child(args.rss_child[0], args.rss_child[1], args.threads[0])
        return 0
    if args.profile:
        profile_row(row_by_key(args.profile), max(args.repeats, 1))
        return 0

    try:
        import torch  # noqa: F401  (loaded before machine_info so its OpenMP pool is listed)
    except ImportError:
        print("benchmarks/run.py compares against PyTorch: install it first (pip install torch==2.13.0)",
              file=sys.stderr)
        return 2

    wanted = args.only or [r.key for r in ROWS] + (["rss"] if not args.no_rss else [])
    rows = [row_by_key(k) for k in wanted if k not in ("7", "rss")]
    with_rss = any(k in ("7", "rss") for k in wanted) and not args.no_rss
    info = machine_info()
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if os.environ.get(var):
            print(f"note: {var}={os.environ[var]} is set; it changes OpenBLAS's kernel choice", file=sys.stderr)
    blas = ", ".join(f"{b.get('internal_api')} {b.get('version', '')} {b.get('architecture', '')}".strip()
                     for b in info["blas"])
    print(f"{info['cpu']} ({info['logical_cores']} cores), numpy {info['numpy']}, torch {info['torch']}")
    print(f"threadpools: {blas}")
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "commit": _commit(),
                               "machine": info,
                               "settings": {"repeats": args.repeats, "warmup": args.warmup, "clock": args.clock}, "runs": []}
    for threads in args.threads:
        started = time.time()
        entries = []
        with thread_limits(threads):
            for row in rows:
                print(f"[{threads} thread(s)] {row.number}. {row.title} ...", file=sys.stderr, flush=True)
                entries.append(run_row(row, args.repeats, args.warmup, args.clock, threads))
        if with_rss:
            for key in RSS_ROWS:
                print(f"[{threads} thread(s)] 7. peak RSS of {key} ...", file=sys.stderr, flush=True)
                entries.append(measure_rss(key, threads))
        run = {"threads": threads, "seconds": round(time.time() - started, 1), "load_average_after": os.getloadavg(),
               "rows": entries}
        results["runs"].append(run)
        print()
        print(format_table(run))
    write_results(results, args.output, merge=bool(args.only))
    print(f"\nwrote {args.output}")
    if args.update_readme:
        update_readme(json.loads(args.output.read_text()), HERE / "README.md")
        print(f"updated {HERE / 'README.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
