"""``transformer``: an encoder-decoder transformer for sequence-to-sequence tasks."""

from __future__ import annotations

from typing import Any

from plait.core import ConfigError, Module, ModuleList, ShapeError, check_int_array
from plait.layers.attention import KVCache

from ..builders import LayerSpec, build_dropout, build_layer
from ..catalog import register_model
from . import _sizes
from .blocks import CrossBlock, FeedForwardKeysUpgrade, SelfBlock, gpt_init

__all__ = ["Seq2SeqCache", "Transformer"]

_POSITIONAL = {"learned": "learned_positional_embedding", "sinusoidal": "sinusoidal_positional_embedding"}


class Seq2SeqCache:
    """Per decoder block: a self-attention and a cross-attention :class:`KVCache`."""

    def __init__(self, num_layers: int) -> None:
        self.layers = [(KVCache(), KVCache()) for _ in range(num_layers)]

    @property
    def length(self) -> int:
        """Target positions decoded so far."""
        return self.layers[0][0].length if self.layers else 0


def _check_parameter_budget(src_vocab: int, tgt_vocab: int, max_len: int, share: bool, tie: bool,
                            **args: Any) -> None:
    """Sizes checked and the parameter count bounded before any block is built."""
    d, heads = _sizes.size(args["d_model"], "transformer", "d_model"), _sizes.size(args["num_heads"], "transformer",
                                                                                  "num_heads")
    kv = heads if args["num_kv_heads"] is None else _sizes.size(args["num_kv_heads"], "transformer", "num_kv_heads")
    ffn = 4 * d if args["ffn_dim"] is None else _sizes.size(args["ffn_dim"], "transformer", "ffn_dim")
    enc = _sizes.size(args["num_encoder_layers"], "transformer", "num_encoder_layers")
    dec = _sizes.size(args["num_decoder_layers"], "transformer", "num_decoder_layers")
    attention = 2 * d * d + 2 * d * (d * kv // heads) + 4 * d
    block = attention + 2 * d * ffn + ffn + 5 * d  # self-attention, feed-forward, two norms
    embeddings = (src_vocab + (0 if share else tgt_vocab) + 2 * max_len) * d  # positions or RoPE tables
    head = 0 if tie else tgt_vocab * (d + 1)
    _sizes.check_parameter_count(embeddings + enc * block + dec * (block + attention + 2 * d) + 4 * d + head,
                                 "transformer")


@register_model("transformer")
class Transformer(FeedForwardKeysUpgrade, Module):
    """forward(src (B, S) ids, tgt_in (B, T) ids) -> logits (B, T, tgt_vocab_size).

    Encoder: embedding [+ positions] -> pre-norm self-attention blocks (source padding,
    ``src == pad_id``, is masked) -> norm = memory. Decoder: embedding [+ positions] ->
    pre-norm blocks of causal self-attention, cross-attention over the memory and FFN ->
    norm -> linear head. ``positional``: "rope" (rotary, in self-attention), "learned" or
    "sinusoidal" (added to the embeddings). ``share_embeddings`` uses one embedding for
    source and target (same vocabulary); ``tie_embeddings`` shares the target embedding
    with the head. Use :func:`plait.zoo.generation.greedy_decode` to translate.

    Args:
        src_vocab_size: default 64; source ids lie in ``[0, src_vocab_size)``.
        tgt_vocab_size: default None (= ``src_vocab_size``); target ids' range.
        d_model: default 128; the model width (divisible by ``num_heads``).
        num_heads: default 4; attention heads.
        num_encoder_layers: default 2; encoder blocks.
        num_decoder_layers: default 2; decoder blocks.
        num_kv_heads: default None (= ``num_heads``); fewer key/value heads (dividing
            ``num_heads``) is grouped-query attention.
        ffn_dim: default None (= ``4 * d_model``; torch's ``nn.Transformer`` uses 2048);
            the feed-forward hidden width.
        activation: default ``"gelu"`` (torch's ``nn.Transformer``: relu); the
            feed-forward activation's layer spec.
        norm: default ``"layer_norm"``; the normalisation's layer spec, built with ``d_model``.
        positional: default ``"rope"``; or ``"learned"``, ``"sinusoidal"``.
        max_len: default 256; the longest source and target sequences.
        dropout: default 0.0; on the embeddings, the attention weights and the residual
            branches, in [0, 1).
        pad_id: default 0; source positions holding this id are masked out of attention;
            None masks nothing.
        share_embeddings: default False; one embedding for source and target (needs equal
            vocabulary sizes).
        tie_embeddings: default True; the head shares the target embedding matrix.
        bias: default True; biases in the attention and feed-forward Linears (the head has
            none).

    Raises:
        ConfigError: an unknown ``positional``, ``share_embeddings`` with different
            vocabularies, ``pad_id`` outside the source vocabulary, a size that is not a
            positive integer, heads that do not divide, an unknown layer spec, dropout out
            of range, or too many parameters.
    """

    def __init__(
        self,
        src_vocab_size: int = 64,
        tgt_vocab_size: int | None = None,
        d_model: int = 128,
        num_heads: int = 4,
        num_encoder_layers: int = 2,
        num_decoder_layers: int = 2,
        num_kv_heads: int | None = None,
        ffn_dim: int | None = None,
        activation: LayerSpec = "gelu",
        norm: LayerSpec = "layer_norm",
        positional: str = "rope",
        max_len: int = 256,
        dropout: float = 0.0,
        pad_id: int | None = 0,
        share_embeddings: bool = False,
        tie_embeddings: bool = True,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if positional not in ("rope", *_POSITIONAL):
            raise ConfigError(f"transformer: positional must be 'rope', 'learned' or 'sinusoidal', got {positional!r}")
        self.src_vocab_size = _sizes.size(src_vocab_size, "transformer", "src_vocab_size")
        self.tgt_vocab_size = (_sizes.size(tgt_vocab_size, "transformer", "tgt_vocab_size")
                               if tgt_vocab_size is not None else self.src_vocab_size)
        if share_embeddings and self.src_vocab_size != self.tgt_vocab_size:
            raise ConfigError("transformer: share_embeddings needs src_vocab_size == tgt_vocab_size")
        if pad_id is not None and _sizes.size(pad_id, "transformer", "pad_id", 0) >= self.src_vocab_size:
            raise ConfigError(f"transformer: pad_id must be a source token id below {self.src_vocab_size}, got {pad_id}")
        self.max_len, self.pad_id = _sizes.size(max_len, "transformer", "max_len"), pad_id
        _check_parameter_budget(self.src_vocab_size, self.tgt_vocab_size, self.max_len, share_embeddings,
                                tie_embeddings, d_model=d_model, num_heads=num_heads, num_kv_heads=num_kv_heads,
                                ffn_dim=ffn_dim, num_encoder_layers=num_encoder_layers,
                                num_decoder_layers=num_decoder_layers)
        d, ffn = int(d_model), int(ffn_dim) if ffn_dim is not None else 4 * int(d_model)
        rope = positional == "rope"
        block_args = {"num_kv_heads": num_kv_heads, "activation": activation, "norm": norm, "dropout": dropout,
                      "bias": bias, "rope": rope, "max_position": self.max_len}
        self.src_emb = build_layer("embedding", self.src_vocab_size, d, where="transformer")
        self.tgt_emb = self.src_emb if share_embeddings else build_layer(
            "embedding", self.tgt_vocab_size, d, where="transformer")
        self.src_pos = None if rope else build_layer(_POSITIONAL[positional], self.max_len, d, where="transformer")
        self.tgt_pos = None if rope else build_layer(_POSITIONAL[positional], self.max_len, d, where="transformer")
        self.src_drop = build_dropout(dropout, where="transformer")
        self.tgt_drop = build_dropout(dropout, where="transformer")
        self.encoder = ModuleList([SelfBlock(d, num_heads, ffn, causal=False, **block_args)
                                   for _ in range(int(num_encoder_layers))])
        self.encoder_norm = build_layer(norm, d, where="transformer norm")
        self.decoder = ModuleList([CrossBlock(d, num_heads, ffn, **block_args) for _ in range(int(num_decoder_layers))])
        self.decoder_norm = build_layer(norm, d, where="transformer norm")
        self.head = build_layer("linear", d, self.tgt_vocab_size, bias=False, where="transformer")
        gpt_init(self, int(num_encoder_layers) + int(num_decoder_layers))
        if tie_embeddings:
            self.head.weight = self.tgt_emb.weight

    def _check(self, ids: Any, what: str, vocab: int) -> Any:
        ids = check_int_array(ids, "transformer", what=what, ndim=2, high=vocab)
        if ids.shape[1] > self.max_len:
            raise ShapeError(f"transformer: {what} of length {ids.shape[1]} exceed max_len {self.max_len}")
        return ids

    def _embed(self, ids: Any, emb: Module, pos: Module | None, drop: Module, offset: int = 0) -> Any:
        x = emb(ids)
        return drop(x if pos is None else pos(x, offset=offset))

    def _embed_backward(self, dx: Any, emb: Module, pos: Module | None, drop: Module) -> None:
        dx = drop.backward(dx)
        emb.backward(dx if pos is None else pos.backward(dx))

    def new_cache(self, batch: int) -> Seq2SeqCache:
        """Empty decoder caches for step-by-step decoding (see :func:`plait.zoo.generation.greedy_decode`).

        Args:
            batch: the batch size (unused: the caches take it from the first decode).
        """
        return Seq2SeqCache(len(self.decoder))

    def encode(self, src: Any) -> tuple[Any, Any]:
        """src (B, S) -> (memory (B, S, d), padding mask (B, S) bool or None).

        Args:
            src: source ids ``(B, S)``, ``S <= max_len``; the mask is True where
                ``src == pad_id``.

        Raises:
            DTypeError: ``src`` is not an integer array.
            ShapeError: ``src`` is not 2-D, holds an id out of range, or is longer than
                ``max_len``.
        """
        src = self._check(src, "source ids", self.src_vocab_size)
        mask = (src == self.pad_id) if self.pad_id is not None else None
        x = self._embed(src, self.src_emb, self.src_pos, self.src_drop)
        for block in self.encoder:
            x = block(x, key_padding_mask=mask)
        return self.encoder_norm(x), mask

    def decode(self, tgt: Any, memory: Any, memory_mask: Any = None, cache: Seq2SeqCache | None = None) -> Any:
        """tgt (B, T) ids, memory (B, S, d) -> logits (B, T, tgt_vocab_size).

        With ``cache`` (inference only) ``tgt`` holds the next tokens after the cached ones.

        Args:
            tgt: target ids ``(B, T)`` (the decoder input, starting with BOS).
            memory: the encoder output ``(B, S, d_model)`` from :meth:`encode`.
            memory_mask: default None; the source padding mask ``(B, S)`` from
                :meth:`encode` (True: ignored).
            cache: default None; a :meth:`new_cache` result, extended by these positions.

        Raises:
            DTypeError: ``tgt`` is not an integer array.
            ShapeError: ``tgt`` is not 2-D, holds an id out of range, or the positions
                (cached ones included) exceed ``max_len``.
        """
        tgt = self._check(tgt, "target ids", self.tgt_vocab_size)
        offset = cache.length if cache is not None else 0
        if offset + tgt.shape[1] > self.max_len:
            raise ShapeError(f"transformer: target positions up to {offset + tgt.shape[1]} exceed max_len {self.max_len}")
        x = self._embed(tgt, self.tgt_emb, self.tgt_pos, self.tgt_drop, offset)
        for i, block in enumerate(self.decoder):
            x = block(x, memory, memory_mask, None if cache is None else cache.layers[i])
        return self.head(self.decoder_norm(x))

    def forward(self, src: Any, tgt_in: Any) -> Any:
        """Teacher-forced logits: :meth:`encode` then :meth:`decode`.

        Args:
            src: source ids ``(B, S)``.
            tgt_in: target ids ``(B, T)``, shifted right (BOS first).

        Returns:
            Logits ``(B, T, tgt_vocab_size)``.
        """
        return self.decode(tgt_in, *self.encode(src))

    def backward(self, dlogits: Any) -> None:
        """Accumulate the parameter gradients; returns None (token ids have no gradient).

        Args:
            dlogits: the gradient w.r.t. the logits, ``(B, T, tgt_vocab_size)``.
        """
        dx = self.decoder_norm.backward(self.head.backward(dlogits))
        dmemory = None
        for block in reversed(list(self.decoder)):
            dx, dm = block.backward(dx)
            dmemory = dm if dmemory is None else dmemory + dm
        self._embed_backward(dx, self.tgt_emb, self.tgt_pos, self.tgt_drop)
        dx = self.encoder_norm.backward(dmemory)
        for block in reversed(list(self.encoder)):
            dx = block.backward(dx)
        self._embed_backward(dx, self.src_emb, self.src_pos, self.src_drop)
        return None
