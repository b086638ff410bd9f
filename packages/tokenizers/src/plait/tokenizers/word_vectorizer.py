"""WordVectorizer: Keras ``TextVectorization`` (``output_mode="int"``) without TensorFlow.

Text -> standardize -> split -> ids -> pad/truncate. The vocabulary starts with the padding
token (id 0, ``""``) and the OOV token (id 1, ``"[UNK]"``), then the adapted words by
descending frequency, ties in order of first appearance. ``max_tokens`` counts those two.

``standardize``: ``"lower_and_strip_punctuation"`` (default), ``"lower"``,
``"strip_punctuation"`` or ``None``. Punctuation is Keras's ASCII set
``!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~'`` (Unicode punctuation such as "—" is kept).
``split``: ``"whitespace"`` or ``"character"``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from plait.core.errors import ConfigError, SerializationError

from ._corpus import TextsOrPaths, iter_texts
from ._json import FORMAT_VERSION, check_header, read_json, require, write_json
from .errors import NotTrainedError, TokenIdError, TokenizerError

__all__ = ["WordVectorizer"]

FORMAT = "plait.word_vectorizer"
STANDARDIZE = ("lower_and_strip_punctuation", "lower", "strip_punctuation", None)
SPLIT = ("whitespace", "character")
# every encoded row is this long: a bound keeps a hostile or mistyped file from asking for terabytes
MAX_SEQUENCE_LENGTH = 2**20
_PUNCTUATION = str.maketrans("", "", "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~'")


class WordVectorizer:
    """Words to ids (Keras ``TextVectorization(output_mode="int")``); see the module docstring.

    Keras' ``pad_to_max_tokens`` (unused by ``output_mode="int"``) and ``output_mode`` are
    not offered. Calling the vectorizer on a list of texts gives an int64 array of shape
    ``(batch, length)``; on one ``str``, shape ``(length,)``.

    Args:
        max_tokens: default None (keep every word); the largest vocabulary, padding and OOV
            included (an int >= 3).
        standardize: default ``"lower_and_strip_punctuation"`` (as Keras); or ``"lower"``,
            ``"strip_punctuation"`` or None.
        split: default ``"whitespace"`` (as Keras); or ``"character"``.
        output_sequence_length: default None (a batch is padded to its longest row); pad
            with 0 or truncate every output to this length (1 to 2**20).
        oov_token: default ``"[UNK]"`` (as Keras); the spelling of id 1.
        pad_token: default ``""`` (as Keras); the spelling of id 0.
        vocabulary: default None (call :meth:`adapt`); a word list to use instead (a
            leading pad/OOV pair is dropped).

    Raises:
        ConfigError: an argument out of range or of the wrong type, ``oov_token ==
            pad_token``, or a vocabulary with repeated words.
    """

    def __init__(
        self,
        max_tokens: int | None = None,
        standardize: str | None = "lower_and_strip_punctuation",
        split: str = "whitespace",
        output_sequence_length: int | None = None,
        oov_token: str = "[UNK]",
        pad_token: str = "",
        vocabulary: Sequence[str] | None = None,
    ) -> None:
        if max_tokens is not None and (
            isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 3
        ):
            raise ConfigError(
                f"WordVectorizer: max_tokens must be an int >= 3 (pad, OOV, one word) or None, got {max_tokens!r}"
            )
        if standardize not in STANDARDIZE:
            raise ConfigError(f"WordVectorizer: standardize must be one of {STANDARDIZE}, got {standardize!r}")
        if split not in SPLIT:
            raise ConfigError(f"WordVectorizer: split must be one of {SPLIT}, got {split!r}")
        if output_sequence_length is not None and (
            isinstance(output_sequence_length, bool)
            or not isinstance(output_sequence_length, int)
            or not 1 <= output_sequence_length <= MAX_SEQUENCE_LENGTH
        ):
            raise ConfigError(
                f"WordVectorizer: output_sequence_length must be an int in [1, {MAX_SEQUENCE_LENGTH}] or None, "
                f"got {output_sequence_length!r}"
            )
        if not isinstance(oov_token, str) or not isinstance(pad_token, str) or oov_token == pad_token:
            raise ConfigError(
                f"WordVectorizer: oov_token and pad_token must be two different strings, got {oov_token!r}, {pad_token!r}"
            )
        self.max_tokens = max_tokens
        self.standardize = standardize
        self.split = split
        self.output_sequence_length = output_sequence_length
        self.oov_token = oov_token
        self.pad_token = pad_token
        self._vocab: list[str] = []
        self._index: dict[str, int] = {}
        if vocabulary is not None:
            self.set_vocabulary(vocabulary)

    # ------------------------------------------------------------------ vocabulary
    def tokenize(self, text: str) -> list[str]:
        """Standardize and split one text into words.

        Args:
            text: one text.

        Raises:
            TokenizerError: ``text`` is not a ``str``.
        """
        if not isinstance(text, str):
            raise TokenizerError(f"WordVectorizer expects str texts, got {type(text).__name__}")
        if self.standardize in ("lower", "lower_and_strip_punctuation"):
            text = text.lower()
        if self.standardize in ("strip_punctuation", "lower_and_strip_punctuation"):
            text = text.translate(_PUNCTUATION)
        return text.split() if self.split == "whitespace" else list(text)

    def adapt(self, texts_or_paths: TextsOrPaths) -> WordVectorizer:
        """Build the vocabulary from texts (``str``) and/or files (``pathlib.Path``); returns ``self``.

        Args:
            texts_or_paths: one text (``str``) or file (``pathlib.Path``, read as strict
                UTF-8, bounded), or an iterable mixing both.

        Raises:
            ConfigError: an item that is neither ``str`` nor a path.
            SerializationError: a file is missing, unreadable, too large or not UTF-8.
        """
        counts: dict[str, int] = {}  # insertion order = first appearance
        for text in iter_texts(texts_or_paths):
            for word in self.tokenize(text):
                counts[word] = counts.get(word, 0) + 1
        counts.pop(self.pad_token, None)
        counts.pop(self.oov_token, None)
        ranked = sorted(counts, key=counts.__getitem__, reverse=True)  # stable: ties keep first appearance
        self.set_vocabulary(ranked)
        return self

    def set_vocabulary(self, words: Sequence[str]) -> None:
        """Use ``words`` as the vocabulary (ids 2, 3, ... in order), cut to ``max_tokens``.

        Args:
            words: distinct strings; a leading ``[pad_token, oov_token]`` pair is dropped.

        Raises:
            ConfigError: a non-string, a repeated word, or the pad/OOV token among the words.
        """
        words = list(words)
        if words[:2] == [self.pad_token, self.oov_token]:
            words = words[2:]
        if not all(isinstance(w, str) for w in words):
            raise ConfigError("WordVectorizer: the vocabulary must hold strings only")
        if len(set(words)) != len(words) or {self.pad_token, self.oov_token} & set(words):
            raise ConfigError("WordVectorizer: the vocabulary repeats a word (or holds the pad/OOV token)")
        if self.max_tokens is not None:
            words = words[: self.max_tokens - 2]
        self._vocab = [self.pad_token, self.oov_token, *words]
        self._index = {w: i for i, w in enumerate(self._vocab)}

    def get_vocabulary(self) -> list[str]:
        return list(self._vocab)

    def vocabulary_size(self) -> int:
        return len(self._vocab)

    @property
    def vocab_size(self) -> int:
        return len(self._vocab)

    # ------------------------------------------------------------------ encoding
    def encode(self, text: str) -> list[int]:
        """Ids of one text; padded/truncated only when ``output_sequence_length`` is set.

        Args:
            text: one text; unknown words get id 1 (OOV).

        Raises:
            NotTrainedError: no vocabulary yet.
            TokenizerError: ``text`` is not a ``str``.
        """
        if not self._vocab:
            raise NotTrainedError("WordVectorizer has no vocabulary: call adapt(texts) or load(path) first")
        index = self._index
        ids = [index.get(w, 1) for w in self.tokenize(text)]
        if self.output_sequence_length is not None:
            n = self.output_sequence_length
            ids = ids[:n] + [0] * max(0, n - len(ids))
        return ids

    def __call__(self, texts: str | Iterable[str]) -> np.ndarray:
        """int64 ids: ``(batch, length)`` for a list of texts, ``(length,)`` for one ``str``."""
        if isinstance(texts, str):
            return np.asarray(self.encode(texts), dtype=np.int64)
        rows = [self.encode(t) for t in texts]
        width = self.output_sequence_length or max((len(r) for r in rows), default=0)
        out = np.zeros((len(rows), width), dtype=np.int64)
        for i, row in enumerate(rows):
            out[i, : len(row)] = row
        return out

    def decode(self, ids: Iterable[int]) -> str:
        """Words joined by single spaces; padding ids are dropped.

        Args:
            ids: token ids (a list, iterable or 1-D integer array).

        Raises:
            TokenIdError: an id out of range or not an integer.
        """
        if hasattr(ids, "tolist"):
            ids = ids.tolist()  # type: ignore[union-attr]
        n = len(self._vocab)
        words = []
        for pos, i in enumerate(ids):
            if isinstance(i, bool) or not hasattr(i, "__index__") or not 0 <= i < n:
                raise TokenIdError(f"WordVectorizer.decode: id {i!r} at position {pos} is not in [0, {n})")
            if i != 0:
                words.append(self._vocab[i])
        return " ".join(words)

    # ------------------------------------------------------------------ files
    def get_config(self) -> dict[str, Any]:
        return {
            "max_tokens": self.max_tokens,
            "standardize": self.standardize,
            "split": self.split,
            "output_sequence_length": self.output_sequence_length,
            "oov_token": self.oov_token,
            "pad_token": self.pad_token,
        }

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the config and vocabulary as one JSON file, atomically.

        Args:
            path: the file to write (replaced in one step).

        Raises:
            SerializationError: the write failed (the old file is then intact).
        """
        write_json(
            path, {"format": FORMAT, "version": FORMAT_VERSION, "config": self.get_config(), "vocabulary": self._vocab}
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> WordVectorizer:
        """Read a file written by :meth:`save`.

        Args:
            path: the JSON file (bounded read, checked before use).

        Raises:
            SerializationError: missing, unreadable, too large, not strict JSON, another
                format or version, an unknown config key or an invalid vocabulary.
        """
        return cls._from_payload(read_json(path), path)

    @classmethod
    def _from_payload(cls, payload: Any, path: Any) -> WordVectorizer:
        check_header(payload, path, FORMAT)
        config = require(payload, "config", dict, path)
        vocabulary = require(payload, "vocabulary", list, path)
        unknown = sorted(set(config) - set(cls().get_config()))
        if unknown:
            raise SerializationError(f"{path}: unknown config key(s) {unknown}")
        try:
            tok = cls(**config)
            if vocabulary[:2] != [tok.pad_token, tok.oov_token]:
                raise ConfigError(
                    f"the vocabulary must start with the pad and OOV tokens {[tok.pad_token, tok.oov_token]}"
                )
            tok.set_vocabulary(vocabulary)
        except (ConfigError, TypeError) as exc:
            raise SerializationError(f"{path}: {exc}") from None
        if tok._vocab != vocabulary:
            raise SerializationError(
                f"{path}: the vocabulary has {len(vocabulary)} entries, more than max_tokens={tok.max_tokens}"
            )
        return tok

    def __repr__(self) -> str:
        return f"WordVectorizer(vocabulary_size={self.vocabulary_size()}, max_tokens={self.max_tokens}, output_sequence_length={self.output_sequence_length})"
