"""Byte-level BPE (GPT-2's scheme): train, encode, decode; files in :mod:`.bpe_files`.

Encoding a text:
1. special tokens that ``allowed_special`` allows are cut out first (tiktoken's rules, see
   :mod:`._special`);
2. the rest is split into pieces by the pre-tokenisation regex (``pattern``);
3. each piece's UTF-8 bytes become byte tokens and are merged in merge-rank order; a piece
   that is itself a token maps straight to it (as tiktoken does). Pieces are cached.

Lone surrogates (``str`` can hold them; UTF-8 cannot): with ``surrogates="replace"`` (the
default, tiktoken's behaviour) each lone surrogate is encoded as U+FFFD and a surrogate pair
as the character it spells, so ``decode`` returns U+FFFD in their place. With
``surrogates="surrogatepass"`` they are encoded as their 3-byte (invalid UTF-8) sequences and
``decode(ids, errors="surrogatepass")`` gives the original string back. Every other string
round-trips: ``decode(encode(s)) == s``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from plait.core.errors import ConfigError

from . import bpe_files
from ._bytes import token_to_str
from ._corpus import TextsOrPaths, count_pieces, iter_texts, replace_surrogates
from ._merge import apply_merges
from ._special import SpecialSpec, check_disallowed, resolve_special, split_on_special
from ._vocab import BPEVocab, build_vocab
from .errors import TokenIdError, TokenizerError
from .patterns import compile_pattern, resolve_pattern, split_pieces
from .trainer import train_merges

__all__ = ["ByteLevelBPETokenizer"]

Surrogates = Literal["replace", "surrogatepass"]
_CACHED_PIECE_BYTES = 256


class ByteLevelBPETokenizer:
    """Byte-level BPE tokenizer; untrained it has the 256 byte tokens (plus ``special_tokens``).

    Args:
        pattern: default ``"gpt2"``; ``"gpt4"`` or a custom pre-tokenisation regex (no
            capturing groups).
        special_tokens: default ``()``; texts given the ids after the ordinary tokens, in order.
        cache_size: default 200000; how many distinct pieces to remember (the cache is
            emptied when full; 0 disables it).

    Raises:
        ConfigError: ``special_tokens`` is a single string or holds an empty or repeated
            token, ``cache_size`` is negative, or ``pattern`` is not a valid regex or has
            capturing groups.
    """

    def __init__(self, pattern: str = "gpt2", special_tokens: Sequence[str] = (), cache_size: int = 200_000) -> None:
        if isinstance(special_tokens, str):
            raise ConfigError(f"special_tokens must be a sequence of strings, got the string {special_tokens!r}")
        if not isinstance(cache_size, int) or cache_size < 0:
            raise ConfigError(f"cache_size must be a non-negative int, got {cache_size!r}")
        self.cache_size = cache_size
        tokens = {bytes([b]): b for b in range(256)}
        self._set_vocab(build_vocab(tokens, [], _number_specials(special_tokens, 256)), resolve_pattern(pattern))

    # ------------------------------------------------------------------ building
    @classmethod
    def from_vocab(
        cls,
        tokens: Mapping[bytes, int],
        merges: Sequence[tuple[bytes, bytes]],
        pattern: str = "gpt2",
        special_tokens: Mapping[str, int] | None = None,
    ) -> ByteLevelBPETokenizer:
        """Build from parts: ``{token_bytes: id}``, merges as byte pairs in rank order, ``{special: id}``.

        Args:
            tokens: every ordinary token's bytes -> its id (all 256 single bytes included).
            merges: ``(left, right)`` byte pairs in rank order; each pair's concatenation
                must be a token.
            pattern: default ``"gpt2"``; ``"gpt4"`` or a custom regex.
            special_tokens: default None (none); special text -> id, ids not used by ``tokens``.

        Raises:
            ConfigError: an incoherent vocabulary (a missing byte token, repeated or
                non-integer ids, a merge whose result is not a token) or a bad ``pattern``.
        """
        return cls._from_built(build_vocab(tokens, merges, special_tokens or {}), resolve_pattern(pattern))

    @classmethod
    def _from_built(cls, vocab: BPEVocab, pattern: str) -> ByteLevelBPETokenizer:
        tok = cls.__new__(cls)
        tok.cache_size = 200_000
        tok._set_vocab(vocab, pattern)
        return tok

    def _set_vocab(self, vocab: BPEVocab, pattern: str) -> None:
        self._vocab = vocab
        self._pattern = pattern
        self._regex = compile_pattern(pattern)
        self._cache: dict[str, list[int]] = {}

    def train(
        self,
        texts_or_paths: TextsOrPaths,
        vocab_size: int,
        special_tokens: Sequence[str] | None = None,
        min_frequency: int = 2,
        pattern: str | None = None,
        show_progress: bool | None = None,
    ) -> ByteLevelBPETokenizer:
        """Learn merges from texts (``str``) and/or files (``pathlib.Path``); returns ``self``.

        ``vocab_size`` counts the 256 byte tokens, the merges and the special tokens (which
        get the last ids). Training stops early when no pair occurs ``min_frequency`` times.
        ``special_tokens=None`` keeps the current ones; their text is cut out of the corpus.
        ``show_progress=None`` shows a bar only on a terminal.

        Args:
            texts_or_paths: one text (``str``) or file (``pathlib.Path``, read as strict UTF-8
                with a bounded read), or an iterable mixing both. A plain ``str`` is text, never
                a file name.
            vocab_size: the size wanted (>= 256 + the number of special tokens).
            special_tokens: default None (keep the current ones); the special texts.
            min_frequency: default 2 (as Hugging Face ``tokenizers``); a pair must occur at
                least this often to be merged (>= 1).
            pattern: default None (keep the current one); ``"gpt2"``, ``"gpt4"`` or a regex.
            show_progress: default None (a tqdm bar only on a terminal); True or False forces it.

        Raises:
            ConfigError: ``vocab_size`` too small or not an int, ``min_frequency < 1``, bad
                special tokens, a bad ``pattern``, or an item that is neither ``str`` nor a path.
            SerializationError: a file is missing, unreadable, too large or not UTF-8.
        """
        source = self._pattern if pattern is None else resolve_pattern(pattern)
        if special_tokens is None:
            special_tokens = list(self._vocab.special)
        elif isinstance(special_tokens, str):
            raise ConfigError(f"special_tokens must be a sequence of strings, got the string {special_tokens!r}")
        _number_specials(special_tokens, 0)  # validate before the long part
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
            raise ConfigError(f"vocab_size must be an int, got {vocab_size!r}")
        num_merges = vocab_size - 256 - len(special_tokens)
        if num_merges < 0:
            raise ConfigError(
                f"vocab_size={vocab_size} is too small: it must hold the 256 byte tokens "
                f"and {len(special_tokens)} special token(s)"
            )
        if isinstance(min_frequency, bool) or not isinstance(min_frequency, int) or min_frequency < 1:
            raise ConfigError(f"min_frequency must be an int >= 1, got {min_frequency!r}")
        regex = compile_pattern(source)
        counts = count_pieces(iter_texts(texts_or_paths), regex, special_tokens)
        disable = None if show_progress is None else not show_progress
        from tqdm import tqdm  # noqa: PLC0415 - only training shows a bar (importing tqdm costs ~40 ms)

        with tqdm(total=num_merges, desc="BPE merges", unit="merge", disable=disable, leave=False) as bar:
            merges = train_merges(counts, num_merges, min_frequency, on_merge=lambda: bar.update(1))
        token_bytes = [bytes([b]) for b in range(256)]
        for a, b in merges:
            token_bytes.append(token_bytes[a] + token_bytes[b])
        tokens: dict[bytes, int] = {}
        for t in token_bytes:  # two merges spelling the same bytes share one id
            tokens.setdefault(t, len(tokens))
        byte_merges = [(token_bytes[a], token_bytes[b]) for a, b in merges]
        self._set_vocab(build_vocab(tokens, byte_merges, _number_specials(special_tokens, len(tokens))), source)
        return self

    # ------------------------------------------------------------------ encoding
    def encode(
        self,
        text: str,
        *,
        allowed_special: SpecialSpec = frozenset(),
        disallowed_special: SpecialSpec = "all",
        surrogates: Surrogates = "replace",
    ) -> list[int]:
        """Token ids of ``text``. Special-token text raises unless allowed (tiktoken's default).

        Args:
            text: the text to encode.
            allowed_special: default ``frozenset()`` (none); ``"all"`` or a set of special
                tokens matched in the text and emitted as their ids.
            disallowed_special: default ``"all"`` (every special token not allowed); or a
                set whose text raises :class:`DisallowedSpecialTokenError`; pass ``()`` to
                encode such text as plain text.
            surrogates: default ``"replace"`` (lone surrogates become U+FFFD, as tiktoken);
                ``"surrogatepass"`` encodes them as their UTF-8-style bytes.

        Returns:
            The token ids, a list of ints.

        Raises:
            TokenizerError: ``text`` is not a ``str`` or ``surrogates`` is unknown.
            SpecialTokenError: ``allowed_special``/``disallowed_special`` names an unknown
                special token or is a plain string other than ``"all"``.
            DisallowedSpecialTokenError: the text holds a disallowed special token.
        """
        if not isinstance(text, str):
            raise TokenizerError(f"encode expects a str, got {type(text).__name__}")
        if surrogates not in ("replace", "surrogatepass"):
            raise TokenizerError(f"surrogates must be 'replace' or 'surrogatepass', got {surrogates!r}")
        allowed, disallowed = resolve_special(self._vocab.special, allowed_special, disallowed_special)
        check_disallowed(text, disallowed)
        if not allowed:
            return self._encode_text(text, surrogates)
        out: list[int] = []
        for chunk, special in split_on_special(text, allowed):
            out += self._encode_text(chunk, surrogates)
            if special is not None:
                out.append(self._vocab.special[special])
        return out

    def encode_ordinary(self, text: str) -> list[int]:
        """Encode ignoring special tokens entirely (their text is plain text).

        Args:
            text: the text to encode.
        """
        return self.encode(text, disallowed_special=())

    def encode_batch(self, texts: Iterable[str], **kwargs: Any) -> list[list[int]]:
        """``[encode(t, **kwargs) for t in texts]``, sharing the piece cache.

        Args:
            texts: the texts.
            **kwargs: :meth:`encode`'s keyword arguments.
        """
        return [self.encode(t, **kwargs) for t in texts]

    def _encode_text(self, text: str, surrogates: Surrogates) -> list[int]:
        if surrogates == "surrogatepass":
            return self._encode_pieces(text, "surrogatepass")
        try:
            return self._encode_pieces(text, "strict")
        except UnicodeEncodeError:
            return self._encode_pieces(replace_surrogates(text), "strict")

    def _encode_pieces(self, text: str, errors: str) -> list[int]:
        cache = self._cache
        out: list[int] = []
        extend = out.extend
        for piece in split_pieces(self._regex, text):
            ids = cache.get(piece)
            if ids is None:
                ids = self._encode_piece(piece, errors)
            extend(ids)
        return out

    def _encode_piece(self, piece: str, errors: str) -> list[int]:
        vocab = self._vocab
        try:
            data = piece.encode("utf-8")
        except UnicodeEncodeError:
            if errors == "strict":
                raise
            data = piece.encode("utf-8", errors)
            token = vocab.tokens.get(data)
            return [token] if token is not None else self._merge_bytes(data)
        token = vocab.tokens.get(data)
        ids = [token] if token is not None else self._merge_bytes(data)
        if len(data) <= _CACHED_PIECE_BYTES:  # long pieces are rare and would bloat the cache
            if len(self._cache) >= self.cache_size:
                self._cache.clear()
            self._cache[piece] = ids
        return ids

    def _merge_bytes(self, data: bytes) -> list[int]:
        byte_ids = self._vocab.byte_ids
        return apply_merges([byte_ids[b] for b in data], self._vocab.ranks, self._vocab.merged_ids)

    # ------------------------------------------------------------------ decoding
    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """The bytes the ids stand for (special tokens as their UTF-8 text).

        Args:
            ids: token ids: a list, any iterable of ints, or a 1-D NumPy/CuPy integer array.

        Raises:
            TokenIdError: an id out of ``[0, vocab_size)`` or not an integer (bools too).
        """
        if hasattr(ids, "tolist"):  # numpy / cupy arrays
            ids = ids.tolist()  # type: ignore[union-attr]
        ids = ids if isinstance(ids, list) else list(ids)
        table = self._vocab.id_to_bytes
        try:
            if ids and (min(ids) < 0 or any(type(i) is bool for i in ids)):  # True would decode as id 1
                raise IndexError
            return b"".join([table[i] for i in ids])
        except (IndexError, TypeError):
            raise self._bad_id(ids) from None

    def decode(self, ids: Iterable[int], errors: str = "replace") -> str:
        """Text of ``ids``. Byte sequences that are not UTF-8 become U+FFFD (``errors="replace"``);
        ``errors="strict"`` raises :class:`TokenizerError` instead; any ``bytes.decode`` handler works.

        Args:
            ids: token ids (a list, iterable or 1-D integer array).
            errors: default ``"replace"``; a ``bytes.decode`` error handler.

        Raises:
            TokenIdError: an id out of range or not an integer.
            TokenizerError: invalid UTF-8 with ``errors="strict"``, or an unknown handler.
        """
        data = self.decode_bytes(ids)
        try:
            return data.decode("utf-8", errors)
        except UnicodeDecodeError as exc:
            raise TokenizerError(
                f"the ids decode to bytes that are not valid UTF-8 ({exc.reason} at byte {exc.start}); "
                f"use errors='replace' to get U+FFFD there"
            ) from None
        except LookupError:
            raise TokenizerError(f"unknown decode error handler {errors!r}") from None

    def decode_batch(self, batch: Iterable[Iterable[int]], errors: str = "replace") -> list[str]:
        """``[decode(ids, errors) for ids in batch]``.

        Args:
            batch: sequences of token ids (or a 2-D integer array, one row per text).
            errors: default ``"replace"``; see :meth:`decode`.
        """
        return [self.decode(ids, errors) for ids in batch]

    def _bad_id(self, ids: list[Any]) -> TokenIdError:
        n = self.vocab_size
        for pos, i in enumerate(ids):
            if isinstance(i, bool) or not hasattr(i, "__index__"):
                return TokenIdError(f"decode: item {pos} is {i!r}, not an integer token id")
            if not 0 <= i < n:
                return TokenIdError(f"decode: token id {i} (at position {pos}) is out of range [0, {n})")
        return TokenIdError("decode: invalid token ids")

    # ------------------------------------------------------------------ vocabulary
    @property
    def vocab_size(self) -> int:
        return self._vocab.size

    @property
    def pattern(self) -> str:
        return self._pattern

    @property
    def special_tokens(self) -> dict[str, int]:
        return dict(self._vocab.special)

    @property
    def merges(self) -> list[tuple[bytes, bytes]]:
        table = self._vocab.id_to_bytes
        return [(table[a], table[b]) for a, b in self._vocab.merges]

    def token_to_id(self, token: bytes | str) -> int:
        """Id of an ordinary token (bytes) or a special token (str).

        Args:
            token: the token's bytes, or a special token's text.

        Raises:
            TokenizerError: not a token of this vocabulary.
        """
        found = self._vocab.tokens.get(token) if isinstance(token, bytes) else self._vocab.special.get(token)
        if found is None:
            raise TokenizerError(f"{token!r} is not a token of this vocabulary")
        return found

    def id_to_token(self, idx: int) -> bytes:
        """The bytes of token ``idx`` (a special token's UTF-8 text).

        Args:
            idx: a token id in ``[0, vocab_size)``.

        Raises:
            TokenIdError: ``idx`` is out of range or not an integer.
        """
        if isinstance(idx, bool) or not hasattr(idx, "__index__") or not 0 <= idx < self.vocab_size:
            raise TokenIdError(f"token id {idx!r} is out of range [0, {self.vocab_size})")
        return self._vocab.id_to_bytes[idx]

    def get_vocab(self) -> dict[str, int]:
        """``{GPT-2 printable spelling: id}`` of the ordinary tokens (as in ``encoder.json``)."""
        return {token_to_str(t): i for t, i in self._vocab.tokens.items()}

    # ------------------------------------------------------------------ files
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write one JSON file (format, version, pattern, vocab, merges, special tokens) atomically.

        Args:
            path: the file to write (replaced in one step).

        Raises:
            SerializationError: the write failed (the old file is then intact).
        """
        bpe_files.save_bpe(self._vocab, self._pattern, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ByteLevelBPETokenizer:
        """Read a file written by :meth:`save`; anything wrong raises ``SerializationError``.

        Args:
            path: the tokenizer JSON file (bounded read; the vocabulary is checked before use).

        Raises:
            SerializationError: missing, unreadable, too large, not strict JSON, another
                format or version, or an incoherent vocabulary.
        """
        vocab, pattern = bpe_files.load_bpe(path)
        return cls._from_built(vocab, pattern)

    @classmethod
    def from_gpt2_files(
        cls,
        encoder_json: str | os.PathLike[str],
        vocab_bpe: str | os.PathLike[str],
        special_tokens: Sequence[str] = ("<|endoftext|>",),
    ) -> ByteLevelBPETokenizer:
        """GPT-2's published ``encoder.json`` + ``vocab.bpe`` (entries in ``special_tokens`` are special).

        Args:
            encoder_json: the ``encoder.json`` file (GPT-2 printable spelling -> id).
            vocab_bpe: the ``vocab.bpe`` merges file (``#version`` line, then one merge a line).
            special_tokens: default ``("<|endoftext|>",)``; entries of ``encoder.json`` that are
                special tokens.

        Raises:
            SerializationError: a file is missing, too large, malformed, or the two disagree.
        """
        return cls._from_built(
            bpe_files.read_gpt2_files(encoder_json, vocab_bpe, special_tokens), resolve_pattern("gpt2")
        )

    def __repr__(self) -> str:
        pattern = next((n for n in ("gpt2", "gpt4") if resolve_pattern(n) == self._pattern), "custom")
        return (
            f"ByteLevelBPETokenizer(vocab_size={self.vocab_size}, merges={len(self._vocab.merges)}, "
            f"pattern={pattern!r}, special_tokens={list(self._vocab.special)})"
        )


def _number_specials(special_tokens: Sequence[str], first_id: int) -> dict[str, int]:
    numbered: dict[str, int] = {}
    for token in special_tokens:
        if not isinstance(token, str) or not token:
            raise ConfigError(f"special token {token!r} must be a non-empty string")
        if token in numbered:
            raise ConfigError(f"special token {token!r} is listed twice")
        numbered[token] = first_id + len(numbered)
    return numbered
