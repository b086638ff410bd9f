"""PReLU, ReLU6, Hardswish, Hardsigmoid, LogSigmoid, Softsign, CELU, GLU: torch parity of outputs
and gradients (float32 and float64, at the kinks too), config, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plait.core import ConfigError, ShapeError, registry
from plait.core.testing import gradcheck, on_test_device, to_host
from plait.layers import CELU, GLU, Hardsigmoid, Hardswish, Hardtanh, LogSigmoid, PReLU, ReLU6, Softsign

# (id, plait factory, torch factory, kinks where torch defines the subgradient)
CASES = [
    ("relu6", ReLU6, torch.nn.ReLU6, (0.0, 6.0)),
    ("hardswish", Hardswish, torch.nn.Hardswish, (-3.0, 3.0)),
    ("hardsigmoid", Hardsigmoid, torch.nn.Hardsigmoid, (-3.0, 3.0)),
    ("hardtanh", lambda: Hardtanh(-2.0, 3.0), lambda: torch.nn.Hardtanh(-2.0, 3.0), (-2.0, 3.0)),
    ("log_sigmoid", LogSigmoid, torch.nn.LogSigmoid, ()),
    ("softsign", Softsign, torch.nn.Softsign, ()),
    ("celu", CELU, torch.nn.CELU, (0.0,)),
    ("celu_alpha", lambda: CELU(0.4), lambda: torch.nn.CELU(0.4), (0.0,)),
    ("glu", GLU, torch.nn.GLU, ()),
    ("glu_dim1", lambda: GLU(1), lambda: torch.nn.GLU(1), ()),
    ("prelu", PReLU, torch.nn.PReLU, (0.0,)),
    ("prelu_channels", lambda: PReLU(4, init=0.1), lambda: torch.nn.PReLU(4, init=0.1), (0.0,)),
]
IDS = [c[0] for c in CASES]
SHAPES = [(6,), (3, 4), (2, 4, 6), (2, 4, 2, 6)]


def _torch_run(tmod, x, dy):
    tmod = tmod.double() if x.dtype == np.float64 else tmod
    xt = torch.tensor(x, requires_grad=True)
    yt = tmod(xt)
    yt.backward(torch.tensor(dy))
    weight_grad = tmod.weight.grad.numpy() if hasattr(tmod, "weight") else None
    return yt.detach().numpy(), xt.grad.numpy(), weight_grad


def _check(layer, make_torch, x, dy, tol):
    layer = on_test_device(layer)
    y = layer(x)
    dx = layer.backward(dy)
    y_ref, dx_ref, dw_ref = _torch_run(make_torch(), x, dy)
    assert y.dtype == x.dtype and dx.dtype == x.dtype and y.shape == y_ref.shape
    np.testing.assert_allclose(np.asarray(y), y_ref, **tol)
    np.testing.assert_allclose(np.asarray(dx), dx_ref, **tol)
    if dw_ref is not None:
        np.testing.assert_allclose(to_host(layer.weight.grad), dw_ref, **tol)
        assert layer.weight.grad.dtype == layer.weight.data.dtype


def _tol(dtype):
    return dict(rtol=1e-6, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_parity_with_torch(case, shape, dtype):
    _, make, make_torch, kinks = case
    layer = make()
    if case[0] == "glu_dim1" and len(shape) < 2 or case[0] == "prelu_channels" and len(shape) < 2:
        pytest.skip("needs an axis 1")
    if isinstance(layer, PReLU) and layer.num_parameters > 1:
        shape = (shape[0], 4, *shape[2:])
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    flat = x.reshape(-1)
    flat[: len(kinks)] = kinks  # the exact kinks: torch's subgradient there
    dy = rng.standard_normal(tuple(make_torch().double()(torch.tensor(x, dtype=torch.float64)).shape)).astype(dtype)
    if isinstance(layer, PReLU):
        layer = layer.astype(dtype)
    _check(layer, make_torch, x, dy, _tol(dtype))


@pytest.mark.parametrize("case", [c for c in CASES if c[3]], ids=[c[0] for c in CASES if c[3]])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gradient_at_each_kink_is_torchs(case, dtype):
    """Exactly at a kink, and a hair either side of it, the gradient torch returns."""
    _, make, make_torch, kinks = case
    x = np.array([k + d for k in kinks for d in (0.0, -1e-3, 1e-3)], dtype=dtype)
    layer = make()
    if isinstance(layer, PReLU):
        layer = layer.astype(dtype)
        x = np.repeat(x[:, None], layer.num_parameters, axis=1)  # (N, C)
    _check(layer, make_torch, x, np.ones_like(x), _tol(dtype))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradcheck(case):
    layer = case[1]()
    x = np.random.default_rng(1).standard_normal((3, 4, 2)) * 2
    if isinstance(layer, PReLU):
        layer = layer.astype(np.float64)
    gradcheck(layer, x)


@pytest.mark.parametrize("case", [c for c in CASES if not c[0].startswith("glu")], ids=lambda c: c[0])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_stable_for_huge_inputs(case, dtype):
    x = np.array([[-1e4, -30.0, -1.0, 0.5, 30.0, 1e4], [1e4, 1e4 - 1, 2.0, -1e4, 0.0, 3.0]], dtype=dtype)
    dy = np.linspace(-1, 1, x.size).reshape(x.shape).astype(dtype)
    layer = case[1]()
    if isinstance(layer, PReLU):
        if layer.num_parameters > 1:
            pytest.skip("needs 4 channels")
        layer = layer.astype(dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        _check(layer, case[2], x, dy, dict(rtol=1e-5, atol=1e-6))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_config_round_trip(case):
    layer = case[1]()
    cfg = layer.config()
    rebuilt = registry.build(cfg)
    assert type(rebuilt) is type(layer) and rebuilt.config() == cfg
    x = np.random.default_rng(3).standard_normal((2, 4, 2)).astype(np.float32)
    np.testing.assert_array_equal(rebuilt(x), layer(x))


def test_prelu_weight_layout_and_state_dict_load_from_torch():
    tmod = torch.nn.PReLU(3, init=0.3)
    with torch.no_grad():
        tmod.weight.copy_(torch.tensor([0.1, -0.2, 0.7]))
    layer = PReLU(3)
    assert layer.weight.shape == (3,) and np.allclose(PReLU(3, init=0.3).weight.data, 0.3)
    layer.load_state_dict({k: v.numpy() for k, v in tmod.state_dict().items()}, strict=True)
    x = np.random.default_rng(4).standard_normal((2, 3, 5)).astype(np.float32)
    np.testing.assert_allclose(layer(x), tmod(torch.tensor(x)).detach().numpy(), rtol=1e-6)


def test_errors_name_the_layer():
    with pytest.raises(ShapeError, match=r"PReLU.*\(N, 3, \.\.\.\)"):
        PReLU(3)(np.ones((2, 4)))
    with pytest.raises(ShapeError, match="PReLU"):
        PReLU(3)(np.ones(3))  # torch: a 1-d input has one channel
    with pytest.raises(ShapeError, match="GLU.*even"):
        GLU()(np.ones((2, 5)))
    with pytest.raises(ShapeError, match="GLU.*dim=2"):
        GLU(2)(np.ones((2, 4)))
    with pytest.raises(ConfigError, match="CELU"):
        CELU(0.0)
    with pytest.raises(ConfigError, match="PReLU"):
        PReLU(0)
    with pytest.raises(ConfigError, match="PReLU.*init"):
        PReLU(init=float("nan"))


def test_registry_names():
    assert {"relu6", "prelu", "hardswish", "hardsigmoid", "log_sigmoid", "softsign", "celu", "glu",
            "hardtanh"} <= set(registry.layers.names())
