"""Shape-only layers: ``Flatten``, ``Unflatten``, ``Reshape`` (torch/keras semantics).

Forward is a reshape (a view where NumPy can make one); backward reshapes ``dy`` back
to the input's shape. Any real dtype passes through (ids may be flattened too).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from plait.core import ConfigError, Module, ShapeError, check_array

__all__ = ["Flatten", "Reshape", "Unflatten"]


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
    shape_only = True

    def _input(self, x: Any) -> Any:
        return check_array(x, type(self).__name__, floating=False)

    def backward(self, dy: Any) -> Any:
        in_shape, out_shape = self.saved()
        if dy is None and not self.needs_input_grad:
            return None  # the layer after us skipped the input gradient: nothing to reshape
        name = type(self).__name__
        dy = check_array(dy, f"{name}.backward", what="output gradient")
        if tuple(dy.shape) != out_shape:
            raise ShapeError(f"{name}.backward: expected output gradient of shape {out_shape}, got {tuple(dy.shape)}")
        return dy.reshape(in_shape)


class Flatten(_ShapeLayer):
    """Merge dims ``start_dim..end_dim`` into one: (N, C, H, W) -> (N, C*H*W) by default."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    def forward(self, x: Any) -> Any:
        x = self._input(x)
        start, end = _axis(self.start_dim, x.ndim), _axis(self.end_dim, x.ndim)
        if start is None or end is None or start > end:
            raise ShapeError(f"Flatten: start_dim={self.start_dim}, end_dim={self.end_dim} do not fit an input of shape {tuple(x.shape)}")
        shape = tuple(x.shape)
        out = (*shape[:start], math.prod(shape[start : end + 1]), *shape[end + 1 :])
        self.save_for_backward((shape, out))
        return x.reshape(out)


class Unflatten(_ShapeLayer):
    """Split dim ``dim`` into ``unflattened_size`` (one entry may be -1)."""

    def __init__(self, dim: int, unflattened_size: Sequence[int]) -> None:
        super().__init__()
        self.dim = int(dim)
        self.unflattened_size = tuple(int(s) for s in unflattened_size)
        if not self.unflattened_size or self.unflattened_size.count(-1) > 1:
            raise ConfigError(f"Unflatten: unflattened_size must be non-empty with at most one -1, got {unflattened_size}")

    def forward(self, x: Any) -> Any:
        x = self._input(x)
        shape = tuple(x.shape)
        if not -x.ndim <= self.dim < x.ndim:
            raise ShapeError(f"Unflatten: dim={self.dim} is out of range for input of shape {shape}")
        d = self.dim % x.ndim
        sizes = _resolve_sizes(self.unflattened_size, shape[d], "Unflatten", shape)
        out = (*shape[:d], *sizes, *shape[d + 1 :])
        self.save_for_backward((shape, out))
        return x.reshape(out)


class Reshape(_ShapeLayer):
    """Reshape each sample, keeping the batch dim: ``Reshape(4, 4)`` maps (N, 16) -> (N, 4, 4).

    Like keras' ``Reshape(target_shape)``; accepts ``Reshape(4, 4)``, ``Reshape((4, 4))`` or
    ``Reshape(shape=(4, 4))``; one entry may be -1.
    """

    def __init__(self, *args: Any, shape: Sequence[int] | None = None) -> None:
        super().__init__()
        if shape is not None and args:
            raise ConfigError("Reshape: give the target shape either positionally or as shape=, not both")
        if shape is None:
            shape = tuple(args[0]) if len(args) == 1 and isinstance(args[0], (tuple, list)) else args
        self.shape = tuple(int(s) for s in shape)
        if self.shape.count(-1) > 1 or any(s < -1 for s in self.shape):
            raise ConfigError(f"Reshape: target shape may hold at most one -1 and no other negative size, got {self.shape}")

    def forward(self, x: Any) -> Any:
        x = self._input(x)
        shape = tuple(x.shape)
        if x.ndim < 1:
            raise ShapeError(f"Reshape: expected input with a batch dimension, got shape {shape}")
        sizes = _resolve_sizes(self.shape, math.prod(shape[1:]), "Reshape", shape)
        out = (shape[0], *sizes)
        self.save_for_backward((shape, out))
        return x.reshape(out)

    def config(self) -> dict[str, Any]:
        cfg = {k: v for k, v in super().config().items() if k in ("type", "kind")}
        cfg["shape"] = list(self.shape)
        return cfg

    def extra_repr(self) -> str:
        return f"shape={self.shape}"


LAYERS: dict[str, type] = {"flatten": Flatten, "unflatten": Unflatten, "reshape": Reshape}
