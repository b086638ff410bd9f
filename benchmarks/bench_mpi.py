"""Data-parallel scaling over MPI: training steps/s with N ranks and bytes sent per step.

    mpirun -n 1 python benchmarks/bench_mpi.py
    mpirun -n 2 python benchmarks/bench_mpi.py        # add --allow-run-as-root as root

Strong scaling: the global batch stays fixed (MLP 784-512-512-10 batch 256; GPT 2 blocks,
d 256, 4 heads, seq 128, batch 8, vocab 512) and is split across the ranks. Each rank uses
one BLAS thread. Rank 0 prints one JSON line per model.
"""

from __future__ import annotations

import json
import time

import numpy as np
from threadpoolctl import threadpool_limits

import plait.zoo as zoo
from plait.core import manual_seed
from plait.layers import CrossEntropyLoss, Linear, ReLU, Sequential
from plait.optim import SGD, AdamW
from plait.train.distributed import MPIStrategy


def run(name: str, model, optimizer, make_batch, strategy: MPIStrategy, steps: int = 12, warmup: int = 3) -> None:
    loss_fn = CrossEntropyLoss()
    strategy.broadcast_parameters(model.parameters())
    params = list(model.parameters())
    strategy.bytes_communicated = 0
    times = []
    for step in range(warmup + steps):
        x, y = make_batch(step)
        strategy.barrier()
        start = time.perf_counter()
        logits = model(x)
        loss_fn(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        model.backward(loss_fn.backward().reshape(logits.shape))
        strategy.average_gradients(params)
        optimizer.step()
        optimizer.zero_grad()
        times.append(time.perf_counter() - start)
        if step + 1 == warmup:
            strategy.bytes_communicated = 0
    if strategy.is_main:
        median = float(np.median(times[warmup:]))
        print(json.dumps({
            "model": name,
            "ranks": strategy.world_size,
            "steps_per_s": round(1.0 / median, 2),
            "median_step_ms": round(1000 * median, 1),
            "bytes_per_step_per_rank": strategy.bytes_communicated // steps,
            "parameters": sum(p.size for p in params),
        }))


def main() -> None:
    strategy = MPIStrategy()
    world, rank = strategy.world_size, strategy.rank
    rng = np.random.default_rng(rank)
    manual_seed(0)
    with threadpool_limits(1):
        mlp = Sequential(Linear(784, 512), ReLU(), Linear(512, 512), ReLU(), Linear(512, 10))
        per_rank = 256 // world
        run("mlp-784-512-512-10-b256", mlp, SGD(mlp.parameters(), lr=0.01),
            lambda s: (rng.standard_normal((per_rank, 784)).astype(np.float32), rng.integers(0, 10, per_rank)),
            strategy)

        gpt = zoo.create("gpt", vocab_size=512, context_length=128, d_model=256, num_layers=2, num_heads=4,
                         ffn_dim=1024, dropout=0.0)
        per_rank = max(1, 8 // world)
        run("gpt-2x256-seq128-b8", gpt, AdamW(gpt.parameters(), lr=3e-4),
            lambda s: (rng.integers(0, 512, (per_rank, 128)), rng.integers(0, 512, (per_rank, 128))), strategy)


if __name__ == "__main__":
    main()
