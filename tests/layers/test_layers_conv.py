"""Convolutions: finite differences, parity with torch.nn, configs, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plait.core import ConfigError, DTypeError, PlaitError, ShapeError, manual_seed, registry
from plait.core.testing import assert_close, gradcheck, on_test_device
from plait.layers import Conv1d, Conv2d, ConvTranspose2d

TORCH_DTYPES = {np.float32: torch.float32, np.float64: torch.float64}
DTYPES = [np.float32, np.float64]


def check_parity(layer, tlayer, x_shape, dtype):
    """Copy torch's weights; forward, input gradient and every parameter gradient agree (on PLAIT_DEVICE)."""
    tlayer = tlayer.to(TORCH_DTYPES[dtype])
    layer.astype(dtype)
    layer.load_state_dict({k: v.detach().numpy() for k, v in tlayer.state_dict().items()})
    layer = on_test_device(layer)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape).astype(dtype)
    tx = torch.tensor(x, requires_grad=True)
    ty = tlayer(tx)
    y = layer(x)
    assert y.dtype == dtype and y.shape == tuple(ty.shape)
    assert_close(y, ty.detach().numpy(), dtype, "forward")
    dy = rng.standard_normal(y.shape).astype(dtype)
    ty.backward(torch.tensor(dy))
    dx = layer.backward(dy)
    assert dx.dtype == dtype
    assert_close(dx, tx.grad.numpy(), dtype, "input grad")
    tparams = dict(tlayer.named_parameters())
    grads = layer.grads()
    assert sorted(grads) == sorted(tparams)
    for name, g in grads.items():
        assert_close(g, tparams[name].grad.numpy(), dtype, f"grad of {name}")


CONV2D_CASES = [  # (in, out, kernel, kwargs, x shape)
    (3, 4, 3, {}, (2, 3, 7, 6)),
    (3, 5, (3, 2), {"stride": 2, "padding": 1}, (2, 3, 9, 8)),
    (4, 6, 3, {"stride": (2, 3), "padding": (2, 0), "dilation": (2, 1)}, (2, 4, 11, 10)),
    (4, 6, 3, {"groups": 2, "padding": 1}, (2, 4, 5, 5)),
    (6, 6, 3, {"groups": 6, "padding": "same", "bias": False}, (2, 6, 6, 7)),
    (3, 4, (4, 2), {"padding": "same", "dilation": (1, 2)}, (1, 3, 7, 8)),
    (3, 4, 2, {"padding": "valid", "stride": 3}, (2, 3, 10, 11)),
    (2, 3, 1, {"stride": 2}, (3, 2, 5, 5)),
    (4, 4, 5, {"padding": 2, "dilation": 2, "groups": 4}, (1, 4, 9, 9)),
]


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cin, cout, k, kwargs, x_shape", CONV2D_CASES)
def test_conv2d_matches_torch(cin, cout, k, kwargs, x_shape, dtype):
    torch.manual_seed(0)
    check_parity(Conv2d(cin, cout, k, **kwargs), torch.nn.Conv2d(cin, cout, k, **kwargs), x_shape, dtype)


CONV1D_CASES = [
    (3, 4, 3, {}, (2, 3, 9)),
    (4, 6, 4, {"stride": 2, "padding": 3, "dilation": 2, "groups": 2}, (2, 4, 13)),
    (3, 5, 4, {"padding": "same"}, (2, 3, 8)),
    (2, 2, 2, {"groups": 2, "bias": False, "stride": 3}, (3, 2, 10)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cin, cout, k, kwargs, x_shape", CONV1D_CASES)
def test_conv1d_matches_torch(cin, cout, k, kwargs, x_shape, dtype):
    torch.manual_seed(0)
    check_parity(Conv1d(cin, cout, k, **kwargs), torch.nn.Conv1d(cin, cout, k, **kwargs), x_shape, dtype)


CONVT_CASES = [
    (3, 4, 3, {}, (2, 3, 4, 5)),
    (3, 4, 3, {"stride": 2, "padding": 1, "output_padding": 1}, (2, 3, 4, 5)),
    (4, 6, (3, 2), {"stride": (2, 3), "padding": (1, 0), "dilation": (2, 1), "groups": 2}, (2, 4, 3, 4)),
    (4, 2, 2, {"stride": 2, "bias": False}, (1, 4, 3, 3)),
    (2, 3, 3, {"stride": 1, "dilation": 3, "output_padding": 2, "padding": 2}, (2, 2, 4, 4)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cin, cout, k, kwargs, x_shape", CONVT_CASES)
def test_conv_transpose2d_matches_torch(cin, cout, k, kwargs, x_shape, dtype):
    torch.manual_seed(0)
    layer = ConvTranspose2d(cin, cout, k, **kwargs)
    check_parity(layer, torch.nn.ConvTranspose2d(cin, cout, k, **kwargs), x_shape, dtype)


def test_conv_default_init_matches_torch_bounds():
    manual_seed(0)
    for layer, fan_in in [(Conv2d(6, 8, 3, groups=2), 3 * 9), (Conv1d(4, 2, 5), 4 * 5),
                          (ConvTranspose2d(4, 6, 3, groups=2), 3 * 9)]:
        bound = 1 / np.sqrt(fan_in)
        for p in (layer.weight, layer.bias):
            assert p.dtype == np.float32
            assert np.abs(p.data).max() <= bound
        assert np.abs(layer.weight.data).max() > 0.9 * bound  # spread over the full range
    assert Conv2d(6, 8, 3, groups=2).weight.shape == (8, 3, 3, 3)
    assert ConvTranspose2d(4, 6, (3, 2), groups=2).weight.shape == (4, 3, 3, 2)


# -- finite differences -------------------------------------------------------------------------------
GRADCHECK = [
    (lambda: Conv2d(4, 4, 3, stride=2, padding=1, dilation=1, groups=2), (2, 4, 5, 6)),
    (lambda: Conv2d(2, 3, (2, 3), padding="same", dilation=(2, 1)), (1, 2, 4, 5)),
    (lambda: Conv1d(2, 4, 3, stride=2, padding=2, dilation=2, groups=2), (2, 2, 9)),
    (lambda: ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1, groups=2), (2, 4, 3, 3)),
    (lambda: ConvTranspose2d(2, 3, (2, 3), stride=(1, 2), dilation=(2, 1)), (1, 2, 3, 3)),
]


@pytest.mark.parametrize("make, shape", GRADCHECK)
def test_conv_gradcheck(make, shape):
    layer = make().astype(np.float64)
    gradcheck(layer, np.random.default_rng(0).standard_normal(shape))


def test_conv_weight_shared_twice_accumulates():
    manual_seed(1)
    layer = Conv2d(2, 2, 3, padding=1).astype(np.float64)
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((1, 2, 4, 4)), rng.standard_normal((1, 2, 4, 4))
    ya, yb = layer(a), layer(b)
    dyb = np.ones_like(yb)
    dxb = layer.backward(dyb)
    dxa = layer.backward(np.ones_like(ya))
    grad_two = layer.weight.grad.copy()
    layer.zero_grad()
    layer(a)
    np.testing.assert_allclose(layer.backward(np.ones_like(ya)), dxa)
    layer(b)
    np.testing.assert_allclose(layer.backward(dyb), dxb)
    np.testing.assert_allclose(layer.weight.grad, grad_two)


# -- configs and errors -------------------------------------------------------------------------------
LAYERS = [  # layer, good input, wrong channel count, wrong rank
    (Conv2d(3, 4, (3, 2), stride=(2, 1), padding=(1, 0), dilation=2, groups=1),
     (1, 3, 6, 6), (1, 4, 6, 6), (3, 6, 6)),
    (Conv2d(4, 4, 3, padding="same", groups=2, bias=False), (1, 4, 5, 5), (1, 3, 5, 5), (1, 4, 5)),
    (Conv1d(2, 4, 3, padding="valid", groups=2), (2, 2, 7), (2, 3, 7), (2, 2, 7, 1)),
    (ConvTranspose2d(4, 2, 3, stride=2, output_padding=1, groups=2), (1, 4, 3, 3), (1, 2, 3, 3), (4, 3, 3)),
]


@pytest.mark.parametrize("layer, good, bad, bad_rank", LAYERS)
def test_conv_config_round_trip(layer, good, bad, bad_rank):
    rebuilt = registry.build(layer.config())
    assert type(rebuilt) is type(layer) and rebuilt.config() == layer.config()
    rebuilt.load_state_dict(layer.state_dict())
    x = np.random.default_rng(0).standard_normal(good).astype(np.float32)
    np.testing.assert_allclose(rebuilt(x), layer(x), rtol=1e-6)


@pytest.mark.parametrize("layer, good, bad, bad_rank", LAYERS)
def test_conv_bad_inputs(layer, good, bad, bad_rank):
    name = type(layer).__name__
    with pytest.raises(ShapeError, match=rf"{name}.*size {layer.in_channels} on axis 1.*{bad[1]}"):
        layer(np.zeros(bad, dtype=np.float32))
    with pytest.raises(ShapeError, match=rf"{name}.*{len(good)}-D"):
        layer(np.zeros(bad_rank, dtype=np.float32))
    for dtype in (np.int32, np.bool_):
        with pytest.raises(DTypeError, match=name):
            layer(np.zeros(good, dtype=dtype))
    fresh = registry.build(layer.config())
    with pytest.raises(PlaitError, match="without a matching forward"):
        fresh.backward(np.zeros(good, dtype=np.float32))
    y = layer(np.zeros(good, dtype=np.float32))
    with pytest.raises(ShapeError, match=rf"{name}.backward.*{tuple(y.shape)}".replace("(", "[(]").replace(")", "[)]")):
        layer.backward(np.zeros(y.shape[:-1] + (y.shape[-1] + 1,), dtype=np.float32))


def test_conv_too_small_input_and_bad_configs():
    with pytest.raises(ShapeError, match="Conv2d.*smaller than the kernel"):
        Conv2d(1, 1, 5)(np.zeros((1, 1, 3, 3), dtype=np.float32))
    with pytest.raises(ConfigError, match="divisible by groups"):
        Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ConfigError, match="stride 1"):
        Conv1d(3, 4, 3, padding="same", stride=2)
    with pytest.raises(ConfigError, match="Conv2d: padding_mode.*'circular'.*'mirror'"):
        Conv2d(3, 4, 3, padding_mode="mirror")
    with pytest.raises(ConfigError, match="ConvTranspose2d.*padding_mode"):  # torch: zeros only
        ConvTranspose2d(3, 4, 3, padding_mode="reflect")
    with pytest.raises(ConfigError, match="output_padding"):
        ConvTranspose2d(3, 4, 3, stride=2, output_padding=2)
    with pytest.raises(ConfigError, match="kernel_size"):
        Conv2d(3, 4, (3, 3, 3))
    with pytest.raises(ConfigError, match="stride"):
        Conv2d(3, 4, 3, stride=0)
    with pytest.raises(ConfigError, match="positive"):
        Conv1d(0, 4, 3)
    assert Conv2d(2, 3, np.int64(3)).kernel_size == (3, 3)


def test_conv_registered_names():
    assert registry.layers.get("conv1d") is Conv1d
    assert registry.layers.get("conv2d") is Conv2d
    assert registry.layers.get("conv_transpose2d") is ConvTranspose2d


def test_conv_keeps_the_input_dtype():
    for layer, shape in [(Conv2d(2, 3, 3), (1, 2, 5, 5)), (Conv1d(2, 3, 2, stride=2), (1, 2, 6)),
                         (ConvTranspose2d(2, 3, 2), (1, 2, 3, 3))]:
        x64 = np.random.default_rng(0).standard_normal(shape)
        y = layer(x64)  # float32 weights, float64 input
        assert y.dtype == np.float64
        assert layer.backward(np.ones_like(y)).dtype == np.float64
        assert layer.weight.grad.dtype == np.float32
        np.testing.assert_allclose(y, layer(x64.astype(np.float32)), rtol=1e-4, atol=1e-5)
        layer.clear_saved()
