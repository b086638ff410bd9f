"""The maths of the piecewise and gated activations torch has besides the classic ones.

Pairs ``<op>_forward(x, [weight,] **options) -> (y, ctx)`` /
``<op>_backward(dy, ctx, [weight,] need_dx=True) -> (dx, [dweight])``; shapes: x, y, dy, dx
any ``(...)`` of one float dtype (GLU halves ``dim``). At a kink each backward returns the
subgradient torch returns there (noted per function), so gradients match torch exactly.
"""

from __future__ import annotations

from typing import Any

from plait.core import get_array_module

from ._activation_maths import hardtanh_backward, hardtanh_forward
from ._special import blockwise, sigmoid, softplus

__all__ = [
    "celu_backward",
    "celu_forward",
    "glu_backward",
    "glu_forward",
    "hardsigmoid_backward",
    "hardsigmoid_forward",
    "hardswish_backward",
    "hardswish_forward",
    "logsigmoid_backward",
    "logsigmoid_forward",
    "prelu_backward",
    "prelu_forward",
    "relu6_backward",
    "relu6_forward",
    "softsign_backward",
    "softsign_forward",
]


# -- PReLU: one learnable slope per channel (axis 1), or one shared slope -------------------------
def _per_channel(weight: Any, x: Any) -> Any:
    """weight (C,) as a view broadcasting along axis 1 of x; a single weight as a 0-d array."""
    if weight.size == 1:
        return weight.reshape(())
    shape = [1] * x.ndim
    shape[1] = weight.size
    return weight.reshape(shape)


def prelu_forward(x: Any, weight: Any) -> tuple[Any, Any]:
    """y = max(x, 0) + w_c min(x, 0), w_c the slope of x's channel (axis 1); ctx = x.

    weight: (C,) with C = x.shape[1], or (1,) shared by every element.
    """
    xp = get_array_module(x)
    w = _per_channel(weight, x)
    return xp.maximum(x, 0) + w * xp.minimum(x, 0), x


def prelu_backward(dy: Any, x: Any, weight: Any, need_dx: bool = True) -> tuple[Any, Any]:
    """dx = dy * (1 if x > 0 else w_c)  (w_c at x == 0, as torch);
    dw_c = sum over every axis but 1 of dy * min(x, 0)."""
    xp = get_array_module(x)
    w = _per_channel(weight, x)
    dx = None
    if need_dx:
        slope = (x > 0).astype(x.dtype)
        slope = slope * (1.0 - w) + w
        dx = dy * slope
    g = dy * xp.minimum(x, 0)
    if weight.size == 1:
        dw = g.sum().reshape(weight.shape)
    else:
        dw = g.sum(axis=tuple(a for a in range(x.ndim) if a != 1))
    return dx, dw.astype(weight.dtype, copy=False)


# -- clipped linear pieces -------------------------------------------------------------------------
def relu6_forward(x: Any) -> tuple[Any, Any]:
    """y = min(max(x, 0), 6) (torch's ``hardtanh(x, 0, 6)``)."""
    return hardtanh_forward(x, min_val=0.0, max_val=6.0)


def relu6_backward(dy: Any, ctx: Any, need_dx: bool = True) -> tuple[Any]:
    """dx = dy where 0 < x < 6, else 0 (0 at both kinks, as torch)."""
    return hardtanh_backward(dy, ctx)


def hardsigmoid_forward(x: Any) -> tuple[Any, Any]:
    """y = min(max(x + 3, 0), 6) / 6; ctx = x."""
    y = get_array_module(x).clip(x + 3.0, 0.0, 6.0)
    y /= 6.0
    return y, x


def hardsigmoid_backward(dy: Any, x: Any, need_dx: bool = True) -> tuple[Any]:
    """dx = dy / 6 where -3 < x < 3, else 0 (0 at both kinks, as torch)."""
    dx = dy * ((x > -3.0) & (x < 3.0))
    dx *= 1.0 / 6.0
    return (dx,)


def hardswish_forward(x: Any) -> tuple[Any, Any]:
    """y = x min(max(x + 3, 0), 6) / 6; ctx = x."""
    y = get_array_module(x).clip(x + 3.0, 0.0, 6.0)
    y *= x
    y /= 6.0
    return y, x


def hardswish_backward(dy: Any, x: Any, need_dx: bool = True) -> tuple[Any]:
    """dx = dy * (0 if x <= -3, x / 3 + 1/2 if -3 < x < 3, 1 if x >= 3) (torch's choice at the kinks)."""
    inside = (x > -3.0) & (x < 3.0)
    slope = x * (1.0 / 3.0)
    slope += 0.5
    slope *= inside
    slope += x >= 3.0
    slope *= dy
    return (slope,)


# -- smooth squashing ------------------------------------------------------------------------------
def logsigmoid_forward(x: Any) -> tuple[Any, Any]:
    """y = log s(x) = -softplus(-x) (stable for any |x|); ctx = x."""
    y = blockwise(softplus, -x)
    y *= -1.0
    return y, x


def logsigmoid_backward(dy: Any, x: Any, need_dx: bool = True) -> tuple[Any]:
    """dx = dy * (1 - s(x)) = dy * s(-x)."""
    g = blockwise(sigmoid, -x)
    g *= dy
    return (g,)


def softsign_forward(x: Any) -> tuple[Any, Any]:
    """y = x / (1 + |x|); ctx = 1 + |x|."""
    d = get_array_module(x).abs(x)
    d += 1.0
    return x / d, d


def softsign_backward(dy: Any, d: Any, need_dx: bool = True) -> tuple[Any]:
    """dx = dy / (1 + |x|)^2."""
    return (dy / (d * d),)


def celu_forward(x: Any, *, alpha: float = 1.0) -> tuple[Any, Any]:
    """y = max(x, 0) + alpha (exp(min(x, 0) / alpha) - 1); ctx = (x, alpha). alpha != 0."""
    xp = get_array_module(x)
    y = xp.expm1(xp.minimum(x, 0) * (1.0 / alpha))
    y *= alpha
    y += xp.maximum(x, 0)
    return y, (x, alpha)


def celu_backward(dy: Any, ctx: Any, need_dx: bool = True) -> tuple[Any]:
    """dx = dy * (1 if x > 0 else exp(x / alpha)) (both 1 at x == 0)."""
    x, alpha = ctx
    xp = get_array_module(x)
    slope = xp.exp(xp.minimum(x, 0) * (1.0 / alpha))  # exp(0) = 1 where x >= 0
    slope *= dy
    return (slope,)


# -- gated ------------------------------------------------------------------------------------------
def glu_forward(x: Any, *, dim: int = -1) -> tuple[Any, Any]:
    """x = [a, b] split in halves along ``dim`` (even size 2H); y = a * s(b), half the size along ``dim``.

    ctx = (a, s(b), dim).
    """
    xp = get_array_module(x)
    a, b = xp.split(x, 2, axis=dim)
    s = sigmoid(b)
    return a * s, (a, s, dim)


def glu_backward(dy: Any, ctx: Any, need_dx: bool = True) -> tuple[Any]:
    """da = dy * s(b); db = dy * a * s(b) (1 - s(b)); dx = [da, db] along ``dim``."""
    a, s, dim = ctx
    xp = get_array_module(a)
    da = dy * s
    db = 1.0 - s
    db *= da
    db *= a
    return (xp.concatenate([da, db], axis=dim),)
