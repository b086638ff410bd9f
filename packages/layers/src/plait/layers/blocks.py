"""The two building blocks every transformer here is made of: the feed-forward network and the
residual sub-layer (pre-norm or post-norm). torch's ``TransformerEncoderLayer`` /
``TransformerDecoderLayer`` and the zoo's ``gpt`` / ``transformer`` blocks all use these.

Feed-forward (position-wise MLP), (..., embed_dim) -> (..., embed_dim)::

    ffn(x) = linear2(dropout(activation(linear1(x))))
    backward: dx = linear1.backward(activation.backward(dropout.backward(linear2.backward(dy))))

Residual sub-layer ``f`` (attention or the feed-forward) with its norm and dropout::

    pre-norm  (norm_first=True):   y = x + drop(f(norm(x)))      dx = dy + norm.backward(f.backward(drop.backward(dy)))
    post-norm (norm_first=False):  y = norm(x + drop(f(x)))      g = norm.backward(dy);  dx = g + f.backward(drop.backward(g))

The residual helpers take the norm, the dropout and the sub-layer as arguments rather than
owning them, so each owner keeps its own state-dict names (torch's ``norm1``/``dropout1`` at the
layer's top level, the zoo's ``blocks.<i>.norm1``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from plait.core import Module, check_array, check_size, registry

from .linear import Linear

__all__ = ["ActivationSpec", "FeedForward", "FeedForwardMixin", "residual", "residual_backward"]

ActivationSpec = str | Mapping[str, Any] | Module
"""A registered layer name ("gelu"), a ``{"type": name, ...}`` config, or a layer instance."""


class FeedForwardMixin:
    """linear2(dropout(activation(linear1(x)))) and its backward, for any owner of those four.

    The sub-modules sit on the owner itself (``linear1``, ``dropout``, ``linear2``,
    ``activation``: torch's ``TransformerEncoderLayer`` keys), so both :class:`FeedForward`
    and the torch layers build and run them through this one implementation.
    """

    linear1: Linear
    linear2: Linear
    activation: Module
    dropout: Module

    def build_feed_forward(self, embed_dim: int, hidden_dim: int, activation: ActivationSpec, dropout: float,
                           bias: bool, dtype: str, where: str) -> None:
        """Create ``linear1``, ``dropout``, ``linear2`` and ``activation`` on the owner.

        Args:
            embed_dim: E, the input and output features (``linear1``: E -> hidden_dim).
            hidden_dim: the hidden width (``linear2``: hidden_dim -> E).
            activation: a registered layer name, a ``{"type": name, ...}`` config, or a layer
                instance (as torch takes a module); a name or config is built by ``registry.build``.
            dropout: probability of the dropout after the activation, in [0, 1).
            bias: whether both Linear layers have a bias.
            dtype: the parameters' dtype (``"float32"``, ``"float64"``).
            where: the owner's name; it starts every error message.

        Raises:
            ConfigError: a size below 1, an unknown activation, or ``dropout`` out of range.
        """
        self.linear1 = Linear(embed_dim, hidden_dim, bias=bias, dtype=dtype)
        self.dropout = registry.build("dropout", p=dropout, where=where)
        self.linear2 = Linear(hidden_dim, embed_dim, bias=bias, dtype=dtype)
        self.activation = (activation if isinstance(activation, Module)
                           else registry.build(activation, where=f"{where} activation"))

    def feed_forward(self, x: Any) -> Any:
        """``linear2(dropout(activation(linear1(x))))``.

        Args:
            x: (..., E), float.

        Returns:
            (..., E).
        """
        return self.linear2(self.dropout(self.activation(self.linear1(x))))

    def feed_forward_backward(self, dy: Any) -> Any:
        """The reverse of :meth:`feed_forward`; the four layers accumulate their gradients.

        Args:
            dy: gradient of the output, (..., E).

        Returns:
            dx (..., E).
        """
        return self.linear1.backward(self.activation.backward(self.dropout.backward(self.linear2.backward(dy))))


class FeedForward(FeedForwardMixin, Module):
    """Position-wise MLP: (..., embed_dim) -> (..., embed_dim) through ``hidden_dim`` units.

    ``y = linear2(dropout(activation(linear1(x))))`` (torch has no such class; it is the
    feed-forward part of its transformer layers).

    Args:
        embed_dim: E, the input and output feature size (an integer >= 1).
        hidden_dim: the hidden width (``linear1``: E -> hidden_dim), an integer >= 1.
        activation: default ``"gelu"``; a registered layer name (``"relu"``, ``"silu"``, ...), a
            ``{"type": name, ...}`` config or a layer instance.
        dropout: default 0.0; dropout probability after the activation (training only), in [0, 1).
        bias: default True; learn the biases of ``linear1`` and ``linear2``.
        dtype: default ``"float32"``; dtype of every parameter.

    Shapes:
        ``forward(x)``: x (..., E) -> y (..., E). ``backward(dy)``: dy of y's shape -> dx of x's shape.

    State-dict keys: ``linear1.*``, ``linear2.*`` (and the activation's, if it has weights).

    Raises:
        ConfigError: a size below 1 (``embed_dim`` or ``hidden_dim`` 0 is refused by ``Linear``'s
            default initializer), an unknown ``activation``, or ``dropout`` out of range.
        ShapeError: an input whose last axis is not E; a ``dy`` of another shape than y.
        DTypeError: a non-floating input or ``dy``.
    """

    def __init__(self, embed_dim: int, hidden_dim: int, activation: ActivationSpec = "gelu",
                 dropout: float = 0.0, bias: bool = True, dtype: str = "float32") -> None:
        super().__init__()
        self.embed_dim = check_size(embed_dim, "FeedForward", "embed_dim")
        hidden_dim = check_size(hidden_dim, "FeedForward", "hidden_dim")
        self.build_feed_forward(self.embed_dim, hidden_dim, activation, dropout, bias, dtype, "FeedForward")

    def forward(self, x: Any) -> Any:
        """y = linear2(dropout(activation(linear1(x)))).

        Args:
            x: (..., E), float.

        Returns:
            y (..., E).

        Raises:
            ShapeError: a last axis other than E.
            DTypeError: a non-floating x.
        """
        x = check_array(x, "FeedForward", ndim_min=1, last_dim=self.embed_dim)
        return self.feed_forward(x)

    def backward(self, dy: Any) -> Any:
        """dx from dy; adds the gradients of ``linear1`` and ``linear2``.

        Args:
            dy: gradient of y, (..., E).

        Raises:
            ShapeError: dy of another shape than y.
            PlaitError: no matching forward.
        """
        return self.feed_forward_backward(dy)


def residual(x: Any, sublayer: Callable[[Any], Any], norm: Module, drop: Module, norm_first: bool = True) -> Any:
    """One residual sub-layer: pre-norm ``x + drop(sublayer(norm(x)))``, or post-norm
    ``norm(x + drop(sublayer(x)))`` when ``norm_first`` is False.

    Args:
        x: (..., d) input.
        sublayer: a callable (..., d) -> (..., d): attention (with its masks and caches bound)
            or the feed-forward.
        norm: the norm layer over d.
        drop: the dropout on the sub-layer's output (Dropout or Identity).
        norm_first: default True; pre-norm (True) or post-norm (False).

    Returns:
        y, shaped like x.
    """
    if norm_first:
        return x + drop(sublayer(norm(x)))
    return norm(x + drop(sublayer(x)))


def residual_backward(dy: Any, sublayer_backward: Callable[[Any], Any], norm: Module, drop: Module,
                      norm_first: bool = True) -> tuple[Any, Any]:
    """The reverse of :func:`residual`: returns ``(dx, extra)``.

    ``sublayer_backward(d_out)`` returns the sub-layer's input gradient, or a tuple
    ``(d_input, extra)`` (cross-attention: the gradient of its memory), passed back as
    ``extra`` (None otherwise). The identity path adds ``dy`` (pre-norm) or ``norm.backward(dy)``
    (post-norm) to the sub-layer's path.

    Args:
        dy: gradient of the residual's output, (..., d).
        sublayer_backward: the sub-layer's backward.
        norm: the same norm layer as in the forward.
        drop: the same dropout as in the forward.
        norm_first: default True; the placement used in the forward.
    """
    g = dy if norm_first else norm.backward(dy)
    got = sublayer_backward(drop.backward(g))
    dsub, extra = got if isinstance(got, tuple) else (got, None)
    if norm_first:
        dsub = norm.backward(dsub)
    return g + dsub, extra
