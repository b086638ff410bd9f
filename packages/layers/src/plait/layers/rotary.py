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

from plait.core import ConfigError, Module, ShapeError, check_array, check_parameter_count, check_size

from ._rotary_maths import rope_backward, rope_forward, rope_tables

__all__ = ["RotaryEmbedding", "rope_backward", "rope_forward", "rope_tables"]


# -- layer ------------------------------------------------------------------------------------
class RotaryEmbedding(Module):
    """Rotates (..., T, dim) query/key features by their positions ``offset .. offset + T - 1``.

    No parameters; the cos/sin tables (max_position, dim) are non-persistent buffers kept in
    the module's dtype. ``forward(x, offset=0)``; ``backward(dy)`` applies the inverse rotation.
    The maths pair is in :mod:`._rotary_maths`.

    Torch has no such layer; it matches Hugging Face's ``LlamaRotaryEmbedding`` (rotate-half layout).

    Args:
        dim: the rotated feature size (the head dimension), a positive even int.
        base: the frequency base, > 0; default 10000.0 (as LLaMA / GPT-NeoX).
        max_position: rows of the cos/sin tables: offset + T must not exceed it; an int >= 1,
            default 4096.
        dtype: dtype of the tables; inputs are cast to it. Default ``"float32"``.

    Shapes:
        ``forward(x, offset=0)``: x (..., T, dim) -> y of x's shape, in the tables' dtype.
        ``backward(dy)``: dy of y's shape -> dx (the inverse rotation).

    Raises:
        ConfigError: ``dim`` odd or not an integer >= 1, ``max_position`` not an integer >= 1, ``base``
            not positive, or tables larger than ``PLAIT_MAX_PARAMETERS``.
        ShapeError: x with fewer than 2 axes or a last axis other than ``dim``; positions beyond
            ``max_position``; a ``dy`` of another shape than y.
        DTypeError: a non-floating input or ``dy``.
    """

    maths = (rope_forward, rope_backward)

    def __init__(self, dim: int, base: float = 10000.0, max_position: int = 4096, dtype: str = "float32") -> None:
        super().__init__()
        check_size(max_position, "RotaryEmbedding", "max_position")
        check_parameter_count(2 * check_size(dim, "RotaryEmbedding", "dim") * max_position, "RotaryEmbedding")
        if int(dim) % 2:
            raise ConfigError(f"RotaryEmbedding: dim must be a positive even number, got {dim}")
        if int(max_position) <= 0 or float(base) <= 0:
            raise ConfigError(f"RotaryEmbedding: max_position and base must be positive, got {max_position}, {base}")
        self.dim, self.base, self.max_position = int(dim), float(base), int(max_position)
        cos, sin = rope_tables(self.dim, self.max_position, self.base)
        self.register_buffer("cos", cos.astype(dtype), persistent=False)
        self.register_buffer("sin", sin.astype(dtype), persistent=False)

    def tables(self, offset: int, length: int, where: str = "RotaryEmbedding") -> tuple[Any, Any]:
        """cos, sin of positions offset .. offset + length - 1, each (length, dim).

        Args:
            offset: the first position, >= 0.
            length: the number of positions.
            where: the component named in the error message; default ``"RotaryEmbedding"``.

        Returns:
            ``(cos, sin)``, each (length, dim) in the tables' dtype (views of the buffers).

        Raises:
            ShapeError: ``offset`` negative or ``offset + length`` above ``max_position``.
        """
        offset = int(offset)
        if offset < 0 or offset + length > self.max_position:
            raise ShapeError(
                f"{where}: positions {offset}..{offset + length - 1} exceed the rotary table "
                f"(max_position={self.max_position}); build it with a larger max_position"
            )
        return self.cos[offset : offset + length], self.sin[offset : offset + length]

    def forward(self, x: Any, offset: int = 0) -> Any:
        """x: (..., T, dim) -> same shape, same dtype as the tables.

        Args:
            x: query or key features (..., T, dim), float.
            offset: the position of the first step (for decoding with a KV cache), default 0.

        Returns:
            x rotated by the angles of positions offset .. offset + T - 1, of x's shape.

        Raises:
            ShapeError: fewer than 2 axes, a last axis other than ``dim``, or positions beyond ``max_position``.
            DTypeError: a non-floating x.
        """
        x = check_array(x, "RotaryEmbedding", ndim_min=2, last_dim=self.dim)
        cos, sin = self.tables(offset, x.shape[-2])
        if x.dtype != cos.dtype:
            x = x.astype(cos.dtype)
        return self.forward_maths(x, {"cos": cos, "sin": sin})

    def extra_repr(self) -> str:
        return f"dim={self.dim}, base={self.base}, max_position={self.max_position}"


LAYERS: dict[str, type] = {"rotary_embedding": RotaryEmbedding}
