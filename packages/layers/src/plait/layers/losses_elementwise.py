"""Element-wise losses with torch's semantics: pred and target of one shape, float
(MSE, L1, Huber, SmoothL1, BCE, BCEWithLogits, KLDiv). Caching and reductions are those of
:class:`~plait.layers.losses.Loss`; "mean" divides by the number of elements.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from plait.core import ConfigError, ShapeError, check_array, check_number, check_same_shape

from . import _loss_maths as m
from .losses import REDUCTIONS, Loss

__all__ = ["BCELoss", "BCEWithLogitsLoss", "HuberLoss", "KLDivLoss", "L1Loss", "MSELoss", "SmoothL1Loss"]


# -- element-wise ---------------------------------------------------------------------------------
class _ElementwiseLoss(Loss):
    """pred and target of one shape, float; the mean divides by the number of elements."""

    def _losses(self, pred: Any, target: Any) -> tuple[Any, Any, Any]:
        x, t = self._inputs(pred, target)
        if x.ndim:
            losses, denom, ctx = self.maths[0](x, t, **self.options(x))
            return losses, denom, (False, ctx)
        # a 0-d pair (as torch allows): the pair runs on one element, the results come back 0-d
        losses, denom, ctx = self.maths[0](x.reshape(1), t.reshape(1), **self.options(x))
        return losses.reshape(()), denom, (True, ctx)

    def _grad(self, ctx: Any, g: Any) -> Any:
        scalar, inner = ctx
        if not scalar:
            return self.maths[1](g, inner)[0]
        return self.maths[1](g.reshape(1) if getattr(g, "ndim", 0) else g, inner)[0].reshape(())

    def _inputs(self, pred: Any, target: Any) -> tuple[Any, Any]:
        name = type(self).__name__
        x = check_array(pred, name, what="input")
        t = check_array(target, name, what="target")
        check_same_shape(x, t, name)
        return x, t.astype(x.dtype, copy=False)

    def _broadcast_arg(self, arr: np.ndarray | None, x: Any, what: str) -> Any:
        if arr is None:
            return None
        try:
            shape = np.broadcast_shapes(arr.shape, x.shape)
        except ValueError:
            shape = None
        if shape != tuple(x.shape):
            raise ShapeError(f"{type(self).__name__}: {what} of shape {arr.shape} does not broadcast to input shape {tuple(x.shape)}")
        return self._like(arr, x)


class BCELoss(_ElementwiseLoss):
    """-w [t log p + (1 - t) log(1 - p)] on probabilities p in [0, 1]; logs clamped at -100 as torch.

    Args:
        weight: rescaling weight broadcast against the input (e.g. (N, 1) or (C,)), any array-like
            of numbers; default None (all 1).
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``, as torch (see ``Loss``).

    Shapes:
        ``forward(input, target)``: input and target of one shape (any, 0-d included), float; ``"none"``
        gives that shape. ``backward()``: d input of the input's shape.

    Raises:
        ConfigError: ``reduction`` unknown, or ``weight`` not an array of numbers.
        ShapeError: input and target of different shapes; ``weight`` that does not broadcast to the input; input values outside [0, 1].
        DTypeError: a non-floating input or target.
    """

    maths = (m.bce_forward, m.bce_backward)

    def __init__(self, weight: Any = None, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self._weight = self._array_arg("weight", weight)

    def _inputs(self, pred: Any, target: Any) -> tuple[Any, Any]:
        x, t = super()._inputs(pred, target)
        if x.size and (float(x.min()) < 0.0 or float(x.max()) > 1.0):
            raise ShapeError(f"BCELoss: input values must lie in [0, 1] (probabilities), got range [{float(x.min())}, {float(x.max())}]")
        return x, t

    def options(self, x: Any) -> dict[str, Any]:
        return {"weight": self._broadcast_arg(self._weight, x, "weight")}


class BCEWithLogitsLoss(_ElementwiseLoss):
    """Sigmoid + BCE in one stable formula: w [(1 - t) x + (1 + (pw - 1) t) softplus(-x)].

    ``pos_weight`` (broadcast over the input, usually (C,)) weighs positive targets.

    Args:
        weight: rescaling weight broadcast against the input, any array-like of numbers; default None (all 1).
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``, as torch (see ``Loss``). Torch's positional order is (weight, size_average, reduce, reduction, pos_weight).
        pos_weight: weight of the positive term, broadcast against the input (usually (C,)); default None (1).

    Shapes:
        ``forward(input, target)``: input and target of one shape (any, 0-d included), float; ``"none"``
        gives that shape. ``backward()``: d input of the input's shape.

    Raises:
        ConfigError: ``reduction`` unknown, or ``weight``/``pos_weight`` not an array of numbers.
        ShapeError: input and target of different shapes; ``weight`` or ``pos_weight`` that does not broadcast to the input.
        DTypeError: a non-floating input or target.
    """

    maths = (m.bce_with_logits_forward, m.bce_with_logits_backward)

    def __init__(self, weight: Any = None, reduction: str = "mean", pos_weight: Any = None) -> None:
        super().__init__(reduction)
        self._weight = self._array_arg("weight", weight)
        self._pos_weight = self._array_arg("pos_weight", pos_weight)

    def options(self, x: Any) -> dict[str, Any]:
        return {"weight": self._broadcast_arg(self._weight, x, "weight"),
                "pos_weight": self._broadcast_arg(self._pos_weight, x, "pos_weight")}


class MSELoss(_ElementwiseLoss):
    """(x - t)^2.

    Args:
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``, as torch (see ``Loss``).

    Shapes:
        ``forward(input, target)``: input and target of one shape (any, 0-d included), float; ``"none"``
        gives that shape. ``backward()``: d input of the input's shape.

    Raises:
        ConfigError: ``reduction`` unknown.
        ShapeError: input and target of different shapes.
        DTypeError: a non-floating input or target.
    """

    maths = (m.mse_forward, m.mse_backward)


class L1Loss(_ElementwiseLoss):
    """|x - t| (gradient sign(x - t), 0 at a tie, as torch).

    Args:
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``, as torch (see ``Loss``).

    Shapes:
        ``forward(input, target)``: input and target of one shape (any, 0-d included), float; ``"none"``
        gives that shape. ``backward()``: d input of the input's shape.

    Raises:
        ConfigError: ``reduction`` unknown.
        ShapeError: input and target of different shapes.
        DTypeError: a non-floating input or target.
    """

    maths = (m.l1_forward, m.l1_backward)


class HuberLoss(_ElementwiseLoss):
    """0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta); d = x - t.

    Args:
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``, as torch (see ``Loss``).
        delta: the threshold between the quadratic and linear parts, > 0; default 1.0 (as torch).

    Shapes:
        ``forward(input, target)``: input and target of one shape (any, 0-d included), float; ``"none"``
        gives that shape. ``backward()``: d input of the input's shape.

    Raises:
        ConfigError: ``reduction`` unknown, or ``delta`` not positive.
        ShapeError: input and target of different shapes.
        DTypeError: a non-floating input or target.
    """

    maths = (m.huber_forward, m.huber_backward)

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__(reduction)
        self.delta = check_number(delta, "HuberLoss", "delta", low=0.0, low_open=True)

    def options(self, x: Any) -> dict[str, Any]:
        return {"delta": self.delta}


class SmoothL1Loss(_ElementwiseLoss):
    """0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta; d = x - t (torch's SmoothL1Loss).

    ``beta`` >= 0; beta = 0 is the L1 loss (as torch). HuberLoss(delta) = beta * SmoothL1Loss(beta).

    Args:
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``, as torch (see ``Loss``).
        beta: the threshold between the quadratic and linear parts, a finite number >= 0; default
            1.0 (as torch).

    Shapes:
        ``forward(input, target)``: input and target of one shape (any, 0-d included), float; ``"none"``
        gives that shape. ``backward()``: d input of the input's shape.

    Raises:
        ConfigError: ``reduction`` unknown, or ``beta`` negative or not a finite number.
        ShapeError: input and target of different shapes.
        DTypeError: a non-floating input or target.
    """

    maths = (m.smooth_l1_forward, m.smooth_l1_backward)

    def __init__(self, reduction: str = "mean", beta: float = 1.0) -> None:
        super().__init__(reduction)
        self.beta = check_number(beta, "SmoothL1Loss", "beta")
        if self.beta < 0.0:
            raise ConfigError(f"SmoothL1Loss: beta must be >= 0, got {beta}")

    def options(self, x: Any) -> dict[str, Any]:
        return {"beta": self.beta}


class KLDivLoss(_ElementwiseLoss):
    """KL(p || q) pointwise on log-probabilities x = log q: p (log p - x); e^t (t - x) with ``log_target``.

    input and target of one shape, e.g. (N, C). ``reduction="batchmean"`` divides the sum by
    the batch size N (the true KL divergence per sample); ``"mean"`` (torch's default, kept)
    divides by every element, N * C, as torch does.

    Args:
        reduction: ``"mean"`` (default, as torch; divides by the number of elements),
            ``"batchmean"`` (divides by N, the mathematical KL per sample), ``"sum"`` or ``"none"``.
        log_target: the target holds log-probabilities; default False (as torch).

    Shapes:
        ``forward(input, target)``: input (log q) and target (p, or log p with ``log_target``) of one
        shape, e.g. (N, C); ``"none"`` gives that shape. ``backward()``: d input of the input's shape.

    Raises:
        ConfigError: ``reduction`` unknown, or ``log_target`` not a bool.
        ShapeError: input and target of different shapes.
        DTypeError: a non-floating input or target.
    """

    maths = (m.kl_div_forward, m.kl_div_backward)
    reductions = (*REDUCTIONS, "batchmean")

    def __init__(self, reduction: str = "mean", log_target: bool = False) -> None:
        super().__init__(reduction)
        if not isinstance(log_target, (bool, np.bool_)):
            raise ConfigError(f"KLDivLoss: log_target must be True or False, got {log_target!r}")
        self.log_target = bool(log_target)

    def options(self, x: Any) -> dict[str, Any]:
        return {"log_target": self.log_target}

    def _losses(self, pred: Any, target: Any) -> tuple[Any, Any, Any]:
        losses, denom, ctx = super()._losses(pred, target)
        if self.reduction == "batchmean":  # a 0-d input has no batch axis: the sum, as torch
            denom = float(losses.shape[0]) if losses.ndim else 1.0
        return losses, denom, ctx


LOSSES: dict[str, type] = {
    "bce": BCELoss,
    "bce_with_logits": BCEWithLogitsLoss,
    "mse": MSELoss,
    "l1": L1Loss,
    "huber": HuberLoss,
    "smooth_l1": SmoothL1Loss,
    "kl_div": KLDivLoss,
}
