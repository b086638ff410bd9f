"""Flatten, Unflatten, Reshape: torch parity, round trips through backward, configs, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plait.core import PlaitError, ShapeError, registry
from plait.core.testing import gradcheck, on_test_device
from plait.layers import Flatten, Reshape, Unflatten


@pytest.mark.parametrize(("start", "end"), [(1, -1), (0, -1), (1, 2), (-2, -1), (2, 2)])
def test_flatten_matches_torch(start, end):
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    layer = on_test_device(Flatten(start, end))
    y = layer(x)
    ref = torch.nn.Flatten(start, end)(torch.tensor(x)).numpy()
    np.testing.assert_array_equal(y, ref)
    np.testing.assert_array_equal(layer.backward(y * 2), x * 2)


@pytest.mark.parametrize(("dim", "sizes"), [(1, (3, 4)), (-1, (2, -1)), (0, (1, 2)), (1, (-1, 2, 2))])
def test_unflatten_matches_torch(dim, sizes):
    x = np.random.default_rng(1).standard_normal((2, 12))
    layer = on_test_device(Unflatten(dim, sizes))
    y = layer(x)
    ref = torch.nn.Unflatten(dim, sizes)(torch.tensor(x)).numpy()
    np.testing.assert_array_equal(y, ref)
    np.testing.assert_array_equal(layer.backward(y), x)


@pytest.mark.parametrize("args", [((4, 3),), (4, 3), ((-1, 6),), (2, -1, 3)])
def test_reshape_keeps_batch_dim(args):
    x = np.random.default_rng(2).standard_normal((5, 12)).astype(np.float32)
    layer = Reshape(*args)
    y = layer(x)
    shape = args[0] if isinstance(args[0], tuple) else args
    np.testing.assert_array_equal(y, x.reshape(5, *shape))
    assert y.dtype == np.float32
    np.testing.assert_array_equal(layer.backward(y), x)


@pytest.mark.parametrize("layer", [Flatten(), Unflatten(1, (2, 6)), Reshape(3, 4)], ids=lambda m: type(m).__name__)
def test_gradcheck_and_config(layer):
    gradcheck(layer, np.random.default_rng(3).standard_normal((2, 12)))
    cfg = layer.config()
    rebuilt = registry.build(cfg)
    assert type(rebuilt) is type(layer) and rebuilt.config() == cfg
    x = np.arange(24.0).reshape(2, 12)
    np.testing.assert_array_equal(rebuilt(x), layer(x))


def test_reshape_accepts_shape_keyword_and_int_ids():
    np.testing.assert_array_equal(Reshape(shape=[2, 2])(np.arange(8).reshape(2, 4)), np.arange(8).reshape(2, 2, 2))
    assert Reshape(2, 2).config() == {"type": "reshape", "shape": [2, 2]}


def test_errors():
    with pytest.raises(ShapeError, match=r"Reshape.*12.*\(5, 2\)"):
        Reshape(5, 2)(np.zeros((3, 12)))
    with pytest.raises(ShapeError, match="Unflatten.*dim=3"):
        Unflatten(3, (2, 2))(np.zeros((2, 4)))
    with pytest.raises(ShapeError, match=r"Unflatten.*\(3, 2\)"):
        Unflatten(1, (3, 2))(np.zeros((2, 4)))
    with pytest.raises(ShapeError, match="Flatten.*start_dim=3"):
        Flatten(3)(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="Reshape"):
        Reshape(-1, -1)
    with pytest.raises(PlaitError, match="without a matching forward"):
        Flatten().backward(np.zeros((2, 4)))
    layer = Flatten()
    layer(np.zeros((2, 2, 2)))
    with pytest.raises(ShapeError, match=r"Flatten\.backward.*\(2, 4\)"):
        layer.backward(np.zeros((2, 5)))
