"""AdaptiveMaxPool1d/2d, AvgPool1d, InstanceNorm1d/2d: parity with torch.nn (outputs, input and
parameter gradients, running statistics), configs and errors. The pairs' finite differences
are in test_layers_maths_pairs.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plait.core import ConfigError, ShapeError, enable_grad, registry
from plait.core.testing import assert_close, gradcheck, on_test_device, to_host
from plait.layers import AdaptiveMaxPool1d, AdaptiveMaxPool2d, AvgPool1d, Conv1d, Conv2d, InstanceNorm1d, InstanceNorm2d

TOL = {np.float32: dict(rtol=1e-4, atol=1e-6), np.float64: dict(rtol=1e-6, atol=1e-12)}
DTYPES = [np.float32, np.float64]


def _torch_params(layer, tlayer):
    """Copy torch's parameters and buffers into the Plait layer by torch's keys (strict)."""
    state = {k: v.detach().numpy().copy() for k, v in tlayer.state_dict().items()}
    layer.load_state_dict(state, strict=True)


def check_parity(layer, tlayer, x, *, params=()):
    """Forward, input gradient and every named parameter gradient agree with torch."""
    layer = on_test_device(layer)
    dtype = x.dtype.type
    tx = torch.tensor(x, requires_grad=True)
    ty = tlayer(tx)
    y = np.asarray(layer(x))
    assert y.dtype == dtype and y.shape == tuple(ty.shape)
    assert_close(y, ty.detach().numpy(), dtype, "forward", **TOL[dtype])
    dy = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
    ty.backward(torch.tensor(dy))
    dx = layer.backward(dy)
    assert dx.dtype == dtype and dx.shape == x.shape
    assert_close(dx, tx.grad.numpy(), dtype, "input grad", **TOL[dtype])
    for name in params:
        assert_close(getattr(layer, name).grad, getattr(tlayer, name).grad.numpy(), dtype, f"{name} grad",
                     **TOL[dtype])


# -- adaptive max pooling ---------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size, shape", [((2, 3), (2, 3, 5, 7)), (3, (1, 2, 7, 7)), ((4, 4), (2, 2, 4, 4)),
                                         ((5, 2), (1, 2, 7, 3)), ((None, 3), (2, 1, 5, 8)), ((6, 7), (1, 1, 4, 5))])
def test_adaptive_max_pool2d_matches_torch(size, shape, dtype):
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    check_parity(AdaptiveMaxPool2d(size), torch.nn.AdaptiveMaxPool2d(size), x)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size, shape", [(3, (2, 3, 10)), (4, (1, 2, 7)), (5, (2, 2, 5)), (6, (1, 1, 4)),
                                         (1, (2, 3, 9))])
def test_adaptive_max_pool1d_matches_torch(size, shape, dtype):
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    check_parity(AdaptiveMaxPool1d(size), torch.nn.AdaptiveMaxPool1d(size), x)


def test_adaptive_max_pool_ties_route_to_the_first_maximum_as_torch():
    x = np.zeros((1, 1, 5, 5), np.float64)
    x[0, 0, 1:4, 1:4] = 1.0
    check_parity(AdaptiveMaxPool2d(2), torch.nn.AdaptiveMaxPool2d(2), x)


# -- average pooling 1-D -----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs, shape", [
    ({"kernel_size": 3}, (2, 3, 10)),
    ({"kernel_size": 3, "stride": 2, "padding": 1}, (2, 2, 9)),
    ({"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False}, (2, 2, 8)),
    ({"kernel_size": 4, "stride": 3, "padding": 2, "ceil_mode": True}, (1, 2, 11)),
    ({"kernel_size": 4, "stride": 3, "padding": 2, "ceil_mode": True, "count_include_pad": False}, (1, 2, 11)),
    ({"kernel_size": 2, "stride": 1}, (3, 1, 5)),
])
def test_avg_pool1d_matches_torch(kwargs, shape, dtype):
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    check_parity(AvgPool1d(**kwargs), torch.nn.AvgPool1d(**kwargs), x)


# -- instance normalisation --------------------------------------------------------------------------------
INSTANCE_CASES = [
    (InstanceNorm1d, torch.nn.InstanceNorm1d, (3, 4, 7)),
    (InstanceNorm2d, torch.nn.InstanceNorm2d, (2, 3, 5, 6)),
    (InstanceNorm1d, torch.nn.InstanceNorm1d, (4, 7)),  # unbatched
    (InstanceNorm2d, torch.nn.InstanceNorm2d, (3, 4, 5)),  # unbatched
]
INSTANCE_KWARGS = [{}, {"affine": True}, {"affine": True, "track_running_stats": True},
                   {"track_running_stats": True, "momentum": 0.3, "eps": 1e-3},
                   {"affine": True, "track_running_stats": True, "momentum": None}]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs", INSTANCE_KWARGS)
@pytest.mark.parametrize("cls, tcls, shape", INSTANCE_CASES)
def test_instance_norm_matches_torch(cls, tcls, shape, kwargs, dtype):
    """Training then eval: outputs, every gradient and the running statistics as torch's."""
    channels = shape[-3] if cls is InstanceNorm2d else shape[-2]
    rng = np.random.default_rng(0)
    tlayer = tcls(channels, **kwargs).to(torch.float64 if dtype == np.float64 else torch.float32)
    if kwargs.get("affine"):
        with torch.no_grad():
            tlayer.weight.copy_(torch.tensor(rng.uniform(0.5, 1.5, channels)))
            tlayer.bias.copy_(torch.tensor(rng.standard_normal(channels)))
    layer = cls(channels, **kwargs, dtype=np.dtype(dtype).name)
    _torch_params(layer, tlayer)
    assert set(layer.state_dict()) == set(tlayer.state_dict())
    params = ("weight", "bias") if kwargs.get("affine") else ()
    for _ in range(2):  # two training steps move the running statistics
        x = (rng.standard_normal(shape) * 2 + 0.5).astype(dtype)
        layer.zero_grad()
        tlayer.zero_grad()
        check_parity(layer, tlayer, x, params=params)
    for key, value in tlayer.state_dict().items():
        assert_close(to_host(layer.state_dict()[key]), value.numpy(), value.numpy().dtype.type, key, rtol=1e-6,
                     atol=1e-7)
    layer.eval()
    tlayer.eval()
    layer.zero_grad()
    tlayer.zero_grad()
    with enable_grad():  # eval mode keeps a cache only when asked
        check_parity(layer, tlayer, (rng.standard_normal(shape)).astype(dtype), params=params)


@pytest.mark.parametrize("make, shape", [
    (lambda: InstanceNorm1d(3, affine=True), (2, 3, 5)),
    (lambda: InstanceNorm2d(2, affine=True, track_running_stats=True).eval(), (2, 2, 3, 3)),
    (lambda: AdaptiveMaxPool2d((2, 3)), (1, 2, 5, 7)),
    (lambda: AvgPool1d(3, stride=2, padding=1, count_include_pad=False), (2, 2, 7)),
])
def test_spatial_gradcheck(make, shape):
    layer = make().astype(np.float64)
    rng = np.random.default_rng(3)
    for p in layer.parameters():
        p.data[...] = rng.standard_normal(p.shape)
    gradcheck(layer, rng.permutation(np.prod(shape)).reshape(shape) * 0.1)  # no ties for the max pool


# -- configs and errors ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("layer, good, bad", [
    (AdaptiveMaxPool1d(3), (2, 3, 7), (2, 3, 4, 4)),
    (AdaptiveMaxPool2d((2, None)), (2, 3, 5, 7), (2, 3, 7)),
    (AvgPool1d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False), (2, 3, 7), (2, 3, 4, 4)),
    (InstanceNorm1d(3, affine=True, track_running_stats=True, momentum=0.2), (2, 3, 7), (2, 3, 4, 4)),
    (InstanceNorm2d(3, eps=1e-3), (2, 3, 4, 4), (3, 7)),  # (C, H, W) is unbatched input, so rank 2 is bad
])
def test_spatial_config_round_trip_and_bad_rank(layer, good, bad):
    rebuilt = registry.build(layer.config())
    assert type(rebuilt) is type(layer) and rebuilt.config() == layer.config()
    x = np.random.default_rng(0).standard_normal(good).astype(np.float32)
    rebuilt.load_state_dict(layer.state_dict())
    assert np.array_equal(np.asarray(rebuilt(x)), np.asarray(layer(x)))
    with pytest.raises(ShapeError, match=type(layer).__name__):
        layer(np.zeros(bad, np.float32))


def test_spatial_registered_names():
    for name, cls in [("adaptive_max_pool1d", AdaptiveMaxPool1d), ("adaptive_max_pool2d", AdaptiveMaxPool2d),
                      ("avg_pool1d", AvgPool1d), ("instance_norm1d", InstanceNorm1d),
                      ("instance_norm2d", InstanceNorm2d)]:
        assert registry.layers.get(name) is cls


def test_spatial_errors_name_the_layer():
    with pytest.raises(ConfigError, match="AdaptiveMaxPool2d.*output_size"):
        AdaptiveMaxPool2d((2, 0))
    with pytest.raises(ConfigError, match="AdaptiveMaxPool1d.*return_indices"):
        AdaptiveMaxPool1d(2, return_indices=True)
    with pytest.raises(ConfigError, match="AvgPool1d.*padding"):
        AvgPool1d(2, padding=2)
    with pytest.raises(ShapeError, match="InstanceNorm1d.*channels"):
        InstanceNorm1d(3, affine=True)(np.zeros((2, 4, 5), np.float32))
    with pytest.raises(ShapeError, match="InstanceNorm2d.*spatial element"):
        InstanceNorm2d(3)(np.zeros((2, 3, 1, 1), np.float32))
    # torch normalises any channel count when there are no weights nor running statistics
    y = InstanceNorm1d(3)(np.random.default_rng(0).standard_normal((2, 5, 4)).astype(np.float32))
    assert y.shape == (2, 5, 4)
    assert np.allclose(y.mean(axis=-1), 0, atol=1e-5)


# -- convolution padding modes -------------------------------------------------------------------------------
def _conv_parity(layer, tlayer, x_shape, dtype):
    """Copy torch's weights by its keys (strict); forward, input gradient and every parameter gradient agree."""
    tlayer = tlayer.to(torch.float64 if dtype == np.float64 else torch.float32)
    layer.astype(dtype)
    _torch_params(layer, tlayer)
    x = np.random.default_rng(0).standard_normal(x_shape).astype(dtype)
    check_parity(layer, tlayer, x, params=[n for n, _ in tlayer.named_parameters()])


PAD_MODES = ["reflect", "replicate", "circular"]
CONV2D_PAD_CASES = [  # (in, out, kernel, kwargs, x shape)
    (3, 4, 3, {"padding": 1}, (2, 3, 7, 6)),
    (3, 5, (3, 2), {"stride": 2, "padding": (2, 1)}, (2, 3, 9, 8)),
    (4, 6, 3, {"stride": (2, 3), "padding": (2, 0), "dilation": (2, 1), "groups": 2}, (2, 4, 11, 10)),
    (3, 4, (4, 3), {"padding": "same"}, (1, 3, 7, 8)),  # even span: the extra pixel after
    (2, 2, 3, {"padding": "same", "dilation": 2, "bias": False}, (2, 2, 5, 6)),
    (2, 3, 3, {"padding": "valid"}, (2, 2, 5, 5)),
    (2, 3, 5, {"padding": 4}, (1, 2, 5, 6)),  # wide padding: reflect needs pad < size
]


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", PAD_MODES)
@pytest.mark.parametrize("cin, cout, k, kwargs, x_shape", CONV2D_PAD_CASES)
def test_conv2d_padding_modes_match_torch(cin, cout, k, kwargs, x_shape, mode, dtype):
    torch.manual_seed(0)
    kwargs = {**kwargs, "padding_mode": mode}
    _conv_parity(Conv2d(cin, cout, k, **kwargs), torch.nn.Conv2d(cin, cout, k, **kwargs), x_shape, dtype)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", PAD_MODES)
@pytest.mark.parametrize("cin, cout, k, kwargs, x_shape", [
    (3, 4, 3, {"padding": 1}, (2, 3, 9)),
    (2, 4, 4, {"stride": 2, "padding": 3, "groups": 2}, (2, 2, 11)),
    (3, 2, 4, {"padding": "same", "dilation": 2}, (1, 3, 9)),
])
def test_conv1d_padding_modes_match_torch(cin, cout, k, kwargs, x_shape, mode, dtype):
    torch.manual_seed(0)
    kwargs = {**kwargs, "padding_mode": mode}
    _conv_parity(Conv1d(cin, cout, k, **kwargs), torch.nn.Conv1d(cin, cout, k, **kwargs), x_shape, dtype)


@pytest.mark.parametrize("mode", PAD_MODES)
def test_conv_padding_mode_gradcheck_and_config(mode):
    layer = Conv2d(2, 3, 3, stride=2, padding=(2, 1), padding_mode=mode).astype(np.float64)
    gradcheck(layer, np.random.default_rng(0).standard_normal((2, 2, 5, 4)))
    rebuilt = registry.build(layer.config())
    assert rebuilt.padding_mode == mode and rebuilt.config() == layer.config()


def test_conv_padding_mode_needs_enough_input_as_torch():
    with pytest.raises(ShapeError, match="Conv2d.*reflect.*more than 2"):
        Conv2d(1, 1, 3, padding=2, padding_mode="reflect")(np.zeros((1, 1, 2, 5), np.float32))
    with pytest.raises(ShapeError, match="Conv1d.*circular.*at least 3"):
        Conv1d(1, 1, 3, padding=3, padding_mode="circular")(np.zeros((1, 1, 2), np.float32))
    y = Conv1d(1, 1, 3, padding=2, padding_mode="circular")(np.zeros((1, 1, 2), np.float32))  # pad == size is fine
    assert y.shape == (1, 1, 4)
