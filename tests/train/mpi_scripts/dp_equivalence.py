"""Run under mpirun (N ranks) or alone: 20 SGD steps of a small MLP, global batch B split over ranks.

Usage: python dp_equivalence.py OUT.npz [--die-at STEP | --raise-at STEP | --stall-at STEP]
(the failure options act on the last rank).
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from plait.core import Module, Param
from plait.train.distributed import DistributedSampler, MPIStrategy, SingleProcess


class TinyMLP(Module):
    """x (N, 6) -> tanh(x W1^T + b1) W2^T + b2 -> (N, 3); float64."""

    def __init__(self) -> None:
        super().__init__()
        rng = np.random.default_rng(1234 + int(os.environ.get("OMPI_COMM_WORLD_RANK", "0")))  # differs per rank
        self.w1 = Param(rng.standard_normal((8, 6)) * 0.5)
        self.b1 = Param(np.zeros(8))
        self.w2 = Param(rng.standard_normal((3, 8)) * 0.5)
        self.b2 = Param(np.zeros(3))

    def forward(self, x):
        h = np.tanh(x @ self.w1.data.T + self.b1.data)
        self.save_for_backward((x, h))
        return h @ self.w2.data.T + self.b2.data

    def backward(self, dy):
        x, h = self.saved()
        self.w2.accumulate(dy.T @ h)
        self.b2.accumulate(dy.sum(0))
        dh = (dy @ self.w2.data) * (1 - h**2)
        self.w1.accumulate(dh.T @ x)
        self.b1.accumulate(dh.sum(0))
        return dh @ self.w1.data


def main() -> None:
    out = sys.argv[1]
    def option(name: str) -> int:
        return int(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else -1

    die_at, raise_at, stall_at = option("--die-at"), option("--raise-at"), option("--stall-at")
    strategy = MPIStrategy() if "OMPI_COMM_WORLD_SIZE" in os.environ or "PMI_SIZE" in os.environ else SingleProcess()
    rank, world = strategy.rank, strategy.world_size

    data = np.random.default_rng(0)
    x_all, y_all = data.standard_normal((320, 6)), data.standard_normal((320, 3))
    model = TinyMLP()
    strategy.broadcast_parameters(model.parameters())

    global_batch = 16
    sampler = DistributedSampler(len(x_all), num_replicas=world, rank=rank, shuffle=True, seed=7)
    shard = sampler.indices()  # this rank's positions, disjoint from the others'
    per_rank = global_batch // world
    for step in range(20):
        if rank == world - 1:
            if step == die_at:
                os._exit(3)  # a rank dies without a word
            if step == raise_at:
                raise RuntimeError(f"simulated failure at step {step}")
            if step == stall_at:
                time.sleep(3600)  # a rank hangs
        idx = shard[step * per_rank : (step + 1) * per_rank]
        pred = model(x_all[idx])
        dpred = 2 * (pred - y_all[idx]) / pred.size  # mean squared error over this rank's part
        model.zero_grad()
        model.backward(dpred)
        strategy.average_gradients(model.parameters())
        for p in model.parameters():
            p.data -= 0.1 * p.grad
    if strategy.is_main:
        np.savez(out, **{k: v for k, v in model.state_dict().items()}, bytes=strategy.bytes_communicated,
                 shard=shard)


if __name__ == "__main__":
    main()
