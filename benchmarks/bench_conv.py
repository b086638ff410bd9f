"""Forward+backward time of Plait's Conv2d, MaxPool2d and BatchNorm2d next to PyTorch CPU.

    python benchmarks/bench_conv.py [--threads 1 2] [--repeats 15]

Both libraries run with the same thread count (threadpoolctl for NumPy's BLAS,
``torch.set_num_threads`` for torch); the repeats are interleaved (Plait, torch, Plait,
...) so that load from other processes hits both alike, and the median is reported.
On a busy machine torch's OpenMP threads spin-wait and collapse at 2+ threads; run with
``OMP_WAIT_POLICY=PASSIVE`` there for meaningful multi-thread figures. NumPy's element-wise
work (im2col, col2im, batch norm) is single-threaded; only its GEMMs use the threads.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from plait.layers import BatchNorm2d, Conv2d, MaxPool2d


def plait_step(layer, x: np.ndarray) -> Callable[[], None]:
    def run() -> None:
        y = layer(x)
        layer.backward(np.ones_like(y))

    return run


def torch_step(layer, x: np.ndarray) -> Callable[[], None]:
    tx = torch.tensor(x, requires_grad=True)

    def run() -> None:
        tx.grad = None
        y = layer(tx)
        y.backward(torch.ones_like(y))

    return run


def gemm_floor(x_shape: tuple[int, ...], out_channels: int, taps: int) -> Callable[[], None]:
    """Only the three GEMMs a 'same' convolution's forward+backward needs (no im2col, no col2im)."""
    rng = np.random.default_rng(1)
    n, c, h, w = x_shape
    weight = rng.standard_normal((out_channels, c * taps)).astype(np.float32)
    cols = rng.standard_normal((c * taps, n * h * w)).astype(np.float32)
    dy = rng.standard_normal((out_channels, n * h * w)).astype(np.float32)

    def run() -> None:
        _ = weight @ cols, cols @ dy.T, weight.T @ dy

    return run


def median_times(fns: list[Callable[[], None]], repeats: int) -> list[float]:
    for fn in fns:  # warm up
        fn()
        fn()
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, out in zip(fns, samples):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return [statistics.median(s) for s in samples]


def cases() -> list[tuple[str, object, object, tuple[int, ...]]]:
    conv = Conv2d(32, 64, 3, padding=1)
    tconv = torch.nn.Conv2d(32, 64, 3, padding=1)
    pool, tpool = MaxPool2d(2), torch.nn.MaxPool2d(2)
    bn, tbn = BatchNorm2d(64), torch.nn.BatchNorm2d(64)
    return [
        ("Conv2d(32->64, 3x3, pad 1) on 64x32x14x14", conv, tconv, (64, 32, 14, 14)),
        ("MaxPool2d(2) on 64x64x14x14", pool, tpool, (64, 64, 14, 14)),
        ("BatchNorm2d(64) train on 64x64x14x14", bn, tbn, (64, 64, 14, 14)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    x_rng = np.random.default_rng(0)
    x_conv = x_rng.standard_normal((64, 32, 14, 14)).astype(np.float32)
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; median of {args.repeats} interleaved repeats")
    for threads in args.threads:
        torch.set_num_threads(threads)
        with threadpool_limits(limits=threads):
            print(f"threads={threads}")
            for label, layer, tlayer, shape in cases():
                x = x_rng.standard_normal(shape).astype(np.float32)
                p, t = median_times([plait_step(layer, x), torch_step(tlayer, x)], args.repeats)
                print(f"  {label:45s} plait {p * 1e3:8.2f} ms   torch {t * 1e3:8.2f} ms   ratio {p / t:5.2f}x")
            floor, t = median_times([gemm_floor((64, 32, 14, 14), 64, 9), torch_step(cases()[0][2], x_conv)], args.repeats)
            label = "(only the conv's 3 NumPy GEMMs, for scale)"
            print(f"  {label:45s} numpy {floor * 1e3:8.2f} ms   torch {t * 1e3:8.2f} ms   ratio {floor / t:5.2f}x")


if __name__ == "__main__":
    main()
