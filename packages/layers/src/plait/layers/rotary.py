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

from plait.core import ConfigError, Module, ShapeError, check_array, get_array_module

__all__ = ["RotaryEmbedding", "rope_backward", "rope_forward", "rope_tables"]


# -- maths ----------------------------------------------------------------------------------
def rope_tables(dim: int, max_position: int, base: float) -> tuple[np.ndarray, np.ndarray]:
    """(cos, sin), each (max_position, dim), computed in float64."""
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


def rope_forward(x: Any, cos: Any, sin: Any) -> Any:
    """x: (..., T, dim); cos, sin: (T, dim) of the positions of x."""
    return x * cos + _rotate_half(x) * sin


def rope_backward(dy: Any, cos: Any, sin: Any) -> Any:
    """The input gradient of :func:`rope_forward`: the inverse rotation of dy."""
    return dy * cos + _rotate_half_t(dy * sin)


# -- layer ------------------------------------------------------------------------------------
class RotaryEmbedding(Module):
    """Rotates (..., T, dim) query/key features by their positions ``offset .. offset + T - 1``.

    No parameters; the cos/sin tables (max_position, dim) are non-persistent buffers kept in
    the module's dtype. ``forward(x, offset=0)``; ``backward(dy)`` applies the inverse rotation.
    """

    def __init__(self, dim: int, base: float = 10000.0, max_position: int = 4096, dtype: str = "float32") -> None:
        super().__init__()
        if int(dim) <= 0 or int(dim) % 2:
            raise ConfigError(f"RotaryEmbedding: dim must be a positive even number, got {dim}")
        if int(max_position) <= 0 or float(base) <= 0:
            raise ConfigError(f"RotaryEmbedding: max_position and base must be positive, got {max_position}, {base}")
        self.dim, self.base, self.max_position = int(dim), float(base), int(max_position)
        cos, sin = rope_tables(self.dim, self.max_position, self.base)
        self.register_buffer("cos", cos.astype(dtype), persistent=False)
        self.register_buffer("sin", sin.astype(dtype), persistent=False)

    def tables(self, offset: int, length: int, where: str = "RotaryEmbedding") -> tuple[Any, Any]:
        """cos, sin of positions offset .. offset + length - 1, each (length, dim)."""
        offset = int(offset)
        if offset < 0 or offset + length > self.max_position:
            raise ShapeError(
                f"{where}: positions {offset}..{offset + length - 1} exceed the rotary table "
                f"(max_position={self.max_position}); build it with a larger max_position"
            )
        return self.cos[offset : offset + length], self.sin[offset : offset + length]

    def forward(self, x: Any, offset: int = 0) -> Any:
        """x: (..., T, dim) -> same shape, same dtype as the tables."""
        x = check_array(x, "RotaryEmbedding", ndim_min=2, last_dim=self.dim)
        cos, sin = self.tables(offset, x.shape[-2])
        if x.dtype != cos.dtype:
            x = x.astype(cos.dtype)
        self.save_for_backward((cos, sin, tuple(x.shape)))
        return rope_forward(x, cos, sin)

    def backward(self, dy: Any) -> Any:
        cos, sin, shape = self.saved()
        dy = check_array(dy, "RotaryEmbedding.backward", what="output gradient", ndim=len(shape))
        if tuple(dy.shape) != shape:
            raise ShapeError(f"RotaryEmbedding.backward: expected output gradient of shape {shape}, got {dy.shape}")
        return rope_backward(dy, cos, sin)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, base={self.base}, max_position={self.max_position}"


LAYERS: dict[str, type] = {"rotary_embedding": RotaryEmbedding}
