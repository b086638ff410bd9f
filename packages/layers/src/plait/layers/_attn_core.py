"""Maths of scaled dot-product attention with grouped key/value heads (GQA/MQA).

Layout: query heads are grouped under the key/value head they share, so a whole
attention is one batched matmul per product, with no loop and no repeated k/v::

    q: (B, Hkv, G*T, D)   already scaled by 1/sqrt(D)    (query head h = kv head h // G)
    k, v: (B, Hkv, S, D)
    s = q k^T            (B, Hkv, G*T, S), viewed as (B, Hkv, G, T, S) for the masks
    p = softmax(s + additive, blocked -> -inf)           stable; a fully blocked row gives p = 0
    o = (p * m) v        m: inverted-dropout mask (or none)

Backward, with r = rowsum(do * o) = rowsum(dp * p) (FlashAttention's identity, also true
under dropout)::

    dv = (p * m)^T do    dp = (do v^T) * m    ds = p * (dp - r)    dq = ds k    dk = ds^T q
"""

from __future__ import annotations

from typing import Any

from plait.core import get_array_module


def softmax_masked_(scores5: Any, additive: Any | None, blocked: Any | None) -> Any:
    """In-place masked softmax over the last axis of (B, Hkv, G, T, S) scores; returns them."""
    xp = get_array_module(scores5)
    if additive is not None:
        scores5 += additive
    if blocked is not None:
        xp.copyto(scores5, -xp.inf, where=blocked)
    row_max = scores5.max(axis=-1, keepdims=True)
    xp.maximum(row_max, xp.finfo(scores5.dtype).min, out=row_max)  # all -inf rows: exp() -> 0, not nan
    scores5 -= row_max
    xp.exp(scores5, out=scores5)
    denom = scores5.sum(axis=-1, keepdims=True)
    xp.maximum(denom, xp.finfo(scores5.dtype).tiny, out=denom)  # a fully blocked row stays 0
    scores5 /= denom
    return scores5


def attention_forward(q: Any, k: Any, v: Any, groups: int, additive: Any | None, blocked: Any | None,
                      drop_mask: Any | None) -> tuple[Any, Any]:
    """Returns (o (B, Hkv, G*T, D), p (B, Hkv, G*T, S)); masks broadcast to (B, Hkv, G, T, S)."""
    xp = get_array_module(q)
    B, Hkv, GT, _ = q.shape
    S = k.shape[2]
    scores = xp.matmul(q, k.swapaxes(-1, -2))
    softmax_masked_(scores.reshape(B, Hkv, groups, GT // groups, S), additive, blocked)
    weights = scores if drop_mask is None else scores * drop_mask
    return xp.matmul(weights, v), scores


def attention_backward(do: Any, q: Any, k: Any, v: Any, o: Any, p: Any, drop_mask: Any | None) -> tuple[Any, Any, Any]:
    """Returns (dq, dk, dv) for the scaled q, in the layouts of :func:`attention_forward`."""
    xp = get_array_module(do)
    weights = p if drop_mask is None else p * drop_mask
    dv = xp.matmul(weights.swapaxes(-1, -2), do)
    ds = xp.matmul(do, v.swapaxes(-1, -2))
    if drop_mask is not None:
        ds *= drop_mask
    ds -= (do * o).sum(axis=-1, keepdims=True)
    ds *= p
    return xp.matmul(ds, k), xp.matmul(ds.swapaxes(-1, -2), q), dv
