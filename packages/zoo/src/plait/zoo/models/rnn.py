"""``rnn_lm`` (next-token language model) and ``rnn_classifier`` over RNN / LSTM / GRU cells."""

from __future__ import annotations

from typing import Any

from plait.core import ConfigError, Module, check_int_array, get_array_module

from ..builders import build_dropout, build_layer
from ..catalog import register_model
from . import _sizes

__all__ = ["RNNClassifier", "RNNLanguageModel", "RecurrentCache"]

_CELLS = ("rnn", "lstm", "gru")


class RecurrentCache:
    """The running state of an ``rnn_lm`` during generation: ``state`` (h or (h, c)), ``length`` tokens seen."""

    def __init__(self) -> None:
        self.state: Any = None
        self.length = 0


def _checked_sizes(where: str, cell: str, directions: int, *, out: Any, **args: Any) -> list[int]:
    """vocab_size, embed_dim, hidden_size, num_layers checked as sizes, and the parameter count
    (embedding, ``num_layers`` recurrent layers of ``directions``, a linear head to ``out``) bounded."""
    vocab, embed, hidden, layers = (_sizes.size(args[k], where, k) for k in ("vocab_size", "embed_dim", "hidden_size",
                                                                              "num_layers"))
    out = _sizes.size(out, where, "num_classes" if where == "rnn_classifier" else "vocab_size")
    gates = {"rnn": 1, "gru": 3, "lstm": 4}.get(cell, 4)
    first = gates * hidden * (embed + hidden + 2)
    later = gates * hidden * (directions * hidden + hidden + 2)
    recurrent = directions * (first + (layers - 1) * later)
    _sizes.check_parameter_count(vocab * embed + recurrent + (directions * hidden + 1) * out, where)
    return [vocab, embed, hidden, layers]


def _check_cell(cell: str, where: str) -> None:
    if cell not in _CELLS:
        raise ConfigError(f"{where}: cell must be one of {', '.join(_CELLS)}, got {cell!r}")


@register_model("rnn_lm")
class RNNLanguageModel(Module):
    """ids (B, T) ints -> next-token logits (B, T, vocab_size).

    Embedding -> ``cell`` (num_layers, batch_first) -> Dropout -> Linear; ``tie_weights``
    shares the embedding matrix with the output layer (needs embed_dim == hidden_size).

    Args:
        vocab_size: default 65 (the characters of tinyshakespeare); ids lie in ``[0, vocab_size)``.
        embed_dim: default 64; the embedding width.
        hidden_size: default 256; the recurrent state's width.
        num_layers: default 1; stacked recurrent layers.
        cell: default ``"lstm"``; or ``"gru"``, ``"rnn"`` (tanh).
        dropout: default 0.0; dropout before the head and, with ``num_layers > 1``, between
            the recurrent layers (as torch's ``dropout``), in [0, 1).
        tie_weights: default False; share the embedding matrix with the head.

    Raises:
        ConfigError: an unknown ``cell``, ``tie_weights`` with ``embed_dim != hidden_size``,
            a size that is not a positive integer, dropout out of range, or too many
            parameters.
    """

    def __init__(
        self,
        vocab_size: int = 65,
        embed_dim: int = 64,
        hidden_size: int = 256,
        num_layers: int = 1,
        cell: str = "lstm",
        dropout: float = 0.0,
        tie_weights: bool = False,
    ) -> None:
        super().__init__()
        _check_cell(cell, "rnn_lm")
        if tie_weights and embed_dim != hidden_size:
            raise ConfigError(f"rnn_lm: tie_weights needs embed_dim == hidden_size, got {embed_dim} and {hidden_size}")
        vocab_size, embed_dim, hidden_size, num_layers = _checked_sizes(
            "rnn_lm", cell, 1, vocab_size=vocab_size, embed_dim=embed_dim, hidden_size=hidden_size,
            num_layers=num_layers, out=vocab_size)
        self.vocab_size = vocab_size
        self.embed = build_layer("embedding", self.vocab_size, int(embed_dim), where="rnn_lm")
        self.rnn = build_layer(cell, int(embed_dim), int(hidden_size), num_layers=int(num_layers), batch_first=True,
                               dropout=float(dropout) if num_layers > 1 else 0.0, where="rnn_lm")
        self.drop = build_dropout(dropout, where="rnn_lm")
        self.head = build_layer("linear", int(hidden_size), self.vocab_size, where="rnn_lm")
        if tie_weights:
            self.head.weight = self.embed.weight

    def new_cache(self, batch: int) -> RecurrentCache:
        """An empty state for :func:`plait.zoo.generation.generate`.

        Args:
            batch: the batch size (unused: the state is created by the first forward).
        """
        return RecurrentCache()

    def forward(self, ids: Any, cache: RecurrentCache | None = None) -> Any:
        """Next-token logits for every position.

        Args:
            ids: token ids ``(B, T)`` in ``[0, vocab_size)``.
            cache: default None; a :meth:`new_cache` state, continued from and updated (the
                ids are then the tokens after those already seen).

        Returns:
            Logits ``(B, T, vocab_size)``.

        Raises:
            DTypeError: ``ids`` is not an integer array.
            ShapeError: ``ids`` is not 2-D or holds an id out of range.
        """
        ids = check_int_array(ids, "rnn_lm", what="token ids", ndim=2, high=self.vocab_size)
        x = self.embed(ids)
        hx = cache.state if cache is not None else None
        out, state = self.rnn(x, hx)
        if cache is not None:
            cache.state, cache.length = state, cache.length + ids.shape[1]
        self.save_for_backward(hx is not None)
        return self.head(self.drop(out))

    def backward(self, dlogits: Any) -> None:
        """Accumulate the parameter gradients; returns None (token ids have no gradient).

        Args:
            dlogits: the gradient w.r.t. the logits, ``(B, T, vocab_size)``.
        """
        had_state = self.saved()
        dout = self.drop.backward(self.head.backward(dlogits))
        dx = self.rnn.backward(dout, None)
        self.embed.backward(dx[0] if had_state else dx)
        return None


@register_model("rnn_classifier")
class RNNClassifier(Module):
    """ids (B, T) ints -> class logits (B, num_classes).

    Embedding -> ``cell`` -> features -> Dropout -> Linear. ``pooling="last"`` uses the last
    layer's final hidden state (both directions when bidirectional), ``"mean"`` the mean
    of the outputs over time.

    Args:
        vocab_size: default 10000; ids lie in ``[0, vocab_size)``.
        num_classes: default 2; the logits' width.
        embed_dim: default 64; the embedding width.
        hidden_size: default 128; the recurrent state's width (per direction).
        num_layers: default 1; stacked recurrent layers.
        cell: default ``"lstm"``; or ``"gru"``, ``"rnn"``.
        bidirectional: default False; True runs a second, backward-in-time direction.
        dropout: default 0.0; before the head and, with ``num_layers > 1``, between the
            recurrent layers, in [0, 1).
        pooling: default ``"last"``; or ``"mean"``.

    Raises:
        ConfigError: an unknown ``cell`` or ``pooling``, a size that is not a positive
            integer, dropout out of range, or too many parameters.
    """

    def __init__(
        self,
        vocab_size: int = 10000,
        num_classes: int = 2,
        embed_dim: int = 64,
        hidden_size: int = 128,
        num_layers: int = 1,
        cell: str = "lstm",
        bidirectional: bool = False,
        dropout: float = 0.0,
        pooling: str = "last",
    ) -> None:
        super().__init__()
        _check_cell(cell, "rnn_classifier")
        if pooling not in ("last", "mean"):
            raise ConfigError(f"rnn_classifier: pooling must be 'last' or 'mean', got {pooling!r}")
        self.directions = 2 if bidirectional else 1
        vocab_size, embed_dim, hidden_size, num_layers = _checked_sizes(
            "rnn_classifier", cell, self.directions, vocab_size=vocab_size, embed_dim=embed_dim,
            hidden_size=hidden_size, num_layers=num_layers, out=num_classes)
        self.vocab_size, self.pooling, self.cell = vocab_size, pooling, cell
        self.embed = build_layer("embedding", self.vocab_size, int(embed_dim), where="rnn_classifier")
        self.rnn = build_layer(cell, int(embed_dim), int(hidden_size), num_layers=int(num_layers), batch_first=True,
                               bidirectional=bool(bidirectional), dropout=float(dropout) if num_layers > 1 else 0.0,
                               where="rnn_classifier")
        self.drop = build_dropout(dropout, where="rnn_classifier")
        self.head = build_layer("linear", self.directions * int(hidden_size), int(num_classes), where="rnn_classifier")

    def forward(self, ids: Any) -> Any:
        """Class logits of each sequence.

        Args:
            ids: token ids ``(B, T)`` in ``[0, vocab_size)``.

        Returns:
            Logits ``(B, num_classes)``.

        Raises:
            DTypeError: ``ids`` is not an integer array.
            ShapeError: ``ids`` is not 2-D or holds an id out of range.
        """
        ids = check_int_array(ids, "rnn_classifier", what="token ids", ndim=2, high=self.vocab_size)
        out, state = self.rnn(self.embed(ids))
        h_n = state[0] if self.cell == "lstm" else state  # (L*D, B, H)
        if self.pooling == "last":
            last = h_n[-self.directions:]  # (D, B, H)
            feats = last.transpose(1, 0, 2).reshape(last.shape[1], -1)
        else:
            feats = out.mean(axis=1)
        self.save_for_backward((tuple(out.shape), tuple(h_n.shape)))
        return self.head(self.drop(feats))

    def backward(self, dlogits: Any) -> None:
        """Accumulate the parameter gradients; returns None (token ids have no gradient).

        Args:
            dlogits: the gradient w.r.t. the logits, ``(B, num_classes)``.
        """
        out_shape, h_shape = self.saved()
        dfeats = self.drop.backward(self.head.backward(dlogits))
        xp = get_array_module(dfeats)
        if self.pooling == "last":
            dh = xp.zeros(h_shape, dtype=dfeats.dtype)
            d, b = self.directions, h_shape[1]
            dh[-d:] = dfeats.reshape(b, d, -1).transpose(1, 0, 2)
            dstate = (dh, None) if self.cell == "lstm" else dh
            dx = self.rnn.backward(None, dstate)
        else:
            dout = xp.broadcast_to(dfeats[:, None, :] / out_shape[1], out_shape)
            dx = self.rnn.backward(xp.ascontiguousarray(dout), None)
        self.embed.backward(dx)
        return None
