"""Normalisation layers: ``LayerNorm``, ``RMSNorm``, ``GroupNorm``, ``BatchNorm1d/2d``, ``InstanceNorm1d/2d``.

PyTorch's names, arguments, parameter and buffer names (``weight``, ``bias``,
``running_mean``, ``running_var``, ``num_batches_tracked``), so state dicts match
torch's keys. The output keeps the input dtype (float32 or float64). The maths sits in
:mod:`._norm_maths` (one pair per layer); here are the constructors, checks and options.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from plait.core import ConfigError, Module, Param, ShapeError, check_array, check_parameter_count, check_size

from ._norm_maths import (
    batch_norm_backward,
    batch_norm_forward,
    group_norm_backward,
    group_norm_forward,
    instance_norm_backward,
    instance_norm_forward,
    layer_norm_backward,
    layer_norm_forward,
    rms_norm_backward,
    rms_norm_forward,
)

__all__ = ["BatchNorm1d", "BatchNorm2d", "GroupNorm", "InstanceNorm1d", "InstanceNorm2d", "LayerNorm", "RMSNorm"]


def _shape_tuple(normalized_shape: int | Sequence[int], where: str) -> tuple[int, ...]:
    items = tuple(normalized_shape) if isinstance(normalized_shape, (list, tuple)) else (normalized_shape,)
    if not items:
        raise ConfigError(f"{where}: normalized_shape must be positive sizes, got {normalized_shape!r}")
    shape = tuple(check_size(s, where, "normalized_shape") for s in items)
    check_parameter_count(2 * math.prod(shape), where)
    return shape


def _check_trailing(x: Any, where: str, trailing: tuple[int, ...]) -> Any:
    x = check_array(x, where, ndim_min=len(trailing))
    if tuple(x.shape[x.ndim - len(trailing):]) != trailing:
        raise ShapeError(f"{where}: expected input of shape (*, {', '.join(map(str, trailing))}), got shape {tuple(x.shape)}")
    return x


class LayerNorm(Module):
    """y = (x - mean) / sqrt(var + eps) * weight + bias over the trailing ``normalized_shape``.

    x: (*, *normalized_shape) -> same shape. ``weight`` ones and ``bias`` zeros of shape
    ``normalized_shape`` (as ``torch.nn.LayerNorm``).

    Args:
        normalized_shape: the trailing input shape normalised over: an int >= 1 or a non-empty
            sequence of them (required).
        eps: added to the variance, default 1e-5 (as torch).
        elementwise_affine: learn ``weight`` (ones) and, if ``bias``, ``bias`` (zeros), each of shape
            ``normalized_shape``; default True.
        bias: learn ``bias`` when ``elementwise_affine`` (ignored otherwise); default True (as torch).
        dtype: dtype of weight and bias, default ``"float32"``.

    Shapes:
        ``forward(x)``: x ``(*, *normalized_shape)`` -> y of x's shape and dtype (statistics over the
        trailing axes, biased variance). ``backward(dy)``: dy of y's shape -> dx; adds d(weight),
        d(bias) of shape ``normalized_shape`` to the gradients.

    Raises:
        ConfigError: ``normalized_shape`` empty or holding a non-integer or a size < 1, or more
            parameters than ``PLAIT_MAX_PARAMETERS``.
        ShapeError: an input whose trailing axes are not ``normalized_shape``; a ``dy`` of another shape than y.
        DTypeError: a non-floating input or ``dy``.
    """

    maths = (layer_norm_forward, layer_norm_backward)
    maths_params = ("weight", "bias")

    def __init__(self, normalized_shape: int | Sequence[int], eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, dtype: str = "float32") -> None:
        super().__init__()
        self.normalized_shape = _shape_tuple(normalized_shape, "LayerNorm")
        self.eps = float(eps)
        self.elementwise_affine = bool(elementwise_affine)
        self.weight = Param(np.ones(self.normalized_shape, dtype=dtype)) if elementwise_affine else None
        self.bias = Param(np.zeros(self.normalized_shape, dtype=dtype)) if elementwise_affine and bias else None

    def check_input(self, x: Any) -> Any:
        return _check_trailing(x, "LayerNorm", self.normalized_shape)

    def options(self, x: Any) -> dict[str, Any]:
        return {"normalized_shape": self.normalized_shape, "eps": self.eps}

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class RMSNorm(Module):
    """y = x / sqrt(mean(x^2) + eps) * weight over the trailing ``normalized_shape``.

    As ``torch.nn.RMSNorm``: ``eps=None`` means the machine epsilon of the input dtype;
    ``weight`` ones of shape ``normalized_shape``; no bias.

    Args:
        normalized_shape: the trailing input shape normalised over: an int >= 1 or a non-empty
            sequence of them (required).
        eps: added to mean(x^2); default None means ``finfo(x.dtype).eps`` of each input (as torch).
        elementwise_affine: learn ``weight`` (ones, shape ``normalized_shape``); default True.
        dtype: dtype of the weight, default ``"float32"``.

    Shapes:
        ``forward(x)``: x ``(*, *normalized_shape)`` -> y of x's shape and dtype. ``backward(dy)``: dy of
        y's shape -> dx; adds d(weight) of shape ``normalized_shape`` to the gradient.

    Raises:
        ConfigError: ``normalized_shape`` empty or holding a non-integer or a size < 1, or more
            parameters than ``PLAIT_MAX_PARAMETERS``.
        ShapeError: an input whose trailing axes are not ``normalized_shape``; a ``dy`` of another shape than y.
        DTypeError: a non-floating input or ``dy``.
    """

    maths = (rms_norm_forward, rms_norm_backward)
    maths_params = ("weight",)

    def __init__(self, normalized_shape: int | Sequence[int], eps: float | None = None, elementwise_affine: bool = True,
                 dtype: str = "float32") -> None:
        super().__init__()
        self.normalized_shape = _shape_tuple(normalized_shape, "RMSNorm")
        self.eps = None if eps is None else float(eps)
        self.elementwise_affine = bool(elementwise_affine)
        self.weight = Param(np.ones(self.normalized_shape, dtype=dtype)) if elementwise_affine else None
        self.bias = None

    def check_input(self, x: Any) -> Any:
        return _check_trailing(x, "RMSNorm", self.normalized_shape)

    def options(self, x: Any) -> dict[str, Any]:
        eps = float(np.finfo(x.dtype).eps) if self.eps is None else self.eps
        return {"normalized_shape": self.normalized_shape, "eps": eps}

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class GroupNorm(Module):
    """Standardise each of ``num_groups`` channel groups per sample, then a per-channel affine.

    x: (N, C, *) -> same shape; ``weight`` ones and ``bias`` zeros of shape (C,).

    Args:
        num_groups: G, number of channel groups, an int >= 1 that divides ``num_channels`` (required).
        num_channels: C, the size of input axis 1, an int >= 1 (required).
        eps: added to the variance, default 1e-5 (as torch).
        affine: learn per-channel ``weight`` (ones) and ``bias`` (zeros), shape (C,); default True.
        bias: keyword-only, learn ``bias`` when ``affine``; default True. Torch's GroupNorm has no
            such argument (it always has a bias when affine).
        dtype: keyword-only, dtype of weight and bias, default ``"float32"``.

    Shapes:
        ``forward(x)``: x ``(N, C, *)`` -> y of x's shape and dtype (statistics per sample over each group's
        channels and all of ``*``). ``backward(dy)``: dy of y's shape -> dx; adds d(weight), d(bias) (C,).

    Raises:
        ConfigError: ``num_groups``/``num_channels`` not an integer >= 1, ``num_channels`` not
            divisible by ``num_groups``, or more parameters than ``PLAIT_MAX_PARAMETERS``.
        ShapeError: an input with fewer than 2 axes or axis 1 not C; a ``dy`` of another shape than y.
        DTypeError: a non-floating input or ``dy``.
    """

    maths = (group_norm_forward, group_norm_backward)
    maths_params = ("weight", "bias")

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True, *,
                 bias: bool = True, dtype: str = "float32") -> None:
        super().__init__()
        check_size(num_groups, "GroupNorm", "num_groups")
        check_parameter_count(2 * check_size(num_channels, "GroupNorm", "num_channels"), "GroupNorm")
        if num_channels % num_groups:
            raise ConfigError(f"GroupNorm: num_channels ({num_channels}) must be divisible by num_groups ({num_groups})")
        self.num_groups, self.num_channels = int(num_groups), int(num_channels)
        self.eps, self.affine = float(eps), bool(affine)
        self.weight = Param(np.ones(num_channels, dtype=dtype)) if affine else None
        self.bias = Param(np.zeros(num_channels, dtype=dtype)) if affine and bias else None

    def check_input(self, x: Any) -> Any:
        return check_array(x, "GroupNorm", ndim_min=2, dims={1: self.num_channels})

    def options(self, x: Any) -> dict[str, Any]:
        return {"num_groups": self.num_groups, "eps": self.eps}

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


class _BatchNorm(Module):
    """Shared code of BatchNorm1d/2d: per-channel statistics over batch and space."""

    maths = (batch_norm_forward, batch_norm_backward)
    maths_params = ("weight", "bias")

    _name = ""
    _ndims: tuple[int, ...] = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, *, bias: bool = True, dtype: str = "float32") -> None:
        super().__init__()
        check_parameter_count(4 * check_size(num_features, self._name, "num_features"), self._name)
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

    def check_input(self, x: Any) -> Any:
        x = check_array(x, self._name, ndim=self._ndims, dims={1: self.num_features})
        if self.training and x.shape[0] * math.prod(x.shape[2:]) <= 1:
            raise ShapeError(f"{self._name}: expected more than 1 value per channel when training, got input shape {tuple(x.shape)}")
        return x

    def options(self, x: Any) -> dict[str, Any]:
        tracked = self.track_running_stats
        return {"running_mean": self.running_mean if tracked else None,
                "running_var": self.running_var if tracked else None,
                "num_batches_tracked": self.num_batches_tracked if tracked else None,
                "training": self.training, "momentum": self.momentum, "eps": self.eps}

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of x: (N, C) or (N, C, L), as ``torch.nn.BatchNorm1d``.

    Training uses batch statistics and updates ``running_mean``/``running_var`` (unbiased)
    with ``momentum`` (``None``: cumulative average); eval uses the running statistics.

    Args:
        num_features: C, the size of input axis 1, an int >= 1 (required).
        eps: added to the variance, default 1e-5 (as torch).
        momentum: weight of the new batch in the running statistics, default 0.1 (as torch:
            running = (1 - momentum) running + momentum batch); None means a cumulative average
            over ``num_batches_tracked`` batches.
        affine: learn per-channel ``weight`` (ones) and ``bias`` (zeros), shape (C,); default True.
        track_running_stats: keep ``running_mean`` (zeros), ``running_var`` (ones) and
            ``num_batches_tracked`` buffers and use them in eval; default True. When False, eval
            normalises with the batch's own statistics (as torch).
        bias: keyword-only, learn ``bias`` when ``affine``; default True. Torch's BatchNorm has no
            such argument.
        dtype: keyword-only, dtype of the parameters and running buffers, default ``"float32"``.

    Shapes:
        ``forward(x)``: x (N, C) or (N, C, L) -> y of x's shape and dtype. ``backward(dy)``: dy of y's
        shape -> dx; adds d(weight), d(bias) (C,) to the gradients.

    Raises:
        ConfigError: ``num_features`` not an integer >= 1, or more parameters than ``PLAIT_MAX_PARAMETERS``.
        ShapeError: an input of another rank, with axis 1 not C, or (in training) with only one value
            per channel; a ``dy`` of another shape than y.
        DTypeError: a non-floating input or ``dy``.
    """

    _name = "BatchNorm1d"
    _ndims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of x: (N, C, H, W), as ``torch.nn.BatchNorm2d``.

    Training uses batch statistics and updates the running ones as ``BatchNorm1d``.

    Args:
        num_features: C, the size of input axis 1, an int >= 1 (required).
        eps: added to the variance, default 1e-5 (as torch).
        momentum: weight of the new batch in the running statistics, default 0.1 (as torch:
            running = (1 - momentum) running + momentum batch); None means a cumulative average
            over ``num_batches_tracked`` batches.
        affine: learn per-channel ``weight`` (ones) and ``bias`` (zeros), shape (C,); default True.
        track_running_stats: keep ``running_mean`` (zeros), ``running_var`` (ones) and
            ``num_batches_tracked`` buffers and use them in eval; default True. When False, eval
            normalises with the batch's own statistics (as torch).
        bias: keyword-only, learn ``bias`` when ``affine``; default True. Torch's BatchNorm has no
            such argument.
        dtype: keyword-only, dtype of the parameters and running buffers, default ``"float32"``.

    Shapes:
        ``forward(x)``: x (N, C, H, W) -> y of x's shape and dtype (statistics over N, H, W).
        ``backward(dy)``: dy of y's shape -> dx; adds d(weight), d(bias) (C,) to the gradients.

    Raises:
        ConfigError: ``num_features`` not an integer >= 1, or more parameters than ``PLAIT_MAX_PARAMETERS``.
        ShapeError: an input of another rank, with axis 1 not C, or (in training) with only one value
            per channel; a ``dy`` of another shape than y.
        DTypeError: a non-floating input or ``dy``.
    """

    _name = "BatchNorm2d"
    _ndims = (4,)


class _InstanceNorm(Module):
    """Shared code of InstanceNorm1d/2d: statistics per sample and channel over space."""

    maths = (instance_norm_forward, instance_norm_backward)
    maths_params = ("weight", "bias")

    _name = ""
    _nd = 1

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = False,
                 track_running_stats: bool = False, *, dtype: str = "float32") -> None:
        super().__init__()
        check_parameter_count(4 * check_size(num_features, self._name, "num_features"), self._name)
        self.num_features, self.eps = int(num_features), float(eps)
        self.momentum = None if momentum is None else float(momentum)
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        self.weight = Param(np.ones(num_features, dtype=dtype)) if affine else None
        self.bias = Param(np.zeros(num_features, dtype=dtype)) if affine else None
        tracked = self.track_running_stats
        self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype) if tracked else None)
        self.register_buffer("running_var", np.ones(num_features, dtype=dtype) if tracked else None)
        self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64) if tracked else None)

    def _use_input_stats(self) -> bool:
        return self.training or not self.track_running_stats

    def check_input(self, x: Any) -> Any:
        """Batched (N, C, *) or unbatched (C, *) input; C must be ``num_features`` when there are
        weights or running statistics (torch only warns otherwise and normalises any C)."""
        x = check_array(x, self._name, ndim=(self._nd + 1, self._nd + 2))
        channels = x.shape[x.ndim - self._nd - 1]
        if (self.affine or self.track_running_stats) and channels != self.num_features:
            raise ShapeError(f"{self._name}: expected {self.num_features} channels at axis {x.ndim - self._nd - 1}, "
                             f"got input of shape {tuple(x.shape)}")
        if self._use_input_stats() and math.prod(x.shape[x.ndim - self._nd:]) <= 1:
            raise ShapeError(f"{self._name}: expected more than 1 spatial element per channel, got input of shape "
                             f"{tuple(x.shape)}")
        return x

    def options(self, x: Any) -> dict[str, Any]:
        tracked = self.track_running_stats
        return {"running_mean": self.running_mean if tracked else None,
                "running_var": self.running_var if tracked else None,
                "use_input_stats": self._use_input_stats(), "batched": x.ndim == self._nd + 2,
                "momentum": 0.0 if self.momentum is None else self.momentum, "eps": self.eps}

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class InstanceNorm1d(_InstanceNorm):
    """Instance normalisation of x: (N, C, L) or (C, L), as ``torch.nn.InstanceNorm1d``.

    Each sample's channel is standardised over L; ``affine`` adds ``weight``/``bias`` (C,);
    ``track_running_stats`` keeps ``running_mean``/``running_var`` (updated in training with
    ``momentum``; ``None`` leaves them unchanged, as torch) and uses them in eval.

    Args:
        num_features: C, the number of channels, an int >= 1 (required). Checked against the input
            only when ``affine`` or ``track_running_stats`` (torch then warns instead of raising).
        eps: added to the variance, default 1e-5 (as torch).
        momentum: weight of the new statistics in the running ones, default 0.1 (as torch); None
            leaves the running statistics unchanged (as torch).
        affine: learn per-channel ``weight`` (ones) and ``bias`` (zeros), shape (C,); default False (as torch).
        track_running_stats: keep ``running_mean``/``running_var``/``num_batches_tracked`` buffers
            and normalise with them in eval; default False (as torch).
        dtype: keyword-only, dtype of the parameters and buffers, default ``"float32"``.

    Shapes:
        ``forward(x)``: x (N, C, L) or unbatched (C, L) -> y of x's shape and dtype.
        ``backward(dy)``: dy of y's shape -> dx; adds d(weight), d(bias) (C,) when affine.

    Raises:
        ConfigError: ``num_features`` not an integer >= 1, or more parameters than ``PLAIT_MAX_PARAMETERS``.
        ShapeError: an input of another rank; a channel axis that is not ``num_features`` (when affine
            or tracking); only one spatial element per channel when input statistics are used; a ``dy``
            of another shape than y.
        DTypeError: a non-floating input or ``dy``.
    """

    _name = "InstanceNorm1d"
    _nd = 1


class InstanceNorm2d(_InstanceNorm):
    """Instance normalisation of x: (N, C, H, W) or (C, H, W), as ``torch.nn.InstanceNorm2d``.

    Each sample's channel is standardised over H, W; see ``InstanceNorm1d``.

    Args:
        num_features: C, the number of channels, an int >= 1 (required). Checked against the input
            only when ``affine`` or ``track_running_stats`` (torch then warns instead of raising).
        eps: added to the variance, default 1e-5 (as torch).
        momentum: weight of the new statistics in the running ones, default 0.1 (as torch); None
            leaves the running statistics unchanged (as torch).
        affine: learn per-channel ``weight`` (ones) and ``bias`` (zeros), shape (C,); default False (as torch).
        track_running_stats: keep ``running_mean``/``running_var``/``num_batches_tracked`` buffers
            and normalise with them in eval; default False (as torch).
        dtype: keyword-only, dtype of the parameters and buffers, default ``"float32"``.

    Shapes:
        ``forward(x)``: x (N, C, H, W) or unbatched (C, H, W) -> y of x's shape and dtype.
        ``backward(dy)``: dy of y's shape -> dx; adds d(weight), d(bias) (C,) when affine.

    Raises:
        ConfigError: ``num_features`` not an integer >= 1, or more parameters than ``PLAIT_MAX_PARAMETERS``.
        ShapeError: an input of another rank; a channel axis that is not ``num_features`` (when affine
            or tracking); only one spatial element per channel when input statistics are used; a ``dy``
            of another shape than y.
        DTypeError: a non-floating input or ``dy``.
    """

    _name = "InstanceNorm2d"
    _nd = 2


LAYERS: dict[str, type] = {
    "layer_norm": LayerNorm,
    "rms_norm": RMSNorm,
    "group_norm": GroupNorm,
    "batch_norm1d": BatchNorm1d,
    "batch_norm2d": BatchNorm2d,
    "instance_norm1d": InstanceNorm1d,
    "instance_norm2d": InstanceNorm2d,
}
