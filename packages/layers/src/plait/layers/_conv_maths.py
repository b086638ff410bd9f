"""The maths of 2-D convolution as GEMMs over im2col columns (1-D runs as 2-D with H = 1).

Layouts (G groups, C = G * Cg input channels, O = G * Og output channels)::

    x     (N, C, H, W)             weight (O, Cg, kh, kw)
    cols  (C, kh, kw, N, Ho, Wo)   = (G, Cg*kh*kw, N*Ho*Wo) as a matrix stack
    y     (N, O, Ho, Wo)

    forward      y_g   = W_g @ cols_g                      one GEMM per group, batched
    weight grad  dW_g  = (cols_g @ dy_g^T)^T               one GEMM per group, batched (the
                                                           long axis as the inner one: faster in OpenBLAS)
    input grad   dcols = W_g^T @ dy_g, then col2im: kh*kw strided adds into dx

A transposed convolution is the input gradient of a convolution, and its input
gradient is a convolution, so the same three pieces serve ``ConvTranspose2d``.
"""

from __future__ import annotations

from typing import Any

from plait.core import get_array_module

from ._conv_args import Pads, Pair, bmm
from ._conv_flat import conv2d_backward_flat, conv2d_forward_flat
from ._conv_pad import pad_modes, pad_modes_backward

__all__ = [
    "col2im",
    "conv_backward",
    "conv_forward",
    "conv_transpose2d_backward",
    "conv_transpose2d_forward",
    "im2col",
    "pad2d",
]



def _span(kernel: int, dilation: int) -> int:
    return dilation * (kernel - 1) + 1


def pad2d(x: Any, pads: Pads) -> Any:
    """Zero-pad the last two axes of x (…, H, W) by ((top, bottom), (left, right))."""
    (t, b), (left, r) = pads
    if not (t or b or left or r):
        return x
    xp = get_array_module(x)
    h, w = x.shape[-2:]
    out = xp.zeros(x.shape[:-2] + (h + t + b, w + left + r), dtype=x.dtype)
    out[..., t:t + h, left:left + w] = x
    return out


def window_view(xpad: Any, kernel: Pair, stride: Pair, dilation: Pair, out_hw: Pair) -> Any:
    """Read-only view (N, C, Ho, Wo, kh, kw) of every receptive field of xpad (N, C, Hp, Wp)."""
    xp = get_array_module(xpad)
    (kh, kw), (sh, sw), (dh, dw), (ho, wo) = kernel, stride, dilation, out_hw
    sliding = getattr(xp.lib.stride_tricks, "sliding_window_view", None)
    if sliding is not None:
        view = sliding(xpad, (_span(kh, dh), _span(kw, dw)), axis=(2, 3))
        return view[:, :, : (ho - 1) * sh + 1 : sh, : (wo - 1) * sw + 1 : sw, ::dh, ::dw]
    n, c = xpad.shape[:2]
    s = xpad.strides
    return xp.lib.stride_tricks.as_strided(
        xpad, shape=(n, c, ho, wo, kh, kw), strides=(s[0], s[1], s[2] * sh, s[3] * sw, s[2] * dh, s[3] * dw)
    )


def im2col(xpad: Any, kernel: Pair, stride: Pair, dilation: Pair, out_hw: Pair) -> Any:
    """Columns (C, kh, kw, N, Ho, Wo), contiguous, of the padded input (N, C, Hp, Wp)."""
    xp = get_array_module(xpad)
    view = window_view(xpad, kernel, stride, dilation, out_hw)
    cols = xp.empty((xpad.shape[1], *kernel, xpad.shape[0], *out_hw), dtype=xpad.dtype)
    cols[...] = view.transpose(1, 4, 5, 0, 2, 3)
    return cols


def col2im(cols: Any, padded_hw: Pair, stride: Pair, dilation: Pair) -> Any:
    """Sum columns (C, kh, kw, N, Ho, Wo) back onto their pixels: (C, N, Hp, Wp), kh*kw strided adds."""
    xp = get_array_module(cols)
    c, kh, kw, n, ho, wo = cols.shape
    (sh, sw), (dh, dw) = stride, dilation
    out = xp.zeros((c, n, *padded_hw), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            top, left = i * dh, j * dw
            out[:, :, top : top + (ho - 1) * sh + 1 : sh, left : left + (wo - 1) * sw + 1 : sw] += cols[:, i, j]
    return out


def _nchw_from_cnhw(a: Any, pads: Pads | None = None) -> Any:
    """(C, N, H, W) -> contiguous (N, C, H', W'), cropping pads first."""
    xp = get_array_module(a)
    if pads is not None:
        (t, b), (left, r) = pads
        a = a[:, :, t : a.shape[2] - b, left : a.shape[3] - r]
    return xp.ascontiguousarray(a.transpose(1, 0, 2, 3))


def _group_rows(a_nchw: Any, groups: int) -> Any:
    """(N, C, H, W) -> contiguous (G, C/G, N*H*W)."""
    xp = get_array_module(a_nchw)
    n, c = a_nchw.shape[:2]
    return xp.ascontiguousarray(a_nchw.transpose(1, 0, 2, 3)).reshape(groups, c // groups, -1)


def out_size(size: int, kernel: int, stride: int, pad: Pair, dilation: int) -> int:
    return (size + pad[0] + pad[1] - _span(kernel, dilation)) // stride + 1


# -- convolution ----------------------------------------------------------------------------------
def _conv_gemm_forward(x: Any, weight: Any, bias: Any | None, stride: Pair, pads: Pads, dilation: Pair,
                   groups: int) -> tuple[Any, Any]:
    """y (N, O, Ho, Wo) and the columns cols (C, kh, kw, N, Ho, Wo) that backward needs."""
    xp = get_array_module(x)
    n, _, h, w = x.shape
    o, _, kh, kw = weight.shape
    ho, wo = out_size(h, kh, stride[0], pads[0], dilation[0]), out_size(w, kw, stride[1], pads[1], dilation[1])
    cols = im2col(pad2d(x, pads), (kh, kw), stride, dilation, (ho, wo))
    y_onhw = bmm(weight.reshape(groups, o // groups, -1), cols.reshape(groups, -1, n * ho * wo)).reshape(o, -1)
    if bias is not None:  # along the product's long rows, before the transposing copy
        y_onhw += bias[:, None]
    y = xp.empty((n, o, ho, wo), dtype=x.dtype)
    y[...] = y_onhw.reshape(o, n, ho, wo).transpose(1, 0, 2, 3)
    return y, cols


def _conv_gemm_backward(dy: Any, cols: Any, weight: Any, x_hw: Pair, stride: Pair, pads: Pads, dilation: Pair,
                    groups: int, need_dx: bool = True) -> tuple[Any, Any, Any]:
    """(dx (N, C, H, W) or None, dweight like weight, dbias (O,)) from dy (N, O, Ho, Wo)."""
    o = weight.shape[0]
    dy_g = _group_rows(dy, groups)  # (G, Og, N*Ho*Wo)
    cols_g = cols.reshape(groups, -1, dy_g.shape[-1])
    dweight = bmm(cols_g, dy_g.transpose(0, 2, 1)).transpose(0, 2, 1).reshape(weight.shape)
    dbias = dy_g.reshape(o, -1).sum(axis=1)
    if not need_dx:
        return None, dweight, dbias
    dcols = bmm(weight.reshape(groups, o // groups, -1).transpose(0, 2, 1), dy_g).reshape(cols.shape)
    padded = (x_hw[0] + sum(pads[0]), x_hw[1] + sum(pads[1]))
    dx = _nchw_from_cnhw(col2im(dcols, padded, stride, dilation), pads)
    return dx, dweight, dbias


# -- transposed convolution ----------------------------------------------------------------------------
def _conv_transpose_gemm_forward(x: Any, weight: Any, bias: Any | None, stride: Pair, padding: Pair,
                             output_padding: Pair, dilation: Pair, groups: int) -> tuple[Any, Any]:
    """y (N, Cout, Ho, Wo) from x (N, Cin, H, W), weight (Cin, Cout/G, kh, kw); also x as group rows."""
    n, cin, h, w = x.shape
    _, cout_g, kh, kw = weight.shape
    full = tuple((s - 1) * st + _span(k, d) + op for s, st, k, d, op in
                 zip((h, w), stride, (kh, kw), dilation, output_padding))
    x_g = _group_rows(x, groups)  # (G, Cin_g, N*H*W)
    w_g = weight.reshape(groups, cin // groups, -1)  # (G, Cin_g, Cout_g*kh*kw)
    dcols = bmm(w_g.transpose(0, 2, 1), x_g).reshape(cout_g * groups, kh, kw, n, h, w)
    pads = ((padding[0], padding[0]), (padding[1], padding[1]))
    y = _nchw_from_cnhw(col2im(dcols, full, stride, dilation), pads)
    if bias is not None:
        y += bias[:, None, None]
    return y, x_g


def _conv_transpose_gemm_backward(dy: Any, x_g: Any, weight: Any, x_hw: Pair, stride: Pair, padding: Pair,
                              dilation: Pair, groups: int) -> tuple[Any, Any, Any]:
    """(dx (N, Cin, H, W), dweight, dbias (Cout,)) from dy (N, Cout, Ho, Wo): a convolution of dy."""
    xp = get_array_module(dy)
    n, cout = dy.shape[:2]
    cin, _, kh, kw = weight.shape
    pads = ((padding[0], padding[0]), (padding[1], padding[1]))
    cols = im2col(pad2d(dy, pads), (kh, kw), stride, dilation, x_hw)  # (Cout, kh, kw, N, H, W)
    cols_g = cols.reshape(groups, -1, x_g.shape[-1])
    dweight = bmm(cols_g, x_g.transpose(0, 2, 1)).transpose(0, 2, 1).reshape(weight.shape)
    dx_g = bmm(weight.reshape(groups, cin // groups, -1), cols_g)  # (G, Cin_g, N*H*W)
    dx = xp.ascontiguousarray(dx_g.reshape(cin, n, *x_hw).transpose(1, 0, 2, 3))
    dbias = xp.einsum("ncp->c", dy.reshape(n, cout, -1))
    return dx, dweight, dbias


# -- the layers' pairs ------------------------------------------------------------------------------
def _lift(a: Any) -> Any:
    """(N, C, L) as (N, C, 1, L): Conv1d runs as Conv2d with H = 1 (weights (O, Cg, k) likewise)."""
    return a if a.ndim == 4 else a[:, :, None, :]


def conv_forward(x: Any, weight: Any, bias: Any | None, *, stride: Pair, pads: Pads, dilation: Pair,
                 groups: int = 1, padding_mode: str = "zeros") -> tuple[Any, Any]:
    """y[n, o] = b[o] + sum over c in o's group, i, j of W[o, c, i, j] x_pad[n, c, s h + d i, s w + d j].

    x (N, C, H, W) or (N, C, L); weight (O, C/G, kh, kw) or (O, C/G, k); bias (O,) or None;
    geometry as 2-D pairs (1-D: height 1). ``padding_mode`` 'zeros' pads inside the layouts
    below; 'reflect', 'replicate' and 'circular' pad x first (:mod:`._conv_pad`, as torch's
    ``F.pad``) and convolve without padding. Stride 1 runs on the row-extended grid of
    :mod:`._conv_flat` (long contiguous copies; ctx keeps the flat padded input), any other
    stride on im2col columns (ctx keeps the columns); ctx records which, so
    :func:`conv_backward` takes the same layout.
    """
    x4 = _lift(x)
    x_hw = tuple(x4.shape[2:])
    mode_pads = None
    if padding_mode != "zeros":
        x4, mode_pads, pads = pad_modes(x4, pads, padding_mode), pads, ((0, 0), (0, 0))
    w4 = _lift(weight).astype(x.dtype, copy=False)
    b = None if bias is None else bias.astype(x.dtype, copy=False)
    flat = tuple(stride) == (1, 1)
    if flat:
        y, kept = conv2d_forward_flat(x4, w4, b, pads, dilation, groups)
    else:
        y, kept = _conv_gemm_forward(x4, w4, b, stride, pads, dilation, groups)
    y = y if x.ndim == 4 else y[:, :, 0, :]
    return y, (kept, tuple(x4.shape[2:]), flat, stride, pads, dilation, groups, (padding_mode, mode_pads, x_hw))


def conv_backward(dy: Any, ctx: Any, weight: Any, bias: Any | None, need_dx: bool = True) -> tuple[Any, Any, Any]:
    """(dx like x or None, dW like weight, db (O,) or None) from dy like y, in the forward's layout:
    dW_g = dy_g cols_g^T, db = sum(dy), dcols = W_g^T dy_g then col2im into dx."""
    kept, x_hw, flat, stride, pads, dilation, groups, (padding_mode, mode_pads, input_hw) = ctx
    dy4 = _lift(dy)
    w4 = _lift(weight).astype(dy.dtype, copy=False)
    if flat:
        dx, dweight, dbias = conv2d_backward_flat(dy4, kept, w4, x_hw, pads, dilation, groups, need_dx)
    else:
        dx, dweight, dbias = _conv_gemm_backward(dy4, kept, w4, x_hw, stride, pads, dilation, groups, need_dx)
    if dx is not None and padding_mode != "zeros":  # dx of the padded input -> dx of the input
        dx = pad_modes_backward(dx, mode_pads, padding_mode, input_hw)
    if dx is not None and dy.ndim == 3:
        dx = dx[:, :, 0, :]
    return dx, dweight.reshape(weight.shape), (dbias if bias is not None else None)


def conv_transpose2d_forward(x: Any, weight: Any, bias: Any | None, *, stride: Pair, padding: Pair,
                                  output_padding: Pair, dilation: Pair, groups: int = 1) -> tuple[Any, Any]:
    """y = the input gradient of a convolution with ``weight`` applied to x; see
    :func:`_conv_transpose_gemm_forward`. ctx = (x as group rows, x's (H, W), geometry)."""
    w = weight.astype(x.dtype, copy=False)
    b = None if bias is None else bias.astype(x.dtype, copy=False)
    y, x_g = _conv_transpose_gemm_forward(x, w, b, stride, padding, output_padding, dilation, groups)
    return y, (x_g, tuple(x.shape[2:]), stride, padding, dilation, groups)


def conv_transpose2d_backward(dy: Any, ctx: Any, weight: Any, bias: Any | None,
                                   need_dx: bool = True) -> tuple[Any, Any, Any]:
    """(dx, dW, db): a transposed convolution's input gradient is a convolution of dy."""
    x_g, x_hw, stride, padding, dilation, groups = ctx
    dx, dweight, dbias = _conv_transpose_gemm_backward(dy, x_g, weight.astype(dy.dtype, copy=False), x_hw, stride,
                                                   padding, dilation, groups)
    return dx, dweight, (dbias if bias is not None else None)
