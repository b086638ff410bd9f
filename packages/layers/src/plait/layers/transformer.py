"""torch's ``TransformerEncoderLayer`` / ``TransformerDecoderLayer`` (``FeedForward`` is re-exported from :mod:`.blocks`).

The two layers are ``torch.nn``'s: the same arguments and defaults (``batch_first=False``,
``norm_first=False``, ``activation="relu"``, ``dropout=0.1``, no implied causal mask), the same
forward arguments and mask meaning, and the same state-dict keys (``self_attn.in_proj_weight``,
``multihead_attn.*``, ``linear1``, ``linear2``, ``norm1..3``), so ``load_state_dict`` of a torch
layer's weights gives torch's outputs. Their attention is :class:`MultiheadAttention`.

Post-norm (``norm_first=False``)::

    x = norm1(x + dropout1(self_attn(x)))
    x = norm2(x + dropout2(multihead_attn(x, memory)))      # decoder only
    x = norm3(x + dropout3(ffn(x)))                          # norm2/dropout2 in the encoder

Pre-norm (``norm_first=True``): ``x = x + dropout1(self_attn(norm1(x)))`` and so on.
``ffn(x) = linear2(dropout(activation(linear1(x))))``; the activation is any registered layer
name ("relu", "gelu", ...), a config or a layer instance. The feed-forward and the residual wiring (both
placements of the norm) are the shared blocks of :mod:`plait.layers.blocks`, which the zoo's
pre-norm ``SelfBlock`` / ``CrossBlock`` (GQA, RoPE, a KV cache) use too.
"""

from __future__ import annotations

from typing import Any

from plait.core import Module, ShapeError, check_array, registry
from plait.core.checks import check_output_grad

from .blocks import ActivationSpec, FeedForward, FeedForwardMixin, residual, residual_backward
from .multihead import MultiheadAttention, checked_mask
from .normalization import LayerNorm

__all__ = ["FeedForward", "TransformerDecoderLayer", "TransformerEncoderLayer"]


class _Block(FeedForwardMixin, Module):
    """Shared construction and the residual sub-layer wiring of the encoder and decoder layers."""

    _name = ""

    def _build(self, d_model: int, nhead: int, dim_feedforward: int, dropout: float, activation: ActivationSpec,
               layer_norm_eps: float, batch_first: bool, norm_first: bool, bias: bool, dtype: str, norms: int) -> None:
        self.d_model, self.batch_first, self.norm_first = int(d_model), bool(batch_first), bool(norm_first)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first,
                                            dtype=dtype)
        self.build_feed_forward(self.d_model, int(dim_feedforward), activation, dropout, bias, dtype, self._name)
        for k in range(1, norms + 1):
            setattr(self, f"norm{k}", LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype))
            setattr(self, f"dropout{k}", registry.build("dropout", p=dropout, where=self._name))

    def _check(self, x: Any, what: str) -> Any:
        return check_array(x, self._name, what=what, ndim=(2, 3), last_dim=self.d_model)

    def _batch_and_length(self, x: Any) -> tuple[int | None, int]:
        """(N or None when unbatched, sequence length) of a checked input."""
        if x.ndim == 2:
            return None, x.shape[0]
        return (x.shape[0], x.shape[1]) if self.batch_first else (x.shape[1], x.shape[0])

    def _check_masks(self, N: int | None, L: int, S: int, kpm: Any, am: Any, prefix: str) -> None:
        """Masks checked before any sub-layer runs, so a bad call leaves no stale forward cache."""
        heads = self.self_attn.num_heads
        checked_mask(kpm, f"{prefix}key_padding_mask", [(S,) if N is None else (N, S)], self._name)
        checked_mask(am, f"{prefix}mask", [(L, S)] + ([] if N is None else [(N * heads, L, S)]), self._name)

    def _finish(self, y: Any) -> Any:
        """Record the output's shape and dtype, so backward checks its gradient under this layer's name."""
        self.save_for_backward((tuple(y.shape), y.dtype))
        return y

    def _check_dy(self, dy: Any) -> Any:
        shape, dtype = self.saved()
        return check_output_grad(dy, shape, dtype, self._name)

    def _self_attention(self, mask: Any, kpm: Any, is_causal: bool) -> Any:
        def attend(h: Any) -> Any:
            return self.self_attn(h, h, h, key_padding_mask=kpm, need_weights=False, attn_mask=mask,
                                  is_causal=is_causal)[0]
        return attend

    def _self_attention_backward(self, dy: Any) -> Any:
        dq, dk, dv = self.self_attn.backward(dy)  # one input used three times: the gradients add up
        dq += dk
        dq += dv
        return dq

    def _residual(self, x: Any, sublayer: Any, norm: LayerNorm, drop: Module) -> Any:
        """Post-norm: norm(x + drop(f(x))); pre-norm: x + drop(f(norm(x))) (see :mod:`.blocks`)."""
        return residual(x, sublayer, norm, drop, self.norm_first)

    def _residual_backward(self, dy: Any, sublayer_backward: Any, norm: LayerNorm, drop: Module) -> tuple[Any, Any]:
        """Returns (dx, extra): extra is what the sub-layer's backward returned besides dx (or None)."""
        return residual_backward(dy, sublayer_backward, norm, drop, self.norm_first)


class TransformerEncoderLayer(_Block):
    """torch.nn.TransformerEncoderLayer: self-attention + feed-forward.

    src: (S, N, E), or (N, S, E) with ``batch_first``, or unbatched (S, E) -> same shape.
    Masks as :class:`MultiheadAttention` (``src_mask`` (S, S) or (N*nhead, S, S),
    ``src_key_padding_mask`` (N, S); bool True = masked out, or float added); no mask is
    implied: ``is_causal=True`` with no ``src_mask`` applies the causal mask.

    Args:
        d_model: E, the feature size, an int >= 1 divisible by ``nhead``.
        nhead: the number of attention heads, an int >= 1.
        dim_feedforward: the feed-forward hidden width, default 2048 (as torch).
        dropout: dropout probability of the attention weights, the feed-forward hidden layer and
            every residual branch, in [0, 1); default 0.1 (as torch).
        activation: the feed-forward activation as a registered layer name (``"relu"``, the default
            as torch, ``"gelu"``, ...); torch's callable form is not accepted.
        layer_norm_eps: eps of every LayerNorm, default 1e-5 (as torch).
        batch_first: inputs and output are (N, L, E) instead of (L, N, E); default False (as torch).
        norm_first: pre-norm (LayerNorm before each sub-layer) instead of post-norm; default False (as torch).
        bias: learn the biases of the projections, linear layers and LayerNorms; default True (as torch).
        dtype: dtype of every parameter, default ``"float32"``.

    Shapes:
        ``forward(src, ...)``: src (S, N, E) / (N, S, E) / (S, E) -> y of src's shape.
        ``backward(dy)``: dy of y's shape -> dsrc of src's shape.

    Raises:
        ConfigError: ``d_model``/``nhead`` not integers >= 1 or ``d_model`` not divisible by ``nhead``,
            ``dropout`` outside [0, 1), or an unknown ``activation`` name.
        ShapeError: see ``forward``; a ``dy`` of another shape than the output.
        DTypeError: a non-floating input or ``dy``, or a mask neither bool nor float.
    """

    _name = "TransformerEncoderLayer"

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: ActivationSpec = "relu", layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True, dtype: str = "float32") -> None:
        super().__init__()
        self._build(d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps, batch_first, norm_first,
                    bias, dtype, norms=2)

    def forward(self, src: Any, src_mask: Any = None, src_key_padding_mask: Any = None,
                is_causal: bool = False) -> Any:
        """Self-attention then feed-forward, each in its residual branch.

        Args:
            src: (S, N, E), (N, S, E) with ``batch_first``, or unbatched (S, E); float.
            src_mask: (S, S) or ``(N*nhead, S, S)``, bool (True = hidden) or float (added to the
                scores); default None (no mask is implied, as torch).
            src_key_padding_mask: (N, S) ((S,) unbatched), bool or float; default None.
            is_causal: with ``src_mask`` None, apply the causal mask; with a mask given, the mask
                is used as it is (torch's hint). Default False.

        Returns:
            y of src's shape.

        Raises:
            ShapeError: src not 2-D/3-D or its last axis not E; a mask of the wrong shape.
            DTypeError: a non-floating src, or a mask neither bool nor float.
        """
        x = self._check(src, "src")
        N, L = self._batch_and_length(x)
        self._check_masks(N, L, L, src_key_padding_mask, src_mask, "src_")
        x = self._residual(x, self._self_attention(src_mask, src_key_padding_mask, is_causal), self.norm1,
                           self.dropout1)
        return self._finish(self._residual(x, self.feed_forward, self.norm2, self.dropout2))

    def backward(self, dy: Any) -> Any:
        """Returns dsrc.

        Args:
            dy: gradient of the output, its shape.

        Raises:
            ShapeError: dy of another shape than the output.
            DTypeError: a non-floating dy.
            PlaitError: no matching forward.
        """
        dy = self._check_dy(dy)
        dx, _ = self._residual_backward(dy, self.feed_forward_backward, self.norm2, self.dropout2)
        dx, _ = self._residual_backward(dx, self._self_attention_backward, self.norm1, self.dropout1)
        return dx


class TransformerDecoderLayer(_Block):
    """torch.nn.TransformerDecoderLayer: self-attention, cross-attention over ``memory``, feed-forward.

    tgt: (T, N, E), memory: (S, N, E) (batch first with ``batch_first``; unbatched 2-D works)
    -> tgt's shape. The self-attention is causal only when asked (``tgt_mask``, or
    ``tgt_is_causal=True`` with no ``tgt_mask``), as in torch; masks as the encoder layer.
    backward(dy) -> (dtgt, dmemory).

    Args:
        d_model: E, the feature size, an int >= 1 divisible by ``nhead``.
        nhead: the number of attention heads, an int >= 1.
        dim_feedforward: the feed-forward hidden width, default 2048 (as torch).
        dropout: dropout probability of the attention weights, the feed-forward hidden layer and
            every residual branch, in [0, 1); default 0.1 (as torch).
        activation: the feed-forward activation as a registered layer name (``"relu"``, the default
            as torch, ``"gelu"``, ...); torch's callable form is not accepted.
        layer_norm_eps: eps of every LayerNorm, default 1e-5 (as torch).
        batch_first: inputs and output are (N, L, E) instead of (L, N, E); default False (as torch).
        norm_first: pre-norm (LayerNorm before each sub-layer) instead of post-norm; default False (as torch).
        bias: learn the biases of the projections, linear layers and LayerNorms; default True (as torch).
        dtype: dtype of every parameter, default ``"float32"``.

    Shapes:
        ``forward(tgt, memory, ...)``: tgt (T, N, E), memory (S, N, E) (N first with ``batch_first``;
        unbatched (T, E), (S, E)) -> y of tgt's shape. ``backward(dy)`` -> ``(dtgt, dmemory)``.

    Raises:
        ConfigError: ``d_model``/``nhead`` not integers >= 1 or ``d_model`` not divisible by ``nhead``,
            ``dropout`` outside [0, 1), or an unknown ``activation`` name.
        ShapeError: see ``forward``; a ``dy`` of another shape than the output.
        DTypeError: a non-floating input or ``dy``, or a mask neither bool nor float.
    """

    _name = "TransformerDecoderLayer"

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: ActivationSpec = "relu", layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True, dtype: str = "float32") -> None:
        super().__init__()
        self._build(d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps, batch_first, norm_first,
                    bias, dtype, norms=3)
        self.multihead_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first,
                                                 dtype=dtype)

    def forward(self, tgt: Any, memory: Any, tgt_mask: Any = None, memory_mask: Any = None,
                tgt_key_padding_mask: Any = None, memory_key_padding_mask: Any = None,
                tgt_is_causal: bool = False, memory_is_causal: bool = False) -> Any:
        """Self-attention, cross-attention over ``memory``, then feed-forward, each in its residual branch.

        Args:
            tgt: (T, N, E), (N, T, E) with ``batch_first``, or unbatched (T, E); float.
            memory: the encoder output, (S, N, E) / (N, S, E) / (S, E), tgt's rank and batch size.
            tgt_mask: (T, T) or ``(N*nhead, T, T)``, bool (True = hidden) or float (added); default None
                (no causal mask is implied, as torch).
            memory_mask: (T, S) or ``(N*nhead, T, S)``, bool or float; default None.
            tgt_key_padding_mask: (N, T) ((T,) unbatched), bool or float; default None.
            memory_key_padding_mask: (N, S) ((S,) unbatched), bool or float; default None.
            tgt_is_causal: with ``tgt_mask`` None, apply the causal mask to the self-attention;
                with a mask given, the mask is used as it is. Default False.
            memory_is_causal: the same for the cross-attention and ``memory_mask``; default False.

        Returns:
            y of tgt's shape.

        Raises:
            ShapeError: tgt/memory not 2-D/3-D, of different ranks or batch sizes, or with a last
                axis other than E; a mask of the wrong shape.
            DTypeError: a non-floating tgt or memory, or a mask neither bool nor float.
        """
        x = self._check(tgt, "tgt")
        if getattr(memory, "ndim", x.ndim) != x.ndim:
            raise ShapeError(f"{self._name}: tgt has shape {tuple(x.shape)}, so memory must be {x.ndim}-D too, got "
                             f"shape {tuple(memory.shape)}")
        memory = check_array(memory, self._name, what="memory", ndim=x.ndim, last_dim=self.d_model)
        N, L = self._batch_and_length(x)
        M, S = self._batch_and_length(memory)
        if M != N:
            raise ShapeError(f"{self._name}: memory has batch size {M}, tgt has {N}")
        self._check_masks(N, L, L, tgt_key_padding_mask, tgt_mask, "tgt_")
        self._check_masks(N, L, S, memory_key_padding_mask, memory_mask, "memory_")

        def cross(h: Any) -> Any:
            return self.multihead_attn(h, memory, memory, key_padding_mask=memory_key_padding_mask,
                                       need_weights=False, attn_mask=memory_mask, is_causal=memory_is_causal)[0]

        x = self._residual(x, self._self_attention(tgt_mask, tgt_key_padding_mask, tgt_is_causal), self.norm1,
                           self.dropout1)
        x = self._residual(x, cross, self.norm2, self.dropout2)
        return self._finish(self._residual(x, self.feed_forward, self.norm3, self.dropout3))

    def _cross_backward(self, dy: Any) -> tuple[Any, Any]:
        dq, dk, dv = self.multihead_attn.backward(dy)
        dk += dv  # memory is both key and value
        return dq, dk

    def backward(self, dy: Any) -> tuple[Any, Any]:
        """Returns (dtgt, dmemory).

        Args:
            dy: gradient of the output, tgt's shape.

        Returns:
            ``(dtgt, dmemory)`` of tgt's and memory's shapes.

        Raises:
            ShapeError: dy of another shape than the output.
            DTypeError: a non-floating dy.
            PlaitError: no matching forward.
        """
        dy = self._check_dy(dy)
        dx, _ = self._residual_backward(dy, self.feed_forward_backward, self.norm3, self.dropout3)
        dx, dmemory = self._residual_backward(dx, self._cross_backward, self.norm2, self.dropout2)
        dx, _ = self._residual_backward(dx, self._self_attention_backward, self.norm1, self.dropout1)
        return dx, dmemory


LAYERS: dict[str, type] = {
    "feed_forward": FeedForward,
    "transformer_encoder_layer": TransformerEncoderLayer,
    "transformer_decoder_layer": TransformerDecoderLayer,
}
