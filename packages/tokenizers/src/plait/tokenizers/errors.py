"""Errors raised by plait-tokenizers. All are :class:`plait.core.errors.PlaitError` subclasses.

Files that cannot be read raise :class:`plait.core.errors.SerializationError` (naming the file
and the problem); everything wrong with an ``encode``/``decode`` argument raises one of these.
"""

from __future__ import annotations

from plait.core.errors import PlaitError

__all__ = [
    "TokenizerError",
    "SpecialTokenError",
    "DisallowedSpecialTokenError",
    "TokenIdError",
    "UnknownCharacterError",
    "NotTrainedError",
]


class TokenizerError(PlaitError, ValueError):
    """A tokenizer was given an argument it cannot work with."""


class SpecialTokenError(TokenizerError):
    """A special token was named that the tokenizer does not know."""


class DisallowedSpecialTokenError(SpecialTokenError):
    """The text contains a special token that ``allowed_special`` does not allow (tiktoken's rule)."""


class TokenIdError(TokenizerError, IndexError):
    """``decode`` got an id outside ``[0, vocab_size)`` or something that is not an integer."""


class UnknownCharacterError(TokenizerError, KeyError):
    """A character (or word) outside the vocabulary, under the ``unknown="error"`` policy."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class NotTrainedError(TokenizerError):
    """The tokenizer has no vocabulary yet: fit/train/adapt it (or load one) first."""
