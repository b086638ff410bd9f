"""Stride-1 convolution on a row-extended grid: im2col and col2im as long contiguous runs.

The zero-padded input is laid out flat with a row stride ``S``: padded row r, column p
sits at flat offset ``r*S + p``. With stride 1, output pixel (h, w) then reads the input
at ``h*S + w + (i*dh*S + j*dw)`` for kernel tap (i, j). Computing outputs for every
``w < S`` (not only ``w < Wo``) makes each tap's column block one contiguous run of
``Q = Ho*S`` values, a single strided window of the flattened padded image::

    cols[c, i, j, n, q] = xflat[n, c, i*dh*S + j*dw + q]        q in [0, Ho*S)

The right padding of one row and the left padding of the next are both zeros, so they
may share memory: ``S = W + max(left, right)`` columns suffice (a read past a row's right
edge lands in the next row's left padding), not ``W + left + right``; ``S`` also holds the
``Wo`` outputs of a row. The ``S - Wo`` extra columns per row are junk: the forward pass
crops them, and the backward pass gives them a zero output gradient, so they add nothing
to dW or dx. The GEMMs grow by S/Wo (16/14 -> 15/14 for a 3x3 'same' convolution of a
14-wide image); in exchange the copies and col2im adds run over long rows.
Layouts and GEMMs are otherwise those of :mod:`._conv_maths`.
"""

from __future__ import annotations

from typing import Any

from plait.core import get_array_module

from ._conv_args import Pads, Pair, bmm

__all__ = ["conv2d_backward_flat", "conv2d_forward_flat"]


def _geometry(x_hw: Pair, kernel: Pair, pads: Pads, dilation: Pair) -> tuple[int, int, int, int, int]:
    """(Hp, S, Ho, Wo, spare): padded height, row stride, output size, and spare rows per image.

    The last tap of the last output reads ``dw*(kw-1)`` values past the ``Hp*S`` of an
    image; ``spare`` zero rows hold them.
    """
    (top, bottom), (left, right) = pads
    hp = x_hw[0] + top + bottom
    ho, wo = hp - dilation[0] * (kernel[0] - 1), x_hw[1] + left + right - dilation[1] * (kernel[1] - 1)
    row = max(x_hw[1] + max(left, right), wo)
    slack = dilation[1] * (kernel[1] - 1)
    return hp, row, ho, wo, -(-slack // row)


def _flat_columns(x: Any, kernel: Pair, pads: Pads, dilation: Pair) -> Any:
    """cols (C, kh, kw, N, Ho*S) read from the zero-padded, flattened input."""
    xp = get_array_module(x)
    n, c, h, w = x.shape
    hp, row, ho, _, spare = _geometry((h, w), kernel, pads, dilation)
    (top, _), (left, _) = pads
    padded = xp.zeros((n, c, hp + spare, row), dtype=x.dtype)
    padded[:, :, top : top + h, left : left + w] = x
    flat = padded.reshape(n, c, (hp + spare) * row)
    s, item = flat.strides, flat.itemsize
    q = ho * row
    view = xp.lib.stride_tricks.as_strided(
        flat, shape=(n, c, *kernel, q), strides=(s[0], s[1], dilation[0] * row * item, dilation[1] * item, item)
    )
    cols = xp.empty((c, *kernel, n, q), dtype=x.dtype)
    cols[...] = view.transpose(1, 2, 3, 0, 4)
    return cols


def conv2d_forward_flat(x: Any, weight: Any, bias: Any | None, pads: Pads, dilation: Pair,
                        groups: int) -> tuple[Any, Any]:
    """Stride-1 y (N, O, Ho, Wo) and the extended columns cols (C, kh, kw, N, Ho*S)."""
    xp = get_array_module(x)
    n = x.shape[0]
    o, _, kh, kw = weight.shape
    _, row, ho, wo, _ = _geometry(x.shape[2:], (kh, kw), pads, dilation)
    cols = _flat_columns(x, (kh, kw), pads, dilation)
    y_ext = bmm(weight.reshape(groups, o // groups, -1), cols.reshape(groups, -1, n * ho * row))
    if bias is not None:  # added to the contiguous GEMM output (long rows), not to the cropped view
        y_rows = y_ext.reshape(o, -1)
        y_rows += bias[:, None]
    y = xp.empty((n, o, ho, wo), dtype=x.dtype)
    y[...] = y_ext.reshape(o, n, ho, row)[:, :, :, :wo].transpose(1, 0, 2, 3)
    return y, cols


def conv2d_backward_flat(dy: Any, cols: Any, weight: Any, x_hw: Pair, pads: Pads, dilation: Pair,
                         groups: int, need_dx: bool = True) -> tuple[Any, Any, Any]:
    """(dx (N, C, H, W) or None, dweight, dbias (O,)) of the stride-1 convolution from dy (N, O, Ho, Wo)."""
    xp = get_array_module(dy)
    n, o, ho, wo = dy.shape
    c, kh, kw = cols.shape[:3]
    hp, row, _, _, spare = _geometry(x_hw, (kh, kw), pads, dilation)
    q = ho * row
    dy_ext = xp.zeros((o, n, ho, row), dtype=dy.dtype)  # junk columns get a zero gradient
    dy_ext[:, :, :, :wo] = dy.transpose(1, 0, 2, 3)
    dy_g = dy_ext.reshape(groups, o // groups, n * q)
    cols_g = cols.reshape(groups, -1, n * q)
    dweight = bmm(cols_g, dy_g.transpose(0, 2, 1)).transpose(0, 2, 1).reshape(weight.shape)
    dbias = dy_g.reshape(o, -1).sum(axis=1)
    if not need_dx:
        return None, dweight, dbias
    dcols = bmm(weight.reshape(groups, o // groups, -1).transpose(0, 2, 1), dy_g).reshape(cols.shape)
    dpadded = xp.zeros((c, n, hp + spare, row), dtype=dy.dtype)  # the spare rows take the junk tail
    dflat = dpadded.reshape(c, n, (hp + spare) * row)
    for i in range(kh):  # col2im: kh*kw adds of contiguous runs
        for j in range(kw):
            start = i * dilation[0] * row + j * dilation[1]
            dflat[:, :, start : start + q] += dcols[:, i, j]
    (top, _), (left, _) = pads
    dx_cn = dpadded[:, :, top : top + x_hw[0], left : left + x_hw[1]]
    return xp.ascontiguousarray(dx_cn.transpose(1, 0, 2, 3)), dweight, dbias
