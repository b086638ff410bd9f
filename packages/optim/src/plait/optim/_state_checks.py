"""Checking state dicts read back from a file before anything is assigned.

Schedulers:

A saved state dict must look like the scheduler's own :meth:`state_dict`: only its keys
(unknown keys are refused, not set as attributes), each value of the same kind as the
current one (an int counter stays an int in range, a rate stays a finite number, a
per-group list keeps its length, a nested dict its keys), strings from a fixed choice.
Every problem raises :class:`~plait.core.errors.SerializationError` naming the scheduler
and the field.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from plait.core.errors import SerializationError

__all__ = [
    "MAX_COUNTER",
    "NON_NEGATIVE_STATE",
    "SCHEDULER_GROUP_KEYS",
    "check_cycle_momentum",
    "check_index",
    "check_real",
    "check_scalar",
    "checked_state",
    "is_finite",
    "short",
]

_MAX_INT = 2**53
# numbers that must be > 0 (ints >= 1; a zero would divide by zero), and the one that may be -1
_POSITIVE = frozenset({"T_max", "step_size", "total_steps", "warmup_steps", "total_iters", "T_0", "T_i", "T_mult",
                       "total_size"})
_FROM_MINUS_ONE = frozenset({"last_epoch"})
# numbers that may be an int or a float whatever the current one is (a fractional step(epoch) makes T_cur a float)
_INT_OR_REAL = frozenset({"T_cur"})
# floats strictly between 0 and 1 (CyclicLR divides by step_ratio and by step_ratio - 1)
_OPEN_UNIT = frozenset({"step_ratio"})
# floats that may be +-inf (ReduceLROnPlateau's best before the first metric)
_MAY_BE_INFINITE = frozenset({"best"})
# floats that may not be negative: rates, factors, thresholds
_NON_NEGATIVE = frozenset({"base_lrs", "_last_lr", "min_lrs", "default_min_lr", "eta_min", "gamma", "factor",
                           "threshold", "eps", "start_factor", "cooldown_counter", "num_bad_epochs", "power", "T_cur",
                           "max_lrs", "base_momentums", "max_momentums"})
# None or a number (ReduceLROnPlateau's single min_lr, None when given per group)
_MAY_BE_NULL = frozenset({"default_min_lr"})
# lists whose length may differ from the current one
_ANY_LENGTH = frozenset({"milestones"})
# lists of step numbers that must be in increasing order
_SORTED = frozenset({"milestones", "_milestones"})
_GROUP_KEYS = frozenset({"initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum"})
_CHOICES: dict[str, frozenset[str]] = {
    "mode": frozenset({"min", "max"}),
    "threshold_mode": frozenset({"rel", "abs"}),
    "anneal_strategy": frozenset({"cos", "linear"}),
    "_schedule_phases[].lr[]": _GROUP_KEYS,
    "_schedule_phases[].momentum[]": _GROUP_KEYS,
}


def _leaf(field: str) -> str:
    """The last name in ``a.b[2]`` -> ``b``."""
    return re.split(r"[.\[]", field.rstrip("]").rsplit(".", 1)[-1])[0]


class _Checker:
    def __init__(self, owner: str, choices: Mapping[str, Iterable[str]] | None = None, positive: Iterable[str] = ()) -> None:
        self.owner = owner
        self.choices = {**_CHOICES, **{k: frozenset(v) for k, v in (choices or {}).items()}}
        self.positive = _POSITIVE | frozenset(positive)

    def fail(self, field: str, expected: str, value: Any) -> SerializationError:
        return SerializationError(f"{self.owner}: state dict field {field!r} must be {expected}, got {short(value)}")

    def like(self, value: Any, current: Any, field: str) -> Any:
        """``value`` checked to be of the kind of ``current`` (a deep, plain copy of it)."""
        leaf = _leaf(field)
        if isinstance(current, bool):
            if not isinstance(value, bool):
                raise self.fail(field, "true or false", value)
            return value
        if leaf in _INT_OR_REAL and isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return self.integer(value, field, leaf)
        if isinstance(current, numbers.Integral) and leaf not in _INT_OR_REAL:
            return self.integer(value, field, leaf)
        if isinstance(current, numbers.Real) or (current is None and leaf in _MAY_BE_NULL and value is not None):
            return self.real(value, field, leaf)
        if current is None:
            if value is not None:
                raise self.fail(field, "null" + (" or a number" if leaf in _MAY_BE_NULL else ""), value)
            return None
        if isinstance(current, str):
            return self.string(value, field)
        if isinstance(current, (list, tuple)):
            return self.sequence(value, current, field, leaf)
        if isinstance(current, Mapping):
            return self.mapping(value, current, field)
        raise self.fail(field, f"left out (a {type(current).__name__} is not loaded from a state dict)", value)

    def integer(self, value: Any, field: str, leaf: str) -> int:
        low = -1 if leaf in _FROM_MINUS_ONE else 1 if leaf in self.positive else 0
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or not low <= value <= _MAX_INT:
            raise self.fail(field, f"an integer in [{low}, 2**53]", value)
        return int(value)

    def real(self, value: Any, field: str, leaf: str) -> float:
        if not isinstance(value, numbers.Real) or isinstance(value, bool):
            raise self.fail(field, "a number", value)
        try:
            x = float(value)
        except OverflowError:
            raise self.fail(field, "a finite number", value) from None
        if math.isnan(x) or (math.isinf(x) and leaf not in _MAY_BE_INFINITE):
            raise self.fail(field, "a finite number", value)
        if leaf in _NON_NEGATIVE and x < 0:
            raise self.fail(field, "a number >= 0", value)
        if leaf in self.positive and not x > 0:
            raise self.fail(field, "a number > 0", value)
        if leaf in _OPEN_UNIT and not 0 < x < 1:
            raise self.fail(field, "a number in (0, 1)", value)
        return x

    def string(self, value: Any, field: str) -> str:
        allowed = self.choices.get(re.sub(r"\[\d+\]", "[]", field))
        if not isinstance(value, str) or (allowed is not None and value not in allowed):
            raise self.fail(field, f"one of {sorted(allowed)}" if allowed else "a string", value)
        return value

    def sequence(self, value: Any, current: list[Any] | tuple[Any, ...], field: str, leaf: str) -> Any:
        if not isinstance(value, (list, tuple)):
            raise self.fail(field, "a list", value)
        if leaf in _ANY_LENGTH:
            out: list[Any] = [self.integer(v, f"{field}[{i}]", "") for i, v in enumerate(value)]
        elif len(value) != len(current):
            raise self.fail(field, f"a list of {len(current)} values", value)
        else:
            out = [self.like(v, c, f"{field}[{i}]") for i, (v, c) in enumerate(zip(value, current))]
        if leaf in _SORTED and out != sorted(out):
            raise self.fail(field, "a sorted list", value)
        return tuple(out) if isinstance(current, tuple) else out

    def mapping(self, value: Any, current: Mapping[str, Any], field: str) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(field, "a mapping", value)
        if set(value) != set(current):
            extra = sorted(map(str, set(value) - set(current)))
            raise self.fail(field, f"a mapping with the keys {sorted(current)}" + (f" (unknown: {extra})" if extra else ""),
                            value)
        return {k: self.like(value[k], current[k], f"{field}.{k}") for k in current}


def checked_state(
    saved: Any, current: Mapping[str, Any], *, owner: str, required: Iterable[str] = ("last_epoch",),
    choices: Mapping[str, Iterable[str]] | None = None, positive: Iterable[str] = (),
) -> dict[str, Any]:
    """The entries of ``saved`` checked against ``current`` (the owner's own state dict).

    Unknown keys are refused; keys in ``required`` must be present; a key left out keeps
    its current value (the caller assigns only what is returned). ``choices`` names the
    strings a field of this owner may hold (beyond the common ones, e.g. ``mode``);
    ``positive`` the numbers of this owner that must be > 0 (beyond the common ones).
    """
    if not isinstance(saved, Mapping):
        raise SerializationError(f"{owner}: a state dict must be a mapping, got {type(saved).__name__}")
    missing = [k for k in required if k not in saved]
    if missing:
        raise SerializationError(f"{owner}: not a state dict of this scheduler (no {', '.join(map(repr, missing))})")
    unknown = sorted(map(str, set(saved) - set(current)))
    if unknown:
        raise SerializationError(f"{owner}: unknown state dict keys {unknown}; expected some of {sorted(current)}")
    check = _Checker(owner, choices, positive)
    return {key: check.like(value, current[key], key) for key, value in saved.items()}


def check_cycle_momentum(scheduler: Any, values: Mapping[str, Any]) -> None:
    """Checked ``values`` of a momentum-cycling scheduler (OneCycleLR, CyclicLR) must fit its optimizer.

    With ``cycle_momentum`` true, the optimizer must have ``momentum`` or ``betas`` and
    ``use_beta1`` must say which (else a step would fail on a missing key).
    """
    if not values.get("cycle_momentum", scheduler.cycle_momentum):
        return
    optimizer, name = scheduler.optimizer, scheduler.name
    defaults = getattr(optimizer, "defaults", {})
    if "momentum" not in defaults and "betas" not in defaults:
        raise SerializationError(f"{name}: state dict field 'cycle_momentum' is true, but "
                                 f"{type(optimizer).__name__} has no momentum or betas")
    use_beta1 = values.get("use_beta1", getattr(scheduler, "use_beta1", None))
    if use_beta1 != ("betas" in defaults):
        raise SerializationError(f"{name}: state dict field 'use_beta1' is {use_beta1!r}, but "
                                 f"{type(optimizer).__name__} {'has' if 'betas' in defaults else 'has no'} betas")


# -- optimizer state dicts (used by Optimizer.load_state_dict) ------------------------------------
# keys that schedulers keep in parameter groups (rates and momentum bounds)
SCHEDULER_GROUP_KEYS = frozenset({"initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum"})
# buffers that are sums or averages of squares: never negative
NON_NEGATIVE_STATE = frozenset({"exp_avg_sq", "max_exp_avg_sq", "square_avg", "sum"})
MAX_COUNTER = 2**53  # beyond this a float step count is no longer exact


def short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_index(key: Any, where: str, name: str) -> int:
    """A parameter index: a non-negative int, or its decimal spelling (JSON object keys are strings)."""
    if isinstance(key, str) and key.isdigit() and key.isascii() and len(key) <= 12:
        return int(key)
    if isinstance(key, numbers.Integral) and not isinstance(key, (bool, np.bool_)) and 0 <= key < 10**12:
        return int(key)
    raise SerializationError(f"{name}: {where}: a parameter index must be a non-negative integer, got {short(key)}")


def check_real(value: Any, where: str, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not is_finite(value):
        raise SerializationError(f"{name}: {where} must be a finite number, got {short(value)}")
    return value


def is_finite(value: Any) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def check_scalar(value: Any, where: str, name: str) -> Any:
    """A number kept in the state: an integer counter in [0, 2**53], or a finite real."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        if not 0 <= value <= MAX_COUNTER:
            raise SerializationError(f"{name}: {where} must be an integer in [0, 2**53], got {short(value)}")
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and is_finite(value):
        return float(value)
    raise SerializationError(f"{name}: {where} must be a finite real number, got {short(value)}")
