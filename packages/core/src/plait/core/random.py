"""One seeded random generator shared by initializers, dropout and data shuffling."""

from __future__ import annotations

import numpy as np

__all__ = ["manual_seed", "get_rng"]

_rng: np.random.Generator = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed Plait's global generator (like ``torch.manual_seed``) and return it."""
    global _rng
    _rng = np.random.default_rng(seed)
    return _rng


def get_rng(rng: np.random.Generator | int | None = None) -> np.random.Generator:
    """Return ``rng`` itself, a new generator seeded with it (int), or the global one (None)."""
    if rng is None:
        return _rng
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)
