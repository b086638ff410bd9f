"""The exact GELU kernel: float32 ulp-level accuracy against math.erfc on a dense grid, tails included."""

from __future__ import annotations

import math

import numpy as np
import pytest

from plait.layers._gelu_maths import gelu_exact

EPS32 = float(np.finfo(np.float32).eps)
_erfc = np.frompyfunc(math.erfc, 1, 1)
_exp = np.frompyfunc(math.exp, 1, 1)


def _reference(x32: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Phi, y, slope) in float64 from math.erfc at the float32 inputs."""
    x = x32.astype(np.float64)
    cdf = _erfc(-x / math.sqrt(2.0)).astype(np.float64) / 2.0
    pdf = _exp(-x * x / 2.0).astype(np.float64) / math.sqrt(2.0 * math.pi)
    return cdf, x * cdf, cdf + x * pdf


def _grid() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.concatenate([
        np.linspace(-14.0, 14.0, 280_001),  # every 1e-4
        rng.standard_normal(100_000) * 3.0,
        -np.geomspace(1e-30, 14.0, 20_000), np.geomspace(1e-30, 14.0, 20_000),
        [0.0, -0.0, 1e-38, -1e-38],
    ]).astype(np.float32)


def test_float32_gelu_within_a_few_ulps_of_the_condition_number():
    """|error| <= 4 ulp x (1 + x^2/2) relative (1 + x^2/2 is Phi's condition number at x: the error of
    exp(-x^2/2) from rounding x^2/2), over [-14, 14] wherever the result is a normal float32; the
    slope Phi + x phi alike, relative to |Phi| + |x phi|."""
    x = _grid()
    y, slope = gelu_exact(x)  # one call: above 2 x 64K elements it runs block by block
    assert y.dtype == slope.dtype == np.float32 and y.shape == slope.shape == x.shape
    cdf, y_ref, slope_ref = _reference(x)
    x64 = x.astype(np.float64)
    cond = 1.0 + x64 * x64 / 2.0
    normal = np.abs(y_ref) > np.finfo(np.float32).tiny
    rel_y = np.abs(y - y_ref)[normal] / np.abs(y_ref)[normal] / cond[normal]
    assert rel_y.max() <= 4 * EPS32, f"{rel_y.max() / EPS32:.2f} ulp at x = {x[normal][rel_y.argmax()]}"
    scale = cdf + np.abs(slope_ref - cdf)
    rel_s = (np.abs(slope - slope_ref) / scale / cond)[normal]
    assert rel_s.max() <= 4 * EPS32, f"{rel_s.max() / EPS32:.2f} ulp"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gelu_exact_edges(dtype):
    """Signed zeros, the far tails (underflow to -0/+0 and slope 0 or 1), and x = +-1e4 stay finite."""
    x = np.array([0.0, -0.0, -1e4, 1e4, -40.0, 40.0, -1.0, 1.0], dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y, slope = gelu_exact(x)
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(slope))
    np.testing.assert_array_equal(y[:6], [0.0, 0.0, 0.0, 1e4, 0.0, 40.0])
    np.testing.assert_array_equal(slope[:6], [0.5, 0.5, 0.0, 1.0, 0.0, 1.0])
    cdf, y_ref, slope_ref = _reference(x[6:].astype(np.float32))
    tol = 1e-6 if dtype == np.float32 else 1e-7
    np.testing.assert_allclose(y[6:], y_ref, rtol=tol)
    np.testing.assert_allclose(slope[6:], slope_ref, rtol=tol)


def test_float64_gelu_matches_math_erfc():
    """float64 (Cephes' erfc): within 8 float64 ulps x (1 + x^2/2) over [-30, 30]."""
    x = np.linspace(-30.0, 30.0, 60_001)
    y, slope = gelu_exact(x)
    cdf = _erfc(-x / math.sqrt(2.0)).astype(np.float64) / 2.0
    pdf = _exp(-x * x / 2.0).astype(np.float64) / math.sqrt(2.0 * math.pi)
    cond = 1.0 + x * x / 2.0
    eps = float(np.finfo(np.float64).eps)
    nonzero = x != 0
    assert (np.abs(y - x * cdf)[nonzero] / np.abs(x * cdf)[nonzero] / cond[nonzero]).max() <= 8 * eps
    assert (np.abs(slope - cdf - x * pdf) / (cdf + np.abs(x * pdf)) / cond).max() <= 8 * eps
