"""The maths of absolute position embeddings: pure pairs.

x: (B, T, D) or (T, D); the rows ``P[offset : offset + T]`` of a table P (num_positions, D)
are added to every sequence::

    y = x + P[offset : offset + T]
    dx = dy
    dP[offset + t] = sum over the batch of dy[..., t, :]      (learned table only)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from plait.core import get_array_module

__all__ = [
    "learned_positional_backward",
    "learned_positional_forward",
    "sinusoidal_positional_backward",
    "sinusoidal_positional_forward",
    "sinusoidal_table",
]


def sinusoidal_table(num_positions: int, dim: int, base: float = 10000.0) -> np.ndarray:
    """P[p, 2i] = sin(p / base^(2i/D)), P[p, 2i+1] = cos(p / base^(2i/D)); shape (num_positions, dim), float64.

    Args:
        num_positions: the number of rows (positions 0 .. num_positions - 1).
        dim: D, the number of columns (odd D ends with a sine column).
        base: the wavelength base, default 10000.0.

    Returns:
        A float64 NumPy array (num_positions, dim). No checks: the layer checks the sizes.
    """
    pos = np.arange(num_positions, dtype=np.float64)[:, None]
    inv_freq = np.exp(np.arange(0, dim, 2, dtype=np.float64) * (-math.log(base) / dim))
    angles = pos * inv_freq
    table = np.empty((num_positions, dim))
    table[:, 0::2] = np.sin(angles)
    table[:, 1::2] = np.cos(angles[:, : dim // 2])
    return table


def sinusoidal_positional_forward(x: Any, *, rows: Any) -> tuple[Any, Any]:
    """y = x + rows, with ``rows`` = P[offset : offset + T] (T, D) of the fixed table."""
    return x + rows, None


def sinusoidal_positional_backward(dy: Any, ctx: Any, need_dx: bool = True) -> tuple[Any]:
    """dx = dy (the table is fixed)."""
    return (dy,)


def learned_positional_forward(x: Any, weight: Any, *, offset: int = 0) -> tuple[Any, Any]:
    """y = x + W[offset : offset + T]; ctx = offset."""
    steps = x.shape[-2]
    return x + weight[offset : offset + steps].astype(x.dtype, copy=False), offset


def learned_positional_backward(dy: Any, offset: int, weight: Any, need_dx: bool = True) -> tuple[Any, Any]:
    """(dx = dy, dW) with dW[offset + t] = sum over the batch of dy[..., t, :], zero elsewhere."""
    steps = dy.shape[-2]
    dweight = get_array_module(weight).zeros_like(weight)
    dweight[offset : offset + steps] = dy.sum(axis=tuple(range(dy.ndim - 2)))
    return dy, dweight
