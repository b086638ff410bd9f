"""Normalisation layers: finite differences, parity with torch.nn, configs, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plait.core import DTypeError, PlaitError, ShapeError, enable_grad, registry
from plait.core.testing import assert_close, gradcheck, on_test_device
from plait.layers import BatchNorm1d, BatchNorm2d, GroupNorm, LayerNorm, RMSNorm

TORCH_DTYPES = {np.float32: torch.float32, np.float64: torch.float64}
# float64 allows a looser absolute tolerance than assert_close's default (atol per unit of the reference's scale)
TOL = {np.float32: dict(rtol=1e-4, atol=1e-5), np.float64: dict(rtol=1e-6, atol=1e-8)}


def torch_pair(plait_layer, torch_layer, dtype):
    """Cast both to ``dtype`` and copy torch's state dict (params and buffers) into Plait's."""
    torch_layer = torch_layer.to(TORCH_DTYPES[dtype])
    plait_layer.astype(dtype)
    plait_layer.load_state_dict({k: v.detach().numpy() for k, v in torch_layer.state_dict().items()})
    return plait_layer, torch_layer


def check_parity(layer, tlayer, x, dtype, steps=1):
    """Forward, backward and every gradient agree with torch (over ``steps`` fresh batches), on PLAIT_DEVICE."""
    layer = on_test_device(layer)
    rng = np.random.default_rng(1)
    layer.zero_grad(set_to_none=True)
    for step in range(steps):
        xs = (x + step * rng.standard_normal(x.shape)).astype(dtype)
        tx = torch.tensor(xs, requires_grad=True)
        ty = tlayer(tx)
        y = layer(xs)
        assert y.dtype == dtype
        assert_close(y, ty.detach().numpy(), dtype, f"forward step {step}", **TOL[dtype])
        dy = rng.standard_normal(y.shape).astype(dtype)
        ty.backward(torch.tensor(dy))
        dx = layer.backward(dy)
        assert dx.dtype == dtype
        assert_close(dx, tx.grad.numpy(), dtype, f"input grad step {step}", **TOL[dtype])
    tparams = dict(tlayer.named_parameters())
    grads = layer.grads()
    assert sorted(grads) == sorted(name for name, _ in layer.named_parameters())
    for name, g in grads.items():
        assert_close(g, tparams[name].grad.numpy(), dtype, f"grad of {name}", **TOL[dtype])
    tstate = tlayer.state_dict()
    for name, value in layer.state_dict().items():
        assert_close(value, tstate[name].numpy(), dtype, f"state {name}", **TOL[dtype])
    assert set(layer.state_dict()) == set(tstate)


DTYPES = [np.float32, np.float64]


# -- LayerNorm / RMSNorm -------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "shape, normalized, kwargs",
    [((4, 7), 7, {}), ((2, 3, 5, 6), (5, 6), {}), ((3, 8), 8, {"bias": False}),
     ((3, 4, 8), [8], {"elementwise_affine": False}), ((2, 9), 9, {"eps": 1e-3})],
)
def test_layer_norm_matches_torch(dtype, shape, normalized, kwargs):
    torch.manual_seed(0)
    tl = torch.nn.LayerNorm(normalized, **kwargs)
    with torch.no_grad():
        for p in tl.parameters():
            p.normal_()
    layer, tl = torch_pair(LayerNorm(normalized, **kwargs), tl, dtype)
    x = np.random.default_rng(0).standard_normal(shape) * 3 + 1
    check_parity(layer, tl, x, dtype, steps=2)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "shape, normalized, kwargs",
    [((4, 7), 7, {}), ((2, 3, 5, 6), (5, 6), {"eps": 1e-4}), ((3, 4, 8), 8, {"elementwise_affine": False})],
)
def test_rms_norm_matches_torch(dtype, shape, normalized, kwargs):
    torch.manual_seed(0)
    tl = torch.nn.RMSNorm(normalized, **kwargs)
    with torch.no_grad():
        for p in tl.parameters():
            p.normal_()
    layer, tl = torch_pair(RMSNorm(normalized, **kwargs), tl, dtype)
    x = np.random.default_rng(0).standard_normal(shape) * 2
    check_parity(layer, tl, x, dtype, steps=2)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, groups, kwargs", [((3, 6, 5), 3, {}), ((2, 8, 3, 4), 2, {}), ((2, 4), 2, {}),
                                                   ((2, 6, 7), 1, {"affine": False}), ((2, 6, 3, 3), 6, {"eps": 1e-3})])
def test_group_norm_matches_torch(dtype, shape, groups, kwargs):
    torch.manual_seed(0)
    tl = torch.nn.GroupNorm(groups, shape[1], **kwargs)
    with torch.no_grad():
        for p in tl.parameters():
            p.normal_()
    layer, tl = torch_pair(GroupNorm(groups, shape[1], **kwargs), tl, dtype)
    x = np.random.default_rng(0).standard_normal(shape) + 0.5
    check_parity(layer, tl, x, dtype, steps=2)


# -- BatchNorm -----------------------------------------------------------------------------------
BN_CASES = [
    (BatchNorm1d, torch.nn.BatchNorm1d, (8, 5), {}),
    (BatchNorm1d, torch.nn.BatchNorm1d, (4, 3, 7), {"momentum": None}),
    (BatchNorm1d, torch.nn.BatchNorm1d, (6, 4), {"affine": False, "momentum": 0.3}),
    (BatchNorm2d, torch.nn.BatchNorm2d, (3, 4, 5, 3), {}),
    (BatchNorm2d, torch.nn.BatchNorm2d, (2, 3, 4, 4), {"momentum": None, "eps": 1e-3}),
    (BatchNorm2d, torch.nn.BatchNorm2d, (2, 3, 3, 5), {"track_running_stats": False}),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("cls, tcls, shape, kwargs", BN_CASES)
def test_batch_norm_matches_torch(cls, tcls, shape, kwargs, train, dtype):
    torch.manual_seed(0)
    tl = tcls(shape[1], **kwargs)
    with torch.no_grad():
        for p in tl.parameters():
            p.normal_()
        if tl.running_mean is not None:
            tl.running_mean.normal_()
            tl.running_var.uniform_(0.5, 2.0)
    layer, tl = torch_pair(cls(shape[1], **kwargs), tl, dtype)
    layer.train(train)
    tl.train(train)
    x = np.random.default_rng(0).standard_normal(shape) * 2 + 1
    with enable_grad():  # eval() mode keeps a cache for backward only when asked
        check_parity(layer, tl, x, dtype, steps=3)  # running stats compared after 3 steps


def test_batch_norm_running_stats_then_eval_match_torch():
    torch.manual_seed(0)
    tl = torch.nn.BatchNorm2d(3, momentum=None).double()
    layer, tl = torch_pair(BatchNorm2d(3, momentum=None), tl, np.float64)
    layer = on_test_device(layer)
    rng = np.random.default_rng(3)
    for _ in range(4):
        x = rng.standard_normal((4, 3, 2, 3)) * rng.uniform(0.5, 3) + rng.uniform(-1, 1)
        layer(x)
        tl(torch.tensor(x))
    assert int(layer.num_batches_tracked) == 4
    layer.eval()
    tl.eval()
    x = rng.standard_normal((2, 3, 2, 3))
    assert_close(layer(x), tl(torch.tensor(x)).detach().numpy(), np.float64, "eval forward", **TOL[np.float64])


def test_batch_norm_training_needs_more_than_one_value():
    with pytest.raises(ShapeError, match="BatchNorm1d.*more than 1 value"):
        BatchNorm1d(3)(np.ones((1, 3), dtype=np.float32))


# -- finite differences ----------------------------------------------------------------------------
GRADCHECK = [
    (lambda: LayerNorm((3, 4)), (2, 3, 3, 4)),
    (lambda: LayerNorm(5, bias=False), (3, 5)),
    (lambda: RMSNorm(6, eps=1e-6), (2, 3, 6)),
    (lambda: GroupNorm(2, 4), (2, 4, 3, 2)),
    (lambda: BatchNorm1d(3), (5, 3)),
    (lambda: BatchNorm1d(3), (4, 3, 2)),
    (lambda: BatchNorm2d(2), (3, 2, 2, 3)),
    (lambda: BatchNorm2d(2).eval(), (3, 2, 2, 3)),
]


@pytest.mark.parametrize("make, shape", GRADCHECK)
def test_norm_gradcheck(make, shape):
    layer = make().astype(np.float64)
    rng = np.random.default_rng(0)
    for p in layer.parameters():
        p.data[...] = rng.standard_normal(p.shape)
    gradcheck(layer, rng.standard_normal(shape) * 2 + 0.3)


# -- configs and errors -------------------------------------------------------------------------------
LAYERS = [  # layer, good input shape, wrong trailing/channel size, wrong rank
    (LayerNorm((4, 5), eps=1e-4, bias=False), (2, 4, 5), (2, 5, 4), (5,)),
    (RMSNorm(6, eps=None), (3, 6), (3, 5), ()),
    (GroupNorm(2, 4, affine=False), (2, 4, 3), (2, 6, 3), (4,)),
    (BatchNorm1d(3, momentum=None, track_running_stats=False), (4, 3), (4, 5), (2, 3, 4, 4)),
    (BatchNorm2d(3, eps=1e-3), (2, 3, 2, 2), (2, 5, 2, 2), (2, 3, 4)),
]


@pytest.mark.parametrize("layer, good, bad, bad_rank", LAYERS)
def test_norm_config_round_trip(layer, good, bad, bad_rank):
    rebuilt = registry.build(layer.config())
    assert type(rebuilt) is type(layer)
    assert rebuilt.config() == layer.config()
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in layer.state_dict().items()}
    x = np.random.default_rng(0).standard_normal(good).astype(np.float32)
    np.testing.assert_allclose(rebuilt(x), layer(x), rtol=1e-6)


@pytest.mark.parametrize("layer, good, bad, bad_rank", LAYERS)
def test_norm_bad_inputs(layer, good, bad, bad_rank):
    name = type(layer).__name__
    with pytest.raises(ShapeError, match=rf"{name}.*{str(bad).replace('(', '[(]').replace(')', '[)]')}"):
        layer(np.zeros(bad, dtype=np.float32))
    with pytest.raises(ShapeError, match=name):
        layer(np.zeros(bad_rank, dtype=np.float32))
    for dtype in (np.int64, np.bool_):
        with pytest.raises(DTypeError, match=name):
            layer(np.zeros(good, dtype=dtype))
    fresh = registry.build(layer.config())
    with pytest.raises(PlaitError, match="without a matching forward"):
        fresh.backward(np.zeros(good, dtype=np.float32))


def test_norm_registered_names():
    for name in ("layer_norm", "rms_norm", "group_norm", "batch_norm1d", "batch_norm2d"):
        assert registry.layers.get(name) is not None


def test_norm_keeps_the_input_dtype():
    for layer, shape in [(LayerNorm(4), (3, 4)), (RMSNorm(4), (3, 4)), (GroupNorm(2, 4), (2, 4, 3)),
                         (BatchNorm1d(4), (3, 4)), (BatchNorm2d(4), (2, 4, 2, 2))]:
        x64 = np.random.default_rng(0).standard_normal(shape)
        y = layer(x64)
        assert y.dtype == np.float64
        assert layer.backward(np.ones_like(y)).dtype == np.float64
        assert layer.weight.grad.dtype == np.float32
        assert layer.state_dict()["weight"].dtype == np.float32
