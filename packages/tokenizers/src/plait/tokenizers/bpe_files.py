"""Byte-level BPE files: Plait's one-file JSON format and GPT-2's ``encoder.json`` + ``vocab.bpe``.

Plait's format (``format: "plait.byte_level_bpe"``, ``version: 1``)::

    {"format": ..., "version": 1, "pattern": "<regex>",
     "vocab": {"<token>": id, ...},            # tokens spelt with GPT-2's byte->char map
     "merges": [["<left>", "<right>"], ...],   # in rank order
     "special_tokens": {"<|endoftext|>": id, ...}}

Every problem found on reading raises ``SerializationError("<file>: <problem>")``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from plait.core.errors import ConfigError, SerializationError
from plait.core.reading import JSON_MAX_BYTES, read_text

from ._bytes import str_to_token, token_to_str
from ._json import FORMAT_VERSION, check_header, read_json, require, write_json
from ._vocab import BPEVocab, build_vocab
from .patterns import compile_pattern

__all__ = ["FORMAT", "save_bpe", "load_bpe", "read_gpt2_files"]

FORMAT = "plait.byte_level_bpe"


def save_bpe(vocab: BPEVocab, pattern: str, path: str | os.PathLike[str]) -> None:
    table = vocab.id_to_bytes
    payload = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "pattern": pattern,
        "vocab": {token_to_str(t): i for t, i in sorted(vocab.tokens.items(), key=lambda kv: kv[1])},
        "merges": [[token_to_str(table[a]), token_to_str(table[b])] for a, b in vocab.merges],
        "special_tokens": dict(vocab.special),
    }
    write_json(path, payload)


def load_bpe(path: str | os.PathLike[str], payload: Any = None) -> tuple[BPEVocab, str]:
    """-> (validated vocabulary, pattern); ``payload``: the file's parsed JSON if already read."""
    payload = read_json(path) if payload is None else payload
    check_header(payload, path, FORMAT)
    pattern = require(payload, "pattern", str, path)
    try:
        compile_pattern(pattern)
    except ConfigError as exc:
        raise SerializationError(f"{path}: {exc}") from None
    tokens = _read_tokens(require(payload, "vocab", dict, path), path, "vocab")
    raw_merges = require(payload, "merges", list, path)
    merges = [_read_merge(m, rank, path) for rank, m in enumerate(raw_merges)]
    special = require(payload, "special_tokens", dict, path)
    return _validate(tokens, merges, special, path), pattern


def read_gpt2_files(
    encoder_json: str | os.PathLike[str], vocab_bpe: str | os.PathLike[str], special_tokens: Sequence[str]
) -> BPEVocab:
    """Parse GPT-2's files; ``special_tokens`` present in ``encoder.json`` become special."""
    encoder = read_json(encoder_json)
    if not isinstance(encoder, dict):
        raise SerializationError(f"{encoder_json}: expected a JSON object {{token: id}}")
    special = {s: encoder.pop(s) for s in special_tokens if s in encoder}
    tokens = _read_tokens(encoder, encoder_json, "encoder")
    lines = read_text(vocab_bpe, component="tokenizer merges", max_bytes=JSON_MAX_BYTES).split("\n")
    if lines and lines[0].startswith("#version"):
        lines = lines[1:]
    merges = []
    for lineno, line in enumerate(lines, start=2):
        if not line.strip():
            continue
        parts = line.split(" ")
        if len(parts) != 2:
            raise SerializationError(f"{vocab_bpe}: line {lineno} is not two tokens separated by one space: {line!r}")
        merges.append(_read_merge(parts, lineno, vocab_bpe))
    return _validate(tokens, merges, special, encoder_json)


def _read_tokens(raw: dict[str, Any], path: Any, where: str) -> dict[bytes, int]:
    tokens: dict[bytes, int] = {}
    for spelling, idx in raw.items():
        token = str_to_token(spelling)
        if token is None or not token:
            raise SerializationError(f"{path}: {where} entry {spelling!r} is not a byte-level token spelling")
        if isinstance(idx, bool) or not isinstance(idx, int):
            raise SerializationError(f"{path}: {where} entry {spelling!r} has id {idx!r}, not an integer")
        tokens[token] = idx
    return tokens


def _read_merge(raw: Any, rank: int, path: Any) -> tuple[bytes, bytes]:
    if not (isinstance(raw, list) and len(raw) == 2 and all(isinstance(p, str) for p in raw)):
        raise SerializationError(f"{path}: merge {rank} must be a pair of token strings, got {raw!r}")
    left, right = str_to_token(raw[0]), str_to_token(raw[1])
    if not left or not right:
        raise SerializationError(f"{path}: merge {rank} {raw!r} is not made of byte-level token spellings")
    return left, right


def _validate(tokens: dict[bytes, int], merges: list[tuple[bytes, bytes]], special: Any, path: Any) -> BPEVocab:
    try:
        return build_vocab(tokens, merges, special)
    except ConfigError as exc:
        raise SerializationError(f"{path}: {exc}") from None
