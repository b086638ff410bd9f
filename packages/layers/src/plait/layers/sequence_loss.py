"""Cross entropy of next-token logits: (B, T, V) against ids (B, T), classes last.

Language models emit logits with the vocabulary in the last axis. ``CrossEntropyLoss``
follows torch and wants classes in axis 1, which would force a transposed copy of the
largest array of a training step; this loss reads the logits as ``(B*T, V)`` rows in
place and is otherwise torch's ``cross_entropy(logits.reshape(-1, V), ids.reshape(-1))``
(same ``weight``, ``ignore_index``, ``label_smoothing`` and ``reduction``; "none" gives
(B, T) losses).
"""

from __future__ import annotations

from typing import Any

from plait.core import DTypeError, ShapeError, check_array

from .losses import CrossEntropyLoss

__all__ = ["SequenceCrossEntropyLoss"]


class SequenceCrossEntropyLoss(CrossEntropyLoss):
    """Softmax cross entropy over the last axis: logits (..., V), targets (...) ids or (..., V) probabilities.

    Args:
        weight: (V,) class weights; default None (all 1).
        ignore_index: target id whose positions are dropped (padding), default -100.
        reduction: "mean" (default: over the kept positions, weighted), "sum" or "none" (shape (...)).
        label_smoothing: in [0, 1], mixes the uniform distribution into the targets; default 0.0.

    Shapes: logits (B, T, V) (any number of leading axes, at least one); target (B, T) ints.
    The maths is :class:`CrossEntropyLoss`'s pair (``cross_entropy_forward`` /
    ``cross_entropy_backward`` in ``_loss_maths``) on the ``(B*T, V)`` rows, read in place.

    Raises:
        ConfigError: ``reduction`` unknown, ``label_smoothing`` outside [0, 1], or ``weight`` not an
            array of numbers.
        ShapeError: logits with fewer than 2 axes; ``weight`` not (V,); an id target not of the logits'
            leading shape, or a probability target not of the logits' shape; an id outside [0, V) that
            is not ``ignore_index``.
        DTypeError: non-floating logits, or a target neither integer ids nor float probabilities.
    """

    def _losses(self, pred: Any, target: Any) -> tuple[Any, Any, Any]:
        name = type(self).__name__
        x = check_array(pred, name, what="logits", ndim_min=2)
        t = check_array(target, name, what="target", floating=False)
        lead, vocab = tuple(x.shape[:-1]), int(x.shape[-1])
        if self._weight is not None and self._weight.shape != (vocab,):
            raise ShapeError(f"{name}: weight has shape {self._weight.shape} but the logits have {vocab} classes "
                             f"(shape {tuple(x.shape)})")
        if t.dtype.kind == "f":
            if tuple(t.shape) != tuple(x.shape):
                raise ShapeError(f"{name}: probability target must have the logits' shape {tuple(x.shape)}, "
                                 f"got {tuple(t.shape)}")
            t2 = t.reshape(-1, vocab)
        elif t.dtype.kind in "iu":
            if tuple(t.shape) != lead:
                raise ShapeError(f"{name}: logits of shape {tuple(x.shape)} need class-index target of shape {lead}, "
                                 f"got {tuple(t.shape)}")
            t2 = t.reshape(-1)
        else:
            raise DTypeError(f"{name}: expected target as integer class indices or float probabilities, "
                             f"got dtype {t.dtype}")
        x2 = x.reshape(-1, vocab)
        losses, denom, ctx = self.maths[0](x2, t2, **self.options(x2), where=name)
        return losses.reshape(lead), denom, (tuple(x.shape), ctx)

    def _grad(self, ctx: Any, g: Any) -> Any:
        shape, inner = ctx
        g = g.reshape(-1) if getattr(g, "ndim", 0) else g
        return self.maths[1](g, inner)[0].reshape(shape)
