"""Argument checks and small helpers shared by the convolution and pooling layers and their maths."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral
from typing import Any

from plait.core import ConfigError, get_array_module

__all__ = ["IntOrTuple", "Pads", "Pair", "as_tuple", "bmm", "check_groups"]

IntOrTuple = int | Sequence[int]
Pair = tuple[int, int]
Pads = tuple[Pair, Pair]  # ((top, bottom), (left, right))


def bmm(a: Any, b: Any, out: Any | None = None) -> Any:
    """Batched matrix product over the leading group axis (a plain GEMM for one group), into ``out`` if given."""
    if out is None:
        return (a[0] @ b[0])[None] if a.shape[0] == 1 else a @ b
    xp = get_array_module(a)
    if a.shape[0] == 1:
        xp.matmul(a[0], b[0], out=out[0])
    else:
        xp.matmul(a, b, out=out)
    return out


def as_tuple(value: IntOrTuple, n: int, what: str, where: str, minimum: int) -> tuple[int, ...]:
    """An int or ``n`` ints (a list after a JSON round trip) as an ``n``-tuple, each >= ``minimum``."""
    items = (value,) * n if isinstance(value, Integral) else tuple(value)
    if len(items) != n or not all(isinstance(v, Integral) and not isinstance(v, bool) and v >= minimum for v in items):
        raise ConfigError(f"{where}: {what} must be an int >= {minimum} or {n} of them, got {value!r}")
    return tuple(int(v) for v in items)


def check_groups(where: str, in_channels: int, out_channels: int, groups: int) -> None:
    for what, value in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
        if isinstance(value, bool) or not isinstance(value, Integral):
            raise ConfigError(f"{where}: {what} must be an integer, got {value!r} ({type(value).__name__})")
    if in_channels < 1 or out_channels < 1:
        raise ConfigError(f"{where}: in_channels and out_channels must be positive, got {in_channels} and {out_channels}")
    if groups < 1 or in_channels % groups or out_channels % groups:
        raise ConfigError(f"{where}: in_channels ({in_channels}) and out_channels ({out_channels}) "
                          f"must both be divisible by groups ({groups})")
