"""Two-input losses for Siamese and ranking models: ``loss = fn(input1, input2, target)``,
then ``dinput1, dinput2 = fn.backward()`` (torch's call; caching and reductions as every
:class:`~plait.layers.losses.Loss`).

Targets hold +1 or -1 per pair (any other value is refused: torch silently gives such a pair
zero loss, which hides a 0/1 target); integer or float targets alike.
"""

from __future__ import annotations

from typing import Any

from plait.core import DTypeError, ShapeError, check_array, check_number, check_same_shape

from . import _pairwise_maths as m
from .losses import Loss

__all__ = ["CosineEmbeddingLoss", "MarginRankingLoss", "PairwiseLoss"]


class PairwiseLoss(Loss):
    """Base of the losses of two predictions against one +-1 target.

    A subclass names its maths pair (``maths``: ``fwd(x1, x2, y, **options) -> (l, n, ctx)``,
    ``bwd(g, ctx) -> (dx1, dx2)``) and the shape its target must have (``_target_shape``).

    Args:
        margin: the margin of the subclass's formula, a finite number; default 0.0 (as torch's
            CosineEmbeddingLoss and MarginRankingLoss).
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``, as torch (see ``Loss``).

    Raises:
        ConfigError: ``margin`` not a finite number, or ``reduction`` unknown.
        ShapeError: input1 and input2 of different shapes, a target of the wrong shape, or a target
            value other than +1/-1 (torch gives such a pair zero loss instead).
        DTypeError: non-floating inputs, or a target that is not numeric.
    """

    num_inputs = 2

    def __init__(self, margin: float = 0.0, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.margin = check_number(margin, type(self).__name__, "margin")

    def options(self, x: Any) -> dict[str, Any]:
        return {"margin": self.margin}

    def _target_shape(self, x1: Any) -> tuple[int, ...]:
        raise NotImplementedError

    def _check(self, input1: Any, input2: Any, target: Any) -> tuple[Any, Any, Any]:
        name = type(self).__name__
        x1 = check_array(input1, name, what="input1")
        x2 = check_array(input2, name, what="input2")
        check_same_shape(x1, x2, name, ("input1", "input2"))
        x2 = x2.astype(x1.dtype, copy=False)
        t = check_array(target, name, what="target", floating=False)
        if t.dtype.kind not in "iuf":
            raise DTypeError(f"{name}: expected a target of +1/-1 as integers or floats, got dtype {t.dtype}")
        expected = self._target_shape(x1)
        if tuple(t.shape) != expected:
            raise ShapeError(f"{name}: inputs of shape {tuple(x1.shape)} need a target of shape {expected}, "
                             f"got {tuple(t.shape)}")
        t = t.astype(x1.dtype, copy=False)
        if t.size and not bool(((t == 1) | (t == -1)).all()):  # one host sync on a GPU
            raise ShapeError(f"{name}: target values must be 1 or -1, got values in [{float(t.min())}, {float(t.max())}]")
        return x1, x2, t

    def forward(self, input1: Any, input2: Any, target: Any) -> Any:  # type: ignore[override]
        """The reduced loss (a float), or the per-pair losses for ``reduction="none"``.

        Args:
            input1: the first prediction (the subclass states its shape), float.
            input2: the second prediction, input1's shape.
            target: +1 or -1 per pair (integers or floats), of the subclass's target shape.

        Returns:
            A Python float for ``"mean"``/``"sum"``, or the per-pair losses for ``"none"``. ``backward()``
            then returns ``(dinput1, dinput2)``.

        Raises:
            ShapeError: inputs of different shapes, a target of the wrong shape or with values other than +-1.
            DTypeError: non-floating inputs, or a non-numeric target.
        """
        return self._reduce(*self._pair_losses(input1, input2, target))

    def _pair_losses(self, input1: Any, input2: Any, target: Any) -> tuple[Any, Any, Any]:
        x1, x2, t = self._check(input1, input2, target)
        if t.ndim:
            losses, denom, ctx = self.maths[0](x1, x2, t, **self.options(x1))
            return losses, denom, (None, ctx)
        # a single pair (as torch allows): the pair runs on a batch of one, results come back unbatched
        shape = x1.shape
        losses, denom, ctx = self.maths[0](x1.reshape((1, *shape)), x2.reshape((1, *shape)), t.reshape(1),
                                           **self.options(x1))
        return losses.reshape(()), denom, (shape, ctx)

    def _grad(self, ctx: Any, g: Any) -> Any:
        shape, inner = ctx
        if shape is None:
            return self.maths[1](g, inner)
        dx1, dx2 = self.maths[1](g.reshape(1) if getattr(g, "ndim", 0) else g, inner)
        return dx1.reshape(shape), dx2.reshape(shape)


class CosineEmbeddingLoss(PairwiseLoss):
    """1 - cos(x1, x2) for similar pairs (y = 1), max(0, cos(x1, x2) - margin) for dissimilar ones (y = -1).

    input1, input2: (N, D) or (D,); target: (N,) or (). "mean" divides by N. ``margin``:
    torch suggests [-1, 1] (0 to 0.5 in practice).

    Args:
        margin: the cosine above which a dissimilar pair (y = -1) is penalised, a finite number;
            default 0.0 (as torch).
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``, as torch.

    Shapes:
        ``forward(input1, input2, target)``: input1, input2 (N, D) or (D,); target (N,) or () of +-1;
        ``"none"`` gives (N,) or (). ``backward()``: ``(dinput1, dinput2)`` of the inputs' shape.

    Raises:
        ConfigError: ``margin`` not a finite number, or ``reduction`` unknown.
        ShapeError: inputs that are not (N, D)/(D,) or differ in shape, a target of the wrong shape,
            or target values other than +-1.
        DTypeError: non-floating inputs, or a non-numeric target.
    """

    maths = (m.cosine_embedding_forward, m.cosine_embedding_backward)

    def _target_shape(self, x1: Any) -> tuple[int, ...]:
        if x1.ndim not in (1, 2):
            raise ShapeError(f"CosineEmbeddingLoss: expected inputs of shape (N, D) or (D,), got {tuple(x1.shape)}")
        return tuple(x1.shape[:-1])


class MarginRankingLoss(PairwiseLoss):
    """max(0, -y (x1 - x2) + margin): y = 1 asks x1 to rank above x2 by ``margin``, y = -1 below.

    input1, input2, target: one shape (N,) or (); "mean" divides by the number of elements.

    Args:
        margin: the required gap between the ranked scores, a finite number; default 0.0 (as torch).
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``, as torch.

    Shapes:
        ``forward(input1, input2, target)``: all three of one shape (N,) or (); ``"none"`` gives that
        shape. ``backward()``: ``(dinput1, dinput2)`` of the inputs' shape.

    Raises:
        ConfigError: ``margin`` not a finite number, or ``reduction`` unknown.
        ShapeError: shapes that differ, or target values other than +-1.
        DTypeError: non-floating inputs, or a non-numeric target.
    """

    maths = (m.margin_ranking_forward, m.margin_ranking_backward)

    def _target_shape(self, x1: Any) -> tuple[int, ...]:
        return tuple(x1.shape)


LOSSES: dict[str, type] = {
    "cosine_embedding": CosineEmbeddingLoss,
    "margin_ranking": MarginRankingLoss,
}
