"""Pre-norm transformer blocks shared by ``gpt`` and ``transformer``.

    FeedForward:   y = drop(fc2(act(fc1(x))))
    SelfBlock:     h = x + drop(attn(norm1(x)));           y = h + ffn(norm2(h))
    CrossBlock:    h = SelfBlock's attention step; h2 = h + drop(cross(norm_c(h), memory)); y = h2 + ffn(norm2(h2))

Backward of a residual ``y = x + f(x)``: ``dx = dy + f.backward(dy)``.
"""

from __future__ import annotations

import math
from typing import Any

from plait.core import Module, get_rng

from ..builders import LayerSpec, build_dropout, build_layer

__all__ = ["CrossBlock", "FeedForward", "SelfBlock", "gpt_init"]


class FeedForward(Module):
    """x: (..., d_model) -> (..., d_model) through a hidden width ``ffn_dim``."""

    def __init__(self, d_model: int, ffn_dim: int, activation: LayerSpec = "gelu", dropout: float = 0.0,
                 bias: bool = True) -> None:
        super().__init__()
        self.fc1 = build_layer("linear", d_model, ffn_dim, bias=bias, where="feed-forward")
        self.act = build_layer(activation, where="feed-forward activation")
        self.fc2 = build_layer("linear", ffn_dim, d_model, bias=bias, where="feed-forward")
        self.drop = build_dropout(dropout, where="feed-forward")

    def forward(self, x: Any) -> Any:
        return self.drop(self.fc2(self.act(self.fc1(x))))

    def backward(self, dy: Any) -> Any:
        return self.fc1.backward(self.act.backward(self.fc2.backward(self.drop.backward(dy))))


def _attention(d_model: int, num_heads: int, num_kv_heads: int | None, bias: bool, dropout: float, causal: bool,
               rope: bool, max_position: int) -> Module:
    extra = {"max_position": max_position} if rope else {}
    return build_layer("grouped_query_attention", d_model, num_heads, num_kv_heads=num_kv_heads, bias=bias,
                       dropout=dropout, causal=causal, rope=rope, where="attention", **extra)


class SelfBlock(Module):
    """A pre-norm self-attention block; ``causal`` for decoders. x: (B, T, d_model) -> same."""

    def __init__(self, d_model: int, num_heads: int, ffn_dim: int, num_kv_heads: int | None = None,
                 activation: LayerSpec = "gelu", norm: LayerSpec = "layer_norm", dropout: float = 0.0,
                 bias: bool = True, causal: bool = True, rope: bool = False, max_position: int = 4096) -> None:
        super().__init__()
        self.norm1 = build_layer(norm, d_model, where="block norm")
        self.attn = _attention(d_model, num_heads, num_kv_heads, bias, dropout, causal, rope, max_position)
        self.drop1 = build_dropout(dropout, where="block")
        self.norm2 = build_layer(norm, d_model, where="block norm")
        self.ffn = FeedForward(d_model, ffn_dim, activation, dropout, bias)

    def forward(self, x: Any, kv_cache: Any = None, key_padding_mask: Any = None) -> Any:
        h = x + self.drop1(self.attn(self.norm1(x), key_padding_mask=key_padding_mask, kv_cache=kv_cache))
        return h + self.ffn(self.norm2(h))

    def backward(self, dy: Any) -> Any:
        dh = dy + self.norm2.backward(self.ffn.backward(dy))
        return dh + self.norm1.backward(self.attn.backward(self.drop1.backward(dh)))


class CrossBlock(Module):
    """A pre-norm decoder block: causal self-attention, cross-attention over ``memory``, FFN.

    forward(x (B, T, d), memory (B, S, d), memory_mask (B, S) bool, True = padding) -> (B, T, d);
    backward(dy) -> (dx, dmemory).
    """

    def __init__(self, d_model: int, num_heads: int, ffn_dim: int, num_kv_heads: int | None = None,
                 activation: LayerSpec = "gelu", norm: LayerSpec = "layer_norm", dropout: float = 0.0,
                 bias: bool = True, rope: bool = False, max_position: int = 4096) -> None:
        super().__init__()
        self.norm1 = build_layer(norm, d_model, where="block norm")
        self.self_attn = _attention(d_model, num_heads, num_kv_heads, bias, dropout, True, rope, max_position)
        self.drop1 = build_dropout(dropout, where="block")
        self.norm_cross = build_layer(norm, d_model, where="block norm")
        self.cross_attn = _attention(d_model, num_heads, num_kv_heads, bias, dropout, False, False, max_position)
        self.drop2 = build_dropout(dropout, where="block")
        self.norm2 = build_layer(norm, d_model, where="block norm")
        self.ffn = FeedForward(d_model, ffn_dim, activation, dropout, bias)

    def forward(self, x: Any, memory: Any, memory_mask: Any = None, caches: tuple[Any, Any] | None = None) -> Any:
        """``caches``: (self-attention KVCache, cross-attention KVCache) for step-by-step decoding."""
        self_cache, cross_cache = caches if caches is not None else (None, None)
        h = x + self.drop1(self.self_attn(self.norm1(x), kv_cache=self_cache))
        h = h + self.drop2(self.cross_attn(self.norm_cross(h), memory, key_padding_mask=memory_mask,
                                           kv_cache=cross_cache))
        return h + self.ffn(self.norm2(h))

    def backward(self, dy: Any) -> tuple[Any, Any]:
        dh = dy + self.norm2.backward(self.ffn.backward(dy))
        dq, dmemory = self.cross_attn.backward(self.drop2.backward(dh))
        dh = dh + self.norm_cross.backward(dq)
        dx = dh + self.norm1.backward(self.self_attn.backward(self.drop1.backward(dh)))
        return dx, dmemory


def gpt_init(model: Module, num_layers: int) -> None:
    """GPT-2 initialisation: matrices N(0, 0.02), residual output projections N(0, 0.02 / sqrt(2 L)),
    biases 0; other vectors (norm scales) keep their own initialisation."""
    rng = get_rng()
    residual_std = 0.02 / math.sqrt(2 * max(num_layers, 1))
    for name, p in model.named_parameters():
        if p.data.ndim < 2:
            if name.endswith("bias"):
                p.data[...] = 0
            continue
        std = residual_std if name.endswith(("out_proj.weight", "fc2.weight")) else 0.02
        p.data[...] = rng.normal(0.0, std, p.shape).astype(p.dtype)
