"""Pre-norm transformer blocks shared by ``gpt`` and ``transformer``, built from the shared
blocks of :mod:`plait.layers.blocks` (the same feed-forward and residual wiring as torch's
``TransformerEncoderLayer(norm_first=True)``)::

    SelfBlock:   h = x + drop1(attn(norm1(x)));   y = h + drop2(ffn(norm2(h)))
    CrossBlock:  h = x + drop1(self_attn(norm1(x)));  h = h + drop2(cross_attn(norm_cross(h), memory))
                 y = h + drop3(ffn(norm2(h)))
    ffn(x) = linear2(act(linear1(x)))           (plait.layers.FeedForward, no hidden dropout)

Backward of a residual ``y = x + drop(f(norm(x)))``: ``dx = dy + norm.backward(f.backward(drop.backward(dy)))``.

State-dict keys: ``<block>.ffn.linear1.*`` / ``ffn.linear2.*``. Folders saved before the zoo
used the shared FeedForward hold ``ffn.fc1.*`` / ``ffn.fc2.*``; :class:`FeedForwardKeysUpgrade`
renames them when a state dict is loaded (:func:`upgrade_state_dict`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from plait.core import Module, get_rng
from plait.core.module_state import IncompatibleKeys
from plait.layers.blocks import FeedForward, residual, residual_backward

from ..builders import LayerSpec, build_dropout, build_layer

__all__ = ["FFN_KEY", "FORMER_FFN_KEY", "CrossBlock", "FeedForwardKeysUpgrade", "SelfBlock", "gpt_init",
           "upgrade_state_dict"]

FORMER_FFN_KEY = r"(.*\.)?ffn\.fc([12])\.(weight|bias)"
"""A key of the zoo's former feed-forward (``fc1``/``fc2``; a whole-key regular expression) ..."""
FFN_KEY = r"\1ffn.linear\2.\3"
"""... and its name now (a ``re`` template over FORMER_FFN_KEY's groups)."""


def upgrade_state_dict(state: Mapping[str, Any]) -> dict[str, Any]:
    """``state`` with the former feed-forward keys renamed: ``….ffn.fc1.*`` -> ``….ffn.linear1.*``
    and ``fc2`` -> ``linear2``. A key whose new name is also present is left as it is (a strict
    load then reports it); every other key passes unchanged."""
    out = dict(state)
    for key in state:
        match = re.fullmatch(FORMER_FFN_KEY, key)
        if match is not None and (new := match.expand(FFN_KEY)) not in state:
            out[new] = out.pop(key)
    return out


class FeedForwardKeysUpgrade:
    """Mixin for zoo models with pre-norm blocks: ``load_state_dict`` accepts the former
    ``ffn.fc1``/``ffn.fc2`` keys (see :func:`upgrade_state_dict`), so older folders and
    checkpoints load."""

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        return super().load_state_dict(upgrade_state_dict(state_dict), strict)  # type: ignore[misc]


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
        self.ffn = FeedForward(d_model, ffn_dim, activation, bias=bias)
        self.drop2 = build_dropout(dropout, where="block")

    def forward(self, x: Any, kv_cache: Any = None, key_padding_mask: Any = None) -> Any:
        def attend(h: Any) -> Any:
            return self.attn(h, key_padding_mask=key_padding_mask, kv_cache=kv_cache)

        h = residual(x, attend, self.norm1, self.drop1)
        return residual(h, self.ffn, self.norm2, self.drop2)

    def backward(self, dy: Any) -> Any:
        dh, _ = residual_backward(dy, self.ffn.backward, self.norm2, self.drop2)
        dx, _ = residual_backward(dh, self.attn.backward, self.norm1, self.drop1)
        return dx


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
        self.ffn = FeedForward(d_model, ffn_dim, activation, bias=bias)
        self.drop3 = build_dropout(dropout, where="block")

    def forward(self, x: Any, memory: Any, memory_mask: Any = None, caches: tuple[Any, Any] | None = None) -> Any:
        """``caches``: (self-attention KVCache, cross-attention KVCache) for step-by-step decoding."""
        self_cache, cross_cache = caches if caches is not None else (None, None)

        def attend(h: Any) -> Any:
            return self.self_attn(h, kv_cache=self_cache)

        def cross(h: Any) -> Any:
            return self.cross_attn(h, memory, key_padding_mask=memory_mask, kv_cache=cross_cache)

        h = residual(x, attend, self.norm1, self.drop1)
        h = residual(h, cross, self.norm_cross, self.drop2)
        return residual(h, self.ffn, self.norm2, self.drop3)

    def backward(self, dy: Any) -> tuple[Any, Any]:
        dh, _ = residual_backward(dy, self.ffn.backward, self.norm2, self.drop3)
        dh, dmemory = residual_backward(dh, self.cross_attn.backward, self.norm_cross, self.drop2)
        dx, _ = residual_backward(dh, self.self_attn.backward, self.norm1, self.drop1)
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
        std = residual_std if name.endswith(("out_proj.weight", "ffn.linear2.weight")) else 0.02
        p.data[...] = rng.normal(0.0, std, p.shape).astype(p.dtype)
