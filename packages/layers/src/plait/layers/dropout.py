"""Inverted dropout (the maths, and the one mask function every layer uses, are in
:mod:`._dropout_maths`).

Training: ``y = x * m / (1 - p)`` with ``m ~ Bernoulli(1 - p)`` drawn from
``plait.core.get_rng()`` (so ``manual_seed`` makes it reproducible); ``dx = dy * m / (1 - p)``.
Evaluation (or ``p == 0``): the identity.
"""

from __future__ import annotations

from typing import Any

from plait.core import ConfigError, Module

from ._dropout_maths import dropout_backward, dropout_forward, dropout_mask

__all__ = ["Dropout", "dropout_mask"]


class Dropout(Module):
    """Zero each element with probability ``p`` in training, scaling the rest by 1 / (1 - p)."""

    maths = (dropout_forward, dropout_backward)

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= float(p) <= 1.0:
            raise ConfigError(f"Dropout: p must be a probability in [0, 1], got {p}")
        self.p = float(p)

    def options(self, x: Any) -> dict[str, Any]:
        return {"p": self.p, "training": self.training}

    def extra_repr(self) -> str:
        return f"p={self.p}"


LAYERS: dict[str, type] = {"dropout": Dropout}
