"""``Param``: a named pair of arrays, ``data`` and its gradient ``grad``."""

from __future__ import annotations

from typing import Any

from .backend import get_array_module
from .errors import ShapeError

__all__ = ["Param"]


class Param:
    """A trainable array and its accumulated gradient.

    ``grad`` is allocated lazily (zeros shaped like ``data``) on the first
    :meth:`accumulate`; gradients add up with ``+=`` until :meth:`zero_grad`.
    There are no operators and no graph: layers read ``data`` in forward and call
    :meth:`accumulate` in backward.
    """

    __slots__ = ("data", "grad", "requires_grad", "name")

    def __init__(self, data: Any, *, requires_grad: bool = True, name: str = "") -> None:
        self.data = data
        self.grad: Any = None
        self.requires_grad = requires_grad
        self.name = name

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def dtype(self) -> Any:
        return self.data.dtype

    @property
    def size(self) -> int:
        return int(self.data.size)

    def accumulate(self, g: Any) -> None:
        """Add ``g`` into ``grad`` in place (allocating it on first use)."""
        if not self.requires_grad:
            return
        data = self.data
        if tuple(getattr(g, "shape", ())) != data.shape:  # never let a gradient broadcast silently
            raise ShapeError(f"{self!r}: cannot accumulate a gradient of shape {tuple(getattr(g, 'shape', ()))}")
        grad = self.grad
        if grad is None:
            grad = self.grad = get_array_module(data).zeros_like(data)
        grad += g

    def zero_grad(self, set_to_none: bool = False) -> None:
        """Reset the gradient: fill with zeros in place, or drop it (``set_to_none``)."""
        if set_to_none or self.grad is None:
            self.grad = None
        else:
            self.grad.fill(0)

    def __repr__(self) -> str:
        label = f"{self.name}, " if self.name else ""
        return f"Param({label}shape={self.shape}, dtype={self.dtype})"
