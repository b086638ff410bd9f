"""Pooling layers: finite differences, parity with torch.nn, configs, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plait.core import ConfigError, DTypeError, PlaitError, ShapeError, registry
from plait.core.testing import assert_close, gradcheck, on_test_device
from plait.layers import AdaptiveAvgPool2d, AvgPool2d, MaxPool1d, MaxPool2d

TORCH_DTYPES = {np.float32: torch.float32, np.float64: torch.float64}
# tighter absolute tolerances than assert_close's defaults (atol per unit of the reference's scale)
TOL = {np.float32: dict(rtol=1e-4, atol=1e-6), np.float64: dict(rtol=1e-6, atol=1e-12)}
DTYPES = [np.float32, np.float64]


def check_parity(layer, tlayer, x):
    """Forward and input gradient agree with torch (the Plait layer on PLAIT_DEVICE)."""
    layer = on_test_device(layer)
    dtype = x.dtype.type
    tx = torch.tensor(x, requires_grad=True)
    ty = tlayer(tx)
    y = layer(x)
    assert y.dtype == dtype and y.shape == tuple(ty.shape)
    assert_close(y, ty.detach().numpy(), dtype, "forward", **TOL[dtype])
    dy = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
    ty.backward(torch.tensor(dy))
    dx = layer.backward(dy)
    assert dx.dtype == dtype and dx.shape == x.shape
    assert_close(dx, tx.grad.numpy(), dtype, "input grad", **TOL[dtype])


MAX2D_CASES = [  # kwargs, x shape
    ({"kernel_size": 2}, (2, 3, 6, 6)),
    ({"kernel_size": 3, "stride": 2}, (2, 2, 7, 9)),
    ({"kernel_size": 3, "stride": 2, "padding": 1}, (1, 3, 8, 7)),
    ({"kernel_size": (3, 2), "stride": (2, 1), "padding": (1, 0), "dilation": (1, 2)}, (2, 2, 7, 8)),
    ({"kernel_size": 3, "stride": 2, "ceil_mode": True}, (2, 2, 8, 9)),
    ({"kernel_size": 2, "stride": 3, "padding": 1, "ceil_mode": True}, (1, 2, 7, 10)),
    ({"kernel_size": 3, "stride": 1, "dilation": 2, "padding": 1}, (2, 2, 7, 7)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs, shape", MAX2D_CASES)
def test_max_pool2d_matches_torch(kwargs, shape, dtype):
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    check_parity(MaxPool2d(**kwargs), torch.nn.MaxPool2d(**kwargs), x)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs, shape", [({"kernel_size": 3}, (2, 3, 10)),
                                           ({"kernel_size": 4, "stride": 2, "padding": 2, "dilation": 2}, (2, 2, 13)),
                                           ({"kernel_size": 3, "stride": 2, "ceil_mode": True}, (2, 2, 10))])
def test_max_pool1d_matches_torch(kwargs, shape, dtype):
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    check_parity(MaxPool1d(**kwargs), torch.nn.MaxPool1d(**kwargs), x)


def test_max_pool_ties_go_to_the_first_maximum_as_torch():
    x = np.round(np.random.default_rng(0).standard_normal((2, 3, 6, 7))).astype(np.float64)  # many ties
    x[0, 0] = 1.0  # a whole plane of equal values
    check_parity(MaxPool2d(3, stride=1, padding=1), torch.nn.MaxPool2d(3, stride=1, padding=1), x)
    check_parity(MaxPool2d(2), torch.nn.MaxPool2d(2), x)


@pytest.mark.parametrize("kernel", [2, 3])
def test_max_pool_ties_on_the_tiled_path(kernel):
    """Windows that tile the input exactly take the strided-write backward: ties still go first."""
    x = np.round(np.random.default_rng(1).standard_normal((2, 3, 6, 12))).astype(np.float64)
    x[1, 2] = -1.0  # a whole plane of equal values
    check_parity(MaxPool2d(kernel), torch.nn.MaxPool2d(kernel), x)


AVG_CASES = [
    ({"kernel_size": 2}, (2, 3, 6, 6)),
    ({"kernel_size": 3, "stride": 2, "padding": 1}, (2, 2, 7, 8)),
    ({"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False}, (2, 2, 7, 8)),
    ({"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}, (1, 2, 8, 9)),
    ({"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True, "count_include_pad": False}, (1, 2, 8, 9)),
    ({"kernel_size": (2, 3), "stride": (1, 2), "ceil_mode": True}, (2, 1, 5, 8)),
    ({"kernel_size": 2, "padding": 1, "divisor_override": 3}, (2, 2, 5, 5)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs, shape", AVG_CASES)
def test_avg_pool2d_matches_torch(kwargs, shape, dtype):
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    check_parity(AvgPool2d(**kwargs), torch.nn.AvgPool2d(**kwargs), x)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("out, shape", [((2, 3), (2, 3, 6, 9)), (1, (2, 2, 5, 7)), ((3, 4), (2, 2, 7, 10)),
                                        ((None, 3), (1, 2, 5, 5)), (5, (1, 2, 3, 8))])
def test_adaptive_avg_pool2d_matches_torch(out, shape, dtype):
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    check_parity(AdaptiveAvgPool2d(out), torch.nn.AdaptiveAvgPool2d(out), x)


# -- finite differences -------------------------------------------------------------------------------
GRADCHECK = [
    (lambda: MaxPool2d(3, stride=2, padding=1, ceil_mode=True), (2, 2, 6, 7)),
    (lambda: MaxPool2d((2, 3), stride=1, dilation=(2, 1)), (1, 2, 5, 5)),
    (lambda: MaxPool1d(3, stride=2, padding=1), (2, 2, 9)),
    (lambda: AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False), (2, 2, 6, 7)),
    (lambda: AvgPool2d(2, divisor_override=5), (1, 2, 4, 6)),
    (lambda: AdaptiveAvgPool2d((3, 2)), (2, 2, 7, 5)),
    (lambda: AdaptiveAvgPool2d(2), (1, 2, 4, 6)),
]


@pytest.mark.parametrize("make, shape", GRADCHECK)
def test_pool_gradcheck(make, shape):
    # distinct values spaced well beyond eps, so no finite-difference step changes an argmax
    x = np.random.default_rng(0).permutation(np.prod(shape)).reshape(shape) * 0.01
    gradcheck(make(), x.astype(np.float64))


# -- configs and errors ---------------------------------------------------------------------------------
LAYERS = [  # layer, good input, wrong rank
    (MaxPool2d((3, 2), stride=(2, 1), padding=1, ceil_mode=True), (1, 2, 6, 6), (2, 6, 6)),
    (MaxPool1d(3, padding=1, dilation=2), (1, 2, 8), (2, 8)),
    (AvgPool2d(2, stride=1, count_include_pad=False, divisor_override=2), (1, 2, 4, 4), (1, 2, 4)),
    (AdaptiveAvgPool2d((None, 2)), (1, 2, 4, 5), (2, 4, 5)),
]


@pytest.mark.parametrize("layer, good, bad_rank", LAYERS)
def test_pool_config_round_trip(layer, good, bad_rank):
    rebuilt = registry.build(layer.config())
    assert type(rebuilt) is type(layer) and rebuilt.config() == layer.config()
    x = np.random.default_rng(0).standard_normal(good).astype(np.float32)
    np.testing.assert_array_equal(rebuilt(x), layer(x))


@pytest.mark.parametrize("layer, good, bad_rank", LAYERS)
def test_pool_bad_inputs(layer, good, bad_rank):
    name = type(layer).__name__
    with pytest.raises(ShapeError, match=rf"{name}.*{len(good)}-D.*{bad_rank[0]}, {bad_rank[1]}"):
        layer(np.zeros(bad_rank, dtype=np.float32))
    for dtype in (np.int64, np.bool_):
        with pytest.raises(DTypeError, match=name):
            layer(np.zeros(good, dtype=dtype))
    fresh = registry.build(layer.config())
    with pytest.raises(PlaitError, match="without a matching forward"):
        fresh.backward(np.zeros(good, dtype=np.float32))
    y = layer(np.zeros(good, dtype=np.float32))
    with pytest.raises(ShapeError, match=rf"{name}.backward.*expected output gradient"):
        layer.backward(np.zeros(y.shape[:-1] + (y.shape[-1] + 1,), dtype=np.float32))


def test_pool_bad_configs_and_small_inputs():
    with pytest.raises(ConfigError, match="MaxPool2d.*padding"):
        MaxPool2d(3, padding=2)
    with pytest.raises(ConfigError, match="AvgPool2d.*kernel_size"):
        AvgPool2d((2, 2, 2))
    with pytest.raises(ConfigError, match="AdaptiveAvgPool2d"):
        AdaptiveAvgPool2d(0)
    with pytest.raises(ShapeError, match="MaxPool2d.*smaller than the kernel"):
        MaxPool2d(3)(np.zeros((1, 1, 2, 5), dtype=np.float32))


def test_pool_registered_names():
    for name, cls in [("max_pool1d", MaxPool1d), ("max_pool2d", MaxPool2d), ("avg_pool2d", AvgPool2d),
                      ("adaptive_avg_pool2d", AdaptiveAvgPool2d)]:
        assert registry.layers.get(name) is cls
