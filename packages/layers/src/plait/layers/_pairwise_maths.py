"""The maths of the two-input (Siamese, ranking) losses: pure pairs, no bookkeeping.

``<loss>_forward(x1, x2, target, **options) -> (per-pair losses l, mean denominator n, ctx)``
and ``<loss>_backward(g, ctx, need_dx=True) -> (dx1, dx2)``, with ``g`` the upstream gradient
of each pair's loss (shaped like ``l``, or a scalar). Targets are +1 (similar / x1 ranks
higher) or -1 (dissimilar / x2 ranks higher).
"""

from __future__ import annotations

from typing import Any

from plait.core import get_array_module

__all__ = [
    "cosine_embedding_backward",
    "cosine_embedding_forward",
    "margin_ranking_backward",
    "margin_ranking_forward",
]

#: Added to each squared norm before the square root, as torch does (a zero vector gives cos = 0).
COSINE_EPS = 1e-12


def cosine_embedding_forward(x1: Any, x2: Any, target: Any, *, margin: float = 0.0) -> tuple[Any, Any, Any]:
    """x1, x2: (N, D); target: (N,) of +-1. With cos_i = <x1_i, x2_i> / sqrt((|x1_i|^2 + eps)(|x2_i|^2 + eps)):

    ``l_i = 1 - cos_i`` where y_i = 1, ``max(0, cos_i - margin)`` where y_i = -1; n = N.
    ctx = (x1, x2, cos, |x1|^2 + eps, sqrt(...), dl/dcos).
    """
    xp = get_array_module(x1)
    dot = (x1 * x2).sum(axis=-1)
    sq1 = (x1 * x1).sum(axis=-1)
    sq1 += COSINE_EPS
    sq2 = (x2 * x2).sum(axis=-1)
    sq2 += COSINE_EPS
    denom = xp.sqrt(sq1 * sq2)
    cos = dot / denom
    positive = target > 0
    hinge = cos - margin
    active = (~positive) & (hinge >= 0)  # torch's clamp_min passes the gradient at the hinge itself
    losses = xp.where(positive, 1.0 - cos, xp.maximum(hinge, 0)).astype(x1.dtype, copy=False)
    dl_dcos = active.astype(x1.dtype) - positive
    return losses, float(x1.shape[0]), (x1, x2, cos, sq1, sq2, denom, dl_dcos)


def cosine_embedding_backward(g: Any, ctx: Any, need_dx: bool = True) -> tuple[Any, Any]:
    """d cos / d x1 = x2 / sqrt(s1 s2) - cos x1 / s1 (and symmetrically for x2), s = |x|^2 + eps;
    dx = dl/dcos * g * d cos / dx."""
    x1, x2, cos, sq1, sq2, denom, dl_dcos = ctx
    k = (dl_dcos * g)[:, None]
    c = cos[:, None]
    inv = k / denom[:, None]
    dx1 = x2 * inv
    dx1 -= x1 * (k * c / sq1[:, None])
    dx2 = x1 * inv
    dx2 -= x2 * (k * c / sq2[:, None])
    return dx1, dx2


def margin_ranking_forward(x1: Any, x2: Any, target: Any, *, margin: float = 0.0) -> tuple[Any, Any, Any]:
    """x1, x2, target: one shape. ``l = max(0, -y (x1 - x2) + margin)``; n = number of elements.

    ctx = -y where the hinge is active (>= 0, torch's clamp_min), else 0: d l / d x1.
    """
    xp = get_array_module(x1)
    hinge = x2 - x1
    hinge *= target
    hinge += margin
    slope = -target * (hinge >= 0)
    return xp.maximum(hinge, 0), float(x1.size), slope


def margin_ranking_backward(g: Any, slope: Any, need_dx: bool = True) -> tuple[Any, Any]:
    """dx1 = -y [hinge >= 0] g; dx2 = -dx1."""
    dx1 = slope * g
    return dx1, -dx1
