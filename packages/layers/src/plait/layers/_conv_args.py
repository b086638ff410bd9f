"""Argument checks shared by the convolution and pooling layers."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral

from plait.core import ConfigError

__all__ = ["IntOrTuple", "as_tuple", "check_groups"]

IntOrTuple = int | Sequence[int]


def as_tuple(value: IntOrTuple, n: int, what: str, where: str, minimum: int) -> tuple[int, ...]:
    """An int or ``n`` ints (a list after a JSON round trip) as an ``n``-tuple, each >= ``minimum``."""
    items = (value,) * n if isinstance(value, Integral) else tuple(value)
    if len(items) != n or not all(isinstance(v, Integral) and not isinstance(v, bool) and v >= minimum for v in items):
        raise ConfigError(f"{where}: {what} must be an int >= {minimum} or {n} of them, got {value!r}")
    return tuple(int(v) for v in items)


def check_groups(where: str, in_channels: int, out_channels: int, groups: int) -> None:
    if in_channels < 1 or out_channels < 1:
        raise ConfigError(f"{where}: in_channels and out_channels must be positive, got {in_channels} and {out_channels}")
    if groups < 1 or in_channels % groups or out_channels % groups:
        raise ConfigError(f"{where}: in_channels ({in_channels}) and out_channels ({out_channels}) "
                          f"must both be divisible by groups ({groups})")
