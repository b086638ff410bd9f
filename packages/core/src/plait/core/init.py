"""``torch.nn.init``'s in-place functions, so initialisation recipes port unchanged::

    from plait.core import init

    def init_weights(m):
        if isinstance(m, Linear):
            init.xavier_uniform_(m.weight)
            init.zeros_(m.bias)

    model.apply(init_weights)

Each takes a :class:`~plait.core.Param` or an array (NumPy or CuPy), overwrites its values
in place (keeping its dtype and device) and returns it. ``generator`` is a NumPy
``Generator`` or a seed (default: Plait's global generator, see ``manual_seed``). The
formulas are those of :mod:`plait.core.initializers` with torch's fan rule
(``fan_in = shape[1] * prod(shape[2:])``, ``fan_out = shape[0] * prod(shape[2:])``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .backend import get_array_module
from .errors import ConfigError
from .initializers import (
    Constant,
    KaimingNormal,
    KaimingUniform,
    Normal,
    Orthogonal,
    Uniform,
    XavierNormal,
    XavierUniform,
    calculate_gain,
    compute_fans,
)
from .param import Param
from .random import get_rng

__all__ = [
    "calculate_gain",
    "constant_",
    "kaiming_normal_",
    "kaiming_uniform_",
    "normal_",
    "ones_",
    "orthogonal_",
    "trunc_normal_",
    "uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]

Generator = np.random.Generator | int | None


def _array(tensor: Any, who: str) -> Any:
    data = tensor.data if isinstance(tensor, Param) else tensor
    if not (hasattr(data, "shape") and hasattr(data, "dtype")) or not getattr(getattr(data, "flags", None), "writeable", True):
        raise ConfigError(f"init.{who}: expected a Param or a writeable array, got {type(tensor).__name__}")
    return data


def _fill(tensor: Any, init: Any, who: str, generator: Generator, need_fans: bool = False) -> Any:
    """Draw ``init``'s values for ``tensor``'s shape (on the host) and write them in place."""
    data = _array(tensor, who)
    shape = tuple(data.shape)
    if need_fans and len(shape) < 2:
        raise ConfigError(f"init.{who}: fan in and fan out need a tensor with at least 2 dimensions, got shape {shape}")
    fan_in, fan_out = compute_fans(shape) if shape else (1, 1)
    host_dtype = np.float64 if get_array_module(data) is not np else data.dtype
    values = init(shape, fan_in, fan_out, get_rng(generator), host_dtype)
    data[...] = values if get_array_module(data) is np else get_array_module(data).asarray(values)
    return tensor


def uniform_(tensor: Any, a: float = 0.0, b: float = 1.0, generator: Generator = None) -> Any:
    """Fill with U(a, b).

    Args:
        tensor: a Param (its ``data`` is filled) or a writeable NumPy/CuPy array, any shape;
            filled in place (dtype and device kept) and returned.
        a: default 0.0; the lower bound.
        b: default 1.0; the upper bound (``a <= b``).
        generator: default None (Plait's global generator, see ``manual_seed``); a NumPy
            ``Generator`` or an int seed. torch's ``generator`` is a ``torch.Generator``.

    Raises:
        ConfigError: ``tensor`` is neither a Param nor a writeable array, or ``a > b``.
    """
    return _fill(tensor, Uniform(a, b), "uniform_", generator)


def normal_(tensor: Any, mean: float = 0.0, std: float = 1.0, generator: Generator = None) -> Any:
    """Fill with N(mean, std^2).

    Args:
        tensor: a Param (its ``data`` is filled) or a writeable NumPy/CuPy array, any shape;
            filled in place (dtype and device kept) and returned.
        mean: default 0.0.
        std: default 1.0; the standard deviation (>= 0).
        generator: default None (Plait's global generator, see ``manual_seed``); a NumPy
            ``Generator`` or an int seed. torch's ``generator`` is a ``torch.Generator``.

    Raises:
        ConfigError: ``tensor`` is neither a Param nor a writeable array, or ``std < 0``.
    """
    if std < 0:
        raise ConfigError(f"init.normal_: std must be >= 0, got {std}")
    return _fill(tensor, Normal(mean, std), "normal_", generator)


def constant_(tensor: Any, val: float) -> Any:
    """Fill with ``val``.

    Args:
        tensor: a Param (its ``data`` is filled) or a writeable NumPy/CuPy array, any shape;
            filled in place (dtype and device kept) and returned.
        val: the value written everywhere.

    Raises:
        ConfigError: ``tensor`` is neither a Param nor a writeable array.
    """
    return _fill(tensor, Constant(val), "constant_", None)


def zeros_(tensor: Any) -> Any:
    """Fill with 0.

    Args:
        tensor: a Param (its ``data`` is filled) or a writeable NumPy/CuPy array, any shape;
            filled in place (dtype and device kept) and returned.

    Raises:
        ConfigError: ``tensor`` is neither a Param nor a writeable array.
    """
    return constant_(tensor, 0.0)


def ones_(tensor: Any) -> Any:
    """Fill with 1.

    Args:
        tensor: a Param (its ``data`` is filled) or a writeable NumPy/CuPy array, any shape;
            filled in place (dtype and device kept) and returned.

    Raises:
        ConfigError: ``tensor`` is neither a Param nor a writeable array.
    """
    return constant_(tensor, 1.0)


def xavier_uniform_(tensor: Any, gain: float = 1.0, generator: Generator = None) -> Any:
    """Glorot: U(-a, a), ``a = gain * sqrt(6 / (fan_in + fan_out))``.

    Args:
        tensor: a Param (its ``data`` is filled) or a writeable NumPy/CuPy array, any shape;
            filled in place (dtype and device kept) and returned.
        gain: default 1.0; the scale (see :func:`calculate_gain`).
        generator: default None (Plait's global generator, see ``manual_seed``); a NumPy
            ``Generator`` or an int seed. torch's ``generator`` is a ``torch.Generator``.

    Raises:
        ConfigError: ``tensor`` is neither a Param nor a writeable array, or has fewer than 2
            dimensions (fan in and fan out need them).
    """
    return _fill(tensor, XavierUniform(gain), "xavier_uniform_", generator, need_fans=True)


def xavier_normal_(tensor: Any, gain: float = 1.0, generator: Generator = None) -> Any:
    """Glorot: N(0, std^2), ``std = gain * sqrt(2 / (fan_in + fan_out))``.

    Args:
        tensor: a Param (its ``data`` is filled) or a writeable NumPy/CuPy array, any shape;
            filled in place (dtype and device kept) and returned.
        gain: default 1.0; the scale (see :func:`calculate_gain`).
        generator: default None (Plait's global generator, see ``manual_seed``); a NumPy
            ``Generator`` or an int seed. torch's ``generator`` is a ``torch.Generator``.

    Raises:
        ConfigError: ``tensor`` is neither a Param nor a writeable array, or has fewer than 2
            dimensions (fan in and fan out need them).
    """
    return _fill(tensor, XavierNormal(gain), "xavier_normal_", generator, need_fans=True)


def kaiming_uniform_(
    tensor: Any, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu", generator: Generator = None
) -> Any:
    """He: U(-b, b), ``b = calculate_gain(nonlinearity, a) * sqrt(3 / fan)``, fan by ``mode``.

    Args:
        tensor: a Param (its ``data`` is filled) or a writeable NumPy/CuPy array, any shape;
            filled in place (dtype and device kept) and returned.
        a: default 0.0; the negative slope of the leaky ReLU that follows (used when
            ``nonlinearity`` is ``"leaky_relu"``; ``a=0`` gives ReLU's gain sqrt(2)).
        mode: default ``"fan_in"`` (keeps the forward variance); ``"fan_out"`` keeps the
            backward one.
        nonlinearity: default ``"leaky_relu"``; a name :func:`calculate_gain` knows.
        generator: default None (Plait's global generator, see ``manual_seed``); a NumPy
            ``Generator`` or an int seed. torch's ``generator`` is a ``torch.Generator``.

    Raises:
        ConfigError: ``tensor`` is neither a Param nor a writeable array, or has fewer than 2
            dimensions (fan in and fan out need them), an unknown ``mode`` or ``nonlinearity``, or a zero fan.
    """
    return _fill(tensor, KaimingUniform(a, mode, nonlinearity), "kaiming_uniform_", generator, need_fans=True)


def kaiming_normal_(
    tensor: Any, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu", generator: Generator = None
) -> Any:
    """He: N(0, std^2), ``std = calculate_gain(nonlinearity, a) / sqrt(fan)``, fan by ``mode``.

    Args:
        tensor: a Param (its ``data`` is filled) or a writeable NumPy/CuPy array, any shape;
            filled in place (dtype and device kept) and returned.
        a: default 0.0; the negative slope of the leaky ReLU that follows (used when
            ``nonlinearity`` is ``"leaky_relu"``).
        mode: default ``"fan_in"``; or ``"fan_out"``.
        nonlinearity: default ``"leaky_relu"``; a name :func:`calculate_gain` knows.
        generator: default None (Plait's global generator, see ``manual_seed``); a NumPy
            ``Generator`` or an int seed. torch's ``generator`` is a ``torch.Generator``.

    Raises:
        ConfigError: ``tensor`` is neither a Param nor a writeable array, or has fewer than 2
            dimensions (fan in and fan out need them), an unknown ``mode`` or ``nonlinearity``, or a zero fan.
    """
    return _fill(tensor, KaimingNormal(a, mode, nonlinearity), "kaiming_normal_", generator, need_fans=True)


def orthogonal_(tensor: Any, gain: float = 1.0, generator: Generator = None) -> Any:
    """A (semi-)orthogonal matrix (``shape[0]`` rows, the rest flattened) times ``gain``.

    Args:
        tensor: a Param (its ``data`` is filled) or a writeable NumPy/CuPy array, any shape;
            filled in place (dtype and device kept) and returned.
        gain: default 1.0; the scale.
        generator: default None (Plait's global generator, see ``manual_seed``); a NumPy
            ``Generator`` or an int seed. torch's ``generator`` is a ``torch.Generator``.

    Raises:
        ConfigError: ``tensor`` is neither a Param nor a writeable array, or has fewer than 2
            dimensions (fan in and fan out need them).
    """
    return _fill(tensor, Orthogonal(gain), "orthogonal_", generator)


class _TruncNormal:
    """N(mean, std^2) restricted to [a, b] (absolute bounds), by rejection."""

    def __init__(self, mean: float, std: float, a: float, b: float) -> None:
        if not std > 0 or not a < b:
            raise ConfigError(f"init.trunc_normal_: need std > 0 and a < b, got std={std}, a={a}, b={b}")
        mass = 0.5 * (math.erf((b - mean) / (std * math.sqrt(2))) - math.erf((a - mean) / (std * math.sqrt(2))))
        if mass < 1e-3:
            raise ConfigError(f"init.trunc_normal_: [a, b] = [{a}, {b}] holds only {mass:.2g} of N({mean}, {std}^2)")
        self.mean, self.std, self.a, self.b = mean, std, a, b

    def __call__(self, shape: tuple[int, ...], fan_in: int, fan_out: int, rng: np.random.Generator, dtype: Any) -> np.ndarray:
        out = rng.normal(self.mean, self.std, size=shape)
        bad = (out < self.a) | (out > self.b)
        while bad.any():  # each round keeps at least 0.1% of what is left (checked above)
            out[bad] = rng.normal(self.mean, self.std, size=int(bad.sum()))
            bad = (out < self.a) | (out > self.b)
        return out.astype(dtype)


def trunc_normal_(
    tensor: Any, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0, generator: Generator = None
) -> Any:
    """N(mean, std^2) truncated to ``[a, b]`` (absolute bounds, as torch's).

    Drawn by rejection (torch uses the inverse CDF), so values differ from torch's for a seed.

    Args:
        tensor: a Param (its ``data`` is filled) or a writeable NumPy/CuPy array, any shape;
            filled in place (dtype and device kept) and returned.
        mean: default 0.0.
        std: default 1.0 (> 0).
        a: default -2.0; the lower bound (absolute, not in units of ``std``).
        b: default 2.0; the upper bound.
        generator: default None (Plait's global generator, see ``manual_seed``); a NumPy
            ``Generator`` or an int seed. torch's ``generator`` is a ``torch.Generator``.

    Raises:
        ConfigError: ``tensor`` is neither a Param nor a writeable array, ``std <= 0``, ``a >= b``, or
            ``[a, b]`` holding under 0.1% of the distribution's mass.
    """
    return _fill(tensor, _TruncNormal(float(mean), float(std), float(a), float(b)), "trunc_normal_", generator)
