"""Byte-level BPE, char tokenizer and word vectorizer."""

from .bpe import ByteLevelBPETokenizer
from .errors import (
    DisallowedSpecialTokenError,
    NotTrainedError,
    SpecialTokenError,
    TokenIdError,
    TokenizerError,
    UnknownCharacterError,
)
from .patterns import GPT2_PATTERN, GPT4_PATTERN

__all__ = [
    "ByteLevelBPETokenizer",
    "DisallowedSpecialTokenError",
    "GPT2_PATTERN",
    "GPT4_PATTERN",
    "NotTrainedError",
    "SpecialTokenError",
    "TokenIdError",
    "TokenizerError",
    "UnknownCharacterError",
]
