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


# -- dropout inside attention and recurrent layers, on the real path (no injected mask) -------------------
def _mean_matches_eval(layer, x, draws, out_of=lambda out: out):
    """E[training output] = eval output: the mean of ``draws`` training outputs lies within 5 standard
    errors of the eval output (inverted dropout's 1/keep rescaling is what makes this hold)."""
    from plait.core import no_grad

    with no_grad():
        layer.eval()
        expected = out_of(layer(x))
        layer.train()
        outs = np.stack([out_of(layer(x)) for _ in range(draws)])
    mean, stderr = outs.mean(axis=0), outs.std(axis=0) / np.sqrt(draws)
    assert outs.std(axis=0).max() > 0, "dropout drew no masks in training mode"
    excess = np.abs(mean - expected) - (5 * stderr + 1e-7 * np.abs(expected).max())
    assert excess.max() <= 0, f"training mean differs from eval output by up to {np.abs(mean - expected).max()}"


def _backward_uses_forward_mask(layer, x, seed=7):
    """The gradient of one training forward (one mask) equals finite differences with that same mask."""
    from plait.core.testing import numerical_gradient

    r = np.random.default_rng(1)
    first = lambda out: out[0] if isinstance(out, tuple) else out  # noqa: E731
    manual_seed(seed)
    out = first(layer(x))
    weights = r.standard_normal(out.shape)
    grad = layer.backward(weights)
    dx = grad[0] if isinstance(grad, tuple) else grad

    def f():
        from plait.core import no_grad

        manual_seed(seed)
        with no_grad():
            return float((first(layer(x)) * weights).sum())

    idx = [tuple(i) for i in np.random.default_rng(2).integers(0, x.shape, size=(12, x.ndim))]
    numeric = numerical_gradient(f, x, idx, 1e-6)
    np.testing.assert_allclose([dx[i] for i in idx], numeric, rtol=1e-5, atol=1e-7)


def test_attention_dropout_expectation_and_gradient_on_the_real_path():
    from plait.layers import GroupedQueryAttention

    manual_seed(0)
    m = GroupedQueryAttention(8, 2, dropout=0.4, dtype="float64")
    x = np.random.default_rng(3).standard_normal((2, 3, 8))
    _mean_matches_eval(m, x, draws=3000)
    _backward_uses_forward_mask(m.train(), x)


@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
def test_recurrent_dropout_expectation_and_gradient_on_the_real_path(name):
    """Dropout between layers; the second layer's weights are tiny, so it is linear to 1e-6 and the
    expectation passes through it: E[training output] = eval output."""
    from plait.layers import recurrent

    manual_seed(0)
    layer = getattr(recurrent, name)(3, 4, num_layers=2, dropout=0.5, bias=False, dtype="float64")
    for pname, p in layer.named_parameters():
        if pname.endswith("_l1"):
            p.data *= 1e-3
    x = np.random.default_rng(4).standard_normal((3, 2, 3))
    _mean_matches_eval(layer, x, draws=3000, out_of=lambda out: out[0] * 1e3)
    _backward_uses_forward_mask(layer.train(), x)
