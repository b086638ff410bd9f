"""The maths of the activations: pure functions on NumPy/CuPy arrays, no bookkeeping.

Every activation is a pair ``<op>_forward(x, **options) -> (y, ctx)`` /
``<op>_backward(dy, ctx, need_dx=True) -> (dx,)``, where ``ctx`` is the smallest thing the
gradient needs; ``softmax``/``log_softmax`` along a dim; the special functions they rest on
(``erfc``, a stable ``sigmoid`` and ``softplus``).
Every formula stays finite for inputs of magnitude 1e4 and avoids ``where`` on random masks
(branch mispredictions make it ~10x slower than arithmetic with a 0/1 mask). The special
functions (``erfc``, a stable ``sigmoid`` and ``softplus``) and ``blockwise`` are in
:mod:`._special`.
"""

from __future__ import annotations

import math
from typing import Any

from plait.core import get_array_module

from ._cuda_kernels import fused, gelu_forward_cuda
from ._gelu_maths import gelu_exact
from ._special import blockwise, erfc, sigmoid, softplus

__all__ = [
    "SELU_ALPHA",
    "SELU_SCALE",
    "blockwise",
    "elu_backward",
    "elu_forward",
    "erfc",
    "gelu_backward",
    "gelu_forward",
    "hardtanh_backward",
    "hardtanh_forward",
    "leaky_relu_backward",
    "leaky_relu_forward",
    "log_softmax",
    "log_softmax_backward",
    "log_softmax_forward",
    "mish_backward",
    "mish_forward",
    "normal_cdf",
    "relu_backward",
    "relu_forward",
    "selu_backward",
    "selu_forward",
    "sigmoid",
    "sigmoid_backward",
    "sigmoid_forward",
    "silu_backward",
    "silu_forward",
    "softmax",
    "softmax_backward",
    "softmax_forward",
    "softplus",
    "softplus_backward",
    "softplus_forward",
    "tanh_backward",
    "tanh_forward",
]

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946

# -- element-wise pairs: <op>_forward(x, **options) -> (y, ctx), <op>_backward(dy, ctx) -> (dx,) ---
# x, y, dy, dx: any shape (...), one float dtype. ``need_dx`` is accepted for the contract; an
# activation has no parameters, so its backward is the input gradient alone.
def relu_forward(x: Any) -> tuple[Any, Any]:
    """y = max(x, 0); ctx = y."""
    y = get_array_module(x).maximum(x, 0)
    return y, y


def relu_backward(dy: Any, y: Any, need_dx: bool = True) -> tuple[Any]:
    """dx = dy * [x > 0]  (= [y > 0])."""
    return (dy * (y > 0),)


def leaky_relu_forward(x: Any, *, negative_slope: float = 0.01) -> tuple[Any, Any]:
    """y = x * f with f = 1 where x > 0 else slope; f is also the derivative, so it is the ctx."""
    factor = (x > 0).astype(x.dtype)
    factor *= 1.0 - negative_slope
    factor += negative_slope
    return x * factor, factor


def leaky_relu_backward(dy: Any, factor: Any, need_dx: bool = True) -> tuple[Any]:
    """dx = dy * f."""
    return (dy * factor,)


def elu_forward(x: Any, *, alpha: float = 1.0, scale: float = 1.0) -> tuple[Any, Any]:
    """y = scale * (x if x > 0 else alpha (e^x - 1)); SELU is ELU with fixed alpha and scale."""
    xp = get_array_module(x)
    y = xp.expm1(xp.minimum(x, 0))
    y *= alpha
    y += xp.maximum(x, 0)
    if scale != 1.0:
        y *= scale
    return y, (x, alpha, scale)


def elu_backward(dy: Any, ctx: Any, need_dx: bool = True) -> tuple[Any]:
    """dx = dy * scale * (1 if x > 0 else alpha e^x), written without a branchy ``where``."""
    x, alpha, scale = ctx
    xp = get_array_module(x)
    slope = xp.exp(xp.minimum(x, 0))
    slope *= alpha
    step = (x > 0).astype(x.dtype)
    step *= 1.0 - alpha
    slope += step
    slope *= dy
    if scale != 1.0:
        slope *= scale
    return (slope,)


def selu_forward(x: Any) -> tuple[Any, Any]:
    """y = SELU_SCALE * ELU(x, SELU_ALPHA) (Klambauer et al.); backward is :func:`elu_backward`."""
    return elu_forward(x, alpha=SELU_ALPHA, scale=SELU_SCALE)


def selu_backward(dy: Any, ctx: Any, need_dx: bool = True) -> tuple[Any]:
    """dx = dy * SELU_SCALE * (1 if x > 0 else SELU_ALPHA e^x) (:func:`elu_backward`)."""
    return elu_backward(dy, ctx)

_SQRT_2 = math.sqrt(2.0)
_TANH_K = math.sqrt(2.0 / math.pi)
_TANH_C = 0.044715


def normal_cdf(x: Any) -> Any:
    """Phi(x) = erfc(-x / sqrt(2)) / 2, the standard normal CDF."""
    cdf = erfc(x * (-1.0 / _SQRT_2))
    cdf *= 0.5
    return cdf


def _gelu_tanh(x: Any) -> Any:
    """0.5 x (1 + tanh(k (x + c x^3))), k = sqrt(2/pi), c = 0.044715."""
    inner = x * x
    inner *= _TANH_C
    inner += 1.0
    inner *= x
    inner *= _TANH_K
    y = get_array_module(x).tanh(inner)
    y += 1.0
    y *= x
    y *= 0.5
    return y


def _gelu_tanh_grad(dy: Any, x: Any) -> Any:
    """dy * [0.5 (1 + t) + 0.5 x (1 - t^2) k (1 + 3 c x^2)], t = tanh(k (x + c x^3))."""
    x2 = x * x
    t = get_array_module(x).tanh(_TANH_K * x * (1.0 + _TANH_C * x2))
    dinner = 3.0 * _TANH_C * x2
    dinner += 1.0
    dinner *= _TANH_K
    dinner *= 1.0 - t * t
    dinner *= x
    dinner += 1.0 + t
    dinner *= 0.5
    dinner *= dy
    return dinner


def gelu_forward(x: Any, *, approximate: str = "none") -> tuple[Any, Any]:
    """y = x Phi(x) with Phi the normal CDF (exact, :mod:`._gelu_maths`), or the tanh approximation.

    The exact form computes its slope Phi(x) + x phi(x) in the same sweep (it shares the
    exp) and keeps it as the ctx, so backward is one product. On a GPU the sweep is one
    fused CUDA kernel (:mod:`._cuda_kernels`).

    Args:
        x: input (...), float.
        approximate: ``"none"`` (default, exact) or ``"tanh"``; any other value is taken as ``"none"``.

    Returns:
        ``(y, ctx)``: y of x's shape and the ctx ``gelu_backward`` takes.

    No checks (a pure function): the layer that calls it validates x.
    """
    if approximate == "tanh":
        return blockwise(_gelu_tanh, x), ("tanh", x)
    y, slope = gelu_forward_cuda(x) if fused(x) else gelu_exact(x)
    return y, ("none", slope)


def gelu_backward(dy: Any, ctx: Any, need_dx: bool = True) -> tuple[Any]:
    """dx = dy * (Phi(x) + x phi(x)); tanh form: dy * [0.5 (1 + t) + 0.5 x (1 - t^2) k (1 + 3 c x^2)].

    Args:
        dy: gradient of y, y's shape.
        ctx: the ctx returned by the matching forward.
        need_dx: accepted for the maths-pair contract; dx is always computed (default True).

    Returns:
        ``(dx,)``: a 1-tuple, dx of y's shape.
    """
    approximate, saved = ctx
    if approximate == "tanh":
        return (blockwise(_gelu_tanh_grad, dy, saved),)
    saved *= dy  # the slope is the ctx's own array, used once: no fresh dx
    return (saved,)


def _silu(x: Any) -> Any:
    return x * sigmoid(x)


def _silu_grad(dy: Any, x: Any) -> Any:
    s = sigmoid(x)
    g = 1.0 - s
    g *= x
    g += 1.0
    g *= s
    g *= dy
    return g


def silu_forward(x: Any) -> tuple[Any, Any]:
    """y = x s(x), s the logistic sigmoid; ctx = x."""
    return blockwise(_silu, x), x


def silu_backward(dy: Any, x: Any, need_dx: bool = True) -> tuple[Any]:
    """dx = dy * s (1 + x (1 - s))."""
    return (blockwise(_silu_grad, dy, x),)


def _mish(x: Any) -> Any:
    return x * get_array_module(x).tanh(softplus(x))


def _mish_grad(dy: Any, x: Any) -> Any:
    t = get_array_module(x).tanh(softplus(x))
    g = 1.0 - t * t
    g *= x
    g *= sigmoid(x)
    g += t
    g *= dy
    return g


def mish_forward(x: Any) -> tuple[Any, Any]:
    """y = x tanh(softplus(x)); ctx = x."""
    return blockwise(_mish, x), x


def mish_backward(dy: Any, x: Any, need_dx: bool = True) -> tuple[Any]:
    """dx = dy * (t + x (1 - t^2) s(x)), t = tanh(softplus(x))."""
    return (blockwise(_mish_grad, dy, x),)


def hardtanh_forward(x: Any, *, min_val: float = -1.0, max_val: float = 1.0) -> tuple[Any, Any]:
    """y = clip(x, min_val, max_val)."""
    return get_array_module(x).clip(x, min_val, max_val), (x, min_val, max_val)


def hardtanh_backward(dy: Any, ctx: Any, need_dx: bool = True) -> tuple[Any]:
    """dx = dy where min_val < x < max_val (strictly, as torch), else 0."""
    x, lo, hi = ctx
    return (dy * ((x > lo) & (x < hi)),)


def sigmoid_forward(x: Any) -> tuple[Any, Any]:
    """y = 1 / (1 + e^-x); ctx = y."""
    y = blockwise(sigmoid, x)
    return y, y


def sigmoid_backward(dy: Any, y: Any, need_dx: bool = True) -> tuple[Any]:
    """dx = dy * y (1 - y)."""
    g = 1.0 - y
    g *= y
    g *= dy
    return (g,)


def tanh_forward(x: Any) -> tuple[Any, Any]:
    """y = tanh(x); ctx = y."""
    y = get_array_module(x).tanh(x)
    return y, y


def tanh_backward(dy: Any, y: Any, need_dx: bool = True) -> tuple[Any]:
    """dx = dy * (1 - y^2)."""
    g = y * y
    g -= 1.0
    g *= -dy
    return (g,)


def _softplus_beta(x: Any, beta: float, threshold: float) -> Any:
    bx = x * beta
    y = softplus(bx)
    y /= beta
    linear = bx > threshold
    if linear.any():
        y[linear] = x[linear]
    return y


def _softplus_beta_grad(dy: Any, x: Any, beta: float, threshold: float) -> Any:
    bx = x * beta
    g = sigmoid(bx)
    linear = bx > threshold
    if linear.any():
        g[linear] = 1.0
    g *= dy
    return g


def softplus_forward(x: Any, *, beta: float = 1.0, threshold: float = 20.0) -> tuple[Any, Any]:
    """y = log(1 + e^(beta x)) / beta, and y = x where beta x > threshold (torch's rule)."""
    return blockwise(lambda c: _softplus_beta(c, beta, threshold), x), (x, beta, threshold)


def softplus_backward(dy: Any, ctx: Any, need_dx: bool = True) -> tuple[Any]:
    """dx = dy * sigmoid(beta x), and dy where beta x > threshold."""
    x, beta, threshold = ctx
    return (blockwise(lambda d, c: _softplus_beta_grad(d, c, beta, threshold), dy, x),)


# -- along a dimension ------------------------------------------------------------------------
def softmax(x: Any, dim: int) -> Any:
    """exp(x - max) / sum exp(x - max) along ``dim`` (one output buffer, updated in place)."""
    xp = get_array_module(x)
    y = x - x.max(axis=dim, keepdims=True)
    xp.exp(y, out=y)
    y /= y.sum(axis=dim, keepdims=True)
    return y


def log_softmax(x: Any, dim: int) -> Any:
    """x - max - log(sum exp(x - max)) along ``dim``."""
    xp = get_array_module(x)
    y = x - x.max(axis=dim, keepdims=True)
    lse = xp.log(xp.exp(y).sum(axis=dim, keepdims=True))
    y -= lse
    return y


def softmax_forward(x: Any, *, dim: int = -1) -> tuple[Any, Any]:
    """y = softmax(x) along ``dim``; ctx = (y, dim).

    Args:
        x: input (...), float, at least one axis.
        dim: the softmax axis, default -1.

    Returns:
        ``(y, ctx)``: y of x's shape (rows summing to 1 along ``dim``) and ctx = (y, dim).

    No checks (a pure function): the layer that calls it validates x.
    """
    y = softmax(x, dim)
    return y, (y, dim)


def softmax_backward(dy: Any, ctx: Any, need_dx: bool = True) -> tuple[Any]:
    """The full Jacobian-vector product: dx = y * (dy - sum(dy * y, dim)).

    Args:
        dy: gradient of y, y's shape.
        ctx: the ctx returned by the matching forward.
        need_dx: accepted for the maths-pair contract; dx is always computed (default True).

    Returns:
        ``(dx,)``: a 1-tuple, dx of y's shape.
    """
    y, dim = ctx
    dx = dy * y
    s = dx.sum(axis=dim, keepdims=True)
    get_array_module(dy).subtract(dy, s, out=dx)
    dx *= y
    return (dx,)


def log_softmax_forward(x: Any, *, dim: int = -1) -> tuple[Any, Any]:
    """y = x - logsumexp(x) along ``dim``; ctx = (y, dim).

    Args:
        x: input (...), float, at least one axis.
        dim: the axis, default -1.

    Returns:
        ``(y, ctx)``: y of x's shape and ctx = (y, dim).

    No checks (a pure function): the layer that calls it validates x.
    """
    y = log_softmax(x, dim)
    return y, (y, dim)


def log_softmax_backward(dy: Any, ctx: Any, need_dx: bool = True) -> tuple[Any]:
    """dx = dy - softmax(x) * sum(dy, dim), with softmax(x) = exp(y).

    Args:
        dy: gradient of y, y's shape.
        ctx: the ctx returned by the matching forward.
        need_dx: accepted for the maths-pair contract; dx is always computed (default True).

    Returns:
        ``(dx,)``: a 1-tuple, dx of y's shape.
    """
    y, dim = ctx
    dx = get_array_module(dy).exp(y)
    dx *= -dy.sum(axis=dim, keepdims=True)
    dx += dy
    return (dx,)
