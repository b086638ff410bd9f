"""Fast paths of the convolution and pooling maths agree with their general paths.

The stride-1 row-extended grid (:mod:`plait.layers._conv_flat`) against plain im2col
(:func:`plait.layers._conv_maths._conv_gemm_forward`), and the tiled max-pool backward
against the general window scatter, on random inputs (with ties for the pools) in float64.
"""

from __future__ import annotations

import numpy as np
import pytest

from plait.layers import _conv_flat, _pool_maths
from plait.layers._conv_flat import _batch_chunks, _geometry, conv2d_backward_flat, conv2d_forward_flat
from plait.layers._conv_maths import _conv_gemm_backward, _conv_gemm_forward

# (N, C, H, W), (O, kh, kw), pads ((top, bottom), (left, right)), dilation, groups
FLAT_CASES = [
    ((3, 3, 7, 6), (4, 3, 3), ((1, 1), (1, 1)), (1, 1), 1),  # 'same' 3x3: rows share one pad column
    ((2, 2, 5, 8), (3, 2, 4), ((0, 1), (1, 2)), (1, 1), 1),  # 'same' with an even kernel: uneven pads
    ((3, 4, 6, 5), (4, 3, 3), ((2, 2), (2, 2)), (2, 2), 2),  # dilated, grouped
    ((2, 2, 4, 3), (2, 3, 3), ((3, 0), (0, 3)), (1, 1), 1),  # all padding on one side
    ((1, 2, 3, 2), (3, 2, 2), ((3, 3), (3, 3)), (1, 1), 1),  # pads wider than the kernel (Wo > W + pad)
    ((2, 3, 6, 7), (6, 3, 3), ((0, 0), (0, 0)), (1, 1), 3),  # no padding
    ((1, 2, 1, 9), (2, 1, 4), ((0, 0), (2, 1)), (1, 2), 1),  # a 1-D convolution lifted to H = 1
    ((1, 1, 2, 1), (2, 3, 7), ((1, 1), (3, 3)), (1, 1), 1),  # one column: the slack needs 2 spare rows
]


@pytest.mark.parametrize("chunk", [None, 1, 2])
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize(("x_shape", "w_shape", "pads", "dilation", "groups"), FLAT_CASES)
def test_flat_grid_equals_im2col(x_shape, w_shape, pads, dilation, groups, with_bias, chunk, monkeypatch):
    """Whole batch, one image per chunk, and chunks of two (the last one short when N is odd)."""
    if chunk is not None:
        monkeypatch.setattr(_conv_flat, "_batch_chunks",
                            lambda xp, n, size: [slice(i, min(i + chunk, n)) for i in range(0, n, chunk)])
    rng = np.random.default_rng(sum(x_shape) + sum(w_shape))
    o, kh, kw = w_shape
    x = rng.standard_normal(x_shape)
    weight = rng.standard_normal((o, x_shape[1] // groups, kh, kw))
    bias = rng.standard_normal(o) if with_bias else None
    y, xflat = conv2d_forward_flat(x, weight, bias, pads, dilation, groups)
    y_ref, cols_ref = _conv_gemm_forward(x, weight, bias, (1, 1), pads, dilation, groups)
    np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-12)
    dy = rng.standard_normal(y.shape)
    grads = conv2d_backward_flat(dy, xflat, weight, x_shape[2:], pads, dilation, groups)
    grads_ref = _conv_gemm_backward(dy, cols_ref, weight, x_shape[2:], (1, 1), pads, dilation, groups)
    assert conv2d_backward_flat(dy, xflat, weight, x_shape[2:], pads, dilation, groups, need_dx=False)[0] is None
    for got, want, name in zip(grads, grads_ref, ("dx", "dweight", "dbias")):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=name)
    assert grads[0].flags.c_contiguous


def test_flat_grid_shares_the_pad_column():
    """A 3x3 'same' convolution of a 14-wide image runs on rows of 15, not 16."""
    hp, row, ho, wo, spare = _geometry((14, 14), (3, 3), ((1, 1), (1, 1)), (1, 1))
    assert (hp, row, ho, wo, spare) == (16, 15, 14, 14, 1)


def test_batch_chunks_cover_the_batch_in_order():
    assert _batch_chunks(np, 10, _conv_flat.CHUNK_BYTES // 4) == [slice(0, 4), slice(4, 8), slice(8, 10)]
    assert _batch_chunks(np, 3, 10 * _conv_flat.CHUNK_BYTES) == [slice(0, 1), slice(1, 2), slice(2, 3)]
    assert _batch_chunks(np, 5, 1) == [slice(0, 5)]
    assert _batch_chunks(np, 0, 1) == [slice(0, 0)]


def test_flat_grid_on_an_empty_batch():
    x, weight = np.zeros((0, 2, 5, 5)), np.ones((3, 2, 3, 3))
    y, xflat = conv2d_forward_flat(x, weight, np.ones(3), ((1, 1), (1, 1)), (1, 1), 1)
    assert y.shape == (0, 3, 5, 5)
    dx, dweight, dbias = conv2d_backward_flat(y, xflat, weight, (5, 5), ((1, 1), (1, 1)), (1, 1), 1)
    assert dx.shape == x.shape and not dweight.any() and not dbias.any()


@pytest.mark.parametrize("kernel", [(2, 2), (3, 3), (2, 3), (1, 2)])
def test_tiled_max_pool_backward_equals_the_general_path(kernel, monkeypatch):
    """Ties (rounded values, and the zeros a ReLU leaves) go to the first maximum either way."""
    rng = np.random.default_rng(sum(kernel))
    x = np.maximum(np.round(rng.standard_normal((2, 3, 3 * kernel[0], 4 * kernel[1]))), 0)
    y, ctx = _pool_maths.max_pool_forward(x, kernel=kernel, stride=kernel, padding=(0, 0))
    dy = rng.standard_normal(y.shape)
    tiled = _pool_maths.max_pool_backward(dy, ctx)[0]
    monkeypatch.setattr(_pool_maths, "_tiles", lambda *args: False)
    general = _pool_maths.max_pool_backward(dy, ctx)[0]
    np.testing.assert_array_equal(tiled, general)
    assert (tiled != 0).sum() == (dy != 0).sum()  # one pixel per window
