"""Absolute position embeddings added to a sequence: sinusoidal (fixed) and learned.

Both are drop-in layers: ``y = layer(x, offset=0)`` with x (B, T, D) (or (T, D)) returns
``x + P[offset : offset + T]``; ``offset`` is the position of the first step (for decoding
with a KV cache). The maths pairs are in :mod:`._positional_maths`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from plait.core import (
    Module,
    Param,
    ShapeError,
    check_array,
    check_parameter_count,
    check_size,
    get_array_module,
    get_rng,
)
from plait.core.initializers import Normal

from ._positional_maths import (
    learned_positional_backward,
    learned_positional_forward,
    sinusoidal_positional_backward,
    sinusoidal_positional_forward,
    sinusoidal_table,
)

__all__ = ["LearnedPositionalEmbedding", "SinusoidalPositionalEmbedding", "sinusoidal_table"]


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


class SinusoidalPositionalEmbedding(_Positional):
    """Adds the fixed sine/cosine table of "Attention Is All You Need" (no parameters).

    The table (``num_positions`` x ``embedding_dim``) is a non-persistent buffer: it is
    rebuilt from the config, not saved with the weights.

    Rows interleave the pair: P[p, 2i] = sin(p / base^(2i/D)), P[p, 2i+1] = cos(p / base^(2i/D)).
    Torch has no such layer; this is the paper's interleaved formula (as in the PyTorch
    tutorial's ``PositionalEncoding``), not the concatenated [sin | cos] halves of tensor2tensor.

    Args:
        num_positions: rows of the table (the longest sequence plus any ``offset``), an int >= 1.
        embedding_dim: D, the feature size of x, an int >= 1.
        base: the wavelength base, default 10000.0 (the paper's).

    Shapes:
        ``forward(x, offset=0)``: x (B, T, D) or (T, D) -> y of x's shape and dtype (float64 inputs get
        float64 rows). ``backward(dy)``: dx = dy.

    Raises:
        ConfigError: ``num_positions``/``embedding_dim`` not an integer >= 1, or a table larger than
            ``PLAIT_MAX_PARAMETERS``.
        ShapeError: see ``forward``; a ``dy`` of another shape than y.
        DTypeError: a non-floating input.
    """

    maths = (sinusoidal_positional_forward, sinusoidal_positional_backward)

    def __init__(self, num_positions: int, embedding_dim: int, base: float = 10000.0) -> None:
        super().__init__()
        check_size(num_positions, "SinusoidalPositionalEmbedding", "num_positions")
        check_size(embedding_dim, "SinusoidalPositionalEmbedding", "embedding_dim")
        check_parameter_count(num_positions * embedding_dim, "SinusoidalPositionalEmbedding")
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
        """x + the fixed rows of positions offset .. offset + T - 1.

        Args:
            x: the sequence, (B, T, D) or (T, D), float, D = ``embedding_dim``.
            offset: the position of the first step (for decoding with a KV cache), default 0.

        Returns:
            x + P[offset : offset + T], of x's shape and dtype.

        Raises:
            ShapeError: x not 2-D/3-D or its last axis not D, or positions beyond ``num_positions``.
            DTypeError: a non-floating x.
        """
        x, offset, steps = self._check(x, offset)
        return self.forward_maths(x, {"rows": self._rows(x, offset, steps)})


class LearnedPositionalEmbedding(_Positional):
    """Adds a trained table ``weight`` (num_positions, embedding_dim), initialised N(0, 0.02^2) as in GPT-2.

    Args:
        num_positions: rows of the table (the longest sequence plus any ``offset``), an int >= 1.
        embedding_dim: D, the feature size of x, an int >= 1.
        dtype: dtype of ``weight``, default ``"float32"``.

    Shapes:
        ``forward(x, offset=0)``: x (B, T, D) or (T, D) -> y of x's shape and dtype. ``backward(dy)``:
        dx = dy; adds dW (num_positions, D), non-zero in rows offset .. offset + T - 1, to the gradient.

    Raises:
        ConfigError: ``num_positions``/``embedding_dim`` not an integer >= 1, or more parameters than
            ``PLAIT_MAX_PARAMETERS``.
        ShapeError: see ``forward``; a ``dy`` of another shape than y.
        DTypeError: a non-floating input.
    """

    maths = (learned_positional_forward, learned_positional_backward)
    maths_params = ("weight",)

    def __init__(self, num_positions: int, embedding_dim: int, dtype: str = "float32") -> None:
        super().__init__()
        check_size(num_positions, "LearnedPositionalEmbedding", "num_positions")
        check_size(embedding_dim, "LearnedPositionalEmbedding", "embedding_dim")
        check_parameter_count(num_positions * embedding_dim, "LearnedPositionalEmbedding")
        self.num_positions, self.embedding_dim = int(num_positions), int(embedding_dim)
        shape = (self.num_positions, self.embedding_dim)
        self.weight = Param(Normal(0.0, 0.02)(shape, self.embedding_dim, self.num_positions, get_rng(), dtype))

    def forward(self, x: Any, offset: int = 0) -> Any:
        """x + the learned rows of positions offset .. offset + T - 1.

        Args:
            x: the sequence, (B, T, D) or (T, D), float, D = ``embedding_dim``.
            offset: the position of the first step (for decoding with a KV cache), default 0.

        Returns:
            x + P[offset : offset + T], of x's shape and dtype.

        Raises:
            ShapeError: x not 2-D/3-D or its last axis not D, or positions beyond ``num_positions``.
            DTypeError: a non-floating x.
        """
        x, offset, _ = self._check(x, offset)
        return self.forward_maths(x, {"offset": offset})


LAYERS: dict[str, type] = {
    "sinusoidal_positional_embedding": SinusoidalPositionalEmbedding,
    "learned_positional_embedding": LearnedPositionalEmbedding,
}
