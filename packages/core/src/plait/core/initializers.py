"""Weight initializers, with the formulas of ``torch.nn.init``.

Each class is configured once and then called as an :class:`~plait.core.protocols.InitializerProtocol`::

    init = KaimingUniform(a=math.sqrt(5))
    w = init((out, inp), fan_in=inp, fan_out=out, rng=get_rng(), dtype=np.float32)

``fan_in``/``fan_out`` are passed by the layer (see :func:`compute_fans` for torch's rule:
``fan_in = shape[1] * prod(shape[2:])``, ``fan_out = shape[0] * prod(shape[2:])``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .checks import check_number
from .errors import ConfigError

__all__ = [
    "Constant",
    "KaimingNormal",
    "KaimingUniform",
    "LecunNormal",
    "Normal",
    "Ones",
    "Orthogonal",
    "Uniform",
    "XavierNormal",
    "XavierUniform",
    "Zeros",
    "calculate_gain",
    "compute_fans",
    "get_initializer",
    "INITIALIZERS",
]

Shape = Sequence[int]


def compute_fans(shape: Shape) -> tuple[int, int]:
    """torch's fan rule for a weight of ``shape`` = (out, in, *kernel).

    Args:
        shape: the weight's shape; ``fan_in = shape[1] * prod(shape[2:])``, ``fan_out =
            shape[0] * prod(shape[2:])``; a 1-D shape ``(n,)`` gives ``(n, n)``, ``()``
            gives ``(1, 1)``.

    Returns:
        ``(fan_in, fan_out)``.
    """
    if len(shape) < 2:
        n = int(shape[0]) if shape else 1
        return n, n
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return int(shape[1]) * receptive, int(shape[0]) * receptive


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for ``nonlinearity`` (as ``torch.nn.init.calculate_gain``).

    Args:
        nonlinearity: ``"linear"``, ``"conv1d"``, ``"conv2d"``, ``"conv3d"``,
            ``"conv_transpose1d"``, ``"conv_transpose2d"``, ``"sigmoid"``, ``"identity"``
            (1), ``"tanh"`` (5/3), ``"relu"`` (sqrt 2), ``"leaky_relu"``
            (sqrt(2 / (1 + slope^2))) or ``"selu"`` (3/4).
        param: default None; the leaky ReLU's negative slope (None means 0.01).

    Raises:
        ConfigError: an unknown ``nonlinearity``.
    """
    linear = {"linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "sigmoid", "identity"}
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1.0 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4.0
    raise ConfigError(f"calculate_gain: unknown nonlinearity {nonlinearity!r}")


def _fan(mode: str, fan_in: int, fan_out: int, who: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ConfigError(f"{who}: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan = fan_in if mode == "fan_in" else fan_out
    if fan <= 0:
        raise ConfigError(f"{who}: cannot initialise a weight with {mode}={fan}")
    return fan


class _Init:
    """Shared repr/config for initializer classes."""

    def config(self) -> dict[str, Any]:
        return {"type": _NAMES[type(self)], "kind": "initializers", **vars(self)}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class Constant(_Init):
    """Every element ``value`` (registered as ``"constant"``).

    Args:
        value: default 0.0; the value, cast to float.
    """

    def __init__(self, value: float = 0.0) -> None:
        self.value = float(value)

    def __call__(self, shape: Shape, fan_in: int, fan_out: int, rng: np.random.Generator, dtype: Any) -> np.ndarray:
        return np.full(tuple(shape), self.value, dtype=dtype)


class Zeros(Constant):
    def __init__(self) -> None:
        super().__init__(0.0)

    def config(self) -> dict[str, Any]:
        return {"type": "zeros", "kind": "initializers"}


class Ones(Constant):
    def __init__(self) -> None:
        super().__init__(1.0)

    def config(self) -> dict[str, Any]:
        return {"type": "ones", "kind": "initializers"}


class Normal(_Init):
    """N(mean, std^2) (registered as ``"normal"``).

    Args:
        mean: default 0.0.
        std: default 1.0; the standard deviation, >= 0.

    Raises:
        ConfigError: a mean that is not a finite real number, or a negative or non-finite std.
    """

    def __init__(self, mean: float = 0.0, std: float = 1.0) -> None:
        self.mean = check_number(mean, "Normal", "mean")
        self.std = check_number(std, "Normal", "std", low=0.0)

    def __call__(self, shape: Shape, fan_in: int, fan_out: int, rng: np.random.Generator, dtype: Any) -> np.ndarray:
        return rng.normal(self.mean, self.std, size=tuple(shape)).astype(dtype)


class Uniform(_Init):
    """U(a, b) (registered as ``"uniform"``).

    Args:
        a: default 0.0; the lower bound.
        b: default 1.0; the upper bound.

    Raises:
        ConfigError: ``b < a``.
    """

    def __init__(self, a: float = 0.0, b: float = 1.0) -> None:
        if b < a:
            raise ConfigError(f"Uniform: need a <= b, got a={a}, b={b}")
        self.a, self.b = float(a), float(b)

    def __call__(self, shape: Shape, fan_in: int, fan_out: int, rng: np.random.Generator, dtype: Any) -> np.ndarray:
        return rng.uniform(self.a, self.b, size=tuple(shape)).astype(dtype)


class XavierUniform(_Init):
    """U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out)) (registered as ``"xavier_uniform"``).

    Args:
        gain: default 1.0; the scale (see :func:`calculate_gain`).
    """

    def __init__(self, gain: float = 1.0) -> None:
        self.gain = float(gain)

    def __call__(self, shape: Shape, fan_in: int, fan_out: int, rng: np.random.Generator, dtype: Any) -> np.ndarray:
        bound = self.gain * math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-bound, bound, size=tuple(shape)).astype(dtype)


class XavierNormal(_Init):
    """N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out)) (registered as ``"xavier_normal"``).

    Args:
        gain: default 1.0; the scale (see :func:`calculate_gain`).
    """

    def __init__(self, gain: float = 1.0) -> None:
        self.gain = float(gain)

    def __call__(self, shape: Shape, fan_in: int, fan_out: int, rng: np.random.Generator, dtype: Any) -> np.ndarray:
        std = self.gain * math.sqrt(2.0 / (fan_in + fan_out))
        return rng.normal(0.0, std, size=tuple(shape)).astype(dtype)


class KaimingUniform(_Init):
    """U(-b, b), b = gain * sqrt(3 / fan); torch's Linear/Conv default is a = sqrt(5).

    Registered as ``"kaiming_uniform"``; ``gain = calculate_gain(nonlinearity, a)``.

    Args:
        a: default 0.0; the negative slope of the leaky ReLU that follows.
        mode: default ``"fan_in"``; or ``"fan_out"``.
        nonlinearity: default ``"leaky_relu"``; a name :func:`calculate_gain` knows.

    Raises:
        ConfigError: an unknown ``mode`` or ``nonlinearity``.
    """

    def __init__(self, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> None:
        _fan(mode, 1, 1, "KaimingUniform")
        calculate_gain(nonlinearity, a)
        self.a, self.mode, self.nonlinearity = float(a), mode, nonlinearity

    def __call__(self, shape: Shape, fan_in: int, fan_out: int, rng: np.random.Generator, dtype: Any) -> np.ndarray:
        fan = _fan(self.mode, fan_in, fan_out, "KaimingUniform")
        bound = calculate_gain(self.nonlinearity, self.a) * math.sqrt(3.0 / fan)
        return rng.uniform(-bound, bound, size=tuple(shape)).astype(dtype)


class KaimingNormal(_Init):
    """N(0, std^2), std = gain / sqrt(fan).

    Registered as ``"kaiming_normal"``; ``gain = calculate_gain(nonlinearity, a)``.

    Args:
        a: default 0.0; the negative slope of the leaky ReLU that follows.
        mode: default ``"fan_in"``; or ``"fan_out"``.
        nonlinearity: default ``"leaky_relu"``; a name :func:`calculate_gain` knows.

    Raises:
        ConfigError: an unknown ``mode`` or ``nonlinearity``.
    """

    def __init__(self, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> None:
        _fan(mode, 1, 1, "KaimingNormal")
        calculate_gain(nonlinearity, a)
        self.a, self.mode, self.nonlinearity = float(a), mode, nonlinearity

    def __call__(self, shape: Shape, fan_in: int, fan_out: int, rng: np.random.Generator, dtype: Any) -> np.ndarray:
        fan = _fan(self.mode, fan_in, fan_out, "KaimingNormal")
        std = calculate_gain(self.nonlinearity, self.a) / math.sqrt(fan)
        return rng.normal(0.0, std, size=tuple(shape)).astype(dtype)


class Orthogonal(_Init):
    """A (semi-)orthogonal matrix from the QR of a Gaussian, rows = shape[0], cols = prod(rest).

    Registered as ``"orthogonal"``; a weight with fewer than 2 dimensions is a ConfigError
    when drawn.

    Args:
        gain: default 1.0; the scale.
    """

    def __init__(self, gain: float = 1.0) -> None:
        self.gain = float(gain)

    def __call__(self, shape: Shape, fan_in: int, fan_out: int, rng: np.random.Generator, dtype: Any) -> np.ndarray:
        if len(shape) < 2:
            raise ConfigError(f"Orthogonal: needs a weight with at least 2 dimensions, got shape {tuple(shape)}")
        rows = int(shape[0])
        cols = int(np.prod(shape[1:]))
        flat = rng.normal(size=(max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(flat)
        q *= np.sign(np.diag(r))  # make the decomposition unique (uniform over O(n))
        if rows < cols:
            q = q.T
        return (self.gain * q).reshape(tuple(shape)).astype(dtype)


class LecunNormal(_Init):
    """Truncated normal (at 2 std) with std = sqrt(1 / fan_in), as Keras' ``lecun_normal``."""

    def __call__(self, shape: Shape, fan_in: int, fan_out: int, rng: np.random.Generator, dtype: Any) -> np.ndarray:
        std = math.sqrt(1.0 / max(fan_in, 1)) / 0.87962566103423978  # std of N(0,1) truncated at +-2
        out = rng.normal(0.0, std, size=tuple(shape))
        bad = np.abs(out) > 2 * std
        while bad.any():
            out[bad] = rng.normal(0.0, std, size=int(bad.sum()))
            bad = np.abs(out) > 2 * std
        return out.astype(dtype)


INITIALIZERS: dict[str, type] = {
    "zeros": Zeros,
    "ones": Ones,
    "constant": Constant,
    "normal": Normal,
    "uniform": Uniform,
    "xavier_uniform": XavierUniform,
    "xavier_normal": XavierNormal,
    "kaiming_uniform": KaimingUniform,
    "kaiming_normal": KaimingNormal,
    "orthogonal": Orthogonal,
    "lecun_normal": LecunNormal,
}
_NAMES = {cls: name for name, cls in INITIALIZERS.items()}


def get_initializer(spec: Any) -> Any:
    """An initializer from a registered name, a ``{"type": name, ...}`` dict, or a callable.

    Args:
        spec: a name in the ``initializers`` registry (``"xavier_uniform"``), a config dict
            ``{"type": name, **args}``, or a callable ``(shape, fan_in, fan_out, rng, dtype)
            -> array`` (returned as is).

    Raises:
        RegistryError: an unknown name.
        ConfigError: ``spec`` is none of the above, or its arguments are refused.
    """
    from .registry import registry  # noqa: PLC0415

    if isinstance(spec, str):
        return registry.initializers.get(spec)()
    if isinstance(spec, Mapping):
        return registry.build(spec, kind="initializers")
    if callable(spec):
        return spec
    raise ConfigError(f"get_initializer: expected a name, a config dict or a callable, got {spec!r}")
