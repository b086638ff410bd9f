"""Non-zero padding modes of the convolutions (torch's ``padding_mode``), on the last two axes.

Each mode maps a padded position p in [-before, size + after) to an input position:

    reflect    p < 0: -p;  p >= size: 2 (size - 1) - p        (the edge is not repeated)
    replicate  clip(p, 0, size - 1)
    circular   p mod size

The forward pass is one gather of x through these two index vectors; the backward pass adds
each padded position's gradient back onto its source (the interior copied once, then one
add per padded row or column: a loop over the padding width, never over pixels).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from plait.core import get_array_module

from ._conv_args import Pads

__all__ = ["PADDING_MODES", "pad_index", "pad_modes", "pad_modes_backward"]

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def pad_index(size: int, before: int, after: int, mode: str) -> np.ndarray:
    """Input position of every padded position (before + size + after,) under ``mode``."""
    p = np.arange(-before, size + after)
    if mode == "reflect":
        p = np.abs(p)
        return np.where(p >= size, 2 * (size - 1) - p, p)
    if mode == "replicate":
        return np.clip(p, 0, size - 1)
    if mode == "circular":
        return p % size
    raise ValueError(f"unknown padding mode {mode!r}")


def pad_modes(x: Any, pads: Pads, mode: str) -> Any:
    """x (..., H, W) padded by ((top, bottom), (left, right)) under ``mode``: one gather."""
    xp = get_array_module(x)
    (t, b), (left, r) = pads
    rows = xp.asarray(pad_index(x.shape[-2], t, b, mode))
    cols = xp.asarray(pad_index(x.shape[-1], left, r, mode))
    return x[..., rows[:, None], cols[None, :]]


def _fold(g: Any, axis: int, index: np.ndarray, before: int, size: int) -> Any:
    """Sum g's padded positions along ``axis`` onto their sources: (.., before + size + after, ..) -> (.., size, ..)."""
    def at(k: Any) -> tuple[Any, ...]:
        return (Ellipsis, k) + (slice(None),) * (-1 - axis)

    out = g[at(slice(before, before + size))].copy()
    for k in [*range(before), *range(before + size, g.shape[axis])]:
        out[at(int(index[k]))] += g[at(k)]
    return out


def pad_modes_backward(dpadded: Any, pads: Pads, mode: str, x_hw: tuple[int, int]) -> Any:
    """dx (..., H, W) of :func:`pad_modes` from the padded gradient (..., Hp, Wp)."""
    (t, b), (left, r) = pads
    h, w = x_hw
    g = _fold(dpadded, -1, pad_index(w, left, r, mode), left, w)
    return _fold(g, -2, pad_index(h, t, b, mode), t, h)
