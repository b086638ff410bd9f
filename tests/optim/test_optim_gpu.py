"""On CuPy (or its strict stand-in without a GPU), every optimizer gives the NumPy result and keeps
its state on the device, also after a state-dict round trip."""

from __future__ import annotations

import numpy as np
import pytest

from plait.core import Param, device_of
from plait.core.backend import to_device, to_numpy
from plait.optim import (
    SGD,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    Lion,
    NAdam,
    RAdam,
    RMSprop,
    clip_grad_norm_,
    clip_grad_value_,
)

pytestmark = pytest.mark.gpu

CONFIGS = [
    (SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1, "l1": 0.01}),
    (Adam, {"lr": 0.01, "amsgrad": True, "weight_decay": 0.1, "maximize": True}),
    (AdamW, {"lr": 0.01}),
    (RMSprop, {"lr": 0.01, "momentum": 0.9, "centered": True}),
    (Adagrad, {"lr": 0.1, "lr_decay": 0.01}),
    (Lion, {"lr": 1e-3, "weight_decay": 0.1}),
    (NAdam, {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True, "maximize": True}),
    (RAdam, {"lr": 0.01, "weight_decay": 0.1, "l1": 0.01}),
    (Adamax, {"lr": 0.01, "weight_decay": 0.1}),
]


@pytest.mark.parametrize("cls, kwargs", CONFIGS, ids=[c.__name__ for c, _ in CONFIGS])
def test_cupy_matches_numpy(cls, kwargs):
    rng = np.random.default_rng(0)
    init = [rng.standard_normal((8, 5)), rng.standard_normal(5)]
    grads = [[rng.standard_normal(x.shape) for x in init] for _ in range(10)]
    host = [Param(x.copy()) for x in init]
    gpu = [Param(to_device(x, "cuda")) for x in init]
    opts = cls(host, **kwargs), cls(gpu, **kwargs)
    for gs in grads:
        for p, q, g in zip(host, gpu, gs):
            p.grad, q.grad = g.copy(), to_device(g, "cuda")
        for opt in opts:
            opt.step()
    for p, q in zip(host, gpu):
        assert type(q.data).__module__.startswith("cupy")
        np.testing.assert_allclose(to_numpy(q.data), p.data, rtol=1e-10, atol=1e-12)
    for values in opts[1].state.values():
        assert all(device_of(v) == "cuda" for v in values.values() if hasattr(v, "shape"))
    state = opts[1].state_dict()
    fresh = cls([Param(q.data.copy()) for q in gpu], **kwargs)
    fresh.load_state_dict(state)
    for values in fresh.state.values():
        for v in values.values():
            assert not hasattr(v, "shape") or type(v).__module__.startswith("cupy")


def test_cupy_clipping():
    p = Param(to_device(np.zeros(2), "cuda"))
    p.grad = to_device(np.array([3.0, 4.0]), "cuda")
    assert clip_grad_norm_([p], 1.0) == pytest.approx(5.0)
    clip_grad_value_([p], 0.7)
    np.testing.assert_allclose(to_numpy(p.grad), [0.6, 0.7], rtol=1e-5)
