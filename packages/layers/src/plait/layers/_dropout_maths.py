"""The maths of inverted dropout: one mask function (used by Dropout, attention and the
recurrent layers) and the Dropout pair.

Training: ``y = x * m / (1 - p)`` with ``m ~ Bernoulli(1 - p)``, so E[y] = x;
``dx = dy * m / (1 - p)`` (the same mask). Evaluation (or ``p == 0``): the identity.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from plait.core import get_array_module, get_rng

__all__ = ["dropout_backward", "dropout_forward", "dropout_mask"]


def dropout_mask(shape: tuple[int, ...], p: float, dtype: Any, xp: Any = np, rng: Any = None) -> Any:
    """The scaled keep-mask ``m / (1 - p)`` of ``shape``, drawn on ``xp``'s device (zeros when p == 1).

    The draw comes from ``rng``, by default ``plait.core.get_rng()`` (so ``manual_seed`` makes it
    reproducible); on a GPU the device generator is seeded from it, so nothing crosses the bus.

    Args:
        shape: the mask's shape.
        p: the drop probability, in [0, 1] (not checked here; the layers check it).
        dtype: the mask's dtype (that of the array it multiplies).
        xp: the array module that places the mask (numpy, default, or cupy).
        rng: a ``numpy.random.Generator``; default None means ``plait.core.get_rng()``.

    Returns:
        An array of ``shape`` on ``xp``'s device holding 0 or 1 / (1 - p).
    """
    rng = get_rng() if rng is None else rng
    if xp is np:
        keep = rng.random(shape, dtype=np.float32) >= p
    else:  # GPU: draw on the device, seeded from the global generator
        keep = xp.random.default_rng(int(rng.integers(2**63))).random(shape, dtype=xp.float32) >= p
    mask = keep.astype(dtype)
    if p < 1.0:
        mask *= 1.0 / (1.0 - p)
    return mask


def dropout_forward(x: Any, *, p: float = 0.5, training: bool = True) -> tuple[Any, Any]:
    """y = x * mask (mask = m / (1 - p) from :func:`dropout_mask`); ctx = mask, or None when off."""
    if not training or p == 0.0:
        return x, None
    mask = dropout_mask(x.shape, p, x.dtype, get_array_module(x))
    return x * mask, mask


def dropout_backward(dy: Any, mask: Any, need_dx: bool = True) -> tuple[Any]:
    """dx = dy * mask (the forward's mask, scaling included)."""
    return (dy if mask is None else dy * mask,)
