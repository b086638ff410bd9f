"""Sinusoidal and learned positional embeddings: values, offsets, gradients, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from plait.core import DTypeError, PlaitError, ShapeError, registry
from plait.core.testing import gradcheck, on_test_device
from plait.layers import LearnedPositionalEmbedding, SinusoidalPositionalEmbedding


def _torch_sinusoidal(n, d):
    """The formula of the PyTorch transformer tutorial, computed by torch in float64."""
    position = torch.arange(n, dtype=torch.float64).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, d, 2, dtype=torch.float64) * (-math.log(10000.0) / d))
    pe = torch.zeros(n, d, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term)
    return pe.numpy()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("offset", [0, 5])
def test_sinusoidal_adds_the_torch_table(dtype, offset):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 8)).astype(dtype)
    layer = on_test_device(SinusoidalPositionalEmbedding(16, 8))
    y = layer(x, offset=offset)
    ref = x + _torch_sinusoidal(16, 8)[offset : offset + 4]
    assert y.dtype == dtype
    np.testing.assert_allclose(y, ref, rtol=1e-6 if dtype == np.float64 else 1e-5, atol=1e-12 if dtype == np.float64 else 1e-6)
    dy = rng.standard_normal(x.shape).astype(dtype)
    np.testing.assert_array_equal(layer.backward(dy), dy)


def test_sinusoidal_odd_dim_and_unbatched():
    layer = SinusoidalPositionalEmbedding(10, 5)
    y = layer(np.zeros((3, 5)), offset=2)
    ref = np.zeros((3, 5))
    for row, pos in enumerate(range(2, 5)):
        for i in range(5):
            angle = pos / 10000.0 ** (2 * (i // 2) / 5)
            ref[row, i] = math.sin(angle) if i % 2 == 0 else math.cos(angle)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-15)
    assert "table" not in layer.state_dict()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("offset", [0, 3])
def test_learned_matches_torch_parameter_add(dtype, offset):
    rng = np.random.default_rng(1)
    layer = LearnedPositionalEmbedding(8, 4).astype(dtype)
    w = torch.tensor(layer.weight.data.copy(), requires_grad=True)
    layer = on_test_device(layer)
    x = rng.standard_normal((3, 5, 4)).astype(dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    xt = torch.tensor(x, requires_grad=True)
    ref = xt + w[offset : offset + 5]
    ref.backward(torch.tensor(dy))
    y = layer(x, offset=offset)
    dx = layer.backward(dy)
    tol = dict(rtol=1e-6, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(y, ref.detach().numpy(), **tol)
    np.testing.assert_allclose(dx, xt.grad.numpy(), **tol)
    np.testing.assert_allclose(layer.grads()["weight"], w.grad.numpy(), **tol)


def test_learned_gradcheck_and_init():
    layer = LearnedPositionalEmbedding(6, 3).astype(np.float64)
    gradcheck(layer, np.random.default_rng(2).standard_normal((2, 4, 3)), forward_kwargs={"offset": 1})
    big = LearnedPositionalEmbedding(500, 40)
    assert big.weight.dtype == np.float32 and abs(big.weight.data.std() - 0.02) < 0.002


def test_sinusoidal_gradcheck():
    gradcheck(SinusoidalPositionalEmbedding(6, 4), np.random.default_rng(3).standard_normal((2, 3, 4)))


@pytest.mark.parametrize("layer", [SinusoidalPositionalEmbedding(8, 4, base=500.0), LearnedPositionalEmbedding(8, 4)],
                         ids=["sinusoidal", "learned"])
def test_config_and_errors(layer):
    name = type(layer).__name__
    cfg = layer.config()
    rebuilt = registry.build(cfg)
    assert type(rebuilt) is type(layer) and rebuilt.config() == cfg
    with pytest.raises(ShapeError, match=rf"{name}.*\[6, 10\).*num_positions=8"):
        layer(np.zeros((1, 4, 4)), offset=6)
    with pytest.raises(ShapeError, match=name):
        layer(np.zeros((1, 4, 5)))  # wrong last dim
    with pytest.raises(ShapeError, match=name):
        layer(np.zeros((1, 1, 4, 4)))  # wrong rank
    with pytest.raises(DTypeError, match=name):
        layer(np.zeros((1, 4, 4), dtype=np.int64))
    with pytest.raises(PlaitError, match="without a matching forward"):
        type(layer)(8, 4).backward(np.zeros((1, 4, 4)))
