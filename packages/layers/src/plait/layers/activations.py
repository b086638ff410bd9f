"""Activation layers: element-wise ones, and ``Softmax`` / ``LogSoftmax`` along a dim.

Shapes: any ``(...)`` in, same shape out, same float dtype. Each class is its constructor,
its options and the name of its maths pair in :mod:`._activation_maths` /
:mod:`._pointwise_maths`; ``Module`` does the bookkeeping (checks, ctx, dy's shape). The
(log-)softmax/GELU pairs are re-exported here; the stateless functions (``sigmoid``,
``softplus``, ``erfc``, ...) live in :mod:`plait.layers.functional`.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from plait.core import (
    ConfigError,
    Module,
    Param,
    ShapeError,
    check_array,
    check_number,
    check_parameter_count,
    check_size,
)

from . import _activation_maths as m
from . import _pointwise_maths as pw
from ._activation_maths import (
    gelu_backward,
    gelu_forward,
    log_softmax_backward,
    log_softmax_forward,
    softmax_backward,
    softmax_forward,
)

__all__ = [
    "CELU",
    "ELU",
    "GELU",
    "GLU",
    "PReLU",
    "ReLU6",
    "SELU",
    "Hardsigmoid",
    "Hardswish",
    "Hardtanh",
    "LogSigmoid",
    "LeakyReLU",
    "LogSoftmax",
    "Mish",
    "ReLU",
    "SiLU",
    "Sigmoid",
    "Softmax",
    "Softplus",
    "Softsign",
    "Tanh",
    "gelu_backward",
    "gelu_forward",
    "log_softmax_backward",
    "log_softmax_forward",
    "softmax_backward",
    "softmax_forward",
]


class ReLU(Module):
    """max(x, 0).

    Takes no arguments (torch's ``inplace`` is not accepted).

    Shapes:
        ``forward(x)``: x (...) -> y of x's shape and float dtype; ``backward(dy)``: dy (y's shape) -> dx.

    Raises:
        DTypeError: a non-floating input or ``dy``.
        ShapeError: a ``dy`` whose shape is not y's.
    """

    maths = (m.relu_forward, m.relu_backward)


class LeakyReLU(Module):
    """x if x > 0 else negative_slope * x.

    Args:
        negative_slope: slope for x <= 0, default 0.01 (as torch; torch's ``inplace`` is not accepted).

    Shapes:
        ``forward(x)``: x (...) -> y of x's shape and float dtype; ``backward(dy)``: dy (y's shape) -> dx.

    Raises:
        DTypeError: a non-floating input or ``dy``.
        ShapeError: a ``dy`` whose shape is not y's.
    """

    maths = (m.leaky_relu_forward, m.leaky_relu_backward)

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = check_number(negative_slope, "LeakyReLU", "negative_slope")

    def options(self, x: Any) -> dict[str, Any]:
        return {"negative_slope": self.negative_slope}


class ELU(Module):
    """x if x > 0 else alpha (exp(x) - 1).

    Args:
        alpha: scale of the negative branch, default 1.0 (as torch; torch's ``inplace`` is not accepted).

    Shapes:
        ``forward(x)``: x (...) -> y of x's shape and float dtype; ``backward(dy)``: dy (y's shape) -> dx.

    Raises:
        DTypeError: a non-floating input or ``dy``.
        ShapeError: a ``dy`` whose shape is not y's.
    """

    maths = (m.elu_forward, m.elu_backward)

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = check_number(alpha, "ELU", "alpha")

    def options(self, x: Any) -> dict[str, Any]:
        return {"alpha": self.alpha}


class SELU(Module):
    """scale * ELU(x, alpha) with the self-normalising constants of Klambauer et al.

    Takes no arguments (torch's ``inplace`` is not accepted).

    Shapes:
        ``forward(x)``: x (...) -> y of x's shape and float dtype; ``backward(dy)``: dy (y's shape) -> dx.

    Raises:
        DTypeError: a non-floating input or ``dy``.
        ShapeError: a ``dy`` whose shape is not y's.
    """

    maths = (m.selu_forward, m.selu_backward)


class GELU(Module):
    """x Phi(x); ``approximate="tanh"`` uses 0.5 x (1 + tanh(sqrt(2/pi)(x + 0.044715 x^3))).

    Args:
        approximate: ``"none"`` (default, exact erf form) or ``"tanh"``, as torch.

    Shapes:
        ``forward(x)``: x (...) -> y of x's shape and float dtype; ``backward(dy)``: dy (y's shape) -> dx.

    Raises:
        ConfigError: ``approximate`` is neither ``"none"`` nor ``"tanh"``.
        DTypeError: a non-floating input or ``dy``.
        ShapeError: a ``dy`` whose shape is not y's.
    """

    maths = (m.gelu_forward, m.gelu_backward)

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ConfigError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def options(self, x: Any) -> dict[str, Any]:
        return {"approximate": self.approximate}


class SiLU(Module):
    """x * sigmoid(x) (a.k.a. swish).

    Takes no arguments (torch's ``inplace`` is not accepted).

    Shapes:
        ``forward(x)``: x (...) -> y of x's shape and float dtype; ``backward(dy)``: dy (y's shape) -> dx.

    Raises:
        DTypeError: a non-floating input or ``dy``.
        ShapeError: a ``dy`` whose shape is not y's.
    """

    maths = (m.silu_forward, m.silu_backward)


class Mish(Module):
    """x * tanh(softplus(x)).

    Takes no arguments (torch's ``inplace`` is not accepted).

    Shapes:
        ``forward(x)``: x (...) -> y of x's shape and float dtype; ``backward(dy)``: dy (y's shape) -> dx.

    Raises:
        DTypeError: a non-floating input or ``dy``.
        ShapeError: a ``dy`` whose shape is not y's.
    """

    maths = (m.mish_forward, m.mish_backward)


class Hardtanh(Module):
    """clip(x, min_val, max_val).

    Args:
        min_val: lower clip value, default -1.0 (as torch).
        max_val: upper clip value, default 1.0 (as torch); must exceed ``min_val``. Torch's ``inplace``
            and deprecated ``min_value``/``max_value`` are not accepted.

    Shapes:
        ``forward(x)``: x (...) -> y of x's shape and float dtype; ``backward(dy)``: dy (y's shape) -> dx.

    Raises:
        ConfigError: ``min_val`` is not below ``max_val``.
        DTypeError: a non-floating input or ``dy``.
        ShapeError: a ``dy`` whose shape is not y's.
    """

    maths = (m.hardtanh_forward, m.hardtanh_backward)

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0) -> None:
        super().__init__()
        min_val = check_number(min_val, "Hardtanh", "min_val")
        max_val = check_number(max_val, "Hardtanh", "max_val")
        if not min_val < max_val:
            raise ConfigError(f"Hardtanh: min_val ({min_val}) must be below max_val ({max_val})")
        self.min_val, self.max_val = min_val, max_val

    def options(self, x: Any) -> dict[str, Any]:
        return {"min_val": self.min_val, "max_val": self.max_val}


class Sigmoid(Module):
    """1 / (1 + exp(-x)).

    Takes no arguments, as torch.

    Shapes:
        ``forward(x)``: x (...) -> y of x's shape and float dtype; ``backward(dy)``: dy (y's shape) -> dx.

    Raises:
        DTypeError: a non-floating input or ``dy``.
        ShapeError: a ``dy`` whose shape is not y's.
    """

    maths = (m.sigmoid_forward, m.sigmoid_backward)


class Tanh(Module):
    """tanh(x).

    Takes no arguments, as torch.

    Shapes:
        ``forward(x)``: x (...) -> y of x's shape and float dtype; ``backward(dy)``: dy (y's shape) -> dx.

    Raises:
        DTypeError: a non-floating input or ``dy``.
        ShapeError: a ``dy`` whose shape is not y's.
    """

    maths = (m.tanh_forward, m.tanh_backward)


class Softplus(Module):
    """log(1 + exp(beta x)) / beta; x itself where beta x > threshold.

    Args:
        beta: sharpness, default 1.0 (as torch).
        threshold: where ``beta * x`` exceeds it the output is x (linear), default 20.0 (as torch).

    Shapes:
        ``forward(x)``: x (...) -> y of x's shape and float dtype; ``backward(dy)``: dy (y's shape) -> dx.

    Raises:
        DTypeError: a non-floating input or ``dy``.
        ShapeError: a ``dy`` whose shape is not y's.
    """

    maths = (m.softplus_forward, m.softplus_backward)

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta = check_number(beta, "Softplus", "beta")
        self.threshold = check_number(threshold, "Softplus", "threshold")

    def options(self, x: Any) -> dict[str, Any]:
        return {"beta": self.beta, "threshold": self.threshold}


class ReLU6(Module):
    """min(max(x, 0), 6); gradient 0 at both kinks (as torch).

    Takes no arguments (torch's ``inplace`` is not accepted).

    Shapes:
        ``forward(x)``: x (...) -> y of x's shape and float dtype; ``backward(dy)``: dy (y's shape) -> dx.

    Raises:
        DTypeError: a non-floating input or ``dy``.
        ShapeError: a ``dy`` whose shape is not y's.
    """

    maths = (pw.relu6_forward, pw.relu6_backward)


class PReLU(Module):
    """max(x, 0) + a min(x, 0) with a learnable slope ``weight`` (as ``torch.nn.PReLU``).

    ``num_parameters`` is 1 (one slope shared by every element) or the number of channels C
    (axis 1 of an input of shape (N, C, ...)), each slope initialised to ``init``.
    weight: (num_parameters,). x: any shape (N, C, ...) when num_parameters > 1 -> same shape.

    Args:
        num_parameters: number of slopes, 1 (default) or the channel count C (an int >= 1), as torch.
        init: initial value of every slope, default 0.25 (as torch); a finite number.
        dtype: dtype of ``weight``, default ``"float32"``.

    Shapes:
        ``forward(x)``: x (...) when num_parameters is 1, else (N, C, ...) -> y of x's shape.
        ``backward(dy)``: dy (y's shape) -> dx; adds d(weight) (num_parameters,) to the gradient.

    Raises:
        ConfigError: ``num_parameters`` not an integer >= 1, or ``init`` not a finite number.
        ShapeError: num_parameters > 1 and the input's axis 1 is not num_parameters (or the input has
            fewer than 2 axes); a ``dy`` whose shape is not y's.
        DTypeError: a non-floating input or ``dy``.
    """

    maths = (pw.prelu_forward, pw.prelu_backward)
    maths_params = ("weight",)

    def __init__(self, num_parameters: int = 1, init: float = 0.25, dtype: str = "float32") -> None:
        super().__init__()
        self.num_parameters = check_size(num_parameters, "PReLU", "num_parameters")
        check_parameter_count(self.num_parameters, "PReLU")
        self.weight = Param(np.full(self.num_parameters, check_number(init, "PReLU", "init"), dtype=dtype))

    def check_input(self, x: Any) -> Any:
        x = check_array(x, "PReLU")
        c = self.num_parameters
        if c > 1 and (x.ndim < 2 or x.shape[1] != c):
            raise ShapeError(f"PReLU: num_parameters={c} needs input of shape (N, {c}, ...), got shape {tuple(x.shape)}")
        return x


class Hardsigmoid(Module):
    """min(max(x + 3, 0), 6) / 6; gradient 0 at x = +-3 (as torch).

    Takes no arguments (torch's ``inplace`` is not accepted).

    Shapes:
        ``forward(x)``: x (...) -> y of x's shape and float dtype; ``backward(dy)``: dy (y's shape) -> dx.

    Raises:
        DTypeError: a non-floating input or ``dy``.
        ShapeError: a ``dy`` whose shape is not y's.
    """

    maths = (pw.hardsigmoid_forward, pw.hardsigmoid_backward)


class Hardswish(Module):
    """x min(max(x + 3, 0), 6) / 6 (MobileNetV3); gradient 0 at x = -3 and 1 at x = 3 (as torch).

    Takes no arguments (torch's ``inplace`` is not accepted).

    Shapes:
        ``forward(x)``: x (...) -> y of x's shape and float dtype; ``backward(dy)``: dy (y's shape) -> dx.

    Raises:
        DTypeError: a non-floating input or ``dy``.
        ShapeError: a ``dy`` whose shape is not y's.
    """

    maths = (pw.hardswish_forward, pw.hardswish_backward)


class LogSigmoid(Module):
    """log(1 / (1 + exp(-x))), computed as -softplus(-x): finite for any x.

    Takes no arguments, as torch.

    Shapes:
        ``forward(x)``: x (...) -> y of x's shape and float dtype; ``backward(dy)``: dy (y's shape) -> dx.

    Raises:
        DTypeError: a non-floating input or ``dy``.
        ShapeError: a ``dy`` whose shape is not y's.
    """

    maths = (pw.logsigmoid_forward, pw.logsigmoid_backward)


class Softsign(Module):
    """x / (1 + |x|).

    Takes no arguments, as torch.

    Shapes:
        ``forward(x)``: x (...) -> y of x's shape and float dtype; ``backward(dy)``: dy (y's shape) -> dx.

    Raises:
        DTypeError: a non-floating input or ``dy``.
        ShapeError: a ``dy`` whose shape is not y's.
    """

    maths = (pw.softsign_forward, pw.softsign_backward)


class CELU(Module):
    """max(x, 0) + min(0, alpha (exp(x / alpha) - 1)); ``alpha`` must not be 0.

    Args:
        alpha: the CELU scale, default 1.0 (as torch); a finite, non-zero number (torch's ``inplace``
            is not accepted).

    Shapes:
        ``forward(x)``: x (...) -> y of x's shape and float dtype; ``backward(dy)``: dy (y's shape) -> dx.

    Raises:
        ConfigError: ``alpha`` is 0 or not a finite number.
        DTypeError: a non-floating input or ``dy``.
        ShapeError: a ``dy`` whose shape is not y's.
    """

    maths = (pw.celu_forward, pw.celu_backward)

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = check_number(alpha, "CELU", "alpha")
        if self.alpha == 0.0:
            raise ConfigError("CELU: alpha must not be 0 (it divides x)")

    def options(self, x: Any) -> dict[str, Any]:
        return {"alpha": self.alpha}


class _AlongDim(Module):
    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = int(dim)

    def check_input(self, x: Any) -> Any:
        name = type(self).__name__
        x = check_array(x, name, ndim_min=1)
        if not -x.ndim <= self.dim < x.ndim:
            raise ShapeError(f"{name}: dim={self.dim} is out of range for input of shape {tuple(x.shape)}")
        return x

    def options(self, x: Any) -> dict[str, Any]:
        return {"dim": self.dim}


class Softmax(_AlongDim):
    """exp(x) / sum(exp(x)) along ``dim``; backward is the full Jacobian-vector product.

    Args:
        dim: the axis it is taken along, default -1 (torch's default ``dim=None`` picks an axis from
            the input's rank with a deprecation warning; here the last axis is always the default).

    Shapes:
        ``forward(x)``: x (...) with at least one axis -> y of x's shape; ``backward(dy)``: dy -> dx.

    Raises:
        ShapeError: ``dim`` out of range for the input, or a ``dy`` whose shape is not y's.
        DTypeError: a non-floating input or ``dy``.
    """

    maths = (m.softmax_forward, m.softmax_backward)


class LogSoftmax(_AlongDim):
    """x - logsumexp(x) along ``dim``.

    Args:
        dim: the axis it is taken along, default -1 (torch's default ``dim=None`` picks an axis from
            the input's rank with a deprecation warning; here the last axis is always the default).

    Shapes:
        ``forward(x)``: x (...) with at least one axis -> y of x's shape; ``backward(dy)``: dy -> dx.

    Raises:
        ShapeError: ``dim`` out of range for the input, or a ``dy`` whose shape is not y's.
        DTypeError: a non-floating input or ``dy``.
    """

    maths = (m.log_softmax_forward, m.log_softmax_backward)


class GLU(_AlongDim):
    """a * sigmoid(b), with x split in halves [a, b] along ``dim``: (..., 2H, ...) -> (..., H, ...).

    Args:
        dim: the axis that is halved, default -1 (as torch).

    Shapes:
        ``forward(x)``: x (..., 2H, ...) -> y (..., H, ...) (halved along ``dim``); ``backward(dy)``:
        dy (y's shape) -> dx (x's shape).

    Raises:
        ShapeError: ``dim`` out of range for the input, an odd size along ``dim``, or a ``dy`` whose
            shape is not y's.
        DTypeError: a non-floating input or ``dy``.
    """

    maths = (pw.glu_forward, pw.glu_backward)

    def check_input(self, x: Any) -> Any:
        x = super().check_input(x)
        if x.shape[self.dim] % 2:
            raise ShapeError(f"GLU: the size along dim={self.dim} must be even, got shape {tuple(x.shape)}")
        return x


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
    "relu6": ReLU6,
    "prelu": PReLU,
    "hardsigmoid": Hardsigmoid,
    "hardswish": Hardswish,
    "log_sigmoid": LogSigmoid,
    "softsign": Softsign,
    "celu": CELU,
    "glu": GLU,
}


#: Helpers that used to sit beside the classes; now in :mod:`plait.layers.functional` (one release).
MOVED_TO_FUNCTIONAL = ("erfc", "sigmoid", "softplus")


def moved_to_functional(module: str, name: str) -> Any:
    """The :mod:`.functional` function for a name that moved there, with a DeprecationWarning."""
    if name not in MOVED_TO_FUNCTIONAL:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    warnings.warn(f"{module}.{name} moved to plait.layers.functional.{name} (import plait.layers.functional as F; "
                  f"F.{name}); the old name goes in the next release", DeprecationWarning, stacklevel=3)
    from . import functional  # noqa: PLC0415 - functional imports this module

    return getattr(functional, name)


def __getattr__(name: str) -> Any:
    return moved_to_functional(__name__, name)
