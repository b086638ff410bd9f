"""plait.layers.blocks: the shared residual sub-layer (pre-norm and post-norm) by finite differences
in float64, with a sub-layer that returns an extra gradient (as cross-attention returns dmemory)."""

from __future__ import annotations

import numpy as np
import pytest

from plait.core import Module
from plait.core.testing import gradcheck
from plait.layers import Dropout, LayerNorm, Linear
from plait.layers.blocks import residual, residual_backward

D = 5


class _Wired(Module):
    """y = residual(x, f, norm, drop) with f(h) = tanh(linear(h)) + context @ mix; backward -> (dx, dcontext)."""

    def __init__(self, norm_first: bool) -> None:
        super().__init__()
        self.norm_first = norm_first
        self.norm = LayerNorm(D, dtype="float64")
        self.linear = Linear(D, D, dtype="float64")
        self.drop = Dropout(0.0)
        self.mix = np.random.default_rng(3).standard_normal((D, D))

    def forward(self, x, context):
        def sublayer(h):
            a = np.tanh(self.linear(h))
            self._tanh = a
            return a + context @ self.mix

        return residual(x, sublayer, self.norm, self.drop, self.norm_first)

    def _sublayer_backward(self, dout):
        dh = self.linear.backward(dout * (1.0 - self._tanh ** 2))
        return dh, dout @ self.mix.T  # (d input, extra: d context)

    def backward(self, dy):
        return residual_backward(dy, self._sublayer_backward, self.norm, self.drop, self.norm_first)


@pytest.mark.parametrize("norm_first", [True, False])
def test_residual_pair_by_finite_differences(norm_first):
    rng = np.random.default_rng(0)
    gradcheck(_Wired(norm_first), rng.standard_normal((2, 3, D)), rng.standard_normal((2, 3, D)))


@pytest.mark.parametrize("norm_first", [True, False])
def test_residual_is_the_textbook_formula(norm_first):
    m = _Wired(norm_first)
    x, c = np.random.default_rng(1).standard_normal((2, 2, 3, D))

    def f(h):
        return np.tanh(m.linear(h)) + c @ m.mix

    expected = x + f(m.norm(x)) if norm_first else m.norm(x + f(x))
    np.testing.assert_allclose(m(x, c), expected, rtol=1e-12, atol=1e-12)
