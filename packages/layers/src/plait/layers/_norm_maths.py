"""The maths of the normalisation layers, kept apart from their bookkeeping.

Two layouts cover every layer:

* rows ``(M, D)``: statistics over the last axis (LayerNorm, RMSNorm, GroupNorm with
  ``D = C/G * spatial``);
* channels ``(N, C, S)``: statistics per channel over batch and space (BatchNorm).

With ``xhat = (x - mean) * rstd`` and ``g = dL/dxhat``, the input gradient of a
standardisation over ``D`` elements is the compact closed form::

    dx = rstd * (g - mean(g) - xhat * mean(g * xhat))

(RMSNorm drops the ``mean(g)`` term because it does not centre.)

Each layer's pair, ``<op>_forward(x, weight, bias, **options) -> (y, ctx)`` and
``<op>_backward(dy, ctx, weight, bias, need_dx=True) -> (dx, dweight, dbias)``, sits at the
end of this file.
"""

from __future__ import annotations

from typing import Any

from plait.core import get_array_module

from ._cuda_kernels import layer_norm_backward_cuda, layer_norm_forward_cuda, layer_norm_fusable

__all__ = [
    "batch_norm_backward",
    "batch_norm_forward",
    "group_norm_backward",
    "group_norm_forward",
    "instance_norm_backward",
    "instance_norm_forward",
    "layer_norm_backward",
    "layer_norm_forward",
    "rms_norm_backward",
    "rms_norm_forward",
    "update_running_stats",
    "channel_affine_grads",
    "channel_moments",
    "channel_standardize",
    "channel_standardize_backward",
    "row_rms_normalize",
    "row_rms_normalize_backward",
    "row_standardize",
    "row_standardize_backward",
]


# -- rows (M, D): statistics over the last axis ----------------------------------------------
def row_standardize(x: Any, eps: float) -> tuple[Any, Any]:
    """(M, D) -> (xhat (M, D), rstd (M, 1)) with biased variance, as torch."""
    xp = get_array_module(x)
    d = x.shape[-1]
    xhat = x - x.mean(axis=-1, keepdims=True)
    var = xp.einsum("md,md->m", xhat, xhat)[:, None] / d
    rstd = 1.0 / xp.sqrt(var + eps)
    xhat *= rstd
    return xhat, rstd.astype(x.dtype, copy=False)


def row_standardize_backward(g: Any, xhat: Any, rstd: Any) -> Any:
    """dL/dx (M, D) from g = dL/dxhat (M, D); g is overwritten."""
    xp = get_array_module(g)
    d = g.shape[-1]
    g_mean = g.mean(axis=-1, keepdims=True)
    proj = xp.einsum("md,md->m", g, xhat)[:, None] / d
    g -= g_mean
    g -= xhat * proj
    g *= rstd
    return g


def row_rms_normalize(x: Any, eps: float) -> tuple[Any, Any]:
    """(M, D) -> (xhat = x * rstd, rstd (M, 1)) with rstd = 1 / sqrt(mean(x^2) + eps)."""
    xp = get_array_module(x)
    d = x.shape[-1]
    ms = xp.einsum("md,md->m", x, x)[:, None] / d
    rstd = (1.0 / xp.sqrt(ms + eps)).astype(x.dtype, copy=False)
    return x * rstd, rstd


def row_rms_normalize_backward(g: Any, xhat: Any, rstd: Any) -> Any:
    """dL/dx (M, D) from g = dL/dxhat; g is overwritten."""
    xp = get_array_module(g)
    d = g.shape[-1]
    proj = xp.einsum("md,md->m", g, xhat)[:, None] / d
    g -= xhat * proj
    g *= rstd
    return g


# -- channels (N, C, S): statistics per channel over batch and space ---------------------------
def channel_standardize(x: Any, mean: Any, rstd: Any) -> Any:
    """xhat (N, C, S) from per-channel mean (C,) and rstd (C,)."""
    xhat = x - mean[None, :, None]
    xhat *= rstd[None, :, None]
    return xhat


def channel_moments(x: Any) -> tuple[Any, Any, Any]:
    """Per-channel mean and biased variance (C,) of x (N, C, S), and the centred x."""
    xp = get_array_module(x)
    count = x.shape[0] * x.shape[2]
    mean = (xp.einsum("ncs->c", x) / count).astype(x.dtype, copy=False)
    xc = x - mean[None, :, None]
    var = xp.einsum("ncs,ncs->c", xc, xc) / count
    return mean, var.astype(x.dtype, copy=False), xc


def channel_affine_grads(dy: Any, xhat: Any) -> tuple[Any, Any]:
    """(dweight, dbias) per channel: sum(dy * xhat), sum(dy) over batch and space."""
    xp = get_array_module(dy)
    return xp.einsum("ncs,ncs->c", dy, xhat), xp.einsum("ncs->c", dy)


def channel_standardize_backward(dy: Any, xhat: Any, scale: Any, dweight: Any, dbias: Any) -> Any:
    """dL/dx (N, C, S) of y = xhat * w + b with batch statistics.

    ``scale = w * rstd`` (C,); ``dweight``/``dbias`` are the per-channel sums above, so
    dx = scale * (dy - dbias / M - xhat * dweight / M) with M = N * S.
    """
    count = dy.shape[0] * dy.shape[2]
    dx = xhat * (dweight / count)[None, :, None]
    dx -= dy
    dx += (dbias / count)[None, :, None]
    dx *= -scale[None, :, None]
    return dx


# -- the layers' pairs ----------------------------------------------------------------------
def _as(a: Any | None, dtype: Any) -> Any:
    return None if a is None else a.astype(dtype, copy=False)


def _affine_rows(xhat: Any, weight: Any | None, bias: Any | None) -> Any:
    """xhat (M, D) * weight + bias (each flattened to (D,)); a fresh array."""
    w, b = _as(weight, xhat.dtype), _as(bias, xhat.dtype)
    if w is None:
        return xhat.copy() if b is None else xhat + b.reshape(-1)
    y = xhat * w.reshape(-1)
    if b is not None:
        y += b.reshape(-1)
    return y


def _affine_rows_backward(dy2: Any, xhat: Any, weight: Any | None, bias: Any | None) -> tuple[Any, Any, Any]:
    """(dweight, dbias, g = dL/dxhat as a fresh array) of y = xhat * weight + bias over rows."""
    xp = get_array_module(dy2)
    dbias = None if bias is None else dy2.sum(axis=0).reshape(bias.shape)
    if weight is None:
        return None, dbias, dy2.copy()
    dweight = xp.einsum("md,md->d", dy2, xhat).reshape(weight.shape)
    return dweight, dbias, dy2 * weight.astype(dy2.dtype, copy=False).reshape(-1)


def layer_norm_forward(x: Any, weight: Any | None, bias: Any | None, *, normalized_shape: tuple[int, ...],
                       eps: float = 1e-5) -> tuple[Any, Any]:
    """y = (x - mean) / sqrt(var + eps) * weight + bias, statistics over the trailing ``normalized_shape``.

    x: (*, *normalized_shape); weight, bias: normalized_shape or None. ctx = (xhat (M, D), rstd (M, 1)).
    """
    x2 = x.reshape(-1, xhat_width(normalized_shape))
    if layer_norm_fusable(x2):  # one CUDA launch for the steps below (_cuda_kernels.py)
        y, xhat, rstd = layer_norm_forward_cuda(x2, weight, bias, eps)
        return y.reshape(x.shape), (xhat, rstd)
    xhat, rstd = row_standardize(x2, eps)
    return _affine_rows(xhat, weight, bias).reshape(x.shape), (xhat, rstd)


def layer_norm_backward(dy: Any, ctx: Any, weight: Any | None, bias: Any | None,
                        need_dx: bool = True) -> tuple[Any, Any, Any]:
    """(dx, dweight, dbias): g = dy * weight, dx = rstd (g - mean(g) - xhat mean(g xhat)),
    dweight = sum(dy * xhat), dbias = sum(dy) over the rows."""
    xhat, rstd = ctx
    dy2 = dy.reshape(xhat.shape)
    if layer_norm_fusable(dy2) and dy2.dtype == xhat.dtype:
        xp = get_array_module(dy2)
        dbias = None if bias is None else dy2.sum(axis=0).reshape(bias.shape)
        dweight = None if weight is None else xp.einsum("md,md->d", dy2, xhat).reshape(weight.shape)
        dx = layer_norm_backward_cuda(dy2, xhat, rstd, weight).reshape(dy.shape) if need_dx else None
        return dx, dweight, dbias
    dweight, dbias, g = _affine_rows_backward(dy2, xhat, weight, bias)
    dx = row_standardize_backward(g, xhat, rstd).reshape(dy.shape) if need_dx else None
    return dx, dweight, dbias


def rms_norm_forward(x: Any, weight: Any | None, *, normalized_shape: tuple[int, ...], eps: float) -> tuple[Any, Any]:
    """y = x / sqrt(mean(x^2) + eps) * weight over the trailing ``normalized_shape``; ctx = (xhat, rstd)."""
    xhat, rstd = row_rms_normalize(x.reshape(-1, xhat_width(normalized_shape)), eps)
    return _affine_rows(xhat, weight, None).reshape(x.shape), (xhat, rstd)


def rms_norm_backward(dy: Any, ctx: Any, weight: Any | None, need_dx: bool = True) -> tuple[Any, Any]:
    """(dx, dweight): g = dy * weight, dx = rstd (g - xhat mean(g xhat)), dweight = sum(dy * xhat)."""
    xhat, rstd = ctx
    dweight, _, g = _affine_rows_backward(dy.reshape(xhat.shape), xhat, weight, None)
    dx = row_rms_normalize_backward(g, xhat, rstd).reshape(dy.shape) if need_dx else None
    return dx, dweight


def xhat_width(normalized_shape: tuple[int, ...]) -> int:
    """D: the number of elements one statistic is taken over."""
    width = 1
    for s in normalized_shape:
        width *= s
    return width


def group_norm_forward(x: Any, weight: Any | None, bias: Any | None, *, num_groups: int,
                       eps: float = 1e-5) -> tuple[Any, Any]:
    """Standardise each of ``num_groups`` channel groups per sample, then y = xhat * weight[c] + bias[c].

    x: (N, C, *); weight, bias: (C,) or None. ctx = (xhat (N*G, C/G*S), rstd (N*G, 1)).
    """
    n, c = x.shape[:2]
    per_channel = xhat_width(x.shape[2:])
    xhat, rstd = row_standardize(x.reshape(n * num_groups, c // num_groups * per_channel), eps)
    y = xhat.reshape(n, c, per_channel)
    w, b = _as(weight, x.dtype), _as(bias, x.dtype)
    y = y * w[:, None] if w is not None else y.copy()
    if b is not None:
        y += b[:, None]
    return y.reshape(x.shape), (xhat, rstd)


def group_norm_backward(dy: Any, ctx: Any, weight: Any | None, bias: Any | None,
                        need_dx: bool = True) -> tuple[Any, Any, Any]:
    """(dx, dweight (C,), dbias (C,)): the LayerNorm gradient over each group's rows, g = dy * weight[c]."""
    xhat, rstd = ctx
    xp = get_array_module(dy)
    n, c = dy.shape[:2]
    dy3 = dy.reshape(n, c, xhat_width(dy.shape[2:]))
    dbias = None if bias is None else xp.einsum("ncs->c", dy3)
    if weight is not None:
        dweight = xp.einsum("ncs,ncs->c", dy3, xhat.reshape(dy3.shape))
        g = dy3 * weight.astype(dy.dtype, copy=False)[:, None]
    else:
        dweight, g = None, dy3.copy()
    dx = row_standardize_backward(g.reshape(xhat.shape), xhat, rstd).reshape(dy.shape) if need_dx else None
    return dx, dweight, dbias


def update_running_stats(running_mean: Any, running_var: Any, num_batches_tracked: Any, mean: Any, var: Any,
                         count: int, momentum: float | None) -> None:
    """In place, as torch: r = (1 - m) r + m s, the variance unbiased; ``momentum=None``: cumulative average."""
    num_batches_tracked += 1
    factor = 1.0 / float(num_batches_tracked) if momentum is None else momentum
    unbiased = var * (count / (count - 1))
    running_mean *= 1.0 - factor
    running_mean += factor * mean.astype(running_mean.dtype, copy=False)
    running_var *= 1.0 - factor
    running_var += factor * unbiased.astype(running_var.dtype, copy=False)


def batch_norm_forward(x: Any, weight: Any | None, bias: Any | None, *, running_mean: Any | None,
                       running_var: Any | None, num_batches_tracked: Any | None, training: bool,
                       momentum: float | None = 0.1, eps: float = 1e-5) -> tuple[Any, Any]:
    """y = (x - mean_c) / sqrt(var_c + eps) * weight[c] + bias[c], x: (N, C, *).

    Batch statistics (over N and space) in training or without running statistics, which
    training then updates in place (like ``torch.nn.functional.batch_norm``); else the running
    ones. ctx = (xhat (N, C, S), rstd (C,), batch_stats).
    """
    xp = get_array_module(x)
    x3 = x.reshape(x.shape[0], x.shape[1], xhat_width(x.shape[2:]))
    batch_stats = training or running_mean is None
    if batch_stats:
        mean, var, xhat = channel_moments(x3)
        if training and running_mean is not None:
            update_running_stats(running_mean, running_var, num_batches_tracked, mean, var,
                                 x3.shape[0] * x3.shape[2], momentum)
        rstd = (1.0 / xp.sqrt(var + eps)).astype(x.dtype, copy=False)
        xhat *= rstd[:, None]
    else:
        rstd = (1.0 / xp.sqrt(running_var.astype(x.dtype, copy=False) + eps)).astype(x.dtype, copy=False)
        xhat = channel_standardize(x3, running_mean.astype(x.dtype, copy=False), rstd)
    w, b = _as(weight, x.dtype), _as(bias, x.dtype)
    y = xhat * w[:, None] if w is not None else xhat.copy()
    if b is not None:
        y += b[:, None]
    return y.reshape(x.shape), (xhat, rstd, batch_stats)


def batch_norm_backward(dy: Any, ctx: Any, weight: Any | None, bias: Any | None,
                        need_dx: bool = True) -> tuple[Any, Any, Any]:
    """(dx, dweight, dbias); with batch statistics dx = w rstd (dy - dbias/M - xhat dweight/M),
    M = N * S; with running statistics (constants) dx = w rstd dy."""
    xhat, rstd, batch_stats = ctx
    dy3 = dy.reshape(xhat.shape)
    dweight, dbias = channel_affine_grads(dy3, xhat)
    dx = None
    if need_dx:
        scale = rstd if weight is None else rstd * weight.astype(dy.dtype, copy=False)
        dx = channel_standardize_backward(dy3, xhat, scale, dweight, dbias) if batch_stats else dy3 * scale[:, None]
        dx = dx.reshape(dy.shape)
    return dx, (dweight if weight is not None else None), (dbias if bias is not None else None)


def instance_norm_forward(x: Any, weight: Any | None, bias: Any | None, *, running_mean: Any | None,
                          running_var: Any | None, use_input_stats: bool, momentum: float = 0.1,
                          eps: float = 1e-5, batched: bool = True) -> tuple[Any, Any]:
    """y = (x - mean_nc) / sqrt(var_nc + eps) * weight[c] + bias[c], x: (N, C, *), statistics per sample and channel.

    ``batched=False``: x is one sample (C, *).
    With ``use_input_stats`` (training, or no running statistics) each (n, c) plane is
    standardised by its own mean and biased variance, and given running statistics they are
    updated in place as torch does: r = (1 - m) r + m * batch-mean of the per-instance mean
    (unbiased variance). Otherwise the running statistics (constants) are used.
    ctx = (xhat (N, C, S), rstd (N, C, 1) or (1, C, 1), use_input_stats).
    """
    xp = get_array_module(x)
    n, c = x.shape[:2] if batched else (1, x.shape[0])
    x3 = x.reshape(n, c, xhat_width(x.shape[2 if batched else 1:]))
    if use_input_stats:
        size = x3.shape[2]
        mean = x3.mean(axis=2, keepdims=True)
        xhat = x3 - mean
        var = xp.einsum("ncs,ncs->nc", xhat, xhat)[:, :, None] / size
        if running_mean is not None and momentum:
            running_mean *= 1.0 - momentum
            running_mean += momentum * mean[:, :, 0].mean(axis=0).astype(running_mean.dtype, copy=False)
            running_var *= 1.0 - momentum
            unbiased = (var[:, :, 0] * (size / (size - 1))).mean(axis=0)
            running_var += momentum * unbiased.astype(running_var.dtype, copy=False)
        rstd = (1.0 / xp.sqrt(var + eps)).astype(x.dtype, copy=False)
        xhat *= rstd
    else:
        rstd = (1.0 / xp.sqrt(running_var.astype(x.dtype, copy=False) + eps)).astype(x.dtype, copy=False)
        xhat = channel_standardize(x3, running_mean.astype(x.dtype, copy=False), rstd)
        rstd = rstd[None, :, None]
    w, b = _as(weight, x.dtype), _as(bias, x.dtype)
    y = xhat * w[:, None] if w is not None else xhat.copy()
    if b is not None:
        y += b[:, None]
    return y.reshape(x.shape), (xhat, rstd, use_input_stats)


def instance_norm_backward(dy: Any, ctx: Any, weight: Any | None, bias: Any | None,
                           need_dx: bool = True) -> tuple[Any, Any, Any]:
    """(dx, dweight, dbias): g = dy * weight[c]; with input statistics each (n, c) plane takes the
    standardisation gradient rstd (g - mean(g) - xhat mean(g xhat)), else dx = g * rstd;
    dweight = sum(dy * xhat), dbias = sum(dy) over batch and space."""
    xhat, rstd, use_input_stats = ctx
    n, c, size = xhat.shape
    dy3 = dy.reshape(xhat.shape)
    dweight, dbias = channel_affine_grads(dy3, xhat)
    dx = None
    if need_dx:
        g = dy3 * weight.astype(dy.dtype, copy=False)[:, None] if weight is not None else dy3.copy()
        if use_input_stats:
            dx = row_standardize_backward(g.reshape(n * c, size), xhat.reshape(n * c, size), rstd.reshape(n * c, 1))
        else:
            dx = g * rstd
        dx = dx.reshape(dy.shape)
    return dx, (dweight if weight is not None else None), (dbias if bias is not None else None)
