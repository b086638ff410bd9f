"""The maths of the classification losses over (M, C) rows: pure functions, no bookkeeping.

Each forward returns ``(per-row losses (M,), mean denominator, ctx)``; each backward takes
that ``ctx`` and the per-row upstream gradient ``g`` (an (M,) array or a scalar) and returns
d loss / d input, (M, C).
"""

from __future__ import annotations

from typing import Any

from plait.core import ShapeError, get_array_module

from ._activation_maths import log_softmax

__all__ = ["cross_entropy_backward", "cross_entropy_forward", "nll_backward", "nll_forward"]


def _gather_targets(target: Any, weight: Any | None, ignore_index: int, num_classes: int, where: str,
                    dtype: Any) -> tuple[Any, Any, Any]:
    """Index targets -> (safe ids, per-row weight w[y] (0 where ignored), valid mask)."""
    xp = get_array_module(target)
    valid = target != ignore_index
    if bool((valid & ((target < 0) | (target >= num_classes))).any()):  # one host sync on a GPU
        ids = target[valid]
        raise ShapeError(
            f"{where}: target class indices must lie in [0, {num_classes}) or equal ignore_index={ignore_index}, "
            f"got range [{int(ids.min())}, {int(ids.max())}]"
        )
    safe = xp.where(valid, target, 0)
    w_rows = valid.astype(dtype)
    if weight is not None:
        w_rows *= weight[safe]
    return safe, w_rows, valid


def nll_forward(logp: Any, target: Any, weight: Any | None, ignore_index: int, where: str = "NLLLoss") -> tuple[Any, Any, Any]:
    """l_i = -w[y_i] logp[i, y_i] (0 where y_i == ignore_index); n = sum_i w[y_i]."""
    xp = get_array_module(logp)
    safe, w_rows, _ = _gather_targets(target, weight, ignore_index, logp.shape[1], where, logp.dtype)
    rows = xp.arange(logp.shape[0])
    losses = -w_rows * logp[rows, safe]
    return losses, w_rows.sum(), (logp.shape, safe, w_rows)


def nll_backward(ctx: Any, g: Any) -> Any:
    """d l_i / d logp[i, c] = -w[y_i] [c == y_i]."""
    shape, safe, w_rows = ctx
    xp = get_array_module(w_rows)
    dlogp = xp.zeros(shape, dtype=w_rows.dtype)
    dlogp[xp.arange(shape[0]), safe] = -w_rows * g
    return dlogp


def cross_entropy_forward(logits: Any, target: Any, weight: Any | None, ignore_index: int, smoothing: float,
                          where: str = "CrossEntropyLoss") -> tuple[Any, Any, Any]:
    """Cross entropy of (M, C) logits against (M,) class ids or (M, C) probabilities.

    Both are ``l_i = -sum_c q_ic logp_ic`` with target weights ``q``:
    ids: ``q_ic = (1-e) w_c [c == y_i] + (e/C) w_c`` (0 for ignored rows), n = sum_i w[y_i];
    probabilities: ``q_ic = w_c ((1-e) t_ic + e/C)``, n = M. (torch's definitions exactly.)
    """
    xp = get_array_module(logits)
    m, c = logits.shape
    logp = log_softmax(logits, -1)
    if target.ndim == 2:  # probabilities
        q = target.astype(logits.dtype, copy=True)
        if smoothing:
            q *= 1.0 - smoothing
            q += smoothing / c
        if weight is not None:
            q *= weight
        losses = -(q * logp).sum(axis=1)
        return losses, float(m), ("probs", logp, q)
    safe, w_rows, valid = _gather_targets(target, weight, ignore_index, c, where, logits.dtype)
    losses = -(1.0 - smoothing) * w_rows * logp[xp.arange(m), safe]
    if smoothing:
        smooth = logp @ weight if weight is not None else logp.sum(axis=1)
        smooth *= valid
        losses -= (smoothing / c) * smooth
    return losses, w_rows.sum(), ("ids", logp, safe, w_rows, valid, weight, smoothing)


def cross_entropy_backward(ctx: Any, g: Any) -> Any:
    """d l_i / d x_ic = p_ic sum_k q_ik - q_ic, with p = softmax(x) = exp(logp); times g_i."""
    xp = get_array_module(ctx[1])
    logp = ctx[1]
    dx = xp.exp(logp)
    if ctx[0] == "probs":
        q = ctx[2]
        dx *= q.sum(axis=1, keepdims=True)
        dx -= q
    else:
        _, _, safe, w_rows, valid, weight, eps = ctx
        m, c = logp.shape
        total = (1.0 - eps) * w_rows
        if eps:
            w_sum = float(weight.sum()) if weight is not None else float(c)
            total += (eps / c) * w_sum * valid
        dx *= total[:, None]
        dx[xp.arange(m), safe] -= (1.0 - eps) * w_rows
        if eps:
            dx -= (eps / c) * (valid[:, None] * (weight[None, :] if weight is not None else 1.0))
    dx *= g[:, None] if getattr(g, "ndim", 0) else g
    return dx
