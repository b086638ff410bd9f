"""The validated vocabulary of a byte-level BPE tokenizer (shared by training, files and encoding).

:func:`build_vocab` is the one place that checks a vocabulary is coherent; it raises
:class:`~plait.core.errors.ConfigError` with a message naming the problem (the file loaders
re-raise that as ``SerializationError`` naming the file).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from plait.core.errors import ConfigError

__all__ = ["BPEVocab", "build_vocab"]


@dataclass(frozen=True)
class BPEVocab:
    tokens: dict[bytes, int]  # ordinary tokens -> id
    special: dict[str, int]  # special tokens -> id
    merges: list[tuple[int, int]]  # in rank order
    id_to_bytes: list[bytes] = field(repr=False)  # every id (specials as their UTF-8 text)
    byte_ids: list[int] = field(repr=False)  # byte value -> id of its single-byte token
    ranks: dict[tuple[int, int], int] = field(repr=False)  # merge pair -> rank
    merged_ids: list[int] = field(repr=False)  # rank -> id the merge produces

    @property
    def size(self) -> int:
        return len(self.id_to_bytes)


def build_vocab(
    tokens: Mapping[bytes, int], merges: Sequence[tuple[bytes, bytes]], special: Mapping[str, int]
) -> BPEVocab:
    """Check and index a vocabulary: ids dense in ``[0, n)``, all 256 bytes, merges closed."""
    for s in special:
        if not isinstance(s, str) or not s:
            raise ConfigError(f"special token {s!r} must be a non-empty string")
    missing = [b for b in range(256) if bytes([b]) not in tokens]
    if missing:
        raise ConfigError(f"the vocabulary lacks the single-byte token(s) for byte value(s) {missing[:8]}")
    size = len(tokens) + len(special)
    id_to_bytes: list[bytes | None] = [None] * size
    owner: dict[int, str] = {}
    for name, idx, data in [(repr(t), i, t) for t, i in tokens.items()] + [
        (repr(s), i, s.encode("utf-8", "surrogatepass")) for s, i in special.items()
    ]:
        if isinstance(idx, bool) or not isinstance(idx, int):
            raise ConfigError(f"token {name} has id {idx!r}, which is not an integer")
        if not 0 <= idx < size:
            raise ConfigError(f"token {name} has id {idx}, out of range for a vocabulary of {size} tokens")
        if idx in owner:
            raise ConfigError(f"id {idx} is used twice: by {owner[idx]} and by {name}")
        owner[idx] = name
        id_to_bytes[idx] = data
    merge_ids: list[tuple[int, int]] = []
    ranks: dict[tuple[int, int], int] = {}
    merged_ids: list[int] = []
    for rank, (left, right) in enumerate(merges):
        pair = (tokens.get(left), tokens.get(right))
        if pair[0] is None or pair[1] is None:
            unknown = left if pair[0] is None else right
            raise ConfigError(f"merge {rank} ({left!r} {right!r}) uses {unknown!r}, which is not in the vocabulary")
        result = tokens.get(left + right)
        if result is None:
            raise ConfigError(
                f"merge {rank} ({left!r} {right!r}) makes {left + right!r}, which is not in the vocabulary"
            )
        if pair in ranks:
            raise ConfigError(f"merge {rank} ({left!r} {right!r}) repeats merge {ranks[pair]}")
        ranks[pair] = rank
        merge_ids.append(pair)  # type: ignore[arg-type]
        merged_ids.append(result)
    return BPEVocab(
        tokens=dict(tokens),
        special=dict(special),
        merges=merge_ids,
        id_to_bytes=id_to_bytes,  # type: ignore[arg-type]  # dense: every slot was filled above
        byte_ids=[tokens[bytes([b])] for b in range(256)],
        ranks=ranks,
        merged_ids=merged_ids,
    )
