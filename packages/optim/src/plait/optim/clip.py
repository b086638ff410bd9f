"""Gradient clipping, as ``torch.nn.utils.clip_grad_norm_`` / ``clip_grad_value_``.

Both work in place on ``p.grad`` and skip parameters without a gradient.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

from plait.core import Param, get_array_module
from plait.core.errors import ConfigError, PlaitError

__all__ = ["NonFiniteNormError", "clip_grad_norm_", "clip_grad_value_"]


class NonFiniteNormError(PlaitError, RuntimeError):
    """``clip_grad_norm_(..., error_if_nonfinite=True)`` met a NaN or infinite total norm."""


def _grads(parameters: Param | Iterable[Param], where: str) -> list[Any]:
    params = [parameters] if isinstance(parameters, Param) else parameters
    try:
        params = list(params)
    except TypeError:
        raise ConfigError(f"{where}: expected a Param or an iterable of Params, got {type(parameters).__name__}") from None
    for i, p in enumerate(params):
        if not isinstance(p, Param):
            raise ConfigError(f"{where}: item {i} is a {type(p).__name__}, expected a plait.core.Param")
    return [p.grad for p in params if p.grad is not None]


def _check_real(value: Any, name: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value) or value < 0:
        raise ConfigError(f"{where}: {name} must be a number >= 0, got {value!r}")
    return float(value)


def clip_grad_norm_(
    parameters: Param | Iterable[Param],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> float:
    """Scale all gradients together so that their joint ``norm_type``-norm is at most ``max_norm``.

    The total norm is the norm of the vector of per-gradient norms (``inf``: the largest
    absolute entry). Gradients are multiplied by ``max_norm / (total + 1e-6)`` when that is
    below 1. Returns the total norm *before* clipping, as a float. A NaN/inf total raises
    :class:`NonFiniteNormError` with ``error_if_nonfinite``, else (like torch) propagates.

    Args:
        parameters: a Param or an iterable of Params (``model.parameters()``); those whose
            ``grad`` is None are skipped. Returns 0.0 when none has a gradient.
        max_norm: the largest total norm allowed, >= 0.
        norm_type: default 2.0; the p of the p-norm (``math.inf`` for the max norm).
        error_if_nonfinite: default False (as torch); True raises on a NaN/inf total
            instead of scaling the gradients by NaN.

    Raises:
        ConfigError: an item that is not a Param, a negative or NaN ``max_norm``, or a
            ``norm_type`` that is not a number.
        NonFiniteNormError: the total norm is NaN or infinite and ``error_if_nonfinite``.
    """
    where = "clip_grad_norm_"
    max_norm = _check_real(max_norm, "max_norm", where)
    if isinstance(norm_type, bool) or not isinstance(norm_type, numbers.Real) or math.isnan(norm_type):
        raise ConfigError(f"{where}: norm_type must be a number or inf, got {norm_type!r}")
    norm_type = float(norm_type)
    grads = _grads(parameters, where)
    if not grads:
        return 0.0
    xp = get_array_module(grads[0])
    norms = xp.stack([xp.linalg.norm(g.reshape(-1), norm_type) for g in grads])
    total = float(xp.linalg.norm(norms, norm_type))
    if error_if_nonfinite and not math.isfinite(total):
        raise NonFiniteNormError(
            f"{where}: the total {norm_type:g}-norm of the gradients is {total}; "
            "pass error_if_nonfinite=False to clip anyway"
        )
    coef = max_norm / (total + 1e-6)
    if coef < 1.0 or math.isnan(coef):
        for g in grads:
            g *= coef
    return total


def clip_grad_value_(parameters: Param | Iterable[Param], clip_value: float) -> None:
    """Clamp every gradient entry into ``[-clip_value, clip_value]``, in place.

    Args:
        parameters: a Param or an iterable of Params; those without a gradient are skipped.
        clip_value: the bound, >= 0.

    Raises:
        ConfigError: an item that is not a Param, or a negative or NaN ``clip_value``.
    """
    where = "clip_grad_value_"
    clip_value = _check_real(clip_value, "clip_value", where)
    for g in _grads(parameters, where):
        get_array_module(g).clip(g, -clip_value, clip_value, out=g)
