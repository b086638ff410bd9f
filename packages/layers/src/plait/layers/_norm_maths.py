"""The maths of the normalisation layers, kept apart from their bookkeeping.

Two layouts cover every layer:

* rows ``(M, D)``: statistics over the last axis (LayerNorm, RMSNorm, GroupNorm with
  ``D = C/G * spatial``);
* channels ``(N, C, S)``: statistics per channel over batch and space (BatchNorm).

With ``xhat = (x - mean) * rstd`` and ``g = dL/dxhat``, the input gradient of a
standardisation over ``D`` elements is the compact closed form::

    dx = rstd * (g - mean(g) - xhat * mean(g * xhat))

(RMSNorm drops the ``mean(g)`` term because it does not centre.)
"""

from __future__ import annotations

from typing import Any

from plait.core import get_array_module

__all__ = [
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
