"""On CuPy (or its strict stand-in): NAdam / RAdam / Adamax give the NumPy result with state on
the device; plait.core.init writes device arrays in place; the DataLoader collates device arrays."""

from __future__ import annotations

import numpy as np
import pytest

from plait.core import Param, device_of, init
from plait.core.backend import to_device, to_numpy
from plait.optim import Adamax, NAdam, RAdam
from plait.train import DataLoader, TensorDataset, default_collate

pytestmark = pytest.mark.gpu

CONFIGS = [
    (NAdam, {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True, "maximize": True}),
    (RAdam, {"lr": 0.01, "weight_decay": 0.1, "l1": 0.01}),
    (Adamax, {"lr": 0.01, "weight_decay": 0.1}),
]


@pytest.mark.parametrize("cls, kwargs", CONFIGS, ids=[c.__name__ for c, _ in CONFIGS])
def test_cupy_matches_numpy(cls, kwargs):
    rng = np.random.default_rng(0)
    start = [rng.standard_normal((8, 5)), rng.standard_normal(5)]
    grads = [[rng.standard_normal(x.shape) for x in start] for _ in range(12)]
    host = [Param(x.copy()) for x in start]
    gpu = [Param(to_device(x, "cuda")) for x in start]
    opts = cls(host, **kwargs), cls(gpu, **kwargs)
    for gs in grads:
        for p, q, g in zip(host, gpu, gs):
            p.grad, q.grad = g.copy(), to_device(g, "cuda")
        for opt in opts:
            opt.step()
    for p, q in zip(host, gpu):
        assert device_of(q.data) == "cuda"
        np.testing.assert_allclose(to_numpy(q.data), p.data, rtol=1e-10, atol=1e-12)
    for values in opts[1].state.values():
        assert all(device_of(v) == "cuda" for v in values.values() if hasattr(v, "shape"))


def test_init_writes_device_arrays_in_place():
    p = Param(to_device(np.zeros((6, 4), np.float32), "cuda"))
    same = p.data
    init.xavier_uniform_(p, generator=0)
    assert p.data is same and device_of(p.data) == "cuda" and p.data.dtype == np.float32
    np.testing.assert_allclose(to_numpy(p.data), init.xavier_uniform_(np.zeros((6, 4), np.float32), generator=0), rtol=1e-6)
    init.ones_(p)
    assert (to_numpy(p.data) == 1).all()


def test_loader_collates_device_arrays():
    x = to_device(np.arange(12.0).reshape(6, 2), "cuda")
    y = to_device(np.arange(6), "cuda")
    for batch in (next(iter(DataLoader(TensorDataset(x, y), 4))), default_collate([(x[i], y[i]) for i in range(4)])):
        bx, by = batch
        assert device_of(bx) == "cuda" and bx.shape == (4, 2) and to_numpy(by).tolist() == [0, 1, 2, 3]
