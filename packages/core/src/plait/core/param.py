"""``Param``: a named pair of arrays, ``data`` and its gradient ``grad``."""

from __future__ import annotations

from typing import Any

import numpy as np

from .backend import get_array_module
from .errors import ShapeError

__all__ = ["Param"]


class Param:
    """A trainable array and its accumulated gradient.

    ``grad`` is allocated lazily (zeros shaped like ``data``) on the first
    :meth:`accumulate`; gradients add up with ``+=`` until :meth:`zero_grad`.
    There are no operators and no graph: layers read ``data`` in forward and call
    :meth:`accumulate` in backward.

    Zeroing is deferred, with the same results: :meth:`zero_grad` only marks the buffer,
    the next :meth:`accumulate` *writes* its gradient into it (one pass instead of a fill
    and an add), and reading ``grad`` before that fills it with zeros first. A gradient
    handed over with ``accumulate(g, owned=True)`` (what ``Module.backward`` does with a
    maths pair's fresh gradients) becomes ``grad`` itself instead, without a copy, so
    ``grad`` may be a new array after each step, as in PyTorch.

    Args:
        data: the value, a NumPy or CuPy array of any shape (kept as given, not copied).
        requires_grad: default True; False makes :meth:`accumulate` a no-op (a frozen Param).
        name: default ``""``; set to the attribute name when the Param is assigned to a
            Module attribute, and shown in ``repr`` and error messages.
    """

    __slots__ = ("data", "_grad", "_zeroed", "requires_grad", "name")

    def __init__(self, data: Any, *, requires_grad: bool = True, name: str = "") -> None:
        self.data = data
        self._grad: Any = None
        self._zeroed = False  # _grad holds stale values that stand for zeros
        self.requires_grad = requires_grad
        self.name = name

    @property
    def grad(self) -> Any:
        """The accumulated gradient (an array like ``data``), or None before any backward."""
        if self._zeroed:
            self._grad.fill(0)
            self._zeroed = False
        return self._grad

    @grad.setter
    def grad(self, value: Any) -> None:
        self._grad = value
        self._zeroed = False

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def dtype(self) -> Any:
        return self.data.dtype

    @property
    def size(self) -> int:
        return int(self.data.size)

    def accumulate(self, g: Any, *, owned: bool = False) -> None:
        """Add ``g`` into ``grad`` in place (allocating it on first use).

        With ``owned=True`` the caller hands ``g`` over: when there is no gradient yet (or it
        was zeroed), ``g`` itself becomes ``grad``, without a copy, provided it is a NumPy
        array that owns its memory (not a view), C-contiguous, writeable and of ``data``'s
        dtype; anything else is copied as usual. PyTorch's gradient accumulation likewise
        keeps a fresh gradient that nothing else references instead of copying it.

        Args:
            g: a gradient array of exactly ``data``'s shape (never broadcast).
            owned: default False (``g`` is copied, never aliased). True only for a fresh array
                that nothing else holds or will write: ``grad`` may then be ``g`` itself.

        Raises:
            ShapeError: ``g``'s shape differs from ``data``'s.
        """
        if not self.requires_grad:
            return
        data = self.data
        if tuple(getattr(g, "shape", ())) != data.shape:  # never let a gradient broadcast silently
            raise ShapeError(f"{self!r}: cannot accumulate a gradient of shape {tuple(getattr(g, 'shape', ()))}")
        grad = self._grad
        if owned and (grad is None or self._zeroed) and _may_keep(g, data):
            self._grad = g
            self._zeroed = False
            return
        if grad is None:
            self._grad = grad = get_array_module(data).zeros_like(data)
        elif self._zeroed:  # zero + g, written in one pass
            get_array_module(grad).copyto(grad, g, casting="same_kind")
            self._zeroed = False
            return
        grad += g

    def zero_grad(self, set_to_none: bool = False) -> None:
        """Reset the gradient: to zeros (in place, see the class notes), or drop it (``set_to_none``).

        Args:
            set_to_none: default False (zeros, keeping the array); torch defaults to True.
        """
        if set_to_none or self._grad is None:
            self._grad = None
            self._zeroed = False
        else:
            self._zeroed = True

    def __repr__(self) -> str:
        label = f"{self.name}, " if self.name else ""
        return f"Param({label}shape={self.shape}, dtype={self.dtype})"


def _may_keep(g: Any, data: Any) -> bool:
    """Whether a handed-over gradient can serve as ``grad`` as it is: a NumPy array owning its
    memory, C-contiguous, writeable, of the parameter's dtype."""
    return (type(g) is np.ndarray and g.base is None and g.dtype == data.dtype
            and g.flags.c_contiguous and g.flags.writeable)
