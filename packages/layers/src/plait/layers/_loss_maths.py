"""The maths of the losses: pure pairs, no bookkeeping.

``<loss>_forward(x, target, **options) -> (per-element losses l, mean denominator n, ctx)`` and
``<loss>_backward(g, ctx, need_dx=True) -> (dx,)`` with ``g`` the upstream gradient of each
element loss (an array shaped like ``l``, or a scalar). The loss class reduces ``l``
("mean": sum(l) / n). Classification losses work on (M, C) rows and (M,) class ids (or
(M, C) probabilities); element-wise losses on any shape, x and target alike.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from plait.core import ShapeError, get_array_module

from ._activation_maths import log_softmax, sigmoid, softplus

__all__ = [
    "bce_backward",
    "bce_forward",
    "bce_with_logits_backward",
    "bce_with_logits_forward",
    "cross_entropy_backward",
    "cross_entropy_forward",
    "huber_backward",
    "huber_forward",
    "kl_div_backward",
    "kl_div_forward",
    "l1_backward",
    "l1_forward",
    "mse_backward",
    "mse_forward",
    "nll_backward",
    "nll_forward",
    "smooth_l1_backward",
    "smooth_l1_forward",
]


def _gather_targets(target: Any, weight: Any | None, ignore_index: int, num_classes: int, where: str,
                    dtype: Any) -> tuple[Any, Any, Any]:
    """Index targets -> (safe ids, per-row weight w[y] (0 where ignored), valid mask).

    The common case -- no class weight, every id in [0, C), none equal to ``ignore_index``
    -- returns ``(target, None, None)``: every row counts, with weight 1. It is recognised
    from the ids' min and max (NumPy only: on a GPU each would be a host sync), which skips
    the masks, the ``where`` and a per-row weight array in forward and backward alike.
    """
    xp = get_array_module(target)
    if xp is np and weight is None and target.size:
        lo, hi = target.min(), target.max()
        if 0 <= lo and hi < num_classes and not lo <= ignore_index <= hi:
            return target, None, None
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


def _per_row(g: Any) -> Any:
    """The upstream gradient as a column (M, 1) to scale rows, or the scalar itself."""
    return g[:, None] if getattr(g, "ndim", 0) else g


# -- classification over (M, C) rows -----------------------------------------------------------
def nll_forward(logp: Any, target: Any, *, weight: Any | None = None, ignore_index: int = -100,
                where: str = "NLLLoss") -> tuple[Any, Any, Any]:
    """l_i = -w[y_i] logp[i, y_i] (0 where y_i == ignore_index); n = sum_i w[y_i].

    Args:
        logp: log-probabilities (M, C).
        target: class ids (M,), integers.
        weight: class weights (C,) in logp's dtype, or None (default) for 1.
        ignore_index: the id whose rows give 0 and do not count in n; default -100.
        where: the component named in error messages; default ``"NLLLoss"``.

    Returns:
        ``(losses, n, ctx)``: losses (M,), the mean's denominator n (0-d) and the ctx of ``nll_backward``.

    Raises:
        ShapeError: a target id outside [0, C) that is not ``ignore_index``.
    """
    xp = get_array_module(logp)
    safe, w_rows, _ = _gather_targets(target, weight, ignore_index, logp.shape[1], where, logp.dtype)
    picked = logp[xp.arange(logp.shape[0]), safe]
    if w_rows is None:  # every row kept, weight 1
        return -picked, float(logp.shape[0]), (logp.shape, logp.dtype, safe, None)
    return -w_rows * picked, w_rows.sum(), (logp.shape, logp.dtype, safe, w_rows)


def nll_backward(g: Any, ctx: Any, need_dx: bool = True) -> tuple[Any]:
    """``d l_i / d logp[i, c] = -w[y_i] * (c == y_i)``, times g_i.

    Args:
        g: upstream gradient per row: (M,) for ``reduction="none"``, or a scalar (1/n for a mean).
        ctx: the ctx returned by the matching forward.
        need_dx: accepted for the maths-pair contract; the gradient is always computed (default True).

    Returns:
        ``(dx,)``: a 1-tuple, dx (M, C).
    """
    shape, dtype, safe, w_rows = ctx
    xp = get_array_module(safe)
    dlogp = xp.zeros(shape, dtype=dtype)
    dlogp[xp.arange(shape[0]), safe] = -g if w_rows is None else -w_rows * g
    return (dlogp,)


def cross_entropy_forward(logits: Any, target: Any, *, weight: Any | None = None, ignore_index: int = -100,
                          label_smoothing: float = 0.0, where: str = "CrossEntropyLoss") -> tuple[Any, Any, Any]:
    """Cross entropy of (M, C) logits against (M,) class ids or (M, C) probabilities.

    Both are ``l_i = -sum_c q_ic logp_ic``, logp = log_softmax(x), with target weights ``q``
    (e = label_smoothing, w = class weight):
    ids: ``q_ic = (1-e) w_c (c == y_i) + (e/C) w_c`` (0 for ignored rows), n = sum_i w[y_i];
    probabilities: ``q_ic = w_c ((1-e) t_ic + e/C)``, n = M. (torch's definitions exactly.)

    Args:
        logits: (M, C).
        target: class ids (M,), integers, or probabilities (M, C).
        weight: class weights (C,) in the logits' dtype, or None (default) for 1.
        ignore_index: the id whose rows give 0 and do not count in n; default -100 (ids only).
        label_smoothing: e in [0, 1]; default 0.0.
        where: the component named in error messages; default ``"CrossEntropyLoss"``.

    Returns:
        ``(losses, n, ctx)``: losses (M,), the mean's denominator n and the ctx of ``cross_entropy_backward``.

    Raises:
        ShapeError: a target id outside [0, C) that is not ``ignore_index``.
    """
    xp = get_array_module(logits)
    m, c = logits.shape
    smoothing = label_smoothing
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
    losses = logp[xp.arange(m), safe]
    losses *= -(1.0 - smoothing) if w_rows is None else -(1.0 - smoothing) * w_rows
    if smoothing:
        smooth = logp @ weight if weight is not None else logp.sum(axis=1)
        if valid is not None:
            smooth *= valid
        losses -= (smoothing / c) * smooth
    n = float(m) if w_rows is None else w_rows.sum()
    return losses, n, ("ids", logp, safe, w_rows, valid, weight, smoothing)


def cross_entropy_backward(g: Any, ctx: Any, need_dx: bool = True) -> tuple[Any]:
    """d l_i / d x_i, times g_i.

    Class ids, no weight, no smoothing (the textbook case)::

        dx_i = softmax(x_i) - onehot(y_i)              (0 for an ignored row)

    With class weights w and label smoothing e (and for probability targets) the same
    rule with the target weights q of the forward: ``dx_i = softmax(x_i) sum_c q_ic - q_i``;
    for ids ``q_i = (1-e) w[y_i] onehot(y_i) + (e/C) w``.

    Args:
        g: upstream gradient per row: (M,) for ``reduction="none"``, or a scalar (1/n for a mean).
        ctx: the ctx returned by the matching forward.
        need_dx: accepted for the maths-pair contract; the gradient is always computed (default True).

    Returns:
        ``(dx,)``: a 1-tuple, dx (M, C).
    """
    logp = ctx[1]
    xp = get_array_module(logp)
    p = xp.exp(logp)  # softmax(x)
    if ctx[0] == "probs":
        q = ctx[2]
        p *= q.sum(axis=1, keepdims=True)
        p -= q
        p *= _per_row(g)
        return (p,)
    _, _, safe, w_rows, valid, weight, eps = ctx
    m, c = logp.shape
    rows = xp.arange(m)
    if weight is None and not eps:
        p[rows, safe] -= 1.0  # softmax - onehot
        # w_rows is the 0/1 mask of kept rows here (None: all kept): one pass over p for both
        p *= _per_row(g) if w_rows is None else (w_rows * g)[:, None]
        return (p,)
    if w_rows is None:  # every row kept, weight 1
        w_rows, valid = xp.ones(m, dtype=p.dtype), xp.ones(m, dtype=bool)
    total = (1.0 - eps) * w_rows  # sum_c q_ic
    if eps:
        w_sum = float(weight.sum()) if weight is not None else float(c)
        total += (eps / c) * w_sum * valid
    p *= total[:, None]
    p[rows, safe] -= (1.0 - eps) * w_rows
    if eps:
        p -= (eps / c) * (valid[:, None] * (weight[None, :] if weight is not None else 1.0))
    p *= _per_row(g)
    return (p,)


# -- element-wise: x and target of one shape ------------------------------------------------------
def mse_forward(x: Any, target: Any) -> tuple[Any, Any, Any]:
    """l = (x - t)^2; n = number of elements; ctx = x - t."""
    d = x - target
    return d * d, float(x.size), d


def mse_backward(g: Any, d: Any, need_dx: bool = True) -> tuple[Any]:
    """dx = 2 (x - t) g."""
    return ((2.0 * g) * d,)


def l1_forward(x: Any, target: Any) -> tuple[Any, Any, Any]:
    """l = |x - t|; ctx = x - t."""
    d = x - target
    return get_array_module(d).abs(d), float(x.size), d


def l1_backward(g: Any, d: Any, need_dx: bool = True) -> tuple[Any]:
    """dx = sign(x - t) g (0 at a tie, as torch)."""
    dx = get_array_module(d).sign(d)
    dx *= g
    return (dx,)


def huber_forward(x: Any, target: Any, *, delta: float = 1.0) -> tuple[Any, Any, Any]:
    """l = 0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta); d = x - t."""
    xp = get_array_module(x)
    d = x - target
    a = xp.abs(d)
    c = xp.minimum(a, delta)  # c (a - c/2): a^2/2 inside the band, delta (a - delta/2) outside
    losses = c * 0.5
    xp.subtract(a, losses, out=losses)
    losses *= c
    return losses, float(x.size), (d, delta)


def huber_backward(g: Any, ctx: Any, need_dx: bool = True) -> tuple[Any]:
    """dx = clip(x - t, -delta, delta) g."""
    d, delta = ctx
    dx = get_array_module(d).clip(d, -delta, delta)
    dx *= g
    return (dx,)


def smooth_l1_forward(x: Any, target: Any, *, beta: float = 1.0) -> tuple[Any, Any, Any]:
    """l = 0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta (Huber(delta=beta) / beta); d = x - t.

    beta == 0 is the L1 loss |d| (torch's rule). ctx = (d, beta).
    """
    if beta == 0.0:
        losses, n, d = l1_forward(x, target)
        return losses, n, (d, 0.0)
    losses, n, ctx = huber_forward(x, target, delta=beta)
    losses /= beta
    return losses, n, ctx


def smooth_l1_backward(g: Any, ctx: Any, need_dx: bool = True) -> tuple[Any]:
    """dx = clip(d, -beta, beta) / beta * g; for beta == 0, sign(d) g (0 at a tie)."""
    d, beta = ctx
    if beta == 0.0:
        return l1_backward(g, d)
    (dx,) = huber_backward(g, ctx)
    dx /= beta
    return (dx,)


def kl_div_forward(x: Any, target: Any, *, log_target: bool = False) -> tuple[Any, Any, Any]:
    """KL divergence pointwise, x = log q (log-probabilities), target p:

    ``l = p (log p - x)`` (0 where p == 0, torch's xlogy); with ``log_target`` the target is
    log p: ``l = e^t (t - x)``. n = number of elements; ctx = p (= d l / d(-x)).
    """
    xp = get_array_module(x)
    if log_target:
        p = xp.exp(target)
        losses = target - x
        losses *= p
        return losses, float(x.size), p
    p = target
    losses = xp.log(xp.where(p > 0, p, 1.0))  # log p where p > 0; p * 0 = 0 elsewhere
    losses -= x
    losses *= p
    return losses, float(x.size), p


def kl_div_backward(g: Any, p: Any, need_dx: bool = True) -> tuple[Any]:
    """dx = -p g (p = target, or e^target with ``log_target``)."""
    dx = p * g
    dx *= -1.0
    return (dx,)


def bce_forward(x: Any, target: Any, *, weight: Any | None = None) -> tuple[Any, Any, Any]:
    """l = -w [t log p + (1 - t) log(1 - p)] on probabilities p = x in [0, 1]; logs clamped at -100 as torch."""
    xp = get_array_module(x)
    with np.errstate(divide="ignore"):
        log_p = xp.maximum(xp.log(x), -100.0)
        log_q = xp.maximum(xp.log1p(-x), -100.0)
    losses = -(target * log_p + (1.0 - target) * log_q)
    if weight is not None:
        losses *= weight
    return losses, float(x.size), (x, target, weight)


def bce_backward(g: Any, ctx: Any, need_dx: bool = True) -> tuple[Any]:
    """dx = w (p - t) / max(p (1 - p), 1e-12) g  (torch's clamp)."""
    x, t, w = ctx
    xp = get_array_module(x)
    dx = (x - t) / xp.maximum((1.0 - x) * x, 1e-12)
    if w is not None:
        dx *= w
    dx *= g
    return (dx,)


def bce_with_logits_forward(x: Any, target: Any, *, weight: Any | None = None,
                            pos_weight: Any | None = None) -> tuple[Any, Any, Any]:
    """Sigmoid + BCE in one stable formula: l = w [(1 - t) x + (1 + (pw - 1) t) softplus(-x)]."""
    t = target
    log_weight = 1.0 + (pos_weight - 1.0) * t if pos_weight is not None else None
    sp = softplus(-x)
    if log_weight is not None:
        sp *= log_weight
    losses = (1.0 - t) * x
    losses += sp
    if weight is not None:
        losses *= weight
    return losses, float(x.size), (x, t, weight, pos_weight, log_weight)


def bce_with_logits_backward(g: Any, ctx: Any, need_dx: bool = True) -> tuple[Any]:
    """dx = w (sigmoid(x) - t) g; with pos_weight pw: w (lw sigmoid(x) - pw t) g, lw = 1 + (pw - 1) t."""
    x, t, w, pw, log_weight = ctx
    dx = sigmoid(x)
    if pw is not None:
        dx *= log_weight
        dx -= pw * t
    else:
        dx -= t
    if w is not None:
        dx *= w
    dx *= g
    return (dx,)
