"""Absolute position embeddings added to a sequence: sinusoidal (fixed) and learned.

Both are drop-in layers: ``y = layer(x, offset=0)`` with x (B, T, D) (or (T, D)) returns
``x + P[offset : offset + T]``; ``offset`` is the position of the first step (for decoding
with a KV cache). ``backward(dy) -> dy``; the learned table also accumulates
``dP[offset + t] += sum over the batch of dy[:, t]``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from plait.core import ConfigError, Module, Param, ShapeError, check_array, get_array_module, get_rng
from plait.core.initializers import Normal

__all__ = ["LearnedPositionalEmbedding", "SinusoidalPositionalEmbedding", "sinusoidal_table"]


def sinusoidal_table(num_positions: int, dim: int, base: float = 10000.0) -> np.ndarray:
    """P[p, 2i] = sin(p / base^(2i/D)), P[p, 2i+1] = cos(p / base^(2i/D)); shape (num_positions, dim), float64."""
    pos = np.arange(num_positions, dtype=np.float64)[:, None]
    inv_freq = np.exp(np.arange(0, dim, 2, dtype=np.float64) * (-math.log(base) / dim))
    angles = pos * inv_freq
    table = np.empty((num_positions, dim))
    table[:, 0::2] = np.sin(angles)
    table[:, 1::2] = np.cos(angles[:, : dim // 2])
    return table


class _Positional(Module):
    num_positions: int
    embedding_dim: int

    def _check(self, x: Any, offset: int) -> tuple[Any, int, int]:
        name = type(self).__name__
        x = check_array(x, name, ndim=(2, 3), last_dim=self.embedding_dim)
        steps = x.shape[-2]
        offset = int(offset)
        if offset < 0 or offset + steps > self.num_positions:
            raise ShapeError(
                f"{name}: positions [{offset}, {offset + steps}) exceed num_positions={self.num_positions} "
                f"(input shape {tuple(x.shape)}, offset={offset})"
            )
        return x, offset, steps

    def _check_grad(self, dy: Any, shape: tuple[int, ...]) -> Any:
        name = type(self).__name__
        dy = check_array(dy, f"{name}.backward", what="output gradient")
        if tuple(dy.shape) != shape:
            raise ShapeError(f"{name}.backward: expected output gradient of shape {shape}, got {tuple(dy.shape)}")
        return dy


class SinusoidalPositionalEmbedding(_Positional):
    """Adds the fixed sine/cosine table of "Attention Is All You Need" (no parameters).

    The table (``num_positions`` x ``embedding_dim``) is a non-persistent buffer: it is
    rebuilt from the config, not saved with the weights.
    """

    def __init__(self, num_positions: int, embedding_dim: int, base: float = 10000.0) -> None:
        super().__init__()
        if int(num_positions) <= 0 or int(embedding_dim) <= 0:
            raise ConfigError(f"SinusoidalPositionalEmbedding: num_positions and embedding_dim must be positive, "
                              f"got {num_positions} and {embedding_dim}")
        self.num_positions, self.embedding_dim, self.base = int(num_positions), int(embedding_dim), float(base)
        self.register_buffer("table", sinusoidal_table(self.num_positions, self.embedding_dim, self.base).astype(np.float32),
                             persistent=False)
        self._table64: Any = None

    def _rows(self, x: Any, offset: int, steps: int) -> Any:
        table = self.table
        if x.dtype == np.float64:  # exact rows for float64 work, not float32 ones upcast
            if self._table64 is None or self._table64.shape != table.shape:
                self._table64 = get_array_module(table).asarray(sinusoidal_table(*table.shape, self.base))
            table = self._table64
        return get_array_module(x).asarray(table[offset : offset + steps], dtype=x.dtype)

    def forward(self, x: Any, offset: int = 0) -> Any:
        x, offset, steps = self._check(x, offset)
        self.save_for_backward(tuple(x.shape))
        return x + self._rows(x, offset, steps)

    def backward(self, dy: Any) -> Any:
        return self._check_grad(dy, self.saved())


class LearnedPositionalEmbedding(_Positional):
    """Adds a trained table ``weight`` (num_positions, embedding_dim), initialised N(0, 0.02^2) as in GPT-2."""

    def __init__(self, num_positions: int, embedding_dim: int, dtype: str = "float32") -> None:
        super().__init__()
        if int(num_positions) <= 0 or int(embedding_dim) <= 0:
            raise ConfigError(f"LearnedPositionalEmbedding: num_positions and embedding_dim must be positive, "
                              f"got {num_positions} and {embedding_dim}")
        self.num_positions, self.embedding_dim = int(num_positions), int(embedding_dim)
        shape = (self.num_positions, self.embedding_dim)
        self.weight = Param(Normal(0.0, 0.02)(shape, self.embedding_dim, self.num_positions, get_rng(), dtype))

    def forward(self, x: Any, offset: int = 0) -> Any:
        x, offset, steps = self._check(x, offset)
        self.save_for_backward((tuple(x.shape), offset))
        rows = self.weight.data[offset : offset + steps]
        return x + rows.astype(x.dtype, copy=False)

    def backward(self, dy: Any) -> Any:
        shape, offset = self.saved()
        dy = self._check_grad(dy, shape)
        w = self.weight
        if w.requires_grad:
            if w.grad is None:
                w.grad = get_array_module(w.data).zeros_like(w.data)
            steps = shape[-2]
            w.grad[offset : offset + steps] += dy.reshape(-1, steps, self.embedding_dim).sum(axis=0)
        return dy


LAYERS: dict[str, type] = {
    "sinusoidal_positional_embedding": SinusoidalPositionalEmbedding,
    "learned_positional_embedding": LearnedPositionalEmbedding,
}
