"""The maths of token embeddings: a pure pair.

ids: int array of any shape (...), W: (num_embeddings, D)::

    y[..., :]       = W[ids[...], :]
    dW[v, :]        = sum of dy[...] over every position whose id is v   (repeated ids add up)
    dW[padding_idx] = 0
"""

from __future__ import annotations

from typing import Any

import numpy as np

from plait.core import get_array_module

__all__ = ["embedding_backward", "embedding_forward", "scatter_add_rows"]


def scatter_add_rows(target: Any, rows: Any, values: Any) -> None:
    """``target[rows[i]] += values[i]`` for every i, in place, repeated rows adding up.

    A plain ``target[rows] += values`` would keep only one of the repeats. On the GPU this is
    ``add.at`` (atomic adds; CuPy 13+, ``cupyx.scatter_add`` is deprecated since CuPy 14). On
    the CPU NumPy's ``add.at`` goes row by row, so the rows are sorted by id instead (stable:
    each id's values keep their order), each run of equal ids summed with one ``reduceat``,
    and the sums added at the distinct ids: 0.63 -> 0.10 ms for 768 rows of 96 into 65 ids,
    2.2 -> 0.9 ms for 1024 rows of 256 into 512.

    Args:
        target: (V, D), updated in place.
        rows: (n,) integer ids in [0, V).
        values: (n, D).
    """
    xp = get_array_module(target)
    if xp is not np:
        xp.add.at(target, rows, values)
        return
    if rows.size == 0:
        return
    order = np.argsort(rows, kind="stable")
    ids = rows[order]
    starts = np.flatnonzero(np.concatenate(([True], ids[1:] != ids[:-1])))
    target[ids[starts]] += np.add.reduceat(values[order], starts, axis=0)


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
