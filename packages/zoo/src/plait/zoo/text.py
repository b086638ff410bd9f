"""Text <-> ids for saved language models: a character vocabulary or a tokenizer file.

A model folder may hold ``tokenizer.json`` (read with plait-tokenizers, imported lazily)
or, for character-level models, ``config.json["metadata"]["chars"]``: the vocabulary as
one string, id i = chars[i].
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from plait.core import ConfigError, SerializationError

from .serialization import TOKENIZER_FILE, read_config

__all__ = ["CharCodec", "TOKENIZER_FILE", "load_text_codec"]


class CharCodec:
    """Character-level vocabulary: ``encode("hi") -> [ids]``, ``decode(ids) -> str``."""

    def __init__(self, chars: str) -> None:
        if len(set(chars)) != len(chars):
            raise ConfigError("CharCodec: the character vocabulary has duplicates")
        self.chars = chars
        self._index = {c: i for i, c in enumerate(chars)}

    @classmethod
    def from_text(cls, text: str) -> CharCodec:
        return cls("".join(sorted(set(text))))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        missing = sorted({c for c in text if c not in self._index})
        if missing:
            raise ConfigError(f"CharCodec: characters not in the vocabulary: {''.join(missing)!r}")
        return [self._index[c] for c in text]

    def encode_array(self, text: str) -> np.ndarray:
        """The whole text as an int64 array (vectorised; for training data)."""
        table = np.full(max(map(ord, self.chars)) + 1, -1, dtype=np.int64)
        table[[ord(c) for c in self.chars]] = np.arange(len(self.chars))
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        if codes.size and (codes.max() >= table.size or (table[codes] < 0).any()):
            return np.asarray(self.encode(text), dtype=np.int64)  # raises naming the characters
        return table[codes]

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.chars[int(i)] for i in ids)


def load_text_codec(folder: Path) -> Any | None:
    """The folder's tokenizer, its character vocabulary, or None."""
    path = folder / TOKENIZER_FILE
    if path.is_file():
        try:
            from plait.tokenizers import load_tokenizer  # noqa: PLC0415
        except ImportError as exc:
            raise SerializationError(f"{path}: reading it needs the plait-tokenizers distribution ({exc})") from exc
        return load_tokenizer(path)
    chars = (read_config(folder).get("metadata") or {}).get("chars")
    return CharCodec(chars) if isinstance(chars, str) and chars else None
