"""Rotary position embedding (RoPE), in the "rotate half" convention of GPT-NeoX and LLaMA.

The feature axis of size ``dim`` (even) is split into halves (x1, x2); pair k is
(x1[k], x2[k]) and is rotated by the angle theta = position * base^(-2k/dim)::

    rotate_half(x) = concat(-x2, x1)
    y  = x * cos + rotate_half(x) * sin              cos, sin: concat(cos theta, cos theta), ...
    dx = dy * cos - rotate_half(dy * sin)            (the inverse rotation, R^T = R^-1)

This is the layout of Hugging Face ``LlamaRotaryEmbedding``/``apply_rotary_pos_emb`` (not the
interleaved pairs (x0, x1), (x2, x3) of the original RoFormer/GPT-J code).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from plait.core import get_array_module

__all__ = ["rope_backward", "rope_forward", "rope_tables"]


def rope_tables(dim: int, max_position: int, base: float) -> tuple[np.ndarray, np.ndarray]:
    """(cos, sin), each (max_position, dim), computed in float64.

    Args:
        dim: the rotated feature size (even).
        max_position: the number of positions (rows).
        base: the frequency base (theta_k = p * base^(-2k/dim)).

    Returns:
        ``(cos, sin)``: float64 NumPy arrays (max_position, dim), each half repeating the angles.
        No checks: ``RotaryEmbedding`` checks the sizes.
    """
    inv_freq = 1.0 / (base ** (np.arange(0, dim, 2, dtype=np.float64) / dim))
    angles = np.outer(np.arange(max_position, dtype=np.float64), inv_freq)
    angles = np.concatenate([angles, angles], axis=-1)
    return np.cos(angles), np.sin(angles)


def _rotate_half(x: Any) -> Any:
    """concat(-x2, x1) over the last axis."""
    xp = get_array_module(x)
    half = x.shape[-1] // 2
    return xp.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def _rotate_half_t(u: Any) -> Any:
    """The transpose of rotate_half: concat(u2, -u1)."""
    xp = get_array_module(u)
    half = u.shape[-1] // 2
    return xp.concatenate([u[..., half:], -u[..., :half]], axis=-1)


def rope_forward(x: Any, *, cos: Any, sin: Any) -> tuple[Any, Any]:
    """y = x * cos + rotate_half(x) * sin; x: (..., T, dim); cos, sin: (T, dim) of the positions of x.

    Args:
        x: features (..., T, dim).
        cos: the cos table rows of x's positions, (T, dim).
        sin: the sin table rows, (T, dim).

    Returns:
        ``(y, ctx)``: y of x's shape and ctx = (cos, sin).
    """
    return x * cos + _rotate_half(x) * sin, (cos, sin)


def rope_backward(dy: Any, ctx: Any, need_dx: bool = True) -> tuple[Any]:
    """dx = dy * cos - rotate_half(dy * sin) written as its transpose: the inverse rotation of dy.

    Args:
        dy: gradient of y, (..., T, dim).
        ctx: ``(cos, sin)`` from ``rope_forward``.
        need_dx: accepted for the maths-pair contract; dx is always computed (default True).

    Returns:
        ``(dx,)``: a 1-tuple, dx of dy's shape.
    """
    cos, sin = ctx
    return (dy * cos + _rotate_half_t(dy * sin),)
