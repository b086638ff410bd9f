"""Forward+backward time of Plait's GroupedQueryAttention and LSTM next to torch's, same threads.

    python benchmarks/bench_attention.py [--repeats 15] [--threads 1 2]

Cases (float32): GroupedQueryAttention(256, 4) on x (8, 128, 256) (self-attention, no mask), and
LSTM(256 -> 256, 2 layers) on a (64, 32, 256) sequence. Runs alternate between the two
libraries (interleaved) and the median of each is reported with the ratio Plait / torch.
BLAS threads are pinned with threadpoolctl, torch's with ``torch.set_num_threads``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from plait.core import manual_seed
from plait.layers import LSTM, GroupedQueryAttention


def _plait_mha() -> Callable[[], None]:
    manual_seed(0)
    m = GroupedQueryAttention(256, 4)
    x = np.random.default_rng(0).standard_normal((8, 128, 256)).astype(np.float32)
    dy = np.ones_like(x)

    def step() -> None:
        m.zero_grad()
        m(x)
        m.backward(dy)

    return step


def _torch_mha() -> Callable[[], None]:
    torch.manual_seed(0)
    m = torch.nn.MultiheadAttention(256, 4, batch_first=True)
    x = torch.randn(8, 128, 256, requires_grad=True)

    def step() -> None:
        m.zero_grad(set_to_none=False)
        x.grad = None
        y, _ = m(x, x, x, need_weights=False)
        y.backward(torch.ones_like(y))

    return step


def _plait_lstm() -> Callable[[], None]:
    manual_seed(0)
    m = LSTM(256, 256, num_layers=2)
    x = np.random.default_rng(0).standard_normal((64, 32, 256)).astype(np.float32)
    dy = np.ones((64, 32, 256), np.float32)

    def step() -> None:
        m.zero_grad()
        m(x)
        m.backward(dy)

    return step


def _torch_lstm() -> Callable[[], None]:
    torch.manual_seed(0)
    m = torch.nn.LSTM(256, 256, num_layers=2)
    x = torch.randn(64, 32, 256, requires_grad=True)

    def step() -> None:
        m.zero_grad(set_to_none=False)
        x.grad = None
        y, _ = m(x)
        y.backward(torch.ones_like(y))

    return step


def _interleaved(ours: Callable[[], None], theirs: Callable[[], None], repeats: int) -> tuple[float, float]:
    ours(), theirs()  # warm up (allocations, BLAS init)
    a, b = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        ours()
        t1 = time.perf_counter()
        theirs()
        t2 = time.perf_counter()
        a.append(t1 - t0)
        b.append(t2 - t1)
    return statistics.median(a), statistics.median(b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    cases = [
        ("GroupedQueryAttention(256, 4), x 8x128x256", _plait_mha, _torch_mha),
        ("LSTM(256->256, 2 layers), T=64 B=32", _plait_lstm, _torch_lstm),
    ]
    print(f"numpy {np.__version__}, torch {torch.__version__}; forward+backward, float32, median of {args.repeats}")
    print(f"{'case':<42} {'threads':>7} {'plait ms':>9} {'torch ms':>9} {'ratio':>6}")
    for threads in args.threads:
        torch.set_num_threads(threads)
        with threadpool_limits(limits=threads):
            for name, ours, theirs in cases:
                a, b = _interleaved(ours(), theirs(), args.repeats)
                print(f"{name:<42} {threads:>7} {a * 1e3:>9.2f} {b * 1e3:>9.2f} {a / b:>6.2f}")


if __name__ == "__main__":
    main()
