"""torch's ``TransformerEncoder`` / ``TransformerDecoder``: ``num_layers`` copies of one layer, then ``norm``.

    layer = TransformerEncoderLayer(d_model=64, nhead=4)
    encoder = TransformerEncoder(layer, num_layers=2, norm=LayerNorm(64))
    y = encoder(src, mask=None, src_key_padding_mask=None, is_causal=None)
    dsrc = encoder.backward(dy)

As in torch, each of the ``num_layers`` layers starts as a copy of the given one (same
weights), the state-dict keys are ``layers.<i>.*`` and ``norm.*``, and the masks are handed
to every layer. The decoder's backward returns (dtgt, dmemory), dmemory summed over layers.
"""

from __future__ import annotations

import copy
from typing import Any

from plait.core import ConfigError, Module, ModuleList

from .transformer import TransformerDecoderLayer, TransformerEncoderLayer

__all__ = ["TransformerDecoder", "TransformerEncoder"]


def _copies(layer: Module, num_layers: int, kind: type, where: str) -> ModuleList:
    if not isinstance(layer, kind):
        raise ConfigError(f"{where}: expected a {kind.__name__}, got {type(layer).__name__}")
    if isinstance(num_layers, bool) or not isinstance(num_layers, int) or not 1 <= num_layers <= 1024:
        raise ConfigError(f"{where}: expected num_layers as an integer in [1, 1024], got {num_layers!r}")
    return ModuleList([copy.deepcopy(layer) for _ in range(num_layers)])


class TransformerEncoder(Module):
    """A stack of ``num_layers`` :class:`TransformerEncoderLayer` (copies of ``encoder_layer``) and an
    optional final ``norm``. ``enable_nested_tensor`` and ``mask_check`` are accepted for torch's
    signature and change nothing (there are no nested tensors here).

    Args:
        encoder_layer: the ``TransformerEncoderLayer`` copied ``num_layers`` times (deep copies
            with its current weights, as torch).
        num_layers: the number of layers, an int in [1, 1024] (torch sets no upper bound).
        norm: a module applied to the last layer's output (e.g. a ``LayerNorm``); default None.
        enable_nested_tensor: accepted for torch's signature, no effect; default True.
        mask_check: accepted for torch's signature, no effect; default True.

    Shapes:
        ``forward(src, ...)``: as ``TransformerEncoderLayer``; ``backward(dy)`` -> dsrc.

    Raises:
        ConfigError: ``encoder_layer`` not a TransformerEncoderLayer, or ``num_layers`` not an int in [1, 1024].
    """

    def __init__(self, encoder_layer: TransformerEncoderLayer, num_layers: int, norm: Module | None = None,
                 enable_nested_tensor: bool = True, mask_check: bool = True) -> None:
        super().__init__()
        self.layers = _copies(encoder_layer, num_layers, TransformerEncoderLayer, "TransformerEncoder")
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, src: Any, mask: Any = None, src_key_padding_mask: Any = None,
                is_causal: bool | None = None) -> Any:
        """src as ``TransformerEncoderLayer``; ``mask``/``src_key_padding_mask`` go to every layer.

        Args:
            src: (S, N, E), (N, S, E) with ``batch_first``, or unbatched (S, E).
            mask: the layers' ``src_mask``, (S, S) or ``(N*nhead, S, S)``; default None.
            src_key_padding_mask: (N, S) ((S,) unbatched); default None.
            is_causal: True applies the causal mask when ``mask`` is None; default None (False).

        Returns:
            y of src's shape.

        Raises:
            ShapeError: as ``TransformerEncoderLayer.forward``.
            DTypeError: as ``TransformerEncoderLayer.forward``.
        """
        x = src
        for layer in self.layers:
            x = layer(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask, is_causal=bool(is_causal))
        return x if self.norm is None else self.norm(x)

    def backward(self, dy: Any) -> Any:
        """Returns dsrc.

        Args:
            dy: gradient of the output, src's shape.
        """
        if self.norm is not None:
            dy = self.norm.backward(dy)
        for layer in reversed(list(self.layers)):
            dy = layer.backward(dy)
        return dy


class TransformerDecoder(Module):
    """A stack of ``num_layers`` :class:`TransformerDecoderLayer` (copies of ``decoder_layer``) and an
    optional final ``norm``; every layer attends to the same ``memory``.

    Args:
        decoder_layer: the ``TransformerDecoderLayer`` copied ``num_layers`` times (deep copies
            with its current weights, as torch).
        num_layers: the number of layers, an int in [1, 1024] (torch sets no upper bound).
        norm: a module applied to the last layer's output (e.g. a ``LayerNorm``); default None.

    Shapes:
        ``forward(tgt, memory, ...)``: as ``TransformerDecoderLayer``; ``backward(dy)`` ->
        ``(dtgt, dmemory)``, dmemory summed over the layers.

    Raises:
        ConfigError: ``decoder_layer`` not a TransformerDecoderLayer, or ``num_layers`` not an int in [1, 1024].
    """

    def __init__(self, decoder_layer: TransformerDecoderLayer, num_layers: int, norm: Module | None = None) -> None:
        super().__init__()
        self.layers = _copies(decoder_layer, num_layers, TransformerDecoderLayer, "TransformerDecoder")
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, tgt: Any, memory: Any, tgt_mask: Any = None, memory_mask: Any = None,
                tgt_key_padding_mask: Any = None, memory_key_padding_mask: Any = None,
                tgt_is_causal: bool | None = None, memory_is_causal: bool = False) -> Any:
        """Arguments as ``TransformerDecoderLayer``, handed to every layer.

        Args:
            tgt: (T, N, E), (N, T, E) with ``batch_first``, or unbatched (T, E).
            memory: the encoder output, (S, N, E) / (N, S, E) / (S, E).
            tgt_mask: (T, T) or ``(N*nhead, T, T)``; default None.
            memory_mask: (T, S) or ``(N*nhead, T, S)``; default None.
            tgt_key_padding_mask: (N, T); default None.
            memory_key_padding_mask: (N, S); default None.
            tgt_is_causal: True applies the causal mask when ``tgt_mask`` is None; default None (False).
            memory_is_causal: the same for ``memory_mask``; default False.

        Returns:
            y of tgt's shape.

        Raises:
            ShapeError: as ``TransformerDecoderLayer.forward``.
            DTypeError: as ``TransformerDecoderLayer.forward``.
        """
        x = tgt
        for layer in self.layers:
            x = layer(x, memory, tgt_mask=tgt_mask, memory_mask=memory_mask, tgt_key_padding_mask=tgt_key_padding_mask,
                      memory_key_padding_mask=memory_key_padding_mask, tgt_is_causal=bool(tgt_is_causal),
                      memory_is_causal=memory_is_causal)
        return x if self.norm is None else self.norm(x)

    def backward(self, dy: Any) -> tuple[Any, Any]:
        """Returns (dtgt, dmemory), dmemory summed over the layers.

        Args:
            dy: gradient of the output, tgt's shape.
        """
        if self.norm is not None:
            dy = self.norm.backward(dy)
        dmemory = None
        for layer in reversed(list(self.layers)):
            dy, dm = layer.backward(dy)
            dmemory = dm if dmemory is None else dmemory + dm
        return dy, dmemory


LAYERS: dict[str, type] = {"transformer_encoder": TransformerEncoder, "transformer_decoder": TransformerDecoder}
