"""Activations: finite differences, parity with torch.nn, stability, config, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from plait.core import DTypeError, PlaitError, ShapeError, registry
from plait.core.testing import gradcheck, on_test_device
from plait.layers import (
    ELU,
    GELU,
    SELU,
    Hardtanh,
    LeakyReLU,
    LogSoftmax,
    Mish,
    ReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)

# (registry name, plait factory, torch factory)
CASES = [
    ("relu", ReLU, torch.nn.ReLU),
    ("leaky_relu", lambda: LeakyReLU(0.2), lambda: torch.nn.LeakyReLU(0.2)),
    ("elu", lambda: ELU(0.7), lambda: torch.nn.ELU(0.7)),
    ("gelu", GELU, torch.nn.GELU),
    ("gelu_tanh", lambda: GELU("tanh"), lambda: torch.nn.GELU("tanh")),
    ("silu", SiLU, torch.nn.SiLU),
    ("mish", Mish, torch.nn.Mish),
    ("selu", SELU, torch.nn.SELU),
    ("hardtanh", lambda: Hardtanh(-0.5, 1.5), lambda: torch.nn.Hardtanh(-0.5, 1.5)),
    ("sigmoid", Sigmoid, torch.nn.Sigmoid),
    ("tanh", Tanh, torch.nn.Tanh),
    ("softplus", Softplus, torch.nn.Softplus),
    ("softplus_beta", lambda: Softplus(2.0, 5.0), lambda: torch.nn.Softplus(2.0, 5.0)),
    ("softmax", Softmax, lambda: torch.nn.Softmax(dim=-1)),
    ("softmax_dim1", lambda: Softmax(1), lambda: torch.nn.Softmax(dim=1)),
    ("log_softmax", LogSoftmax, lambda: torch.nn.LogSoftmax(dim=-1)),
    ("log_softmax_dim0", lambda: LogSoftmax(0), lambda: torch.nn.LogSoftmax(dim=0)),
]
IDS = [c[0] for c in CASES]
SHAPES = [(7,), (3, 5), (2, 3, 4), (2, 3, 2, 5)]


def _torch_run(tmod, x, dy):
    xt = torch.tensor(x, requires_grad=True)
    yt = tmod(xt)
    yt.backward(torch.tensor(dy))
    return yt.detach().numpy(), xt.grad.numpy()


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_parity_with_torch(case, shape, dtype):
    _, make, make_torch = case
    layer = make()
    if getattr(layer, "dim", -1) >= len(shape):
        pytest.skip("dim beyond rank")
    layer = on_test_device(layer)
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    y = layer(x)
    dx = layer.backward(dy)
    y_ref, dx_ref = _torch_run(make_torch(), x, dy)
    assert y.dtype == dtype and dx.dtype == dtype and y.shape == shape
    tol = dict(rtol=1e-6, atol=1e-10) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(y, y_ref, **tol)
    np.testing.assert_allclose(dx, dx_ref, **tol)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradcheck(case):
    x = np.random.default_rng(1).standard_normal((3, 4)) * 2
    gradcheck(case[1](), x)


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_stable_for_huge_inputs(case, dtype):
    """Inputs of magnitude 1e4 give finite outputs and gradients, equal to torch's."""
    x = np.array([[-1e4, -30.0, -1.0, 0.5, 30.0, 1e4], [1e4, 1e4 - 1, 2.0, -1e4, 0.0, 3.0]], dtype=dtype)
    dy = np.linspace(-1, 1, x.size).reshape(x.shape).astype(dtype)
    layer = on_test_device(case[1]())
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = layer(x)
        dx = layer.backward(dy)
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(dx))
    y_ref, dx_ref = _torch_run(case[2](), x, dy)
    np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-5, atol=1e-6)


def test_softmax_backward_is_full_jacobian_product():
    """A diagonal-only softmax backward would pass sum(dx)=... checks; compare with J^T dy."""
    rng = np.random.default_rng(2)
    x, dy = rng.standard_normal(5), rng.standard_normal(5)
    sm = Softmax()
    y = sm(x)
    jac = np.diag(y) - np.outer(y, y)
    np.testing.assert_allclose(sm.backward(dy), jac.T @ dy, rtol=1e-12)


def test_gelu_exact_tail_relative_precision():
    """x Phi(x) keeps its relative precision far in the negative tail (torch's 1 + erf cancels there)."""
    x = np.array([-12.0, -8.0, -6.0, -4.0, -2.5, 0.3, 5.0])
    ref = np.array([v * 0.5 * math.erfc(-v / math.sqrt(2)) for v in x])
    np.testing.assert_allclose(GELU()(x), ref, rtol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_config_round_trip(case):
    layer = case[1]()
    cfg = layer.config()
    rebuilt = registry.build(cfg)
    assert type(rebuilt) is type(layer) and rebuilt.config() == cfg
    x = np.random.default_rng(3).standard_normal((2, 3))
    np.testing.assert_array_equal(rebuilt(x), layer(x))


def test_registry_names():
    names = set(registry.layers.names())
    expected = {"relu", "leaky_relu", "elu", "gelu", "silu", "mish", "selu", "hardtanh", "sigmoid", "tanh",
                "softplus", "softmax", "log_softmax"}
    assert expected <= names


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("bad", [np.arange(6).reshape(2, 3), np.ones((2, 3), dtype=bool)])
def test_integer_or_bool_input_is_rejected(case, bad):
    layer = case[1]()
    with pytest.raises(DTypeError, match=type(layer).__name__):
        layer(bad)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_backward_before_forward(case):
    with pytest.raises(PlaitError, match="without a matching forward"):
        case[1]().backward(np.ones((2, 3)))


def test_backward_gradient_shape_mismatch():
    layer = Tanh()
    layer(np.ones((2, 3)))
    with pytest.raises(ShapeError, match=r"Tanh\.backward"):
        layer.backward(np.ones((3, 2)))


def test_softmax_dim_out_of_range():
    with pytest.raises(ShapeError, match="Softmax.*dim=2"):
        Softmax(dim=2)(np.ones((2, 3)))


def test_bad_options():
    with pytest.raises(ValueError, match="GELU"):
        GELU("fast")
    with pytest.raises(ValueError, match="Hardtanh"):
        Hardtanh(1.0, -1.0)


@pytest.mark.parametrize("case", [c for c in CASES if c[0] in ("gelu", "gelu_tanh", "silu", "mish")], ids=lambda c: c[0])
def test_large_inputs_processed_in_blocks_match_torch(case):
    """Above 2 x 64K elements the maths runs block by block (with a partial last block)."""
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((301, 457)) * 3).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    layer = on_test_device(case[1]())
    y, dx = layer(x), layer.backward(dy)
    y_ref, dx_ref = _torch_run(case[2](), x, dy)
    np.testing.assert_allclose(y, y_ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-4, atol=1e-5)
