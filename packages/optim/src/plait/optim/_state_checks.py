"""Checking a scheduler state dict against the live scheduler before anything is assigned.

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

from plait.core.errors import SerializationError

__all__ = ["checked_state"]

_MAX_INT = 2**53
# ints that must be >= 1 (a zero would divide by zero), and the one that may be -1
_POSITIVE = frozenset({"T_max", "step_size", "total_steps", "warmup_steps"})
_FROM_MINUS_ONE = frozenset({"last_epoch"})
# floats that may be +-inf (ReduceLROnPlateau's best before the first metric)
_MAY_BE_INFINITE = frozenset({"best"})
# floats that may not be negative: rates, factors, thresholds
_NON_NEGATIVE = frozenset({"base_lrs", "_last_lr", "min_lrs", "default_min_lr", "eta_min", "gamma", "factor",
                           "threshold", "eps", "start_factor", "cooldown_counter", "num_bad_epochs"})
# None or a number (ReduceLROnPlateau's single min_lr, None when given per group)
_MAY_BE_NULL = frozenset({"default_min_lr"})
# lists whose length may differ from the current one
_ANY_LENGTH = frozenset({"milestones"})
_GROUP_KEYS = frozenset({"initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum"})
_CHOICES: dict[str, frozenset[str]] = {
    "mode": frozenset({"min", "max"}),
    "threshold_mode": frozenset({"rel", "abs"}),
    "anneal_strategy": frozenset({"cos", "linear"}),
    "_schedule_phases[].lr[]": _GROUP_KEYS,
    "_schedule_phases[].momentum[]": _GROUP_KEYS,
}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _leaf(field: str) -> str:
    """The last name in ``a.b[2]`` -> ``b``."""
    return re.split(r"[.\[]", field.rstrip("]").rsplit(".", 1)[-1])[0]


class _Checker:
    def __init__(self, owner: str) -> None:
        self.owner = owner

    def fail(self, field: str, expected: str, value: Any) -> SerializationError:
        return SerializationError(f"{self.owner}: state dict field {field!r} must be {expected}, got {_short(value)}")

    def like(self, value: Any, current: Any, field: str) -> Any:
        """``value`` checked to be of the kind of ``current`` (a deep, plain copy of it)."""
        leaf = _leaf(field)
        if isinstance(current, bool):
            if not isinstance(value, bool):
                raise self.fail(field, "true or false", value)
            return value
        if isinstance(current, numbers.Integral):
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
        low = -1 if leaf in _FROM_MINUS_ONE else 1 if leaf in _POSITIVE else 0
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
        return x

    def string(self, value: Any, field: str) -> str:
        allowed = _CHOICES.get(re.sub(r"\[\d+\]", "[]", field))
        if not isinstance(value, str) or (allowed is not None and value not in allowed):
            raise self.fail(field, f"one of {sorted(allowed)}" if allowed else "a string", value)
        return value

    def sequence(self, value: Any, current: list[Any] | tuple[Any, ...], field: str, leaf: str) -> Any:
        if not isinstance(value, (list, tuple)):
            raise self.fail(field, "a list", value)
        if leaf in _ANY_LENGTH:
            out = [self.integer(v, f"{field}[{i}]", "") for i, v in enumerate(value)]
            if out != sorted(out):
                raise self.fail(field, "a sorted list", value)
            return out
        if len(value) != len(current):
            raise self.fail(field, f"a list of {len(current)} values", value)
        out = [self.like(v, c, f"{field}[{i}]") for i, (v, c) in enumerate(zip(value, current))]
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
    saved: Any, current: Mapping[str, Any], *, owner: str, required: Iterable[str] = ("last_epoch",)
) -> dict[str, Any]:
    """The entries of ``saved`` checked against ``current`` (the owner's own state dict).

    Unknown keys are refused; keys in ``required`` must be present; a key left out keeps
    its current value (the caller assigns only what is returned).
    """
    if not isinstance(saved, Mapping):
        raise SerializationError(f"{owner}: a state dict must be a mapping, got {type(saved).__name__}")
    missing = [k for k in required if k not in saved]
    if missing:
        raise SerializationError(f"{owner}: not a state dict of this scheduler (no {', '.join(map(repr, missing))})")
    unknown = sorted(map(str, set(saved) - set(current)))
    if unknown:
        raise SerializationError(f"{owner}: unknown state dict keys {unknown}; expected some of {sorted(current)}")
    check = _Checker(owner)
    return {key: check.like(value, current[key], key) for key, value in saved.items()}
