"""On CuPy (or its strict stand-in): plait.core.init writes device arrays in place; the DataLoader
collates device arrays. (NAdam, RAdam and Adamax on the device: tests/optim/test_optim_gpu.py.)"""

from __future__ import annotations

import numpy as np
import pytest

from plait.core import Param, device_of, init
from plait.core.backend import to_device, to_numpy
from plait.train import DataLoader, TensorDataset, default_collate

pytestmark = pytest.mark.gpu


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
