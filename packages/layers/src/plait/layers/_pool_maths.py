"""The maths of pooling over (N, C, H, W) (1-D pooling runs as 2-D with H = 1).

Windows are read through a strided view of the padded input and copied once to a
(kh*kw, N, C, Ho, Wo) stack, so max and sum reduce over a leading axis of large
contiguous slabs. Gradients go back through kh*kw strided adds (as col2im).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from plait.core import get_array_module

from ._conv_maths import window_view

__all__ = [
    "adaptive_avg_pool2d_backward",
    "adaptive_avg_pool2d_forward",
    "adaptive_max_pool_backward",
    "adaptive_max_pool_forward",
    "avg_divisors",
    "avg_pool_backward",
    "avg_pool_forward",
    "max_pool_backward",
    "max_pool_forward",
    "pool_out_size",
    "pool_output_hw",
    "adaptive_window_index",
]

Pair = tuple[int, int]


def pool_out_size(size: int, kernel: int, stride: int, pad: int, dilation: int, ceil_mode: bool) -> int:
    """torch's pooling output size; in ceil mode the last window must start inside the input or left pad."""
    num = size + 2 * pad - dilation * (kernel - 1) - 1
    out = (-(-num // stride) if ceil_mode else num // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def _padded_shape(x_hw: Pair, kernel: Pair, stride: Pair, pad: Pair, dilation: Pair, out_hw: Pair) -> Pair:
    return tuple(max(p + s, (o - 1) * st + d * (k - 1) + 1)  # type: ignore[return-value]
                 for s, k, st, p, d, o in zip(x_hw, kernel, stride, pad, dilation, out_hw))


def _pad_fill(x: Any, pad: Pair, shape_hw: Pair, fill: float) -> Any:
    xp = get_array_module(x)
    h, w = x.shape[2:]
    if pad == (0, 0) and shape_hw == (h, w):
        return x
    out = xp.full(x.shape[:2] + tuple(shape_hw), fill, dtype=x.dtype)
    out[:, :, pad[0]:pad[0] + h, pad[1]:pad[1] + w] = x
    return out


def _window_stack(xpad: Any, kernel: Pair, stride: Pair, dilation: Pair, out_hw: Pair) -> Any:
    """(kh*kw, N, C, Ho, Wo) contiguous copy of every window of xpad."""
    xp = get_array_module(xpad)
    view = window_view(xpad, kernel, stride, dilation, out_hw)
    stack = xp.empty((*kernel, *xpad.shape[:2], *out_hw), dtype=xpad.dtype)
    stack[...] = view.transpose(4, 5, 0, 1, 2, 3)
    return stack.reshape(kernel[0] * kernel[1], *xpad.shape[:2], *out_hw)


def _scatter_windows(grads: Any, x_shape: tuple[int, ...], kernel: Pair, stride: Pair, pad: Pair,
                     dilation: Pair, padded_hw: Pair) -> Any:
    """Sum per-window-position gradients (kh*kw, N, C, Ho, Wo) back onto the input (N, C, H, W)."""
    xp = get_array_module(grads)
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    ho, wo = grads.shape[-2:]
    out = xp.zeros(x_shape[:2] + tuple(padded_hw), dtype=grads.dtype)
    for k in range(kh * kw):
        top, left = (k // kw) * dh, (k % kw) * dw
        out[:, :, top : top + (ho - 1) * sh + 1 : sh, left : left + (wo - 1) * sw + 1 : sw] += grads[k]
    return out[:, :, pad[0] : pad[0] + x_shape[2], pad[1] : pad[1] + x_shape[3]]


# -- max pooling ---------------------------------------------------------------------------------------
def _max_windows(x: Any, kernel: Pair, stride: Pair, pad: Pair, dilation: Pair, out_hw: Pair) -> tuple[Any, Any]:
    """y (N, C, Ho, Wo) and the window position of each maximum (first one on ties, as torch)."""
    xp = get_array_module(x)
    padded = _padded_shape(x.shape[2:], kernel, stride, pad, dilation, out_hw)
    stack = _window_stack(_pad_fill(x, pad, padded, -xp.inf), kernel, stride, dilation, out_hw)
    y = stack.max(axis=0)
    count = stack.shape[0]
    arg = xp.zeros(y.shape, dtype=xp.uint8 if count <= 255 else xp.int32)
    for k in range(count - 2, -1, -1):  # arg = 0 where position k is a maximum, else 1 + the arg from k + 1 on
        arg += 1
        arg *= stack[k] != y
    return y, arg


def _max_windows_backward(dy: Any, arg: Any, x_shape: tuple[int, ...], kernel: Pair, stride: Pair, pad: Pair,
                        dilation: Pair) -> Any:
    """dx (N, C, H, W): each output gradient goes to the input pixel that was its maximum."""
    xp = get_array_module(dy)
    if _tiles(x_shape, dy.shape, kernel, stride, pad, dilation):
        return _max_pool2d_backward_tiled(dy, arg, kernel)
    count = kernel[0] * kernel[1]
    positions = xp.arange(count, dtype=arg.dtype).reshape(count, 1, 1, 1, 1)
    grads = dy[None] * (arg[None] == positions)
    padded = _padded_shape(x_shape[2:], kernel, stride, pad, dilation, dy.shape[2:])
    return xp.ascontiguousarray(_scatter_windows(grads, x_shape, kernel, stride, pad, dilation, padded))


def _tiles(x_shape: tuple[int, ...], y_shape: tuple[int, ...], kernel: Pair, stride: Pair, pad: Pair,
           dilation: Pair) -> bool:
    """True when the windows tile the input exactly: no overlap, no padding, nothing left over."""
    return (tuple(stride) == tuple(kernel) and tuple(pad) == (0, 0) and tuple(dilation) == (1, 1)
            and x_shape[2] == y_shape[2] * kernel[0] and x_shape[3] == y_shape[3] * kernel[1])


def _max_pool2d_backward_tiled(dy: Any, arg: Any, kernel: Pair) -> Any:
    """Non-overlapping windows: dx viewed as (N, C, Ho, kh, Wo, kw) takes each window position's
    share by one strided write, with no zero fill and no read-modify-write adds."""
    xp = get_array_module(dy)
    n, c, ho, wo = dy.shape
    kh, kw = kernel
    dx = xp.empty((n, c, ho, kh, wo, kw), dtype=dy.dtype)
    for i in range(kh):
        for j in range(kw):
            xp.multiply(dy, arg == i * kw + j, out=dx[:, :, :, i, :, j])
    return dx.reshape(n, c, ho * kh, wo * kw)


# -- average pooling --------------------------------------------------------------------------------------
def _divisor_1d(xp: Any, size: int, kernel: int, stride: int, pad: int, out: int, include_pad: bool) -> Any:
    start = xp.arange(out) * stride - pad
    end = xp.minimum(start + kernel, size + pad)
    if not include_pad:
        start, end = xp.maximum(start, 0), xp.minimum(end, size)
    return end - start


def avg_divisors(xp: Any, x_hw: Pair, kernel: Pair, stride: Pair, pad: Pair, out_hw: Pair,
                 count_include_pad: bool, divisor_override: int | None) -> Any:
    """(Ho, Wo) number each window sum is divided by (torch's rule)."""
    if divisor_override:
        return xp.full(out_hw, float(divisor_override))
    rows = _divisor_1d(xp, x_hw[0], kernel[0], stride[0], pad[0], out_hw[0], count_include_pad)
    cols = _divisor_1d(xp, x_hw[1], kernel[1], stride[1], pad[1], out_hw[1], count_include_pad)
    return (rows[:, None] * cols[None, :]).astype(float)


def _sum_windows(x: Any, kernel: Pair, stride: Pair, pad: Pair, out_hw: Pair) -> Any:
    """Window sums (N, C, Ho, Wo) over the zero-padded input."""
    padded = _padded_shape(x.shape[2:], kernel, stride, pad, (1, 1), out_hw)
    return _window_stack(_pad_fill(x, pad, padded, 0.0), kernel, stride, (1, 1), out_hw).sum(axis=0)


def _sum_windows_backward(dy: Any, x_shape: tuple[int, ...], kernel: Pair, stride: Pair, pad: Pair) -> Any:
    """dx (N, C, H, W) of window sums: every input pixel collects the gradient of each window it is in."""
    xp = get_array_module(dy)
    count = kernel[0] * kernel[1]
    padded = _padded_shape(x_shape[2:], kernel, stride, pad, (1, 1), dy.shape[2:])
    grads = xp.broadcast_to(dy, (count, *dy.shape))
    return xp.ascontiguousarray(_scatter_windows(grads, x_shape, kernel, stride, pad, (1, 1), padded))


# -- adaptive average pooling ---------------------------------------------------------------------------------
def adaptive_matrix(xp: Any, size: int, out: int, dtype: Any) -> Any:
    """(out, size) averaging matrix: row i averages [floor(i*size/out), ceil((i+1)*size/out))."""
    i = xp.arange(out)
    start = (i * size) // out
    end = -((-(i + 1) * size) // out)
    pos = xp.arange(size)
    inside = (pos[None, :] >= start[:, None]) & (pos[None, :] < end[:, None])
    return (inside / (end - start)[:, None]).astype(dtype)


def _adaptive_mean(x: Any, out_hw: Pair) -> Any:
    """(N, C, H, W) -> (N, C, Ho, Wo); a reshape-mean when the sizes divide, else A_h @ x @ A_w^T."""
    xp = get_array_module(x)
    n, c, h, w = x.shape
    ho, wo = out_hw
    if h % ho == 0 and w % wo == 0:
        return x.reshape(n, c, ho, h // ho, wo, w // wo).mean(axis=(3, 5))
    a_h, a_w = adaptive_matrix(xp, h, ho, x.dtype), adaptive_matrix(xp, w, wo, x.dtype)
    return a_h @ (x @ a_w.T)


def _adaptive_mean_backward(dy: Any, x_hw: Pair) -> Any:
    """dx (N, C, H, W) = A_h^T @ dy @ A_w (spread each mean evenly over its window)."""
    xp = get_array_module(dy)
    n, c, ho, wo = dy.shape
    h, w = x_hw
    if h % ho == 0 and w % wo == 0:
        scale = 1.0 / ((h // ho) * (w // wo))
        dx = xp.broadcast_to((dy * scale)[:, :, :, None, :, None], (n, c, ho, h // ho, wo, w // wo))
        return dx.reshape(n, c, h, w)
    a_h, a_w = adaptive_matrix(xp, h, ho, dy.dtype), adaptive_matrix(xp, w, wo, dy.dtype)
    return a_h.T @ (dy @ a_w)


# -- the layers' pairs: x (N, C, H, W), or (N, C, L) pooled as H = 1; geometry as (h, w) pairs ----------
def _lift(a: Any) -> Any:
    return a if a.ndim == 4 else a[:, :, None, :]


def _drop(a4: Any, ndim: int) -> Any:
    return a4 if ndim == 4 else a4[:, :, 0, :]


def pool_output_hw(x_hw: Pair, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair, ceil_mode: bool) -> Pair:
    """(Ho, Wo) = floor_or_ceil((H + 2p - d (k - 1) - 1) / s) + 1 per axis, as torch."""
    return tuple(pool_out_size(size, k, s, p, d, ceil_mode)  # type: ignore[return-value]
                 for size, k, s, p, d in zip(x_hw, kernel, stride, padding, dilation))


def max_pool_forward(x: Any, *, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair = (1, 1),
                     ceil_mode: bool = False) -> tuple[Any, Any]:
    """y[n, c, i, j] = max of x over window (i, j) (padding counts as -inf); ctx keeps which element won."""
    x4 = _lift(x)
    out_hw = pool_output_hw(x4.shape[2:], kernel, stride, padding, dilation, ceil_mode)
    y, arg = _max_windows(x4, kernel, stride, padding, dilation, out_hw)
    return _drop(y, x.ndim), (arg, x4.shape, x.ndim, kernel, stride, padding, dilation)


def max_pool_backward(dy: Any, ctx: Any, need_dx: bool = True) -> tuple[Any]:
    """dx: each dy[n, c, i, j] goes to the first maximum of window (i, j); the other pixels get 0."""
    arg, x_shape, ndim, kernel, stride, padding, dilation = ctx
    return (_drop(_max_windows_backward(_lift(dy), arg, x_shape, kernel, stride, padding, dilation), ndim),)


def avg_pool_forward(x: Any, *, kernel: Pair, stride: Pair, padding: Pair, ceil_mode: bool = False,
                     count_include_pad: bool = True, divisor_override: int | None = None) -> tuple[Any, Any]:
    """y[n, c, i, j] = sum of window (i, j) / divisor[i, j] (torch's divisor rule, see :func:`avg_divisors`)."""
    x4 = _lift(x)
    out_hw = pool_output_hw(x4.shape[2:], kernel, stride, padding, (1, 1), ceil_mode)
    divisor = avg_divisors(get_array_module(x4), x4.shape[2:], kernel, stride, padding, out_hw, count_include_pad,
                           divisor_override).astype(x4.dtype)
    y = _sum_windows(x4, kernel, stride, padding, out_hw)
    y /= divisor
    return _drop(y, x.ndim), (divisor, x4.shape, x.ndim, kernel, stride, padding)


def avg_pool_backward(dy: Any, ctx: Any, need_dx: bool = True) -> tuple[Any]:
    """dx: every pixel collects dy[i, j] / divisor[i, j] of each window (i, j) it lies in."""
    divisor, x_shape, ndim, kernel, stride, padding = ctx
    return (_drop(_sum_windows_backward(_lift(dy) / divisor, x_shape, kernel, stride, padding), ndim),)


def adaptive_avg_pool2d_forward(x: Any, *, output_hw: Pair) -> tuple[Any, Any]:
    """y = A_h @ x @ A_w^T: (N, C, H, W) -> (N, C, Ho, Wo), rows of A averaging torch's adaptive windows."""
    return _adaptive_mean(x, output_hw), tuple(x.shape[2:])


def adaptive_avg_pool2d_backward(dy: Any, x_hw: Pair, need_dx: bool = True) -> tuple[Any]:
    """dx = A_h^T @ dy @ A_w (each mean spread evenly over its window)."""
    return (_adaptive_mean_backward(dy, x_hw),)


# -- adaptive max pooling ----------------------------------------------------------------------------------
def adaptive_window_index(size: int, out: int) -> np.ndarray:
    """(out, kmax) input positions of torch's adaptive windows [floor(i*size/out), ceil((i+1)*size/out)).

    Shorter windows repeat their last position (a repeat changes neither the max nor which
    element is first to reach it).
    """
    i = np.arange(out)
    start = (i * size) // out
    end = -((-(i + 1) * size) // out)
    kmax = int((end - start).max())
    return np.minimum(start[:, None] + np.arange(kmax)[None, :], end[:, None] - 1)


def adaptive_max_pool_forward(x: Any, *, output_hw: Pair) -> tuple[Any, Any]:
    """y[n, c, i, j] = max of x over torch's adaptive window (i, j); x (N, C, H, W) or (N, C, L) as H = 1.

    The windows are gathered once into (N, C, Ho, Wo, kh*kw); ctx keeps the flat input index
    (h * W + w) of each maximum, the first one in row-major order on ties, as torch.
    """
    xp = get_array_module(x)
    x4 = _lift(x)
    n, c, h, w = x4.shape
    rows = adaptive_window_index(h, output_hw[0])
    cols = adaptive_window_index(w, output_hw[1])
    kh, kw = rows.shape[1], cols.shape[1]
    windows = x4[:, :, xp.asarray(rows)][..., xp.asarray(cols)]  # (N, C, Ho, kh, Wo, kw)
    windows = windows.transpose(0, 1, 2, 4, 3, 5).reshape(n, c, *output_hw, kh * kw)
    arg = windows.argmax(axis=-1)
    y = xp.take_along_axis(windows, arg[..., None], axis=-1)[..., 0]
    flat_rows = xp.asarray(rows)[xp.arange(output_hw[0])[:, None], arg // kw]
    flat_cols = xp.asarray(cols)[xp.arange(output_hw[1])[None, :], arg % kw]
    return _drop(y, x.ndim), (flat_rows * w + flat_cols, x4.shape, x.ndim)


def adaptive_max_pool_backward(dy: Any, ctx: Any, need_dx: bool = True) -> tuple[Any]:
    """dx: each dy[n, c, i, j] goes to the input element that was the maximum of window (i, j)."""
    xp = get_array_module(dy)
    index, x_shape, ndim = ctx
    n, c, h, w = x_shape
    plane = h * w
    target = (index + xp.arange(n * c).reshape(n, c, 1, 1) * plane).ravel()
    dx = xp.bincount(target, weights=_lift(dy).reshape(-1), minlength=n * c * plane)
    return (_drop(dx.astype(dy.dtype, copy=False).reshape(x_shape), ndim),)
