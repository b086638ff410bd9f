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
    """Zero each element with probability ``p`` in training, scaling the rest by 1 / (1 - p).

    Args:
        p: the probability of zeroing an element, in [0, 1]; default 0.5 (as torch; torch's
            ``inplace`` is not accepted). p = 1 zeroes everything.

    Shapes:
        ``forward(x)``: x (...) -> y of x's shape (x itself in eval mode or when p = 0).
        ``backward(dy)``: dy of y's shape -> dx = dy * mask (the forward's mask, scale included).

    Raises:
        ConfigError: ``p`` outside [0, 1].
        ShapeError: a ``dy`` of another shape than y.
        DTypeError: a non-floating input or ``dy``.
    """

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
