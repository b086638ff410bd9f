"""Character-level tokenizer: one id per Unicode code point seen in a corpus.

Ids: the special tokens first (in the order given), then the corpus characters sorted by
code point. Special tokens are ids for the model's use (padding, start/end markers); their
text is not searched for in ``encode``, and ``decode`` writes it out unless asked not to.

Unknown characters (not seen when fitting) follow ``unknown``: ``"error"`` raises
:class:`UnknownCharacterError`, ``"skip"`` drops them, ``"unk"`` maps them to ``unk_token``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from plait.core.errors import ConfigError, SerializationError

from ._corpus import TextsOrPaths, iter_texts
from ._json import FORMAT_VERSION, check_header, read_json, require, write_json
from .errors import NotTrainedError, TokenIdError, TokenizerError, UnknownCharacterError

__all__ = ["CharTokenizer"]

Unknown = Literal["error", "skip", "unk"]
FORMAT = "plait.char"


class CharTokenizer:
    """One id per character: special tokens first, then the characters by code point.

    Args:
        chars: default None (call :meth:`fit` first); the vocabulary's characters (single
            characters, any order, repeats ignored).
        unknown: default ``"error"``; what ``encode`` does with an unseen character:
            ``"error"`` raises, ``"skip"`` drops it, ``"unk"`` maps it to ``unk_token``.
        unk_token: default ``"<unk>"``; the token unknown characters map to under
            ``unknown="unk"`` (added as the first special token when not listed).
        special_tokens: default ``()``; extra tokens given the first ids, in order.

    Raises:
        ConfigError: an unknown ``unknown``, special tokens that are not non-empty strings
            (or a single string), or ``chars`` that are not single characters.
    """

    def __init__(
        self,
        chars: Iterable[str] | None = None,
        unknown: Unknown = "error",
        unk_token: str = "<unk>",
        special_tokens: Sequence[str] = (),
    ) -> None:
        if unknown not in ("error", "skip", "unk"):
            raise ConfigError(f"CharTokenizer: unknown must be 'error', 'skip' or 'unk', got {unknown!r}")
        if isinstance(special_tokens, str) or not all(isinstance(s, str) and s for s in special_tokens):
            raise ConfigError(f"CharTokenizer: special_tokens must be non-empty strings, got {special_tokens!r}")
        specials = list(dict.fromkeys(special_tokens))
        if unknown == "unk" and unk_token not in specials:
            specials.insert(0, unk_token)
        self.unknown: Unknown = unknown
        self.unk_token = unk_token
        self.special_tokens = specials
        self._itos: list[str] = []
        self._stoi: dict[str, int] = {}
        if chars is not None:
            self._set_chars(chars)

    def _set_chars(self, chars: Iterable[str]) -> None:
        unique = set(chars)
        bad = [c for c in unique if not isinstance(c, str) or len(c) != 1]
        if bad:
            raise ConfigError(f"CharTokenizer: chars must be single characters, got {bad[:5]!r}")
        chars = sorted(unique)
        self._itos = [*self.special_tokens, *chars]
        self._stoi = {c: i for i, c in enumerate(chars, start=len(self.special_tokens))}

    def fit(self, texts_or_paths: TextsOrPaths) -> CharTokenizer:
        """Take the vocabulary from texts (``str``) and/or files (``pathlib.Path``); returns ``self``.

        Args:
            texts_or_paths: one text (``str``) or file (``pathlib.Path``, read as strict
                UTF-8, bounded), or an iterable mixing both.

        Raises:
            ConfigError: an item that is neither ``str`` nor a path.
            SerializationError: a file is missing, unreadable, too large or not UTF-8.
        """
        seen: set[str] = set()
        for text in iter_texts(texts_or_paths):
            seen.update(text)
        self._set_chars(seen)
        return self

    @classmethod
    def from_corpus(cls, texts_or_paths: TextsOrPaths, **kwargs: Any) -> CharTokenizer:
        """``CharTokenizer(**kwargs).fit(texts_or_paths)``.

        Args:
            texts_or_paths: one text (``str``) or file (``pathlib.Path``, read as strict
                UTF-8, bounded), or an iterable mixing both.
            **kwargs: the constructor's arguments (``unknown``, ``special_tokens``, ...).
        """
        return cls(**kwargs).fit(texts_or_paths)

    @property
    def vocab_size(self) -> int:
        return len(self._itos)

    def get_vocab(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self._itos)}

    def encode(self, text: str) -> list[int]:
        """One id per character of ``text`` (special-token text is not searched for).

        Args:
            text: the text to encode.

        Raises:
            TokenizerError: ``text`` is not a ``str``.
            NotTrainedError: no vocabulary yet (neither ``chars``, :meth:`fit` nor :meth:`load`).
            UnknownCharacterError: an unseen character with ``unknown="error"``.
        """
        if not isinstance(text, str):
            raise TokenizerError(f"CharTokenizer.encode expects a str, got {type(text).__name__}")
        if not self._itos:
            raise NotTrainedError("CharTokenizer has no vocabulary: call fit(texts) or load(path) first")
        stoi = self._stoi
        try:
            return [stoi[c] for c in text]
        except KeyError:
            pass
        if self.unknown == "skip":
            return [stoi[c] for c in text if c in stoi]
        if self.unknown == "unk":
            unk = self.special_tokens.index(self.unk_token)
            return [stoi.get(c, unk) for c in text]
        pos = next(i for i, c in enumerate(text) if c not in stoi)
        raise UnknownCharacterError(
            f"CharTokenizer: character {text[pos]!r} (U+{ord(text[pos]):04X}) at index {pos} is not in the "
            f"vocabulary of {len(stoi)} characters; use unknown='skip' or 'unk' to accept it"
        )

    def encode_batch(self, texts: Iterable[str]) -> list[list[int]]:
        """``[encode(t) for t in texts]``.

        Args:
            texts: the texts to encode.
        """
        return [self.encode(t) for t in texts]

    def decode(self, ids: Iterable[int], skip_special: bool = False) -> str:
        """The text of ``ids`` (special tokens written as their text).

        Args:
            ids: token ids (a list, iterable or 1-D integer array).
            skip_special: default False; True leaves special tokens out.

        Raises:
            TokenIdError: an id out of ``[0, vocab_size)`` or not an integer.
        """
        if hasattr(ids, "tolist"):
            ids = ids.tolist()  # type: ignore[union-attr]
        itos, n, first = self._itos, len(self._itos), len(self.special_tokens)
        out = []
        for pos, i in enumerate(ids):
            if isinstance(i, bool) or not hasattr(i, "__index__") or not 0 <= i < n:
                raise TokenIdError(f"CharTokenizer.decode: id {i!r} at position {pos} is not in [0, {n})")
            if not (skip_special and i < first):
                out.append(itos[i])
        return "".join(out)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the vocabulary and options as one JSON file, atomically.

        Args:
            path: the file to write (replaced in one step).

        Raises:
            SerializationError: the write failed (the old file is then intact).
        """
        write_json(
            path,
            {
                "format": FORMAT,
                "version": FORMAT_VERSION,
                "unknown": self.unknown,
                "unk_token": self.unk_token,
                "special_tokens": self.special_tokens,
                "chars": self._itos[len(self.special_tokens) :],
            },
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CharTokenizer:
        """Read a file written by :meth:`save`.

        Args:
            path: the tokenizer JSON file (bounded read, checked before use).

        Raises:
            SerializationError: missing, unreadable, too large, not strict JSON, another
                format or version, or an inconsistent vocabulary.
        """
        return cls._from_payload(read_json(path), path)

    @classmethod
    def _from_payload(cls, payload: Any, path: Any) -> CharTokenizer:
        check_header(payload, path, FORMAT)
        unknown = require(payload, "unknown", str, path)
        unk_token = require(payload, "unk_token", str, path)
        specials = require(payload, "special_tokens", list, path)
        chars = require(payload, "chars", list, path)
        if not all(isinstance(c, str) for c in [*chars, *specials]):
            raise SerializationError(f"{path}: 'chars' and 'special_tokens' must hold strings only")
        if len(set(map(str, chars))) != len(chars):
            raise SerializationError(f"{path}: 'chars' lists a character twice")
        if len(set(map(str, specials))) != len(specials):
            raise SerializationError(f"{path}: 'special_tokens' lists a token twice")
        if unknown == "unk" and unk_token not in specials:
            raise SerializationError(f"{path}: unk_token {unk_token!r} is not among the special tokens")
        try:
            tok = cls(unknown=unknown, unk_token=unk_token, special_tokens=specials)  # type: ignore[arg-type]
            tok._set_chars(chars)
        except ConfigError as exc:
            raise SerializationError(f"{path}: {exc}") from None
        if tok._itos[len(specials) :] != chars:
            raise SerializationError(f"{path}: 'chars' must be sorted by code point")
        return tok

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size}, unknown={self.unknown!r})"
