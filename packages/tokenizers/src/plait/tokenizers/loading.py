"""Open any Plait tokenizer file by the ``format`` it names."""

from __future__ import annotations

import os
from typing import Any, Union

from plait.core.errors import SerializationError

from . import bpe_files, char, word_vectorizer
from ._json import read_json
from .bpe import ByteLevelBPETokenizer
from .char import CharTokenizer
from .word_vectorizer import WordVectorizer

__all__ = ["AnyTokenizer", "load_tokenizer", "TOKENIZERS"]

AnyTokenizer = Union[ByteLevelBPETokenizer, CharTokenizer, WordVectorizer]

# registry name -> class; also what the plugin registers
TOKENIZERS: dict[str, type] = {
    "byte_level_bpe": ByteLevelBPETokenizer,
    "char": CharTokenizer,
    "word_vectorizer": WordVectorizer,
}


def load_tokenizer(path: str | os.PathLike[str]) -> AnyTokenizer:
    """Load a file written by any of the tokenizers' ``save``.

    Args:
        path: a JSON file written by ``ByteLevelBPETokenizer``, ``CharTokenizer`` or
            ``WordVectorizer``; its ``"format"`` field picks the class.

    Raises:
        SerializationError: missing, unreadable, too large, not strict JSON, an unknown
            format, or a file its class refuses.
    """
    payload: Any = read_json(path)
    fmt = payload.get("format") if isinstance(payload, dict) else None
    if fmt == bpe_files.FORMAT:
        vocab, pattern = bpe_files.load_bpe(path, payload)
        return ByteLevelBPETokenizer._from_built(vocab, pattern)
    if fmt == char.FORMAT:
        return CharTokenizer._from_payload(payload, path)
    if fmt == word_vectorizer.FORMAT:
        return WordVectorizer._from_payload(payload, path)
    known = ", ".join([bpe_files.FORMAT, char.FORMAT, word_vectorizer.FORMAT])
    raise SerializationError(f"{path}: not a tokenizer file (format {fmt!r}; expected one of {known})")
