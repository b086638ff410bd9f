"""Inverted dropout.

Training: ``y = x * m / (1 - p)`` with ``m ~ Bernoulli(1 - p)`` drawn from
``plait.core.get_rng()`` (so ``manual_seed`` makes it reproducible); ``dx = dy * m / (1 - p)``.
Evaluation (or ``p == 0``): the identity.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from plait.core import ConfigError, Module, ShapeError, check_array, get_array_module, get_rng

__all__ = ["Dropout", "dropout_mask"]


def dropout_mask(shape: tuple[int, ...], p: float, dtype: Any, xp: Any = np) -> Any:
    """Scaled keep-mask m / (1 - p) of ``shape`` (zeros everywhere when p == 1)."""
    rng = get_rng()
    if xp is np:
        keep = rng.random(shape, dtype=np.float32) >= p
    else:  # pragma: no cover - GPU: draw on the device, seeded from the global generator
        keep = xp.random.default_rng(int(rng.integers(2**63))).random(shape, dtype=xp.float32) >= p
    mask = keep.astype(dtype)
    if p < 1.0:
        mask *= 1.0 / (1.0 - p)
    return mask


class Dropout(Module):
    """Zero each element with probability ``p`` in training, scaling the rest by 1 / (1 - p)."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= float(p) <= 1.0:
            raise ConfigError(f"Dropout: p must be a probability in [0, 1], got {p}")
        self.p = float(p)

    def forward(self, x: Any) -> Any:
        x = check_array(x, "Dropout")
        if not self.training or self.p == 0.0:
            self.save_for_backward((None, tuple(x.shape)))
            return x
        mask = dropout_mask(x.shape, self.p, x.dtype, get_array_module(x))
        self.save_for_backward((mask, tuple(x.shape)))
        return x * mask

    def backward(self, dy: Any) -> Any:
        mask, shape = self.saved()
        dy = check_array(dy, "Dropout.backward", what="output gradient")
        if tuple(dy.shape) != shape:
            raise ShapeError(f"Dropout.backward: expected output gradient of shape {shape}, got {tuple(dy.shape)}")
        return dy if mask is None else dy * mask

    def extra_repr(self) -> str:
        return f"p={self.p}"


LAYERS: dict[str, type] = {"dropout": Dropout}
