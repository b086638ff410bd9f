"""Normalisation layers: ``LayerNorm``, ``RMSNorm``, ``GroupNorm``, ``BatchNorm1d``, ``BatchNorm2d``.

PyTorch's names, arguments, parameter and buffer names (``weight``, ``bias``,
``running_mean``, ``running_var``, ``num_batches_tracked``), so state dicts match
torch's keys. The output keeps the input dtype (float32 or float64). The maths sits in
:mod:`._norm_maths`; here are caching, gradient accumulation and running statistics.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from plait.core import ConfigError, Module, Param, ShapeError, check_array, get_array_module

from ._norm_maths import (
    channel_affine_grads,
    channel_moments,
    channel_standardize,
    channel_standardize_backward,
    row_rms_normalize,
    row_rms_normalize_backward,
    row_standardize,
    row_standardize_backward,
)

__all__ = ["BatchNorm1d", "BatchNorm2d", "GroupNorm", "LayerNorm", "RMSNorm"]


def _shape_tuple(normalized_shape: int | Sequence[int], where: str) -> tuple[int, ...]:
    shape = (int(normalized_shape),) if isinstance(normalized_shape, (int, np.integer)) else tuple(int(s) for s in normalized_shape)
    if not shape or any(s <= 0 for s in shape):
        raise ConfigError(f"{where}: normalized_shape must be positive sizes, got {normalized_shape!r}")
    return shape


def _check_trailing(x: Any, where: str, trailing: tuple[int, ...]) -> Any:
    x = check_array(x, where, ndim_min=len(trailing))
    if tuple(x.shape[x.ndim - len(trailing):]) != trailing:
        raise ShapeError(f"{where}: expected input of shape (*, {', '.join(map(str, trailing))}), got shape {tuple(x.shape)}")
    return x


def _check_grad(dy: Any, where: str, shape: tuple[int, ...]) -> Any:
    """The output gradient must have the forward output's shape exactly (no broadcasting)."""
    dy = check_array(dy, where, what="output gradient")
    if tuple(dy.shape) != tuple(shape):
        raise ShapeError(f"{where}: expected output gradient of shape {tuple(shape)}, got {tuple(dy.shape)}")
    return dy


def _param_as(p: Param | None, dtype: Any) -> Any:
    return None if p is None else p.data.astype(dtype, copy=False)


class _AffineRows(Module):
    """Shared bookkeeping of LayerNorm and RMSNorm: statistics over the trailing dims."""

    _name = ""

    def _affine_forward(self, xhat: Any) -> Any:
        w, b = _param_as(self.weight, xhat.dtype), _param_as(self.bias, xhat.dtype)
        if w is None:
            return xhat.copy() if b is None else xhat + b.reshape(-1)
        y = xhat * w.reshape(-1)
        if b is not None:
            y += b.reshape(-1)
        return y

    def _affine_backward(self, dy2: Any, xhat: Any) -> Any:
        """Accumulate dweight/dbias; return g = dL/dxhat as a fresh array."""
        xp = get_array_module(dy2)
        if self.bias is not None:
            self.bias.accumulate(dy2.sum(axis=0).reshape(self.bias.shape))
        if self.weight is None:
            return dy2.copy()
        self.weight.accumulate(xp.einsum("md,md->d", dy2, xhat).reshape(self.weight.shape))
        return dy2 * self.weight.data.astype(dy2.dtype, copy=False).reshape(-1)

    def _rows(self, x: Any) -> Any:
        return x.reshape(-1, math.prod(self.normalized_shape))


class LayerNorm(_AffineRows):
    """y = (x - mean) / sqrt(var + eps) * weight + bias over the trailing ``normalized_shape``.

    x: (*, *normalized_shape) -> same shape. ``weight`` ones and ``bias`` zeros of shape
    ``normalized_shape`` (as ``torch.nn.LayerNorm``).
    """

    _name = "LayerNorm"

    def __init__(self, normalized_shape: int | Sequence[int], eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, dtype: str = "float32") -> None:
        super().__init__()
        self.normalized_shape = _shape_tuple(normalized_shape, "LayerNorm")
        self.eps = float(eps)
        self.elementwise_affine = bool(elementwise_affine)
        self.weight = Param(np.ones(self.normalized_shape, dtype=dtype)) if elementwise_affine else None
        self.bias = Param(np.zeros(self.normalized_shape, dtype=dtype)) if elementwise_affine and bias else None

    def forward(self, x: Any) -> Any:
        x = _check_trailing(x, "LayerNorm", self.normalized_shape)
        xhat, rstd = row_standardize(self._rows(x), self.eps)
        self.save_for_backward((xhat, rstd, x.shape))
        return self._affine_forward(xhat).reshape(x.shape)

    def backward(self, dy: Any) -> Any:
        xhat, rstd, shape = self.saved()
        dy = _check_grad(dy, "LayerNorm.backward", shape)
        g = self._affine_backward(self._rows(dy), xhat)
        return row_standardize_backward(g, xhat, rstd).reshape(dy.shape)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class RMSNorm(_AffineRows):
    """y = x / sqrt(mean(x^2) + eps) * weight over the trailing ``normalized_shape``.

    As ``torch.nn.RMSNorm``: ``eps=None`` means the machine epsilon of the input dtype;
    ``weight`` ones of shape ``normalized_shape``; no bias.
    """

    _name = "RMSNorm"

    def __init__(self, normalized_shape: int | Sequence[int], eps: float | None = None, elementwise_affine: bool = True,
                 dtype: str = "float32") -> None:
        super().__init__()
        self.normalized_shape = _shape_tuple(normalized_shape, "RMSNorm")
        self.eps = None if eps is None else float(eps)
        self.elementwise_affine = bool(elementwise_affine)
        self.weight = Param(np.ones(self.normalized_shape, dtype=dtype)) if elementwise_affine else None
        self.bias = None

    def forward(self, x: Any) -> Any:
        x = _check_trailing(x, "RMSNorm", self.normalized_shape)
        eps = float(np.finfo(x.dtype).eps) if self.eps is None else self.eps
        xhat, rstd = row_rms_normalize(self._rows(x), eps)
        self.save_for_backward((xhat, rstd, x.shape))
        return self._affine_forward(xhat).reshape(x.shape)

    def backward(self, dy: Any) -> Any:
        xhat, rstd, shape = self.saved()
        dy = _check_grad(dy, "RMSNorm.backward", shape)
        g = self._affine_backward(self._rows(dy), xhat)
        return row_rms_normalize_backward(g, xhat, rstd).reshape(dy.shape)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class GroupNorm(Module):
    """Standardise each of ``num_groups`` channel groups per sample, then a per-channel affine.

    x: (N, C, *) -> same shape; ``weight`` ones and ``bias`` zeros of shape (C,).
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True, *,
                 bias: bool = True, dtype: str = "float32") -> None:
        super().__init__()
        if num_groups <= 0 or num_channels % num_groups:
            raise ConfigError(f"GroupNorm: num_channels ({num_channels}) must be divisible by num_groups ({num_groups})")
        self.num_groups, self.num_channels = int(num_groups), int(num_channels)
        self.eps, self.affine = float(eps), bool(affine)
        self.weight = Param(np.ones(num_channels, dtype=dtype)) if affine else None
        self.bias = Param(np.zeros(num_channels, dtype=dtype)) if affine and bias else None

    def forward(self, x: Any) -> Any:
        x = check_array(x, "GroupNorm", ndim_min=2, dims={1: self.num_channels})
        n, per_channel = x.shape[0], math.prod(x.shape[2:])
        xhat, rstd = row_standardize(x.reshape(n * self.num_groups, self.num_channels // self.num_groups * per_channel),
                                     self.eps)
        self.save_for_backward((xhat, rstd, x.shape))
        y = xhat.reshape(n, self.num_channels, per_channel)
        w, b = _param_as(self.weight, x.dtype), _param_as(self.bias, x.dtype)
        y = y * w[:, None] if w is not None else y.copy()
        if b is not None:
            y += b[:, None]
        return y.reshape(x.shape)

    def backward(self, dy: Any) -> Any:
        xhat, rstd, shape = self.saved()
        dy = _check_grad(dy, "GroupNorm.backward", shape)
        xp = get_array_module(dy)
        n = dy.shape[0]
        dy3 = dy.reshape(n, self.num_channels, math.prod(shape[2:]))
        if self.bias is not None:
            self.bias.accumulate(xp.einsum("ncs->c", dy3))
        if self.weight is not None:
            self.weight.accumulate(xp.einsum("ncs,ncs->c", dy3, xhat.reshape(dy3.shape)))
            g = dy3 * self.weight.data.astype(dy.dtype, copy=False)[:, None]
        else:
            g = dy3.copy()
        return row_standardize_backward(g.reshape(xhat.shape), xhat, rstd).reshape(dy.shape)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


class _BatchNorm(Module):
    """Shared code of BatchNorm1d/2d: per-channel statistics over batch and space."""

    _name = ""
    _ndims: tuple[int, ...] = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, *, bias: bool = True, dtype: str = "float32") -> None:
        super().__init__()
        if num_features <= 0:
            raise ConfigError(f"{self._name}: num_features must be positive, got {num_features}")
        self.num_features, self.eps = int(num_features), float(eps)
        self.momentum = None if momentum is None else float(momentum)
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        self.weight = Param(np.ones(num_features, dtype=dtype)) if affine else None
        self.bias = Param(np.zeros(num_features, dtype=dtype)) if affine and bias else None
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype))
            self.register_buffer("running_var", np.ones(num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def _update_running_stats(self, mean: Any, var: Any, count: int) -> None:
        nbt = self.num_batches_tracked
        nbt += 1
        factor = 1.0 / float(nbt) if self.momentum is None else self.momentum
        rm, rv = self.running_mean, self.running_var
        unbiased = var * (count / (count - 1))
        rm *= 1.0 - factor
        rm += factor * mean.astype(rm.dtype, copy=False)
        rv *= 1.0 - factor
        rv += factor * unbiased.astype(rv.dtype, copy=False)

    def forward(self, x: Any) -> Any:
        x = check_array(x, self._name, ndim=self._ndims, dims={1: self.num_features})
        xp = get_array_module(x)
        x3 = x.reshape(x.shape[0], self.num_features, math.prod(x.shape[2:]))
        count = x3.shape[0] * x3.shape[2]
        batch_stats = self.training or not self.track_running_stats
        if batch_stats:
            if count <= 1 and self.training:
                raise ShapeError(f"{self._name}: expected more than 1 value per channel when training, got input shape {tuple(x.shape)}")
            mean, var, xhat = channel_moments(x3)
            if self.training and self.track_running_stats:
                self._update_running_stats(mean, var, count)
            rstd = (1.0 / xp.sqrt(var + self.eps)).astype(x.dtype, copy=False)
            xhat *= rstd[:, None]
        else:
            var = self.running_var.astype(x.dtype, copy=False)
            rstd = (1.0 / xp.sqrt(var + self.eps)).astype(x.dtype, copy=False)
            xhat = channel_standardize(x3, self.running_mean.astype(x.dtype, copy=False), rstd)
        self.save_for_backward((xhat, rstd, batch_stats, x.shape))
        w, b = _param_as(self.weight, x.dtype), _param_as(self.bias, x.dtype)
        y = xhat * w[:, None] if w is not None else xhat.copy()
        if b is not None:
            y += b[:, None]
        return y.reshape(x.shape)

    def backward(self, dy: Any) -> Any:
        xhat, rstd, batch_stats, shape = self.saved()
        dy = _check_grad(dy, f"{self._name}.backward", shape)
        dy3 = dy.reshape(xhat.shape)
        dweight, dbias = channel_affine_grads(dy3, xhat)
        if self.weight is not None:
            self.weight.accumulate(dweight)
        if self.bias is not None:
            self.bias.accumulate(dbias)
        scale = rstd if self.weight is None else rstd * self.weight.data.astype(dy.dtype, copy=False)
        if batch_stats:
            dx = channel_standardize_backward(dy3, xhat, scale, dweight, dbias)
        else:
            dx = dy3 * scale[:, None]
        return dx.reshape(dy.shape)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of x: (N, C) or (N, C, L), as ``torch.nn.BatchNorm1d``.

    Training uses batch statistics and updates ``running_mean``/``running_var`` (unbiased)
    with ``momentum`` (``None``: cumulative average); eval uses the running statistics.
    """

    _name = "BatchNorm1d"
    _ndims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of x: (N, C, H, W), as ``torch.nn.BatchNorm2d``."""

    _name = "BatchNorm2d"
    _ndims = (4,)


LAYERS: dict[str, type] = {
    "layer_norm": LayerNorm,
    "rms_norm": RMSNorm,
    "group_norm": GroupNorm,
    "batch_norm1d": BatchNorm1d,
    "batch_norm2d": BatchNorm2d,
}
