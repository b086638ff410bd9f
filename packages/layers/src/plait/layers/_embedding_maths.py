"""The maths of token embeddings: a pure pair.

ids: int array of any shape (...), W: (num_embeddings, D)::

    y[..., :]       = W[ids[...], :]
    dW[v, :]        = sum of dy[...] over every position whose id is v   (repeated ids add up)
    dW[padding_idx] = 0
"""

from __future__ import annotations

from typing import Any

from plait.core import get_array_module

__all__ = ["embedding_backward", "embedding_forward", "scatter_add_rows"]


def scatter_add_rows(target: Any, rows: Any, values: Any) -> None:
    """``target[rows[i]] += values[i]`` for every i, in place, repeated rows adding up.

    ``add.at`` (NumPy, and CuPy 13+; ``cupyx.scatter_add`` is deprecated since CuPy 14): a
    plain ``target[rows] += values`` would keep only one of the repeats.
    """
    get_array_module(target).add.at(target, rows, values)


def embedding_forward(ids: Any, weight: Any, *, padding_idx: int | None = None) -> tuple[Any, Any]:
    """y = W[ids]: (...) -> (..., D); ctx = (ids, padding_idx).

    Args:
        ids: integer ids (...), each in [0, V) (not checked here).
        weight: W (V, D).
        padding_idx: the id whose rows ``embedding_backward`` leaves without gradient; default None.

    Returns:
        ``(y, ctx)``: y (..., D) and ctx = (ids, padding_idx).
    """
    return weight[ids], (ids, padding_idx)


def embedding_backward(dy: Any, ctx: Any, weight: Any, need_dx: bool = True) -> tuple[None, Any]:
    """(None (ids have no gradient), dW (V, D)): rows of dy (..., D) scatter-added at their ids.

    Args:
        dy: gradient of y, (..., D).
        ctx: ``(ids, padding_idx)`` from ``embedding_forward``.
        weight: W (V, D) (its shape and dtype shape dW).
        need_dx: accepted for the maths-pair contract (ids have no gradient); default True.

    Returns:
        ``(None, dW)``: dW (V, D), zero in the ``padding_idx`` row.
    """
    ids, padding_idx = ctx
    ids1d = ids.reshape(-1)
    dy2d = dy.reshape(-1, weight.shape[1])
    if padding_idx is not None:
        keep = ids1d != padding_idx
        ids1d, dy2d = ids1d[keep], dy2d[keep]
    dweight = get_array_module(weight).zeros_like(weight)
    scatter_add_rows(dweight, ids1d, dy2d)
    return None, dweight
