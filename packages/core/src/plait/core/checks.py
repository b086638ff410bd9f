"""Input validation shared by every component: clear errors, never a numpy traceback.

    x = check_array(x, "Linear", ndim_min=1, last_dim=self.in_features)

raises :class:`ShapeError` / :class:`DTypeError` whose message names the component,
what it expected and what it got.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np

from .backend import get_array_module
from .errors import ConfigError, DTypeError, ShapeError

__all__ = ["check_array", "check_int_array", "check_number", "check_output_grad", "check_parameter_count", "check_same_shape",
           "check_size", "dtype_of"]


def _as_array(x: Any, where: str, what: str) -> Any:
    if isinstance(x, np.ndarray) or type(x).__module__.startswith("cupy"):
        return x
    xp = get_array_module(x)
    try:
        arr = xp.asarray(x)
    except Exception as exc:
        raise DTypeError(f"{where}: {what} must be an array, got {type(x).__name__} ({exc})") from exc
    if arr.dtype == object:
        raise DTypeError(f"{where}: {what} must be a numeric array, got {type(x).__name__} of objects")
    return arr


def _check_ndim(shape: tuple[int, ...], where: str, what: str, ndim: int | Sequence[int] | None, ndim_min: int | None) -> None:
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if len(shape) not in allowed:
            want = " or ".join(f"{n}-D" for n in allowed)
            raise ShapeError(f"{where}: expected {what} to be {want}, got shape {shape}")
    if ndim_min is not None and len(shape) < ndim_min:
        raise ShapeError(f"{where}: expected {what} with at least {ndim_min} dimension(s), got shape {shape}")


def check_array(
    x: Any,
    where: str,
    *,
    what: str = "input",
    ndim: int | Sequence[int] | None = None,
    ndim_min: int | None = None,
    last_dim: int | None = None,
    dims: dict[int, int] | None = None,
    floating: bool = True,
) -> Any:
    """Validate a floating input array and return it (lists are converted).

    ``dims`` maps axis -> required size (negative axes allowed). Integer and bool
    inputs are rejected when ``floating`` (they would silently change the maths);
    complex and object arrays are always rejected.

    Args:
        x: the value to check: a NumPy/CuPy array (returned as is) or a list/number
            (converted with ``asarray`` on its device).
        where: the component named in the error (``"Linear"``).
        what: default ``"input"``; what ``x`` is, in the error (``"target"``).
        ndim: default None (any); the required number of dimensions, or a sequence of the
            allowed ones.
        ndim_min: default None; the least number of dimensions.
        last_dim: default None; the required size of the last axis.
        dims: default None; ``{axis: size}`` further required sizes (negative axes allowed).
        floating: default True (float dtypes only); False accepts any real numeric dtype.

    Returns:
        The array, shape and dtype unchanged.

    Raises:
        DTypeError: ``x`` is not convertible, or has a refused dtype.
        ShapeError: a dimension requirement fails.
    """
    arr = x if type(x) is np.ndarray else _as_array(x, where, what)  # the common case: no call
    kind = arr.dtype.kind
    if kind in "cOUSV" or (floating and kind != "f"):
        expected = "a floating-point array (float32 or float64)" if floating else "a real numeric array"
        raise DTypeError(f"{where}: expected {what} as {expected}, got dtype {arr.dtype}")
    shape = tuple(arr.shape)
    if ndim is not None or ndim_min is not None:
        _check_ndim(shape, where, what, ndim, ndim_min)
    if last_dim is not None and (not shape or shape[-1] != last_dim):
        raise ShapeError(f"{where}: expected {what} with last dimension {last_dim}, got shape {shape}")
    if dims:
        for axis, size in dims.items():
            if shape[axis] != size:
                raise ShapeError(f"{where}: expected {what} with size {size} on axis {axis}, got shape {shape}")
    return arr


def check_int_array(x: Any, where: str, *, what: str = "input", ndim: int | Sequence[int] | None = None,
                    ndim_min: int | None = None, high: int | None = None) -> Any:
    """Validate an integer index array (ids, class labels); optionally all in ``[0, high)``.

    Args:
        x: the array or list to check.
        where: the component named in the error.
        what: default ``"input"``; what ``x`` is, in the error (``"target"``, ``"ids"``).
        ndim: default None (any); the required number of dimensions, or the allowed ones.
        ndim_min: default None; the least number of dimensions.
        high: default None (no range check); every value must lie in ``[0, high)``.

    Returns:
        The integer array, shape and dtype unchanged.

    Raises:
        DTypeError: ``x`` is not an integer array (floats and bools are refused).
        ShapeError: a dimension requirement fails, or a value lies outside ``[0, high)``.
    """
    arr = _as_array(x, where, what)
    if arr.dtype.kind not in "iu":
        raise DTypeError(f"{where}: expected {what} as an integer array, got dtype {arr.dtype}")
    _check_ndim(tuple(arr.shape), where, what, ndim, ndim_min)
    if high is not None and arr.size and bool(((arr < 0) | (arr >= high)).any()):  # one host sync on a GPU
        lo, hi = int(arr.min()), int(arr.max())
        raise ShapeError(f"{where}: {what} values must lie in [0, {high}), got range [{lo}, {hi}]")
    return arr


def check_output_grad(dy: Any, shape: tuple[int, ...], dtype: Any, where: str) -> Any:
    """The gradient handed to ``where.backward``: a float array of the forward output's exact
    ``shape`` (never broadcast), returned in the output's ``dtype`` when that is a float."""
    if type(dy) is not np.ndarray:
        dy = check_array(dy, f"{where}.backward", what="output gradient")
    elif dy.dtype.kind != "f":
        check_array(dy, f"{where}.backward", what="output gradient")
    if dy.shape != shape:
        raise ShapeError(f"{where}.backward: expected output gradient of shape {tuple(shape)}, got {tuple(dy.shape)}")
    return dy if dy.dtype == dtype or dtype.kind != "f" else dy.astype(dtype)


def check_same_shape(a: Any, b: Any, where: str, names: tuple[str, str] = ("input", "target")) -> None:
    """Both arrays have the same shape (no silent broadcasting).

    Args:
        a: the first array.
        b: the second array.
        where: the component named in the error.
        names: default ``("input", "target")``; what ``a`` and ``b`` are, in the error.

    Raises:
        ShapeError: the shapes differ.
    """
    if tuple(a.shape) != tuple(b.shape):
        raise ShapeError(f"{where}: {names[0]} shape {tuple(a.shape)} and {names[1]} shape {tuple(b.shape)} differ")


def dtype_of(value: Any) -> np.dtype:
    """The dtype ``value`` has (arrays) or would get (lists, numbers); object for anything else."""
    dtype = getattr(value, "dtype", None)
    if dtype is not None:
        return np.dtype(dtype)
    try:
        return np.asarray(value).dtype
    except (ValueError, TypeError, OverflowError):  # ragged lists and the like
        return np.dtype(object)


def check_size(value: Any, where: str, what: str, minimum: int | None = 1) -> int:
    """A constructor's size argument as an int >= ``minimum``: bools, floats (4.5 and 4.0 alike),
    strings and anything else that is not an integer are a :class:`ConfigError` naming both.

    Args:
        value: the argument as given.
        where: the component named in the error (``"Linear"``).
        what: the argument's name, in the error (``"in_features"``).
        minimum: default 1; the smallest accepted value (None: any integer, e.g. an axis).

    Returns:
        ``value`` as a Python int.

    Raises:
        ConfigError: ``value`` is not an integer or is below ``minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ConfigError(f"{where}: {what} must be an integer, got {value!r} ({type(value).__name__})")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{where}: {what} must be at least {minimum}, got {value}")
    return int(value)


def check_number(value: Any, where: str, what: str, *, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False) -> float:
    """A constructor's real-valued option as a finite float in the given range.

    Bools, strings, None and anything that is not a real number are a :class:`ConfigError`
    naming the component and the argument (``float("abc")`` would raise a bare ValueError).

    Args:
        value: the argument as given (an int, float or NumPy real scalar).
        where: the component named in the error (``"LeakyReLU"``).
        what: the argument's name, in the error (``"negative_slope"``).
        low: default None (no bound); the smallest accepted value.
        high: default None (no bound); the largest accepted value.
        low_open: default False; ``low`` itself is refused.
        high_open: default False; ``high`` itself is refused.

    Returns:
        ``value`` as a Python float.

    Raises:
        ConfigError: ``value`` is not a real number, is not finite, or is out of range.
    """
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ConfigError(f"{where}: {what} must be a real number, got {value!r} ({type(value).__name__})")
    number = float(value)
    if not math.isfinite(number):
        raise ConfigError(f"{where}: {what} must be finite, got {number}")
    below = low is not None and (number <= low if low_open else number < low)
    above = high is not None and (number >= high if high_open else number > high)
    if below or above:
        lo = "" if low is None else f"{'(' if low_open else '['}{low:g}"
        hi = "" if high is None else f"{high:g}{')' if high_open else ']'}"
        bound = f"in {lo or '(-inf'}, {hi or 'inf)'}"
        raise ConfigError(f"{where}: {what} must be {bound}, got {number:g}")
    return number


#: Refuse to build a module estimated above this many parameter elements (override with
#: ``PLAIT_MAX_PARAMETERS``): a typo such as ``num_layers=10**15`` fails at once, before allocating.
DEFAULT_MAX_PARAMETERS = 2**34


def check_parameter_count(count: int, where: str) -> None:
    """ConfigError when a module would hold more than ``PLAIT_MAX_PARAMETERS`` (default 2**34) elements.

    Args:
        count: the number of parameter elements the constructor's arguments ask for.
        where: the component named in the error.

    Raises:
        ConfigError: ``count`` is above the limit.
    """
    limit = int(os.environ.get("PLAIT_MAX_PARAMETERS", DEFAULT_MAX_PARAMETERS))
    if count > limit:
        raise ConfigError(f"{where}: these arguments ask for about {count:.3g} parameters, above the limit of "
                          f"{limit:.3g} (set PLAIT_MAX_PARAMETERS to raise it)")
