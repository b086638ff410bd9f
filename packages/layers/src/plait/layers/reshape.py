"""Shape-only layers: ``Flatten``, ``Unflatten``, ``Reshape`` (torch/keras semantics).

Each computes its target shape; the pair in :mod:`._reshape_maths` reshapes (a view where
NumPy can make one) and reshapes ``dy`` back to the input's shape. Any real dtype passes through (ids may be flattened too).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from plait.core import ConfigError, Module, ShapeError, check_array, check_size

from ._reshape_maths import reshape_backward, reshape_forward

__all__ = ["Flatten", "Reshape", "Unflatten"]


def _ints(values: Any, where: str, what: str) -> tuple[int, ...]:
    """A sequence of integers (a ConfigError naming the argument for anything else)."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ConfigError(f"{where}: {what} must be a sequence of integers, got {values!r}")
    return tuple(check_size(s, where, what, minimum=None) for s in values)


def _resolve_sizes(sizes: Sequence[int], total: int, where: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Fill in one -1 in ``sizes`` so that they multiply to ``total``."""
    sizes = tuple(int(s) for s in sizes)
    known = math.prod(s for s in sizes if s != -1)
    if sizes.count(-1) == 1 and known > 0 and total % known == 0:
        sizes = tuple(total // known if s == -1 else s for s in sizes)
    if math.prod(sizes) != total or any(s < 0 for s in sizes):
        raise ShapeError(f"{where}: cannot reshape {total} element(s) into {tuple(sizes)} (input shape {shape})")
    return sizes


def _axis(dim: int, ndim: int) -> int | None:
    """``dim`` as a non-negative axis of an ``ndim``-D array, or None when out of range."""
    return dim % ndim if -ndim <= dim < ndim else None


class _ShapeLayer(Module):
    """Shared by the shape-only layers: any real dtype passes; ``options`` computes the target shape."""

    shape_only = True
    maths = (reshape_forward, reshape_backward)

    def check_input(self, x: Any) -> Any:
        return check_array(x, type(self).__name__, floating=False)

    def options(self, x: Any) -> dict[str, Any]:
        return {"shape": self.output_shape(tuple(x.shape))}

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        raise NotImplementedError


class Flatten(_ShapeLayer):
    """Merge dims ``start_dim..end_dim`` into one: (N, C, H, W) -> ``(N, C*H*W)`` by default.

    Args:
        start_dim: first axis merged, default 1 (as torch; negative counts from the end).
        end_dim: last axis merged (inclusive), default -1 (as torch).

    Shapes:
        ``forward(x)``: x (d0, ..., d_start, ..., d_end, ...) -> (d0, ..., d_start * ... * d_end, ...), any
        real dtype (a view where possible). ``backward(dy)``: dy -> dx of x's shape.

    Raises:
        ShapeError: ``start_dim``/``end_dim`` out of range for the input or ``start_dim`` after ``end_dim``.
        DTypeError: a complex or non-numeric input.
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = check_size(start_dim, "Flatten", "start_dim", minimum=None)
        self.end_dim = check_size(end_dim, "Flatten", "end_dim", minimum=None)

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The flattened shape for an input of ``shape``.

        Args:
            shape: the input's shape.

        Raises:
            ShapeError: an input shape this layer cannot map (see the class).
        """
        start, end = _axis(self.start_dim, len(shape)), _axis(self.end_dim, len(shape))
        if start is None or end is None or start > end:
            raise ShapeError(f"Flatten: start_dim={self.start_dim}, end_dim={self.end_dim} do not fit an input of shape {shape}")
        return (*shape[:start], math.prod(shape[start : end + 1]), *shape[end + 1 :])


class Unflatten(_ShapeLayer):
    """Split dim ``dim`` into ``unflattened_size`` (one entry may be -1).

    Args:
        dim: the axis to split (negative counts from the end); required, as torch.
        unflattened_size: the sizes it becomes, a non-empty sequence of ints whose product is the
            axis' size; one entry may be -1 (inferred); required, as torch.

    Shapes:
        ``forward(x)``: x (..., d_dim, ...) -> ``(..., *unflattened_size, ...)``, any real dtype.
        ``backward(dy)``: dy -> dx of x's shape.

    Raises:
        ConfigError: ``unflattened_size`` empty or with more than one -1.
        ShapeError: ``dim`` out of range for the input, or sizes whose product is not the axis' size.
        DTypeError: a complex or non-numeric input.
    """

    def __init__(self, dim: int, unflattened_size: Sequence[int]) -> None:
        super().__init__()
        self.dim = check_size(dim, "Unflatten", "dim", minimum=None)
        self.unflattened_size = _ints(unflattened_size, "Unflatten", "unflattened_size")
        if not self.unflattened_size or self.unflattened_size.count(-1) > 1:
            raise ConfigError(f"Unflatten: unflattened_size must be non-empty with at most one -1, got {unflattened_size}")

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The unflattened shape for an input of ``shape``.

        Args:
            shape: the input's shape.

        Raises:
            ShapeError: an input shape this layer cannot map (see the class).
        """
        if not -len(shape) <= self.dim < len(shape):
            raise ShapeError(f"Unflatten: dim={self.dim} is out of range for input of shape {shape}")
        d = self.dim % len(shape)
        sizes = _resolve_sizes(self.unflattened_size, shape[d], "Unflatten", shape)
        return (*shape[:d], *sizes, *shape[d + 1 :])


class Reshape(_ShapeLayer):
    """Reshape each sample, keeping the batch dim: ``Reshape(4, 4)`` maps (N, 16) -> (N, 4, 4).

    Like keras' ``Reshape(target_shape)``; accepts ``Reshape(4, 4)``, ``Reshape((4, 4))`` or
    ``Reshape(shape=(4, 4))``; one entry may be -1.

    Args:
        *args: the per-sample target shape, as ints or as one tuple/list.
        shape: keyword-only alternative to ``*args``: the per-sample target shape; default None.

    Shapes:
        ``forward(x)``: x (N, ...) -> ``(N, *shape)``, any real dtype; ``backward(dy)``: dy -> dx of x's shape.

    Raises:
        ConfigError: both ``*args`` and ``shape`` given, more than one -1, or a size below -1.
        ShapeError: a 0-d input, or a per-sample size that does not fit ``shape``.
        DTypeError: a complex or non-numeric input.
    """

    def __init__(self, *args: Any, shape: Sequence[int] | None = None) -> None:
        super().__init__()
        if shape is not None and args:
            raise ConfigError("Reshape: give the target shape either positionally or as shape=, not both")
        if shape is None:
            shape = tuple(args[0]) if len(args) == 1 and isinstance(args[0], (tuple, list)) else args
        self.shape = _ints(shape, "Reshape", "shape")
        if self.shape.count(-1) > 1 or any(s < -1 for s in self.shape):
            raise ConfigError(f"Reshape: target shape may hold at most one -1 and no other negative size, got {self.shape}")

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """``(N, *target shape)`` for an input of ``shape`` (N, ...), -1 resolved.

        Args:
            shape: the input's shape.

        Raises:
            ShapeError: an input shape this layer cannot map (see the class).
        """
        if len(shape) < 1:
            raise ShapeError(f"Reshape: expected input with a batch dimension, got shape {shape}")
        return (shape[0], *_resolve_sizes(self.shape, math.prod(shape[1:]), "Reshape", shape))

    def config(self) -> dict[str, Any]:
        cfg = {k: v for k, v in super().config().items() if k in ("type", "kind")}
        cfg["shape"] = list(self.shape)
        return cfg

    def extra_repr(self) -> str:
        return f"shape={self.shape}"


LAYERS: dict[str, type] = {"flatten": Flatten, "unflatten": Unflatten, "reshape": Reshape}
