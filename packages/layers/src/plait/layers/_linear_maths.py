"""The maths of the fully connected layers: pure pairs, no bookkeeping.

x: (..., in), W: (out, in), b: (out,) or None::

    y  = x W^T + b
    dx = dy W
    dW = dy^T x        (summed over every leading dimension)
    db = sum(dy)       (over every leading dimension)
"""

from __future__ import annotations

from typing import Any

__all__ = ["identity_backward", "identity_forward", "linear_backward", "linear_forward"]


def linear_forward(x: Any, weight: Any, bias: Any | None) -> tuple[Any, Any]:
    """y (..., out) = x (..., in) @ W^T (in, out) + b, as ONE GEMM over the flattened leading dims.

    ctx = x as the (N, in) matrix the GEMM read (a copy when x was not contiguous, kept once).

    Args:
        x: input (..., in), any number of leading axes.
        weight: W (out, in).
        bias: b (out,), or None for no bias.

    Returns:
        ``(y, ctx)``: y (..., out) and the (N, in) view/copy of x that ``linear_backward`` takes.

    No checks (a pure function): the caller (``Linear``) validates shapes and dtypes.
    """
    out_features, in_features = weight.shape
    x2d = x.reshape(-1, in_features)
    y = x2d @ weight.T
    if bias is not None:
        y += bias
    return y.reshape(*x.shape[:-1], out_features), x2d


def linear_backward(dy: Any, x2d: Any, weight: Any, bias: Any | None, need_dx: bool = True) -> tuple[Any, Any, Any]:
    """(dx (..., in) or None, dW (out, in), db (out,) or None) from dy (..., out): one GEMM each.

    Args:
        dy: gradient of y, (..., out).
        x2d: the ctx of ``linear_forward``: x as an (N, in) matrix, N the product of dy's leading axes.
        weight: W (out, in).
        bias: b (out,), or None (then db is None).
        need_dx: compute dx; default True (False returns None in its place and skips one GEMM).

    Returns:
        ``(dx, dW, db)``: dx (..., in) or None, dW (out, in), db (out,) or None.

    No checks (a pure function): the caller validates the shapes.
    """
    out_features, in_features = weight.shape
    dy2d = dy.reshape(-1, out_features)
    dweight = dy2d.T @ x2d
    dbias = dy2d.sum(axis=0) if bias is not None else None
    dx = (dy2d @ weight).reshape(*dy.shape[:-1], in_features) if need_dx else None
    return dx, dweight, dbias


def identity_forward(x: Any) -> tuple[Any, Any]:
    """y = x (the same array)."""
    return x, None


def identity_backward(dy: Any, ctx: Any, need_dx: bool = True) -> tuple[Any]:
    """dx = dy."""
    return (dy,)
