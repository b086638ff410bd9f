"""Activation layers: element-wise ones, and ``Softmax`` / ``LogSoftmax`` along a dim.

Shapes: any ``(...)`` in, same shape out, same float dtype. The classes validate, cache
the ``ctx`` of the pure functions in :mod:`._activation_maths` and hand it back to the
matching backward. ``erfc``, ``sigmoid``, ``softplus`` and the (log-)softmax/GELU maths are
re-exported here.
"""

from __future__ import annotations

from typing import Any

from plait.core import ConfigError, Module, ShapeError, check_array

from ._activation_maths import (
    SELU_ALPHA,
    SELU_SCALE,
    blockwise,
    elu_backward,
    elu_forward,
    erfc,
    gelu_backward,
    gelu_backward_from_cdf,
    gelu_forward,
    hardtanh_backward,
    hardtanh_forward,
    leaky_relu_backward,
    leaky_relu_forward,
    log_softmax_backward,
    log_softmax_forward,
    mish_backward,
    mish_forward,
    normal_cdf,
    relu_backward,
    relu_forward,
    sigmoid,
    sigmoid_backward,
    sigmoid_forward,
    silu_backward,
    silu_forward,
    softmax_backward,
    softmax_forward,
    softplus,
    softplus_backward,
    softplus_forward,
    tanh_backward,
    tanh_forward,
)

__all__ = [
    "ELU",
    "GELU",
    "SELU",
    "Hardtanh",
    "LeakyReLU",
    "LogSoftmax",
    "Mish",
    "ReLU",
    "SiLU",
    "Sigmoid",
    "Softmax",
    "Softplus",
    "Tanh",
    "erfc",
    "gelu_backward",
    "gelu_forward",
    "log_softmax_backward",
    "log_softmax_forward",
    "sigmoid",
    "softmax_backward",
    "softmax_forward",
    "softplus",
]


class _Activation(Module):
    """Bookkeeping shared by every activation: validate, cache ctx, check dy's shape."""

    def _forward(self, x: Any) -> tuple[Any, Any]:
        raise NotImplementedError

    def _backward(self, dy: Any, ctx: Any) -> Any:
        raise NotImplementedError

    def _check_input(self, x: Any) -> Any:
        return check_array(x, type(self).__name__)

    def forward(self, x: Any) -> Any:
        x = self._check_input(x)
        y, ctx = self._forward(x)
        self.save_for_backward(ctx)
        return y

    def backward(self, dy: Any) -> Any:
        ctx = self.saved()
        ref = ctx[0] if isinstance(ctx, tuple) else ctx  # an array shaped like the input
        name = type(self).__name__
        dy = check_array(dy, f"{name}.backward", what="output gradient")
        if dy.shape != ref.shape:
            raise ShapeError(f"{name}.backward: expected output gradient of shape {tuple(ref.shape)}, got {tuple(dy.shape)}")
        return self._backward(dy.astype(ref.dtype, copy=False), ctx)


class ReLU(_Activation):
    """max(x, 0)."""

    def __init__(self) -> None:
        super().__init__()

    def _forward(self, x: Any) -> tuple[Any, Any]:
        return relu_forward(x)

    def _backward(self, dy: Any, y: Any) -> Any:
        return relu_backward(dy, y)


class LeakyReLU(_Activation):
    """x if x > 0 else negative_slope * x."""

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = float(negative_slope)

    def _forward(self, x: Any) -> tuple[Any, Any]:
        return leaky_relu_forward(x, self.negative_slope)

    def _backward(self, dy: Any, factor: Any) -> Any:
        return leaky_relu_backward(dy, factor)


class ELU(_Activation):
    """x if x > 0 else alpha (exp(x) - 1)."""

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = float(alpha)

    def _forward(self, x: Any) -> tuple[Any, Any]:
        return elu_forward(x, self.alpha)

    def _backward(self, dy: Any, x: Any) -> Any:
        return elu_backward(dy, x, self.alpha)


class SELU(_Activation):
    """scale * ELU(x, alpha) with the self-normalising constants of Klambauer et al."""

    def __init__(self) -> None:
        super().__init__()

    def _forward(self, x: Any) -> tuple[Any, Any]:
        return elu_forward(x, SELU_ALPHA, SELU_SCALE)

    def _backward(self, dy: Any, x: Any) -> Any:
        return elu_backward(dy, x, SELU_ALPHA, SELU_SCALE)


class GELU(_Activation):
    """x Phi(x); ``approximate="tanh"`` uses 0.5 x (1 + tanh(sqrt(2/pi)(x + 0.044715 x^3)))."""

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ConfigError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def _forward(self, x: Any) -> tuple[Any, Any]:
        if self.approximate == "none":  # keep Phi(x): backward then needs no second erfc
            cdf = blockwise(normal_cdf, x)
            return x * cdf, (x, cdf)
        return blockwise(lambda c: gelu_forward(c, self.approximate)[0], x), x

    def _backward(self, dy: Any, ctx: Any) -> Any:
        if self.approximate == "none":
            return blockwise(gelu_backward_from_cdf, dy, *ctx)
        return blockwise(lambda d, c: gelu_backward(d, c, self.approximate), dy, ctx)


class SiLU(_Activation):
    """x * sigmoid(x) (a.k.a. swish)."""

    def __init__(self) -> None:
        super().__init__()

    def _forward(self, x: Any) -> tuple[Any, Any]:
        return blockwise(lambda c: silu_forward(c)[0], x), x

    def _backward(self, dy: Any, x: Any) -> Any:
        return blockwise(silu_backward, dy, x)


class Mish(_Activation):
    """x * tanh(softplus(x))."""

    def __init__(self) -> None:
        super().__init__()

    def _forward(self, x: Any) -> tuple[Any, Any]:
        return blockwise(lambda c: mish_forward(c)[0], x), x

    def _backward(self, dy: Any, x: Any) -> Any:
        return blockwise(mish_backward, dy, x)


class Hardtanh(_Activation):
    """clip(x, min_val, max_val)."""

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0) -> None:
        super().__init__()
        if not min_val < max_val:
            raise ConfigError(f"Hardtanh: min_val ({min_val}) must be below max_val ({max_val})")
        self.min_val, self.max_val = float(min_val), float(max_val)

    def _forward(self, x: Any) -> tuple[Any, Any]:
        return hardtanh_forward(x, self.min_val, self.max_val)

    def _backward(self, dy: Any, x: Any) -> Any:
        return hardtanh_backward(dy, x, self.min_val, self.max_val)


class Sigmoid(_Activation):
    """1 / (1 + exp(-x))."""

    def __init__(self) -> None:
        super().__init__()

    def _forward(self, x: Any) -> tuple[Any, Any]:
        return sigmoid_forward(x)

    def _backward(self, dy: Any, y: Any) -> Any:
        return sigmoid_backward(dy, y)


class Tanh(_Activation):
    """tanh(x)."""

    def __init__(self) -> None:
        super().__init__()

    def _forward(self, x: Any) -> tuple[Any, Any]:
        return tanh_forward(x)

    def _backward(self, dy: Any, y: Any) -> Any:
        return tanh_backward(dy, y)


class Softplus(_Activation):
    """log(1 + exp(beta x)) / beta; x itself where beta x > threshold."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta, self.threshold = float(beta), float(threshold)

    def _forward(self, x: Any) -> tuple[Any, Any]:
        return softplus_forward(x, self.beta, self.threshold)

    def _backward(self, dy: Any, x: Any) -> Any:
        return softplus_backward(dy, x, self.beta, self.threshold)


class _AlongDim(_Activation):
    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = int(dim)

    def _check_input(self, x: Any) -> Any:
        name = type(self).__name__
        x = check_array(x, name, ndim_min=1)
        if not -x.ndim <= self.dim < x.ndim:
            raise ShapeError(f"{name}: dim={self.dim} is out of range for input of shape {tuple(x.shape)}")
        return x


class Softmax(_AlongDim):
    """exp(x) / sum(exp(x)) along ``dim``; backward is the full Jacobian-vector product."""

    def _forward(self, x: Any) -> tuple[Any, Any]:
        y = softmax_forward(x, self.dim)
        return y, y

    def _backward(self, dy: Any, y: Any) -> Any:
        return softmax_backward(dy, y, self.dim)


class LogSoftmax(_AlongDim):
    """x - logsumexp(x) along ``dim``."""

    def _forward(self, x: Any) -> tuple[Any, Any]:
        y = log_softmax_forward(x, self.dim)
        return y, y

    def _backward(self, dy: Any, y: Any) -> Any:
        return log_softmax_backward(dy, y, self.dim)


LAYERS: dict[str, type] = {
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "elu": ELU,
    "gelu": GELU,
    "silu": SiLU,
    "mish": Mish,
    "selu": SELU,
    "hardtanh": Hardtanh,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "softplus": Softplus,
    "softmax": Softmax,
    "log_softmax": LogSoftmax,
}
