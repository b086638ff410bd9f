"""Linear and Identity: parity with torch.nn.Linear over leading dims, finite differences, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plait.core import DTypeError, PlaitError, ShapeError, manual_seed, registry
from plait.core.testing import gradcheck, on_test_device
from plait.layers import Identity, Linear


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("lead", [(5,), (2, 3), (2, 1, 4), ()])
@pytest.mark.parametrize("bias", [True, False])
def test_parity_with_torch(dtype, lead, bias):
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    ref = torch.nn.Linear(6, 4, bias=bias).to(tdtype)
    ours = Linear(6, 4, bias=bias).astype(dtype)
    ours.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()})
    ours = on_test_device(ours)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((*lead, 6)).astype(dtype)
    dy = rng.standard_normal((*lead, 4)).astype(dtype)
    xt = torch.tensor(x, requires_grad=True)
    yt = ref(xt)
    yt.backward(torch.tensor(dy))
    y = ours(x)
    dx = ours.backward(dy)
    assert y.dtype == dtype and dx.dtype == dtype and y.shape == (*lead, 4)
    tol = dict(rtol=1e-6, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(y, yt.detach().numpy(), **tol)
    np.testing.assert_allclose(dx, xt.grad.numpy(), **tol)
    grads = ours.grads()
    np.testing.assert_allclose(grads["weight"], ref.weight.grad.numpy(), **tol)
    if bias:
        np.testing.assert_allclose(grads["bias"], ref.bias.grad.numpy(), **tol)
    else:
        assert ours.bias is None and list(ours.state_dict()) == ["weight"] and list(grads) == ["weight"]


@pytest.mark.parametrize("bias", [True, False])
def test_gradcheck(bias):
    gradcheck(Linear(5, 3, bias=bias).astype(np.float64), np.random.default_rng(1).standard_normal((2, 3, 5)))


def test_init_bounds_like_torch():
    manual_seed(0)
    layer = Linear(100, 50)
    bound = 1 / np.sqrt(100)
    assert layer.weight.dtype == np.float32 and layer.weight.shape == (50, 100)
    assert np.abs(layer.weight.data).max() <= bound and np.abs(layer.weight.data).max() > 0.9 * bound
    assert np.abs(layer.bias.data).max() <= bound


def test_identity():
    x = np.ones((2, 3))
    layer = Identity()
    assert layer(x) is x and layer.backward(x) is x
    assert registry.build(layer.config()).__class__ is Identity


def test_config_round_trip():
    layer = Linear(3, 2, bias=False)
    cfg = layer.config()
    assert cfg == {"type": "linear", "in_features": 3, "out_features": 2, "bias": False, "dtype": "float32"}
    assert registry.build(cfg).config() == cfg


def test_errors():
    layer = Linear(3, 2)
    with pytest.raises(ShapeError, match=r"Linear.*last dimension 3.*\(4, 5\)"):
        layer(np.zeros((4, 5), dtype=np.float32))
    with pytest.raises(ShapeError, match="Linear"):
        layer(np.float32(1.0))
    with pytest.raises(DTypeError, match="Linear"):
        layer(np.zeros((4, 3), dtype=np.int64))
    with pytest.raises(DTypeError, match="Linear"):
        layer(np.zeros((4, 3), dtype=bool))
    with pytest.raises(PlaitError, match="without a matching forward"):
        Linear(3, 2).backward(np.zeros((4, 2)))
    layer(np.zeros((4, 3), dtype=np.float32))
    with pytest.raises(ShapeError, match=r"Linear\.backward"):
        layer.backward(np.zeros((4, 3)))
    layer(np.zeros((4, 3), dtype=np.float32))
    with pytest.raises(ShapeError, match=r"Linear\.backward.*\(4, 2\).*\(5, 2\)"):
        layer.backward(np.zeros((5, 2)))
