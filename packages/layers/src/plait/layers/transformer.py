"""Transformer blocks: ``FeedForward``, ``TransformerEncoderLayer``, ``TransformerDecoderLayer``.

Sub-module names follow ``torch.nn.TransformerEncoderLayer``/``DecoderLayer`` (``self_attn``,
``multihead_attn``, ``linear1``, ``linear2``, ``norm1..3``, ``dropout``, ``dropout1..3``), so
weights copy over from torch (torch's stacked ``in_proj_weight`` splits into q/k/v_proj).

Post-norm (``norm_first=False``, torch's default)::

    x = norm1(x + dropout1(self_attn(x)))
    x = norm2(x + dropout2(multihead_attn(x, memory)))      # decoder only
    x = norm3(x + dropout3(ffn(x)))                          # norm2/dropout2 in the encoder

Pre-norm (``norm_first=True``): ``x = x + dropout1(self_attn(norm1(x)))`` and so on.
``ffn(x) = linear2(dropout(activation(linear1(x))))``. The activation is any registered layer
name ("relu", "gelu", ...). Both layers accept ``kv_cache`` for step-by-step decoding
(inference only, like :class:`MultiHeadAttention`); the decoder's self-attention is causal.
"""

from __future__ import annotations

from typing import Any

from plait.core import ConfigError, Module, PlaitError, ShapeError, check_array, no_grad, registry

from .attention import KVCache, MultiHeadAttention
from .linear import Linear
from .normalization import LayerNorm

__all__ = ["FeedForward", "TransformerDecoderLayer", "TransformerEncoderLayer"]

_CACHED_CALL = "kv-cached forward"


def _layer(name: str, where: str, **kwargs: Any) -> Module:
    """A registered layer by name (activations, dropout), with a clear error for unknown names."""
    try:
        cls = registry.layers.get(name)
    except KeyError as exc:
        raise ConfigError(f"{where}: unknown layer {name!r} ({exc})") from exc
    return cls(**kwargs)


class _FFNMixin:
    """linear2(dropout(activation(linear1(x)))) and its backward, for any owner of those four."""

    linear1: Linear
    linear2: Linear
    activation: Module
    dropout: Module

    def _build_ffn(self, d_model: int, hidden: int, activation: str, dropout: float, bias: bool, dtype: str,
                   where: str) -> None:
        self.linear1 = Linear(d_model, hidden, bias=bias, dtype=dtype)
        self.dropout = _layer("dropout", where, p=dropout)
        self.linear2 = Linear(hidden, d_model, bias=bias, dtype=dtype)
        self.activation = _layer(activation, where)

    def _ffn(self, x: Any) -> Any:
        return self.linear2(self.dropout(self.activation(self.linear1(x))))

    def _ffn_backward(self, dy: Any) -> Any:
        return self.linear1.backward(self.activation.backward(self.dropout.backward(self.linear2.backward(dy))))


class FeedForward(_FFNMixin, Module):
    """Position-wise MLP: (..., embed_dim) -> (..., embed_dim) through ``hidden_dim`` units."""

    def __init__(self, embed_dim: int, hidden_dim: int, activation: str = "gelu", dropout: float = 0.0,
                 bias: bool = True, dtype: str = "float32") -> None:
        super().__init__()
        self.embed_dim = int(embed_dim)
        self._build_ffn(self.embed_dim, int(hidden_dim), activation, dropout, bias, dtype, "FeedForward")

    def forward(self, x: Any) -> Any:
        x = check_array(x, "FeedForward", ndim_min=1, last_dim=self.embed_dim)
        return self._ffn(x)

    def backward(self, dy: Any) -> Any:
        return self._ffn_backward(dy)


class _Block(_FFNMixin, Module):
    """Shared construction and layout handling of the encoder and decoder layers."""

    _name = ""

    def _build(self, d_model: int, nhead: int, dim_feedforward: int, dropout: float, activation: str,
               layer_norm_eps: float, batch_first: bool, norm_first: bool, bias: bool, num_kv_heads: int | None,
               rope: bool, causal: bool, dtype: str, norms: int) -> None:
        self.d_model, self.batch_first, self.norm_first = int(d_model), bool(batch_first), bool(norm_first)
        self.self_attn = MultiHeadAttention(d_model, nhead, num_kv_heads=num_kv_heads, bias=bias, dropout=dropout,
                                            causal=causal, rope=rope, dtype=dtype)
        self._build_ffn(self.d_model, int(dim_feedforward), activation, dropout, bias, dtype, self._name)
        for k in range(1, norms + 1):
            setattr(self, f"norm{k}", LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype))
            setattr(self, f"dropout{k}", _layer("dropout", self._name, p=dropout))

    def _in(self, x: Any, what: str) -> Any:
        """Validate (B, T, E) [(T, B, E) unless batch_first] and return it batch first."""
        x = check_array(x, self._name, what=what, ndim=3, last_dim=self.d_model)
        return x if self.batch_first else x.transpose(1, 0, 2)

    def _out(self, y: Any) -> Any:
        return y if self.batch_first else y.transpose(1, 0, 2)

    def _pop(self, dy: Any) -> Any:
        """Take this layer's forward record; return dy validated against its output, batch first."""
        shape = self.saved()
        if shape == _CACHED_CALL:
            raise PlaitError(f"{self._name}.backward: the matching forward used a kv_cache; KV-cached decoding is "
                             "inference only (run it inside plait.core.no_grad())")
        dy = self._in(dy, "output gradient")
        if tuple(dy.shape) != shape:
            raise ShapeError(f"{self._name}.backward: expected output gradient of shape {self._out_shape(shape)}, "
                             f"got {self._out_shape(tuple(dy.shape))}")
        return dy

    def _out_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return shape if self.batch_first else (shape[1], shape[0], shape[2])

    def _residual(self, x: Any, sublayer: Any, norm: LayerNorm, drop: Module) -> Any:
        """Post-norm: norm(x + drop(f(x))); pre-norm: x + drop(f(norm(x)))."""
        if self.norm_first:
            return x + drop(sublayer(norm(x)))
        return norm(x + drop(sublayer(x)))

    def _residual_backward(self, dy: Any, sublayer_backward: Any, norm: LayerNorm, drop: Module) -> tuple[Any, Any]:
        """Returns (dx, extra): extra is what the sub-layer's backward returned besides dx (or None)."""
        if self.norm_first:
            got = sublayer_backward(drop.backward(dy))
            dsub, extra = got if isinstance(got, tuple) else (got, None)
            return dy + norm.backward(dsub), extra
        g = norm.backward(dy)
        got = sublayer_backward(drop.backward(g))
        dsub, extra = got if isinstance(got, tuple) else (got, None)
        return g + dsub, extra


class TransformerEncoderLayer(_Block):
    """Self-attention + feed-forward block; src: (B, T, E) with batch_first (default), else (T, B, E)."""

    _name = "TransformerEncoderLayer"

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str = "relu", layer_norm_eps: float = 1e-5, batch_first: bool = True,
                 norm_first: bool = False, bias: bool = True, num_kv_heads: int | None = None, rope: bool = False,
                 causal: bool = False, dtype: str = "float32") -> None:
        super().__init__()
        self._build(d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps, batch_first, norm_first,
                    bias, num_kv_heads, rope, causal, dtype, norms=2)

    def forward(self, src: Any, src_mask: Any = None, src_key_padding_mask: Any = None,
                is_causal: bool | None = None, kv_cache: KVCache | None = None) -> Any:
        """src_mask: (T, S) or (B*nhead, T, S); src_key_padding_mask: (B, S); bool True = masked, or float."""
        x = self._in(src, "src")
        B, T, _ = x.shape
        S = T + (kv_cache.length if kv_cache is not None else 0)
        self.self_attn.check_masks(B, T, S, src_key_padding_mask, src_mask, self._name)
        if kv_cache is not None:
            with no_grad():
                y = self._forward(x, src_mask, src_key_padding_mask, is_causal, kv_cache)
            self.save_for_backward(_CACHED_CALL)
            return self._out(y)
        self.save_for_backward(tuple(x.shape))
        return self._out(self._forward(x, src_mask, src_key_padding_mask, is_causal, None))

    def _forward(self, x: Any, mask: Any, kpm: Any, is_causal: bool | None, cache: KVCache | None) -> Any:
        def attend(h: Any) -> Any:
            return self.self_attn(h, key_padding_mask=kpm, attn_mask=mask, kv_cache=cache, is_causal=is_causal)

        x = self._residual(x, attend, self.norm1, self.dropout1)
        return self._residual(x, self._ffn, self.norm2, self.dropout2)

    def backward(self, dy: Any) -> Any:
        """Returns dsrc."""
        dy = self._pop(dy)
        dx, _ = self._residual_backward(dy, self._ffn_backward, self.norm2, self.dropout2)
        dx, _ = self._residual_backward(dx, self.self_attn.backward, self.norm1, self.dropout1)
        return self._out(dx)


class TransformerDecoderLayer(_Block):
    """Causal self-attention + cross-attention over ``memory`` + feed-forward.

    tgt: (B, T, E), memory: (B, S, E) with batch_first (default), else sequence first.
    """

    _name = "TransformerDecoderLayer"

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str = "relu", layer_norm_eps: float = 1e-5, batch_first: bool = True,
                 norm_first: bool = False, bias: bool = True, num_kv_heads: int | None = None, rope: bool = False,
                 causal: bool = True, dtype: str = "float32") -> None:
        super().__init__()
        self._build(d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps, batch_first, norm_first,
                    bias, num_kv_heads, rope, causal, dtype, norms=3)
        self.multihead_attn = MultiHeadAttention(d_model, nhead, num_kv_heads=num_kv_heads, bias=bias,
                                                 dropout=dropout, dtype=dtype)

    def forward(self, tgt: Any, memory: Any = None, tgt_mask: Any = None, memory_mask: Any = None,
                tgt_key_padding_mask: Any = None, memory_key_padding_mask: Any = None,
                tgt_is_causal: bool | None = None, kv_cache: KVCache | None = None,
                memory_kv_cache: KVCache | None = None) -> Any:
        """Masks as in torch (bool True = masked, or float). ``kv_cache`` serves the self-attention,
        ``memory_kv_cache`` the cross-attention (filled from ``memory`` once, then ``memory`` may be None)."""
        x = self._in(tgt, "tgt")
        B, T, _ = x.shape
        if memory is not None:
            memory = self._in(memory, "memory")
            if memory.shape[0] != B:
                raise ShapeError(f"{self._name}: memory has batch size {memory.shape[0]}, tgt has {B}")
            S_mem = memory.shape[1]
        elif memory_kv_cache is not None and memory_kv_cache.length:
            S_mem = memory_kv_cache.length
        else:
            raise ShapeError(f"{self._name}: memory is required (or a filled memory_kv_cache)")
        S = T + (kv_cache.length if kv_cache is not None else 0)
        self.self_attn.check_masks(B, T, S, tgt_key_padding_mask, tgt_mask, self._name)
        self.multihead_attn.check_masks(B, T, S_mem, memory_key_padding_mask, memory_mask, self._name)
        args = (x, memory, tgt_mask, memory_mask, tgt_key_padding_mask, memory_key_padding_mask, tgt_is_causal)
        if kv_cache is not None or memory_kv_cache is not None:
            with no_grad():
                y = self._forward(*args, kv_cache, memory_kv_cache)
            self.save_for_backward(_CACHED_CALL)
            return self._out(y)
        self.save_for_backward(tuple(x.shape))
        return self._out(self._forward(*args, None, None))

    def _forward(self, x: Any, memory: Any, tgt_mask: Any, memory_mask: Any, tgt_kpm: Any, memory_kpm: Any,
                 tgt_is_causal: bool | None, cache: KVCache | None, memory_cache: KVCache | None) -> Any:
        def attend(h: Any) -> Any:
            return self.self_attn(h, key_padding_mask=tgt_kpm, attn_mask=tgt_mask, kv_cache=cache,
                                  is_causal=tgt_is_causal)

        def cross(h: Any) -> Any:
            if memory is None:  # a filled cross-attention cache
                return self.multihead_attn(h, key_padding_mask=memory_kpm, attn_mask=memory_mask,
                                           kv_cache=memory_cache)
            return self.multihead_attn(h, memory, key_padding_mask=memory_kpm, attn_mask=memory_mask,
                                       kv_cache=memory_cache)

        x = self._residual(x, attend, self.norm1, self.dropout1)
        x = self._residual(x, cross, self.norm2, self.dropout2)
        return self._residual(x, self._ffn, self.norm3, self.dropout3)

    def backward(self, dy: Any) -> tuple[Any, Any]:
        """Returns (dtgt, dmemory)."""
        dy = self._pop(dy)
        dx, _ = self._residual_backward(dy, self._ffn_backward, self.norm3, self.dropout3)
        dx, dmemory = self._residual_backward(dx, self.multihead_attn.backward, self.norm2, self.dropout2)
        dx, _ = self._residual_backward(dx, self.self_attn.backward, self.norm1, self.dropout1)
        return self._out(dx), self._out(dmemory)


LAYERS: dict[str, type] = {
    "feed_forward": FeedForward,
    "transformer_encoder_layer": TransformerEncoderLayer,
    "transformer_decoder_layer": TransformerDecoderLayer,
}
