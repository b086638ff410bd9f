"""``gpt``: a decoder-only transformer language model (pre-norm, RoPE or learned positions, GQA)."""

from __future__ import annotations

from typing import Any

from plait.core import ConfigError, Module, ModuleList, ShapeError, check_int_array
from plait.layers.attention import KVCache

from ..builders import LayerSpec, build_dropout, build_layer
from ..catalog import register_model
from . import _sizes
from .blocks import FeedForwardKeysUpgrade, SelfBlock, gpt_init

__all__ = ["GPT", "GPTCache"]


class GPTCache:
    """One :class:`KVCache` per block, plus the number of positions already seen."""

    def __init__(self, num_layers: int) -> None:
        self.layers = [KVCache() for _ in range(num_layers)]

    @property
    def length(self) -> int:
        return self.layers[0].length if self.layers else 0


@register_model("gpt")
class GPT(FeedForwardKeysUpgrade, Module):
    """ids (B, T) ints, T <= context_length -> next-token logits (B, T, vocab_size).

    token embedding [+ learned positions] -> dropout -> ``num_layers`` pre-norm causal
    blocks (RoPE in attention when ``positional="rope"``; ``num_kv_heads`` < ``num_heads``
    is grouped-query attention) -> final norm -> linear head (sharing the embedding matrix
    when ``tie_embeddings``). Weights start at N(0, 0.02), residual output projections at
    N(0, 0.02 / sqrt(2 num_layers)) (GPT-2); biases at zero.

    Args:
        vocab_size: default 512; ids lie in ``[0, vocab_size)``.
        context_length: default 256; the most positions a forward (with its cache) sees.
        d_model: default 256; the residual stream's width (divisible by ``num_heads``).
        num_layers: default 4; transformer blocks.
        num_heads: default 8; attention heads.
        num_kv_heads: default None (= ``num_heads``, multi-head attention); fewer key/value
            heads (dividing ``num_heads``) is grouped-query attention.
        ffn_dim: default None (= ``4 * d_model``); the feed-forward hidden width.
        activation: default ``"gelu"`` (exact erf; GPT-2 uses ``{"type": "gelu",
            "approximate": "tanh"}``); the feed-forward activation's layer spec.
        norm: default ``"layer_norm"``; the normalisation's layer spec (``"rms_norm"``),
            built with ``d_model``.
        positional: default ``"rope"``; or ``"learned"`` (GPT-2's position embedding).
        dropout: default 0.0; after the embeddings, on the attention weights and in the
            residual branches, in [0, 1).
        tie_embeddings: default True; the head shares the token embedding matrix.
        bias: default True; biases in the attention and feed-forward Linears (the head has
            none).

    Raises:
        ConfigError: an unknown ``positional``, a size that is not a positive integer,
            ``num_heads`` not dividing ``d_model`` (or ``num_kv_heads`` not dividing
            ``num_heads``), an unknown layer spec, dropout out of range, or too many
            parameters.
    """

    def __init__(
        self,
        vocab_size: int = 512,
        context_length: int = 256,
        d_model: int = 256,
        num_layers: int = 4,
        num_heads: int = 8,
        num_kv_heads: int | None = None,
        ffn_dim: int | None = None,
        activation: LayerSpec = "gelu",
        norm: LayerSpec = "layer_norm",
        positional: str = "rope",
        dropout: float = 0.0,
        tie_embeddings: bool = True,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if positional not in ("rope", "learned"):
            raise ConfigError(f"gpt: positional must be 'rope' or 'learned', got {positional!r}")
        self.vocab_size = _sizes.size(vocab_size, "gpt", "vocab_size")
        self.context_length = _sizes.size(context_length, "gpt", "context_length")
        self.d_model, self.num_layers = _sizes.size(d_model, "gpt", "d_model"), _sizes.size(num_layers, "gpt", "num_layers")
        d = self.d_model
        ffn = _sizes.size(ffn_dim, "gpt", "ffn_dim") if ffn_dim is not None else 4 * d
        heads = _sizes.size(num_heads, "gpt", "num_heads")
        kv = _sizes.size(num_kv_heads, "gpt", "num_kv_heads") if num_kv_heads is not None else heads
        block = 2 * d * d + 2 * d * (d * kv // heads) + 2 * d * ffn + 9 * d + ffn  # attention, feed-forward, norms, biases
        embeddings = (self.vocab_size + self.context_length) * d  # learned positions, or RoPE's cos/sin tables
        head = 0 if tie_embeddings else self.vocab_size * d
        _sizes.check_parameter_count(embeddings + self.num_layers * block + 2 * d + head, "gpt")
        self.tok_emb = build_layer("embedding", self.vocab_size, d, where="gpt")
        self.pos_emb = (
            build_layer("learned_positional_embedding", self.context_length, d, where="gpt")
            if positional == "learned" else None
        )
        self.drop = build_dropout(dropout, where="gpt")
        self.blocks = ModuleList([
            SelfBlock(d, num_heads, ffn, num_kv_heads, activation, norm, dropout, bias, causal=True,
                      rope=positional == "rope", max_position=self.context_length)
            for _ in range(self.num_layers)
        ])
        self.norm = build_layer(norm, d, where="gpt norm")
        self.head = build_layer("linear", d, self.vocab_size, bias=False, where="gpt")
        gpt_init(self, self.num_layers)
        if tie_embeddings:
            self.head.weight = self.tok_emb.weight

    def new_cache(self, batch: int) -> GPTCache:
        """Empty KV caches for :func:`plait.zoo.generation.generate` (``batch`` is fixed by the first call).

        Args:
            batch: the batch size (unused: the caches take it from the first forward).
        """
        return GPTCache(self.num_layers)

    def forward(self, ids: Any, cache: GPTCache | None = None) -> Any:
        """ids (B, T) -> logits (B, T, V). With ``cache`` the ids continue the cached positions.

        Args:
            ids: token ids ``(B, T)`` in ``[0, vocab_size)``.
            cache: default None; a :meth:`new_cache` result, extended by these positions.

        Raises:
            DTypeError: ``ids`` is not an integer array.
            ShapeError: ``ids`` is not 2-D, holds an id out of range, or the positions
                (cached ones included) exceed ``context_length``.
        """
        ids = check_int_array(ids, "gpt", what="token ids", ndim=2, high=self.vocab_size)
        offset = cache.length if cache is not None else 0
        if offset + ids.shape[1] > self.context_length:
            raise ShapeError(
                f"gpt: positions {offset}..{offset + ids.shape[1] - 1} exceed context_length {self.context_length}"
            )
        x = self.tok_emb(ids)
        if self.pos_emb is not None:
            x = self.pos_emb(x, offset=offset)
        x = self.drop(x)
        for i, block in enumerate(self.blocks):
            x = block(x, kv_cache=None if cache is None else cache.layers[i])
        return self.head(self.norm(x))

    def backward(self, dlogits: Any) -> None:
        """Accumulate the parameter gradients; returns None (token ids have no gradient).

        Args:
            dlogits: the gradient w.r.t. the logits, ``(B, T, vocab_size)``.
        """
        dx = self.norm.backward(self.head.backward(dlogits))
        for block in reversed(list(self.blocks)):
            dx = block.backward(dx)
        dx = self.drop.backward(dx)
        if self.pos_emb is not None:
            dx = self.pos_emb.backward(dx)
        self.tok_emb.backward(dx)
        return None
