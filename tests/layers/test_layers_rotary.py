"""RotaryEmbedding: torch reference (rotate-half convention), finite differences, properties, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plait.core import ConfigError, DTypeError, PlaitError, ShapeError, no_grad, registry
from plait.core.testing import gradcheck, on_test_device
from plait.layers.rotary import RotaryEmbedding


def torch_rope(x: torch.Tensor, offset: int, base: float = 10000.0) -> torch.Tensor:
    """The GPT-NeoX / LLaMA formula, written independently with torch ops."""
    dim, T = x.shape[-1], x.shape[-2]
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
    pos = torch.arange(offset, offset + T, dtype=torch.float64)
    emb = torch.cat([torch.outer(pos, inv_freq)] * 2, dim=-1)
    x1, x2 = x[..., : dim // 2], x[..., dim // 2 :]
    rotated = torch.cat([-x2, x1], dim=-1)
    return x * emb.cos().to(x.dtype) + rotated * emb.sin().to(x.dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("offset", [0, 7])
@pytest.mark.parametrize("base", [10000.0, 500.0])
def test_parity_with_torch_reference(dtype, offset, base):
    tdtype = getattr(torch, dtype)
    x = torch.randn(2, 3, 5, 8, dtype=tdtype, requires_grad=True)
    ref = torch_rope(x, offset, base)
    dy = torch.randn_like(ref)
    (ref * dy).sum().backward()
    rope = on_test_device(RotaryEmbedding(8, base=base, max_position=32, dtype=dtype))
    y = rope(x.detach().numpy(), offset=offset)
    dx = rope.backward(dy.numpy())
    tol = dict(rtol=1e-6, atol=1e-10) if dtype == "float64" else dict(rtol=1e-4, atol=1e-5)
    assert y.dtype == dx.dtype == np.dtype(dtype)
    np.testing.assert_allclose(y, ref.detach().numpy(), **tol)
    np.testing.assert_allclose(dx, x.grad.numpy(), **tol)


def test_gradcheck():
    x = np.random.default_rng(0).standard_normal((2, 2, 4, 6))
    gradcheck(RotaryEmbedding(6, max_position=16, dtype="float64"), x, forward_kwargs={"offset": 3})


def test_rotation_properties():
    rng = np.random.default_rng(1)
    rope = RotaryEmbedding(8, max_position=64, dtype="float64")
    x = rng.standard_normal((1, 1, 10, 8))
    y = rope(x)
    np.testing.assert_allclose(y[..., 0, :], x[..., 0, :])  # position 0 is not rotated
    pair_norm = lambda a: a[..., :4] ** 2 + a[..., 4:] ** 2  # noqa: E731 - pairs (k, k + dim/2)
    np.testing.assert_allclose(pair_norm(y), pair_norm(x))
    np.testing.assert_allclose(rope.backward(y), x)  # backward is the inverse rotation
    # relative positions: <rope(q at m), rope(k at n)> depends on m - n only
    q, k = rng.standard_normal(8), rng.standard_normal(8)
    def score(m, n):
        with no_grad():
            return rope(q[None], offset=m)[0] @ rope(k[None], offset=n)[0]

    assert np.isclose(score(5, 2), score(13, 10)) and not np.isclose(score(5, 2), score(5, 4))


def test_config_round_trip_and_no_state():
    rope = RotaryEmbedding(16, base=1000.0, max_position=128)
    cfg = rope.config()
    assert cfg == {"type": "rotary_embedding", "dim": 16, "base": 1000.0, "max_position": 128, "dtype": "float32"}
    rebuilt = registry.build(cfg)
    assert isinstance(rebuilt, RotaryEmbedding) and rebuilt.state_dict() == {}
    assert rebuilt.cos.shape == (128, 16) and rebuilt.cos.dtype == np.float32


def test_errors_name_the_layer():
    with pytest.raises(ConfigError, match="RotaryEmbedding.*even"):
        RotaryEmbedding(7)
    rope = RotaryEmbedding(8, max_position=10)
    with pytest.raises(ShapeError, match="RotaryEmbedding.*last dimension 8"):
        rope(np.zeros((2, 5, 6), np.float32))
    with pytest.raises(ShapeError, match="RotaryEmbedding.*at least 2"):
        rope(np.zeros(8, np.float32))
    with pytest.raises(DTypeError, match="RotaryEmbedding"):
        rope(np.zeros((5, 8), np.int32))
    with pytest.raises(ShapeError, match="max_position=10"):
        rope(np.zeros((5, 8), np.float32), offset=6)
    with pytest.raises(PlaitError, match="RotaryEmbedding.backward"):
        RotaryEmbedding(8).backward(np.zeros((5, 8), np.float32))
