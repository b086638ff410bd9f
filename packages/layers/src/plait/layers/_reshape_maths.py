"""The maths of the shape-only layers (Flatten, Unflatten, Reshape): one pure pair.

    y  = x.reshape(shape)          (a view where NumPy can make one)
    dx = dy.reshape(x.shape)
"""

from __future__ import annotations

from typing import Any

__all__ = ["reshape_backward", "reshape_forward"]


def reshape_forward(x: Any, *, shape: tuple[int, ...]) -> tuple[Any, Any]:
    """y = x reshaped to ``shape`` (same number of elements); ctx = x's shape."""
    return x.reshape(shape), tuple(x.shape)


def reshape_backward(dy: Any, in_shape: tuple[int, ...], need_dx: bool = True) -> tuple[Any]:
    """dx = dy reshaped back to the input's shape."""
    return (dy.reshape(in_shape),)
