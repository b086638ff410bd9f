"""Losses with torch's semantics: ``loss = fn(pred, target)``, then ``dpred = fn.backward()``.

Every loss computes per-element losses ``l`` (shape ``S``) and a mean denominator ``n``;
``reduction`` gives ``sum(l) / n`` ("mean", a float), ``sum(l)`` ("sum", a float) or ``l``
itself ("none", an array). ``backward(grad_output=None)`` returns d loss / d pred; for
"none" ``grad_output`` is the upstream gradient of shape ``S`` (ones when omitted), for the
scalar reductions an optional scale.

Caching: one slot, not a stack. A loss is the root of a backward pass and is routinely
evaluated without a backward (validation, logging); a stack would grow on every such call.
So each forward *replaces* the cache, and ``backward`` uses and consumes the newest one: a
second backward, or a backward after a forward run inside ``no_grad()``, is an error. To
backpropagate two evaluations, call ``backward`` after each (or use two instances).

A "mean" over nothing (every target ignored) is nan with a zero gradient, as in torch.

The element-wise losses (MSE, L1, Huber, BCE, KL, ...) are in :mod:`.losses_elementwise`.
Two-input losses (:mod:`.losses_pairwise`: ``CosineEmbeddingLoss``, ``MarginRankingLoss``)
are called ``fn(input1, input2, target)`` as in torch, and their ``backward`` returns the
tuple ``(dinput1, dinput2)``; caching and reductions are this base's.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from plait.core import (
    ConfigError,
    DTypeError,
    Module,
    PlaitError,
    ShapeError,
    check_array,
    check_number,
    check_same_shape,
    check_size,
    get_array_module,
    is_grad_enabled,
    to_numpy,
)

from ._loss_maths import cross_entropy_backward, cross_entropy_forward, nll_backward, nll_forward

__all__ = [
    "CrossEntropyLoss",
    "Loss",
    "NLLLoss",
    "cross_entropy_backward",
    "cross_entropy_forward",
    "nll_backward",
    "nll_forward",
]

REDUCTIONS = ("mean", "sum", "none")


# -- base ---------------------------------------------------------------------------------------
class Loss(Module):
    """Base of every loss (a :class:`Module`, so ``config()`` and the registry work).

    A loss names its maths pair in :mod:`._loss_maths` (``maths``), checks its inputs
    (``_inputs(pred, target) -> (x, t)``) and gives the pair's keyword options
    (``options(x)``); this base does the rest: caching, the reduction, the upstream
    gradient. Losses whose layout differs from the pair's (class ids over (N, C, d1, ...))
    override ``_losses(pred, target) -> (losses, denominator, ctx)`` and ``_grad(ctx, g) -> dpred``.

    Torch's deprecated ``size_average`` and ``reduce`` arguments are not accepted, so a
    positional argument other than ``weight`` may not line up with torch's (``MSELoss("sum")``
    is torch's ``MSELoss(size_average="sum")``): pass them by keyword.

    Args:
        reduction: ``"mean"`` (default: sum(l) / n as a float), ``"sum"`` (a float) or ``"none"``
            (the per-element array l); KLDivLoss adds ``"batchmean"``.

    Shapes:
        ``forward(pred, target)``: see each loss; returns a Python float, or l for ``"none"``.
        ``backward(grad_output=None)``: d loss / d pred of pred's shape and dtype.

    Raises:
        ConfigError: ``reduction`` not one of ``reductions``.
    """

    #: How many predictions ``forward`` takes before the target (two-input losses: 2).
    num_inputs: int = 1
    #: The reductions this loss accepts (KLDivLoss adds "batchmean": sum(l) / batch size).
    reductions: tuple[str, ...] = REDUCTIONS

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        if not isinstance(reduction, str) or reduction not in self.reductions:
            raise ConfigError(f"{type(self).__name__}: reduction must be one of {self.reductions}, got {reduction!r}")
        self.reduction = reduction
        self._cache: Any = None

    # constructor arrays (class weights) are kept on the host as float64 and recorded as lists
    def _array_arg(self, name: str, value: Any) -> np.ndarray | None:
        if value is None:
            return None
        try:
            arr = np.asarray(to_numpy(value), dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{type(self).__name__}: {name} must be an array of numbers, got {value!r}") from exc
        args = self.__dict__.get("_init_args")
        if args is not None and name in args:
            args[name] = arr.tolist()
        return arr

    @staticmethod
    def _like(arr: np.ndarray | None, x: Any) -> Any:
        return None if arr is None else get_array_module(x).asarray(arr, dtype=x.dtype)

    def _inputs(self, pred: Any, target: Any) -> tuple[Any, Any]:
        raise NotImplementedError

    def _losses(self, pred: Any, target: Any) -> tuple[Any, Any, Any]:
        x, t = self._inputs(pred, target)
        return self.maths[0](x, t, **self.options(x))

    def _grad(self, ctx: Any, g: Any) -> Any:
        return self.maths[1](g, ctx)[0]

    def forward(self, pred: Any, target: Any) -> Any:
        """The reduced loss (a float), or the per-element losses for ``reduction="none"``.

        Args:
            pred: the prediction (each loss states its shape), float.
            target: the target, of the shape and kind each loss states.

        Returns:
            A Python float for ``"mean"``/``"sum"`` (nan for a mean over no kept target), or the
            per-element losses (an array) for ``"none"``.

        Raises:
            ShapeError: shapes that do not match as the loss requires.
            DTypeError: a non-floating prediction, or a target of the wrong kind.
        """
        return self._reduce(*self._losses(pred, target))

    def _reduce(self, losses: Any, denom: Any, ctx: Any) -> Any:
        """Keep the cache for backward; sum(l) / n, sum(l) or l by ``reduction``."""
        xp = get_array_module(losses)
        self.__dict__["_cache"] = (losses.shape, losses.dtype, denom, ctx, xp) if is_grad_enabled() else None
        if self.reduction == "none":
            return losses
        total = losses.sum()
        if self.reduction == "sum":
            return float(total)
        if xp is np and denom:  # the common case: a float division, no error state to set up
            return float(total) / float(denom)
        with np.errstate(invalid="ignore", divide="ignore"):  # 0 / 0 (every target ignored) is nan, as in torch
            return float(total.astype(np.float64) / denom)  # the only host sync of a GPU loss

    def backward(self, grad_output: Any = None) -> Any:
        """d loss / d pred (same shape and dtype as pred); a two-input loss returns the pair
        ``(d loss / d input1, d loss / d input2)``.

        Args:
            grad_output: for ``reduction="none"``, the upstream gradient of the losses' shape (default
                None: ones); for the scalar reductions, an optional number scaling the gradient
                (default None: 1.0).

        Returns:
            d loss / d pred (pred's shape); the pair ``(dinput1, dinput2)`` for a two-input loss.

        Raises:
            PlaitError: no forward since the last backward (or forward ran inside ``no_grad()``).
            ShapeError: ``grad_output`` of another shape than the losses (``"none"``).
            DTypeError: a non-floating ``grad_output`` array (``"none"``).
        """
        name = type(self).__name__
        if self._cache is None:
            raise PlaitError(
                f"{name}.backward() called without a matching forward() "
                "(was forward run inside no_grad(), or backward called twice?)"
            )
        shape, dtype, denom, ctx, xp = self._cache
        self.__dict__["_cache"] = None
        if self.reduction == "none":
            if grad_output is None:
                g = xp.ones(shape, dtype=dtype)
            else:
                g = check_array(grad_output, f"{name}.backward", what="upstream gradient")
                if tuple(g.shape) != tuple(shape):
                    raise ShapeError(f"{name}.backward: expected upstream gradient of shape {tuple(shape)}, got {tuple(g.shape)}")
                g = g.astype(dtype, copy=False)
        else:
            scale = 1.0 if grad_output is None else float(grad_output)
            g = scale if self.reduction == "sum" else _divide_or_zero(scale, denom, xp, dtype)
        return self._grad(ctx, g)


def _divide_or_zero(scale: float, denom: Any, xp: Any, dtype: Any) -> Any:
    """``scale / denom``, or 0 when nothing was counted (every target ignored).

    A denominator still on the GPU stays there (a 0-d array of the losses' dtype): no host sync.
    """
    if xp is np or isinstance(denom, (int, float)):
        denom = float(denom)
        return scale / denom if denom else 0.0
    return xp.where(denom != 0, scale / denom, 0.0).astype(dtype, copy=False)


# -- classification -------------------------------------------------------------------------------
def _classes_last(x: Any) -> Any:
    """(N, C, d1, ...) -> (N * d1 * ..., C); (C,) -> (1, C); (N, C) unchanged."""
    if x.ndim == 1:
        return x[None, :]
    if x.ndim == 2:
        return x
    return get_array_module(x).moveaxis(x, 1, -1).reshape(-1, x.shape[1])


def _classes_back(d2: Any, shape: tuple[int, ...]) -> Any:
    if len(shape) <= 2:
        return d2.reshape(shape)
    moved = d2.reshape((shape[0], *shape[2:], shape[1]))
    return get_array_module(d2).ascontiguousarray(get_array_module(d2).moveaxis(moved, -1, 1))


class _IndexTargetLoss(Loss):
    """Shared validation of (N, C, d1...) inputs against (N, d1...) ids or same-shape probabilities."""

    allow_probabilities = False

    def _split(self, pred: Any, target: Any) -> tuple[Any, Any, tuple[int, ...]]:
        name = type(self).__name__
        x = check_array(pred, name, what="input", ndim_min=1)
        t = check_array(target, name, what="target", floating=False)
        num_classes = x.shape[0] if x.ndim == 1 else x.shape[1]
        id_shape = () if x.ndim == 1 else (x.shape[0], *x.shape[2:])
        weight = getattr(self, "_weight", None)
        if weight is not None and weight.shape != (num_classes,):
            raise ShapeError(f"{name}: weight has shape {weight.shape} but the input has {num_classes} classes (shape {tuple(x.shape)})")
        if t.dtype.kind == "f" and self.allow_probabilities:
            check_same_shape(x, t, name, ("input", "probability target"))
            return _classes_last(x), _classes_last(t), id_shape
        if t.dtype.kind not in "iu":
            expected = "integer class indices or float probabilities" if self.allow_probabilities else "integer class indices"
            raise DTypeError(f"{name}: expected target as {expected}, got dtype {t.dtype}")
        if tuple(t.shape) != id_shape:
            raise ShapeError(f"{name}: input of shape {tuple(x.shape)} needs class-index target of shape {id_shape}, got {tuple(t.shape)}")
        return _classes_last(x), t.reshape(-1), id_shape

    def _losses(self, pred: Any, target: Any) -> tuple[Any, Any, Any]:
        x2, t2, out_shape = self._split(pred, target)
        losses, denom, ctx = self.maths[0](x2, t2, **self.options(x2))
        return losses.reshape(out_shape), denom, (tuple(np.shape(pred)), ctx)

    def _grad(self, ctx: Any, g: Any) -> Any:
        shape, inner = ctx
        g = g.reshape(-1) if getattr(g, "ndim", 0) else g
        return _classes_back(self.maths[1](g, inner)[0], shape)


class CrossEntropyLoss(_IndexTargetLoss):
    """Softmax cross entropy on logits (N, C) / (N, C, d1, ...) / (C,).

    Targets: class indices (N,) / (N, d1, ...) / () or probabilities shaped like the input.
    ``weight`` (C,) rescales classes; ``ignore_index`` drops id targets; ``label_smoothing``
    mixes in the uniform distribution. "mean" divides by the summed weight of the kept
    targets (id targets) or by the number of samples (probability targets), as torch does.

    Args:
        weight: per-class rescaling weights (C,) (any array-like of numbers, kept as float64 and
            recorded in ``config()`` as a list), default None (all 1).
        ignore_index: id target value whose positions give 0 loss and do not count in the mean;
            default -100 (as torch). Not used for probability targets.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``, as torch (see ``Loss``).
        label_smoothing: in [0, 1], default 0.0 (as torch).

    Shapes:
        ``forward(input, target)``: input (N, C), (N, C, d1, ...) or (C,) logits; target (N,),
        (N, d1, ...) or () integer ids, or float probabilities of the input's shape. ``"none"``
        gives (N,) / (N, d1, ...) / (). ``backward()``: d input of the input's shape.

    Raises:
        ConfigError: ``reduction`` unknown, ``label_smoothing`` outside [0, 1], or ``weight`` not an array of numbers.
        ShapeError: a target of the wrong shape, a class index outside [0, C) that is not
            ``ignore_index``, or ``weight`` not of shape (C,).
        DTypeError: a non-floating input, or a target that is neither integer ids nor float probabilities.
    """

    allow_probabilities = True
    maths = (cross_entropy_forward, cross_entropy_backward)

    def __init__(self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0) -> None:
        super().__init__(reduction)
        self.label_smoothing = check_number(label_smoothing, "CrossEntropyLoss", "label_smoothing", low=0.0, high=1.0)
        self._weight = self._array_arg("weight", weight)
        self.ignore_index = check_size(ignore_index, "CrossEntropyLoss", "ignore_index", minimum=None)

    def options(self, x: Any) -> dict[str, Any]:
        return {"weight": self._like(self._weight, x), "ignore_index": self.ignore_index,
                "label_smoothing": self.label_smoothing}


class NLLLoss(_IndexTargetLoss):
    """Negative log likelihood of log-probabilities (N, C) / (N, C, d1, ...) / (C,) at class ids.

    Args:
        weight: per-class rescaling weights (C,) (any array-like of numbers), default None (all 1).
            "mean" divides by the summed weight of the kept targets, as torch.
        ignore_index: target value whose positions give 0 loss and do not count in the mean;
            default -100 (as torch).
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``, as torch (see ``Loss``).

    Shapes:
        ``forward(input, target)``: input (N, C), (N, C, d1, ...) or (C,) log-probabilities; target
        (N,), (N, d1, ...) or () integer ids. ``"none"`` gives the target's shape. ``backward()``:
        d input of the input's shape.

    Raises:
        ConfigError: ``reduction`` unknown, or ``weight`` not an array of numbers.
        ShapeError: a target of the wrong shape, a class index outside [0, C) that is not
            ``ignore_index``, or ``weight`` not of shape (C,).
        DTypeError: a non-floating input, or a target that is neither integer ids.
    """

    maths = (nll_forward, nll_backward)

    def __init__(self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self._weight = self._array_arg("weight", weight)
        self.ignore_index = int(ignore_index)

    def options(self, x: Any) -> dict[str, Any]:
        return {"weight": self._like(self._weight, x), "ignore_index": self.ignore_index}


LOSSES: dict[str, type] = {
    "cross_entropy": CrossEntropyLoss,
    "nll": NLLLoss,
}

_ELEMENTWISE = frozenset({"BCELoss", "BCEWithLogitsLoss", "HuberLoss", "KLDivLoss", "L1Loss", "MSELoss", "SmoothL1Loss"})


def __getattr__(name: str) -> Any:
    """The element-wise losses live in :mod:`.losses_elementwise`; ``losses.MSELoss`` still finds them."""
    if name in _ELEMENTWISE:
        return getattr(importlib.import_module(".losses_elementwise", __package__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
