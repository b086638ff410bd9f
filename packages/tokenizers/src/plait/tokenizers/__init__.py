"""Byte-level BPE, char tokenizer and word vectorizer."""

from .bpe import ByteLevelBPETokenizer
from .char import CharTokenizer
from .errors import (
    DisallowedSpecialTokenError,
    NotTrainedError,
    SpecialTokenError,
    TokenIdError,
    TokenizerError,
    UnknownCharacterError,
)
from .loading import load_tokenizer
from .patterns import GPT2_PATTERN, GPT4_PATTERN
from .word_vectorizer import WordVectorizer

__all__ = [
    "ByteLevelBPETokenizer",
    "CharTokenizer",
    "DisallowedSpecialTokenError",
    "GPT2_PATTERN",
    "GPT4_PATTERN",
    "NotTrainedError",
    "SpecialTokenError",
    "TokenIdError",
    "TokenizerError",
    "UnknownCharacterError",
    "WordVectorizer",
    "load_tokenizer",
]
