"""Plait on CuPy against PyTorch CUDA: benchmark rows 2-5 and 8 on one GPU, float32 and TF32.

    python benchmarks/bench_gpu.py [--repeats 10] [--precision fp32 tf32] [--only gpt_step]
    python benchmarks/bench_gpu.py --sync-study   # what the per-step host syncs cost (GPT rows, fp32)
    python benchmarks/bench_gpu.py --smoke   # no GPU: CuPy stand-in + torch CPU, checks the script only

Each row is the CPU benchmark's row (``_rows.py``): the Plait model is built and seeded on
the host, its torch twin gets the same weights, then both models move to the GPU and the
data is put there once. A timed call ends with a device synchronisation on both sides.
Per row the table gives the median wall time per step, the ratio Plait/PyTorch, and for
Plait the host (Python) time and the GPU time per step from ``cupyx.profiler.benchmark``:
host time close to the wall time means the step is bound by kernel launches, not by the GPU.

``--sync-study`` times the GPT rows three ways: as shipped (the loss returns a Python float
and the class-id and token-id range checks each read one flag back), with the loss left on
the device, and with the class-id and token-id range checks skipped too (row 8 still reads
the gradient norm back in ``clip_grad_norm_``). It is a measurement, made by patching the
child processes only: it decides whether ``Loss.forward`` should stop returning a float.

Precision: ``fp32`` is true float32 on both sides (TF32 off in cuBLAS and cuDNN); ``tf32``
lets both use TensorFloat-32 matmuls (``CUPY_TF32=1`` / ``allow_tf32``). bfloat16 is not
offered: NumPy, and so Plait, has no bfloat16 type. Each precision runs in a child process
because CuPy reads ``CUPY_TF32`` once. Results are printed and written to
``benchmarks/results_gpu.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _rows import Row, row_by_key  # noqa: E402

GPU_ROWS = ("mlp_step", "cnn_step", "gpt_step", "lstm_step", "small_gpt_step")
SYNC_ROWS = ("gpt_step", "small_gpt_step")
GPT_TARGET = 2.0  # issue 11: Plait/PyTorch on the GPT step
_STAND_IN: Any = None


def _install_stand_in() -> None:
    """--smoke: the strict NumPy stand-in for CuPy that the test suite uses without a GPU."""
    path = HERE.parent / "tests" / "_device" / "fake_cupy.py"
    spec = importlib.util.spec_from_file_location("plait_fake_cupy", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    global _STAND_IN
    _STAND_IN = module.installed()  # kept referenced: it stays installed for the life of this process
    _STAND_IN.__enter__()


def _set_torch_precision(torch: Any, precision: str) -> None:
    tf32 = precision == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32


def _seconds_per_unit(fn: Callable[[], Any], sync: Callable[[], Any], units: int) -> float:
    """Wall time of one call, from an idle device to an idle device, per step."""
    sync()
    start = time.perf_counter()
    fn()
    sync()
    return (time.perf_counter() - start) / units


def _host_and_device_time(fn: Callable[[], Any], repeats: int, units: int, smoke: bool) -> dict[str, float] | None:
    """Plait's host (CPU) and GPU time per step from cupyx.profiler.benchmark (None in --smoke)."""
    if smoke:
        return None
    from cupyx.profiler import benchmark  # noqa: PLC0415

    result = benchmark(fn, n_repeat=repeats, n_warmup=1)
    return {"host_s": float(result.cpu_times.mean()) / units, "gpu_s": float(result.gpu_times[0].mean()) / units}


def run_row(row: Row, repeats: int, smoke: bool) -> dict[str, Any]:
    import _torch_side
    import cupy as cp
    import torch

    device = "cpu" if smoke else "cuda"
    _torch_side.DEVICE = device
    host_data = row.data()
    device_data = {k: cp.asarray(v) for k, v in host_data.items()}
    pm, prun, pcheck = row.plait(device_data, None)
    tm, trun, tcheck = row.torch(host_data, pm)  # twin built from the host weights
    pm.to("cuda")
    tm.to(device)
    plait_sync = cp.cuda.Device().synchronize
    torch_sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    initial = {"plait": float(pcheck()), "torch": float(tcheck())}
    for fn, sync in ((prun, plait_sync), (trun, torch_sync)):  # warm-up: kernels compiled, caches filled
        fn()
        sync()
    plait_s, torch_s = [], []
    for _ in range(repeats):  # interleaved, as in run.py
        plait_s.append(_seconds_per_unit(prun, plait_sync, row.units))
        torch_s.append(_seconds_per_unit(trun, torch_sync, row.units))
    out = {
        "row": row.number, "key": row.key, "title": row.title, "initial_loss": initial,
        "plait_ms": 1e3 * statistics.median(plait_s), "torch_ms": 1e3 * statistics.median(torch_s),
        "plait_samples_ms": [1e3 * s for s in plait_s], "torch_samples_ms": [1e3 * s for s in torch_s],
    }
    out["ratio"] = out["plait_ms"] / out["torch_ms"]
    split = _host_and_device_time(prun, repeats, row.units, smoke)
    if split is not None:
        out["plait_host_ms"], out["plait_gpu_ms"] = 1e3 * split["host_s"], 1e3 * split["gpu_s"]
    if row.key == "gpt_step":
        out["target"], out["pass"] = GPT_TARGET, out["ratio"] <= GPT_TARGET
    return out


def _loss_on_device() -> None:
    """Study variant: the reduced loss stays a 0-d device array (no ``float()``)."""
    from plait.layers import losses

    def reduce(self: Any, values: Any, denom: Any, ctx: Any) -> Any:
        xp = losses.get_array_module(values)
        self.__dict__["_cache"] = (values.shape, values.dtype, denom, ctx, xp)
        total = values.sum()
        return total if self.reduction == "sum" else total / denom

    losses.Loss._reduce = reduce


def _no_range_checks() -> None:
    """Study variant: the class-id and token-id range checks (one host read each) are skipped."""
    from plait.core import checks
    from plait.layers import _loss_maths

    unchecked = checks.check_int_array

    def check_int_array(x: Any, where: str, **kwargs: Any) -> Any:
        kwargs.pop("high", None)
        return unchecked(x, where, **kwargs)

    for name, module in list(sys.modules.items()):
        if name.startswith("plait.") and getattr(module, "check_int_array", None) is unchecked:
            module.check_int_array = check_int_array
    gather = _loss_maths._gather_targets

    def gather_targets(target: Any, weight: Any, ignore_index: int, num_classes: int, where: str, dtype: Any) -> Any:
        return gather(target, weight, ignore_index, 1 << 62, where, dtype)

    _loss_maths._gather_targets = gather_targets


SYNC_VARIANTS = {"shipped": (), "loss-on-device": (_loss_on_device,),
                 "loss-on-device+no-id-checks": (_loss_on_device, _no_range_checks)}


def sync_study(keys: list[str], repeats: int, smoke: bool) -> None:
    """Each variant in its own child process (the patches are process-wide)."""
    for variant in SYNC_VARIANTS:
        cmd = [sys.executable, __file__, "--child", "fp32", "--variant", variant, "--repeats", str(repeats),
               "--only", *keys]
        proc = subprocess.run(cmd + (["--smoke"] if smoke else []), env={**os.environ, "CUPY_TF32": "0"},
                              capture_output=True, text=True)
        rows = [json.loads(line[7:]) for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        if proc.returncode != 0 or not rows:
            print(proc.stderr[-3000:], file=sys.stderr)
        for r in rows:
            if "error" in r:
                print(f"| {variant} | {r['key']} | error: {r['error']} |")
                continue
            host = r.get("plait_host_ms", float("nan"))
            gpu = r.get("plait_gpu_ms", float("nan"))
            print(f"| {variant} | {r['key']} | {r['plait_ms']:.2f} | {host:.2f} | {gpu:.2f} | {r['torch_ms']:.2f} | "
                  f"{r['ratio']:.2f} |", flush=True)
            print("STUDY " + json.dumps({"variant": variant, **r}), flush=True)


def child(precision: str, keys: list[str], repeats: int, smoke: bool, variant: str = "shipped") -> None:
    """One precision in this process: print one JSON line per row."""
    if smoke:
        _install_stand_in()
    for patch in SYNC_VARIANTS[variant]:
        patch()
    import torch

    _set_torch_precision(torch, precision)
    for key in keys:
        try:
            result = run_row(row_by_key(key), repeats, smoke)
        except Exception as exc:  # one broken row must not hide the others
            result = {"key": key, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=-4)}
        print("RESULT " + json.dumps({"precision": precision, **result}), flush=True)


def _machine(smoke: bool) -> dict[str, Any]:
    if smoke:
        return {"gpu": "none (--smoke: CuPy stand-in, torch on the CPU)"}
    import cupy as cp
    import torch

    props = cp.cuda.runtime.getDeviceProperties(0)
    return {"gpu": props["name"].decode() if isinstance(props["name"], bytes) else props["name"],
            "cupy": cp.__version__, "cuda_runtime": cp.cuda.runtime.runtimeGetVersion(), "torch": torch.__version__,
            "torch_cuda": torch.version.cuda}


def _table(results: list[dict[str, Any]]) -> str:
    lines = ["| row | precision | Plait ms/step | PyTorch ms/step | ratio | Plait host ms | Plait GPU ms |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['key']} | {r['precision']} | error: {r['error']} | | | | |")
            continue
        host = f"{r['plait_host_ms']:.2f}" if "plait_host_ms" in r else "-"
        gpu = f"{r['plait_gpu_ms']:.2f}" if "plait_gpu_ms" in r else "-"
        lines.append(f"| {r['row']}. {r['title']} | {r['precision']} | {r['plait_ms']:.2f} | {r['torch_ms']:.2f} | "
                     f"{r['ratio']:.2f} | {host} | {gpu} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--precision", nargs="+", default=["fp32", "tf32"], choices=["fp32", "tf32"])
    parser.add_argument("--only", nargs="+", default=list(GPU_ROWS), choices=GPU_ROWS)
    parser.add_argument("--smoke", action="store_true", help="no GPU: check the script with the CuPy stand-in")
    parser.add_argument("--sync-study", action="store_true", help="time the GPT rows with fewer host syncs (fp32)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--variant", default="shipped", choices=list(SYNC_VARIANTS), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=HERE / "results_gpu.json")
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.only, args.repeats, args.smoke, args.variant)
        return 0
    if args.sync_study:
        print("| variant | row | Plait ms/step | Plait host ms | Plait GPU ms | PyTorch ms/step | ratio |\n|---|---|---|---|---|---|---|")
        sync_study([k for k in args.only if k in SYNC_ROWS] or list(SYNC_ROWS), args.repeats, args.smoke)
        return 0
    results = []
    for precision in args.precision:
        env = {**os.environ, "CUPY_TF32": "1" if precision == "tf32" else "0"}
        cmd = [sys.executable, __file__, "--child", precision, "--repeats", str(args.repeats), "--only", *args.only]
        proc = subprocess.run(cmd + (["--smoke"] if args.smoke else []), env=env, capture_output=True, text=True)
        rows = [json.loads(line[7:]) for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        if proc.returncode != 0 or not rows:
            print(proc.stderr[-3000:], file=sys.stderr)
            return 1
        results += rows
    report = {"machine": _machine(args.smoke), "repeats": args.repeats, "rows": results}
    if not args.smoke:
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(_table(results))
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
