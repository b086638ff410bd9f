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
The passes keep only the flat padded input (N, C, (Hp+spare)*S) between forward and
backward, kh*kw times smaller than its columns, and build the columns one batch chunk at
a time in both passes (:data:`CHUNK_BYTES` of columns or GEMM output on the CPU): each
chunk's columns, products and col2im adds stay in cache, and no temporary grows with the
batch. The second im2col costs less than writing all columns to memory and reading them
back. Layouts and GEMMs are otherwise those of :mod:`._conv_maths`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from plait.core import get_array_module

from ._conv_args import Pads, Pair, bmm

__all__ = ["CHUNK_BYTES", "conv2d_backward_flat", "conv2d_forward_flat"]

#: Bytes of columns or GEMM output per batch chunk on the CPU (an L2 cache's worth or two).
CHUNK_BYTES = 2 << 20


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


def _flat_padded(x: Any, kernel: Pair, pads: Pads, dilation: Pair) -> Any:
    """xflat (N, C, (Hp + spare) * S): x zero-padded on rows of stride S, flattened per image."""
    xp = get_array_module(x)
    n, c, h, w = x.shape
    hp, row, _, _, spare = _geometry((h, w), kernel, pads, dilation)
    (top, _), (left, _) = pads
    padded = xp.zeros((n, c, hp + spare, row), dtype=x.dtype)
    padded[:, :, top : top + h, left : left + w] = x
    return padded.reshape(n, c, (hp + spare) * row)


def _tap_view(xflat: Any, kernel: Pair, dilation: Pair, row: int, q: int) -> Any:
    """View (N, C, kh, kw, Q), never written, of xflat (N, C, L): [n, c, i, j] = xflat[n, c, i*dh*S + j*dw:][:Q]."""
    xp = get_array_module(xflat)
    n, c = xflat.shape[:2]
    s, item = xflat.strides, xflat.itemsize
    return xp.lib.stride_tricks.as_strided(
        xflat, shape=(n, c, *kernel, q), strides=(s[0], s[1], dilation[0] * row * item, dilation[1] * item, item)
    )


def _columns(taps: Any, buf: Any, groups: int) -> Any:
    """cols of a batch chunk's tap view (m, C, kh, kw, Q), copied into ``buf`` (C, kh, kw, >= m, Q),
    as group rows (G, C/G*kh*kw, m*Q)."""
    m, c, kh, kw, q = taps.shape
    cols = buf[:, :, :, :m]
    cols[...] = taps.transpose(1, 2, 3, 0, 4)
    return cols.reshape(groups, c // groups * kh * kw, m * q)


def _batch_chunks(xp: Any, n: int, bytes_per_image: int) -> list[slice]:
    """Slices of the batch whose temporaries take about ``CHUNK_BYTES`` each (at least one image).

    On the CPU a chunk's columns and products then stay in cache between the passes over
    them; on a GPU one chunk is the whole batch (fewer, larger kernels).
    """
    step = max(1, n if xp is not np else min(n, CHUNK_BYTES // max(bytes_per_image, 1)))
    return [slice(i, min(i + step, n)) for i in range(0, max(n, 1), step)]  # an empty batch: one empty chunk


def conv2d_forward_flat(x: Any, weight: Any, bias: Any | None, pads: Pads, dilation: Pair,
                        groups: int) -> tuple[Any, Any]:
    """Stride-1 y (N, O, Ho, Wo) and xflat, the flat padded input that backward needs.

    y_g = W_g @ cols_g, one batch chunk at a time: the chunk's (O, m, Ho, S) product takes
    the bias along its long rows and is cropped to (m, O, Ho, Wo) while still in cache.
    """
    xp = get_array_module(x)
    n = x.shape[0]
    o, cg, kh, kw = weight.shape
    _, row, ho, wo, _ = _geometry(x.shape[2:], (kh, kw), pads, dilation)
    q = ho * row
    xflat = _flat_padded(x, (kh, kw), pads, dilation)
    taps = _tap_view(xflat, (kh, kw), dilation, row, q)
    w_g = weight.reshape(groups, o // groups, -1)
    y = xp.empty((n, o, ho, wo), dtype=x.dtype)
    chunks = _batch_chunks(xp, n, max(o, groups * cg * kh * kw) * q * x.dtype.itemsize)
    width = chunks[0].stop  # one buffer each for every chunk's columns and product
    cols_buf = xp.empty((groups * cg, kh, kw, width, q), dtype=x.dtype)
    y_buf = xp.empty((groups, o // groups, width * q), dtype=x.dtype)
    for part in chunks:
        m = part.stop - part.start
        cols_g = _columns(taps[part], cols_buf, groups)
        y_ext = bmm(w_g, cols_g, out=y_buf[:, :, : m * q]).reshape(o, m, ho, row)
        if bias is not None:
            y_ext += bias[:, None, None, None]
        y[part] = y_ext[:, :, :, :wo].transpose(1, 0, 2, 3)
    return y, xflat


def conv2d_backward_flat(dy: Any, xflat: Any, weight: Any, x_hw: Pair, pads: Pads, dilation: Pair,
                         groups: int, need_dx: bool = True) -> tuple[Any, Any, Any]:
    """(dx (N, C, H, W) or None, dweight, dbias (O,)) of the stride-1 convolution from dy (N, O, Ho, Wo).

    One batch chunk at a time: dy's chunk on the extended grid (junk columns 0), the
    chunk's columns again, then dW_g^T += cols_g dy_g^T, db += sum(dy), and
    dcols = W_g^T dy_g added back onto the chunk's flat padded images (col2im: kh*kw adds
    of contiguous runs), cropped into dx.
    """
    xp = get_array_module(dy)
    n, o, ho, wo = dy.shape
    c = xflat.shape[1]
    kh, kw = weight.shape[2:]
    hp, row, _, _, spare = _geometry(x_hw, (kh, kw), pads, dilation)
    (top, _), (left, _) = pads
    q = ho * row
    taps = _tap_view(xflat, (kh, kw), dilation, row, q)
    w_g = weight.reshape(groups, o // groups, -1)
    dweight_t = xp.zeros((groups, w_g.shape[2], o // groups), dtype=dy.dtype)
    dbias = xp.zeros(o, dtype=dy.dtype)
    dx = xp.empty((n, c, *x_hw), dtype=dy.dtype) if need_dx else None
    chunks = _batch_chunks(xp, n, max(o, c * kh * kw) * q * dy.dtype.itemsize)
    width = chunks[0].stop  # one buffer each for every chunk's dy, columns, dcols and dx
    dy_buf = xp.zeros((o, width, ho, row), dtype=dy.dtype)  # the junk columns stay 0
    cols_buf = xp.empty((c, kh, kw, width, q), dtype=dy.dtype)
    dcols_buf = xp.empty((groups, c // groups * kh * kw, width * q), dtype=dy.dtype) if need_dx else None
    dx_buf = xp.empty((c, width, hp + spare, row), dtype=dy.dtype) if need_dx else None
    for part in chunks:
        m = part.stop - part.start
        dy_ext = dy_buf[:, :m]
        dy_ext[:, :, :, :wo] = dy[part].transpose(1, 0, 2, 3)
        dy_g = dy_ext.reshape(groups, o // groups, m * q)
        cols_g = _columns(taps[part], cols_buf, groups)
        dweight_t += bmm(cols_g, dy_g.transpose(0, 2, 1))
        dbias += dy_ext.reshape(o, m * q).sum(axis=1)
        if not need_dx:
            continue
        dcols = bmm(w_g.transpose(0, 2, 1), dy_g, out=dcols_buf[:, :, : m * q]).reshape(c, kh, kw, m, q)
        dpadded = dx_buf[:, :m]
        dflat = dpadded.reshape(c, m, (hp + spare) * row)  # the spare rows take the junk tail
        dflat[:, :, :q] = dcols[:, 0, 0]  # the first tap starts at 0: a copy, then zeros past it
        dflat[:, :, q:] = 0
        for i in range(kh):
            for j in range(kw):
                start = i * dilation[0] * row + j * dilation[1]
                if start:
                    dflat[:, :, start : start + q] += dcols[:, i, j]
        dx[part] = dpadded[:, :, top : top + x_hw[0], left : left + x_hw[1]].transpose(1, 0, 2, 3)
    return dx, dweight_t.transpose(0, 2, 1).reshape(weight.shape), dbias
