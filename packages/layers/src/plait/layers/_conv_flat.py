"""Stride-1 convolution on the row-extended grid: im2col and col2im as long contiguous runs.

With stride 1, output pixel (h, w) of a padded image of width Wp reads the input at flat
offset ``h*Wp + w + (i*dh*Wp + j*dw)`` for kernel tap (i, j). Computing outputs for every
``w < Wp`` (not only ``w < Wo``) makes each tap's column block one contiguous run of
``Q = Ho*Wp`` values, a single strided window of the flattened padded image::

    cols[c, i, j, n, q] = xflat[n, c, i*dh*Wp + j*dw + q]        q in [0, Ho*Wp)

The ``Wp - Wo`` extra columns per row are junk: the forward pass crops them, and the
backward pass gives them a zero output gradient, so they add nothing to dW or dx. The
GEMMs grow by Wp/Wo; in exchange the copies and col2im adds run over long rows.
Layouts and GEMMs are otherwise those of :mod:`._conv_maths`.
"""

from __future__ import annotations

from typing import Any

from plait.core import get_array_module

from ._conv_args import Pads, Pair, bmm

__all__ = ["conv2d_backward_flat", "conv2d_forward_flat"]


def _geometry(x_hw: Pair, kernel: Pair, pads: Pads, dilation: Pair) -> tuple[int, int, int, int, int]:
    """(Hp, Wp, Ho, Wo, slack): padded and output sizes, and the tail each flat image needs.

    The last tap reads up to ``slack = dw*(kw-1) < Wp`` values past the padded image, so one
    spare zero row per image covers it.
    """
    hp, wp = x_hw[0] + sum(pads[0]), x_hw[1] + sum(pads[1])
    ho, wo = hp - dilation[0] * (kernel[0] - 1), wp - dilation[1] * (kernel[1] - 1)
    return hp, wp, ho, wo, dilation[1] * (kernel[1] - 1)


def _flat_columns(x: Any, kernel: Pair, pads: Pads, dilation: Pair) -> Any:
    """cols (C, kh, kw, N, Ho*Wp) read from the zero-padded, flattened input."""
    xp = get_array_module(x)
    n, c, h, w = x.shape
    hp, wp, ho, _, _ = _geometry((h, w), kernel, pads, dilation)
    (top, _), (left, _) = pads
    padded = xp.zeros((n, c, hp + 1, wp), dtype=x.dtype)  # one spare row holds the slack (< Wp)
    padded[:, :, top : top + h, left : left + w] = x
    flat = padded.reshape(n, c, (hp + 1) * wp)
    s, item = flat.strides, flat.itemsize
    q = ho * wp
    view = xp.lib.stride_tricks.as_strided(
        flat, shape=(n, c, *kernel, q), strides=(s[0], s[1], dilation[0] * wp * item, dilation[1] * item, item)
    )
    cols = xp.empty((c, *kernel, n, q), dtype=x.dtype)
    cols[...] = view.transpose(1, 2, 3, 0, 4)
    return cols


def conv2d_forward_flat(x: Any, weight: Any, bias: Any | None, pads: Pads, dilation: Pair,
                        groups: int) -> tuple[Any, Any]:
    """Stride-1 y (N, O, Ho, Wo) and the extended columns cols (C, kh, kw, N, Ho*Wp)."""
    xp = get_array_module(x)
    n = x.shape[0]
    o, _, kh, kw = weight.shape
    _, wp, ho, wo, _ = _geometry(x.shape[2:], (kh, kw), pads, dilation)
    cols = _flat_columns(x, (kh, kw), pads, dilation)
    y_ext = bmm(weight.reshape(groups, o // groups, -1), cols.reshape(groups, -1, n * ho * wp))
    y = xp.empty((n, o, ho, wo), dtype=x.dtype)
    y_view = y_ext.reshape(o, n, ho, wp)[:, :, :, :wo].transpose(1, 0, 2, 3)
    if bias is None:
        y[...] = y_view
    else:
        xp.add(y_view, bias[:, None, None], out=y)
    return y, cols


def conv2d_backward_flat(dy: Any, cols: Any, weight: Any, x_hw: Pair, pads: Pads, dilation: Pair,
                         groups: int, need_dx: bool = True) -> tuple[Any, Any, Any]:
    """(dx (N, C, H, W) or None, dweight, dbias (O,)) of the stride-1 convolution from dy (N, O, Ho, Wo)."""
    xp = get_array_module(dy)
    n, o, ho, wo = dy.shape
    c, kh, kw = cols.shape[:3]
    hp, wp, _, _, _ = _geometry(x_hw, (kh, kw), pads, dilation)
    q = ho * wp
    dy_ext = xp.zeros((o, n, ho, wp), dtype=dy.dtype)  # junk columns get a zero gradient
    dy_ext[:, :, :, :wo] = dy.transpose(1, 0, 2, 3)
    dy_g = dy_ext.reshape(groups, o // groups, n * q)
    cols_g = cols.reshape(groups, -1, n * q)
    dweight = bmm(cols_g, dy_g.transpose(0, 2, 1)).transpose(0, 2, 1).reshape(weight.shape)
    dbias = dy_g.reshape(o, -1).sum(axis=1)
    if not need_dx:
        return None, dweight, dbias
    dcols = bmm(weight.reshape(groups, o // groups, -1).transpose(0, 2, 1), dy_g).reshape(cols.shape)
    dpadded = xp.zeros((c, n, hp + 1, wp), dtype=dy.dtype)  # one spare row takes the junk tail
    dflat = dpadded.reshape(c, n, (hp + 1) * wp)
    for i in range(kh):  # col2im: kh*kw adds of contiguous runs
        for j in range(kw):
            start = i * dilation[0] * wp + j * dilation[1]
            dflat[:, :, start : start + q] += dcols[:, i, j]
    (top, _), (left, _) = pads
    dx_cn = dpadded[:, :, top : top + x_hw[0], left : left + x_hw[1]]
    return xp.ascontiguousarray(dx_cn.transpose(1, 0, 2, 3)), dweight, dbias
