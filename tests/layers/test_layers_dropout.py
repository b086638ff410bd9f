"""Dropout: inverted scaling, train vs eval, statistics next to torch's, reproducibility, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plait.core import DTypeError, PlaitError, ShapeError, enable_grad, manual_seed, registry
from plait.core.testing import gradcheck, on_test_device
from plait.layers import Dropout


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_train_statistics_match_torch(p, dtype):
    """Kept fraction ~ 1 - p, kept values scaled by 1/(1-p), mean preserved -- as torch's."""
    manual_seed(0)
    x = np.ones((200, 500), dtype=dtype)
    layer = on_test_device(Dropout(p))
    y = layer(x)
    ref = torch.nn.Dropout(p)(torch.ones(200, 500, dtype=torch.float64)).numpy()
    assert y.dtype == dtype
    kept = y != 0
    np.testing.assert_allclose(y[kept], 1.0 / (1.0 - p), rtol=1e-6)
    np.testing.assert_allclose(np.unique(ref[ref != 0]), 1.0 / (1.0 - p), rtol=1e-6)
    sigma = np.sqrt(p * (1 - p) / x.size)
    assert abs(kept.mean() - (1 - p)) < 5 * sigma
    assert abs((ref != 0).mean() - kept.mean()) < 10 * sigma
    assert abs(y.mean() - 1.0) < 5 * sigma / (1 - p)
    # backward uses the same mask and scale
    dy = np.full(x.shape, 2.0, dtype=dtype)
    np.testing.assert_array_equal(layer.backward(dy), 2.0 * y)


def test_eval_and_p0_are_identity():
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    layer = Dropout(0.5).eval()
    with enable_grad():  # eval() mode keeps a cache for backward only when asked
        assert layer(x) is x
    assert layer.backward(x) is x
    zero = Dropout(0.0)
    np.testing.assert_array_equal(zero(x), x)
    np.testing.assert_array_equal(zero.backward(x), x)


def test_p1_drops_everything():
    layer = Dropout(1.0)
    np.testing.assert_array_equal(layer(np.ones((3, 3))), 0.0)
    np.testing.assert_array_equal(layer.backward(np.ones((3, 3))), 0.0)


def test_reproducible_with_manual_seed():
    x = np.ones((10, 10))
    manual_seed(3)
    a = Dropout(0.3)(x)
    manual_seed(3)
    b = Dropout(0.3)(x)
    np.testing.assert_array_equal(a, b)


def test_gradcheck_fixed_mask():
    """Finite differences with the mask frozen: reseed before every forward."""

    class Seeded(Dropout):
        def forward(self, x):
            manual_seed(11)
            return super().forward(x)

    gradcheck(Seeded(0.4), np.random.default_rng(1).standard_normal((4, 6)))


def test_config_and_errors():
    cfg = Dropout(0.25).config()
    assert cfg == {"type": "dropout", "p": 0.25}
    assert registry.build(cfg).p == 0.25
    with pytest.raises(ValueError, match="Dropout"):
        Dropout(1.5)
    with pytest.raises(DTypeError, match="Dropout"):
        Dropout(0.5)(np.ones((2, 2), dtype=np.int32))
    with pytest.raises(PlaitError, match="without a matching forward"):
        Dropout(0.5).backward(np.ones(3))
    layer = Dropout(0.5)
    layer(np.ones((2, 2)))
    with pytest.raises(ShapeError, match="Dropout.backward"):
        layer.backward(np.ones((2, 3)))
